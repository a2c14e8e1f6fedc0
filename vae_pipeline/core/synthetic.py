"""Seed-42 synthetic equity panel with a known factor structure (the ground truth).

Model, one trading day ``t`` (states ``*_t`` are known at the close of day ``t``)::

    r_{i,t} = sum_k B_{i,k}(regime_{t-1}) f_{k,t} + d_i s_{t-1} eps_{i,t} [x burst] [+ drift]
    f_{market,t} = mu_m + 0.9 (V_{t-1} / 100 / sqrt(252)) z_t   (0.9: volatility risk premium)
    f_{style_k,t} = sigma_k s_{t-1} g(regime_{t-1}) u_{k,t}, style_1 loading on slope changes
    V_t = 9 + exp(h_t), h_t AR(1) with leverage (innovation corr -0.7 with z_t): VIX level
    slope_t = AR(1) term spread in percent; s_t = sqrt(V_t / V_bar)

Factor and idiosyncratic vols scale with the VIX-like state, so ``true_covariance`` is
conditional. ``kind="regime"`` makes loadings and style vols depend on the regime
(contraction: betas x1.15, shifted sector style exposures, style vols x1.5) and
concentrates style_1 in low-idio-vol names (a factor x characteristic interaction).

Prefix stability: every random stream has its own Generator spawned from
``SeedSequence(seed)`` and is drawn day-major, recursive states run forward from the
start, and per-row arithmetic uses only elementwise IEEE operations (no BLAS, no
reductions over time), so the row of day ``d`` is bit-identical however long the panel.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from vae_pipeline.core.calendar import trading_days

FACTORS = ["market", "style_1", "style_2", "style_3"]
OBSERVABLES = ["market", "volatility", "macro_slope", "regime"]
KINDS = ("linear", "regime")
GICS_SECTORS = [
    "Information Technology",
    "Financials",
    "Health Care",
    "Energy",
    "Industrials",
    "Consumer Staples",
    "Utilities",
    "Materials",
    "Consumer Discretionary",
    "Communication Services",
    "Real Estate",
]

# Calibration (daily units unless stated); see the module docstring for the model.
MARKET_DRIFT = 0.0003  # ~7.5 % a year, so expansions dominate
# VIX = floor + exp(h), h an AR(1): right-skewed levels with a floor, like the real index.
VIX_FLOOR, VIX_LOG_MEAN, VIX_PHI, VIX_SD = 9.0, math.log(9.5), 0.98, 0.55
VIX_MAX = 80.0
VIX_MEAN = 20.0  # ~E[V]: reference level where vol scales equal 1
VOL_RISK_PREMIUM = 0.9  # realised market vol / VIX, as on real data
MARKET_VOL_PER_VIX = VOL_RISK_PREMIUM / 100.0 / math.sqrt(252.0)  # daily market vol per VIX point
VIX_LEVERAGE = -0.7  # corr(VIX innovation, market shock)
VIX_OBS_NOISE = 0.03  # log-noise of the observed index around the state
SLOPE_MEAN, SLOPE_PHI, SLOPE_SD = 1.2, 0.997, 0.8  # term spread (percent): stationary sd
SLOPE_STYLE_CORR = 0.7  # corr(style_1 return, daily slope change)
SECTOR_BETA_RANGE, BETA_NOISE, BETA_CLIP = (0.7, 1.3), 0.25, (0.6, 1.4)
# Equal style vols: each style factor stands as clearly above the idiosyncratic noise as
# in the reference set-up (whose recovery R^2 were 0.64-0.68 for all three styles).
STYLE_VOLS = np.array([0.005, 0.005, 0.005])
IDIO_RANGE = (0.009, 0.019)  # log-uniform base idiosyncratic vol
REGIME_WINDOW = 63  # trailing days of the market trend that set the regime
CONTRACTION_BETA, CONTRACTION_STYLE_VOL = 1.15, 1.5
ANOMALY_HAZARD = 0.018  # daily chance an idle anomaly name starts an episode
BURST_DAYS, DRIFT_DAYS = (3, 5), (40, 60)
BURST_MULT = 6.0  # idio vol multiplier during a burst
DRIFT_TOTAL = -0.06  # cumulative drift over the drift phase


@dataclass(frozen=True)
class _Truth:
    """State paths the oracle needs; row t = state at the close of day t."""

    vix: np.ndarray  # (T,) VIX-like state V_t
    regime: np.ndarray  # (T,) int
    loadings_contraction: np.ndarray  # (N, K), equal to the expansion ones for kind="linear"
    anomaly_idx: np.ndarray  # (A,) column positions of anomaly names
    burst_left: np.ndarray  # (T, A) burst days still to come after day t
    idle: np.ndarray  # (T, A) no episode running after day t (a new one may start)


@dataclass(frozen=True)
class SyntheticPanel:
    """A synthetic panel and its ground truth; see the module docstring for the model."""

    returns: pd.DataFrame
    observables: pd.DataFrame
    factors: pd.DataFrame
    loadings: pd.DataFrame
    sectors: pd.Series
    anomaly: pd.Series
    idio_vol: pd.Series
    kind: str
    seed: int
    _truth: _Truth | None = field(repr=False, compare=False, default=None)

    def regime_loadings(self, regime: int) -> pd.DataFrame:
        """Loadings in force the day after a close in ``regime`` (0 expansion, 1 contraction)."""
        if regime not in (0, 1):
            raise ValueError(f"regime must be 0 or 1, got {regime!r}")
        if regime == 0:
            return self.loadings
        return pd.DataFrame(
            self._truth.loadings_contraction,
            index=self.loadings.index,
            columns=self.loadings.columns,
        )

    def true_covariance(self, date: str | pd.Timestamp) -> np.ndarray:
        """N x N covariance of day ``date + 1`` returns given the state at the close of ``date``.

        ``B Sigma_f B' + D``: loadings of the regime at ``date``; factor and idio vols from
        the VIX state at ``date``. An anomaly name in a burst that continues tomorrow gets the
        burst variance; an idle one gets the expected variance of a burst starting tomorrow
        (hazard-weighted); the drift phase moves only the mean. A non-trading ``date`` is
        taken as of the last close on or before it.
        """
        b, fvar, idio_var = self.covariance_parts(date)
        cov = (b * fvar) @ b.T + np.diag(idio_var)
        return (cov + cov.T) / 2

    def covariance_parts(
        self, date: str | pd.Timestamp
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(B, factor variances, idiosyncratic variances)`` of :meth:`true_covariance`."""
        index = self.returns.index
        ts = pd.Timestamp(date)
        pos = int(index.searchsorted(ts, side="right")) - 1
        if pos < 0 or ts.normalize() > index[-1]:
            raise ValueError(
                f"date {ts.date()} outside the panel [{index[0].date()}, {index[-1].date()}]"
            )
        tr = self._truth
        regime = int(tr.regime[pos]) if self.kind == "regime" else 0
        b = self.loadings.to_numpy() if regime == 0 else tr.loadings_contraction
        fvar = _factor_vols(tr.vix[pos], regime, self.kind) ** 2
        idio_var = self.idio_vol.to_numpy() ** 2 * (tr.vix[pos] / VIX_MEAN)
        boost = np.where(
            tr.burst_left[pos] > 0,
            BURST_MULT**2,
            np.where(tr.idle[pos], 1.0 + ANOMALY_HAZARD * (BURST_MULT**2 - 1), 1.0),
        )
        idio_var[tr.anomaly_idx] *= boost
        return b, fvar, idio_var


def _factor_vols(vix: float, regime: int, kind: str) -> np.ndarray:
    """Daily vols of the 4 factors for the day after a close with state (vix, regime)."""
    style = STYLE_VOLS * math.sqrt(vix / VIX_MEAN)
    if kind == "regime" and regime == 1:
        style = style * CONTRACTION_STYLE_VOL
    return np.concatenate([[MARKET_VOL_PER_VIX * vix], style])


def _calendar(start, end, n_days: int | None) -> pd.DatetimeIndex:
    if end is not None and n_days is not None:
        raise ValueError("give exactly one of end / n_days, not both")
    start_ts = pd.Timestamp(start).normalize()
    if end is not None:
        end_ts = pd.Timestamp(end).normalize()
        if end_ts < start_ts:
            raise ValueError(f"end {end_ts.date()} is before start {start_ts.date()}")
        days = trading_days(start_ts, end_ts)
        if len(days) == 0:
            raise ValueError(f"no trading day between {start_ts.date()} and {end_ts.date()}")
        return days
    n_days = 1260 if n_days is None else int(n_days)
    if n_days < 1:
        raise ValueError(f"n_days must be >= 1, got {n_days}")
    # ~1.45 calendar days per trading day; widen until enough (it never loops in practice).
    span = int(n_days * 1.5) + 30
    while len(days := trading_days(start_ts, start_ts + pd.Timedelta(days=span))) < n_days:
        span *= 2
    return days[:n_days]


def _static(rng: np.random.Generator, n_names: int, n_sectors: int, n_anom: int) -> dict:
    """Loadings, idio vols, sectors, anomaly names: depend on (seed, N, sectors) only.

    Every draw happens whatever the kind, so linear and regime panels share their base.
    """
    sector_of = np.arange(n_names) * n_sectors // n_names  # contiguous sector blocks
    sector_beta = rng.uniform(*SECTOR_BETA_RANGE, n_sectors)
    beta = np.clip(sector_beta[sector_of] + rng.normal(0.0, BETA_NOISE, n_names), *BETA_CLIP)
    sector_style = rng.normal(0.0, 0.8, (n_sectors, 3))
    style = sector_style[sector_of] + rng.normal(0.0, 0.4, (n_names, 3))
    lo, hi = np.log(IDIO_RANGE[0]), np.log(IDIO_RANGE[1])
    idio = np.exp(rng.uniform(lo, hi, n_names))
    anomaly_idx = np.sort(rng.choice(n_names, size=n_anom, replace=False))
    contraction_shift = rng.normal(0.0, 0.5, (n_sectors, 3))[sector_of]
    init = rng.standard_normal(2)  # initial log-VIX and slope
    return dict(
        sector_of=sector_of,
        beta=beta,
        style=style,
        idio=idio,
        anomaly_idx=anomaly_idx,
        contraction_shift=contraction_shift,
        init=init,
    )


def _loadings(st: dict, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """Expansion and contraction loadings (N x K)."""
    expansion = np.column_stack([st["beta"], st["style"]])
    if kind == "linear":
        return expansion, expansion
    # Interaction: style_1 pays off mainly in low-idio-vol names (weight 1.75 -> 0.25).
    rank = np.argsort(np.argsort(st["idio"])) / max(len(st["idio"]) - 1, 1)
    expansion[:, 1] *= 1.75 - 1.5 * rank
    contraction = expansion.copy()
    contraction[:, 0] *= CONTRACTION_BETA
    contraction[:, 1:] += st["contraction_shift"]
    return expansion, contraction


def _anomaly_schedule(u: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Episode phases from uniforms ``u`` (T, A, 3): start, burst length, drift length.

    Returns in_burst, in_drift (T, A) for each day, and burst_left, idle after each close.
    """
    n_t, n_a, _ = u.shape
    burst_left = np.zeros(n_a, dtype=np.int64)
    drift_left = np.zeros(n_a, dtype=np.int64)
    in_burst = np.zeros((n_t, n_a), dtype=bool)
    in_drift = np.zeros((n_t, n_a), dtype=bool)
    burst_after = np.zeros((n_t, n_a), dtype=np.int64)
    idle_after = np.zeros((n_t, n_a), dtype=bool)
    b_lo, b_hi = BURST_DAYS
    d_lo, d_hi = DRIFT_DAYS
    for t in range(n_t):
        start = (burst_left == 0) & (drift_left == 0) & (u[t, :, 0] < ANOMALY_HAZARD)
        burst_left[start] = b_lo + (u[t, start, 1] * (b_hi - b_lo + 1)).astype(np.int64)
        drift_left[start] = d_lo + (u[t, start, 2] * (d_hi - d_lo + 1)).astype(np.int64)
        in_burst[t] = burst_left > 0
        in_drift[t] = ~in_burst[t] & (drift_left > 0)
        burst_left -= in_burst[t]
        drift_left -= in_drift[t]
        burst_after[t] = burst_left
        idle_after[t] = (burst_left == 0) & (drift_left == 0)
    return in_burst, in_drift, burst_after, idle_after


def _macro_paths(
    z: np.ndarray, e_vix: np.ndarray, e_slope: np.ndarray, init: np.ndarray
) -> tuple[np.ndarray, ...]:
    """Scalar state recursions (log-VIX with leverage, slope) and the market/regime path.

    Plain Python floats with ``math`` keep every step bit-identical whatever the length.
    """
    n_t = len(z)
    mu_h = VIX_LOG_MEAN
    sig_h = VIX_SD * math.sqrt(1 - VIX_PHI**2)
    sig_s = SLOPE_SD * math.sqrt(1 - SLOPE_PHI**2)
    lev = math.sqrt(1 - VIX_LEVERAGE**2)
    hi = math.log(VIX_MAX - VIX_FLOOR)
    h = mu_h + VIX_SD * float(init[0])
    s = SLOPE_MEAN + SLOPE_SD * float(init[1])
    vix_prev = np.empty(n_t)  # V_{t-1}: drives day t
    vix = np.empty(n_t)  # V_t: state at the close of day t
    slope = np.empty(n_t)
    market = np.empty(n_t)
    log_ret = np.empty(n_t)
    for t in range(n_t):
        v_prev = VIX_FLOOR + math.exp(min(h, hi))
        vix_prev[t] = v_prev
        market[t] = MARKET_DRIFT + MARKET_VOL_PER_VIX * v_prev * float(z[t])
        log_ret[t] = math.log1p(market[t])
        shock = VIX_LEVERAGE * float(z[t]) + lev * float(e_vix[t])
        h = mu_h + VIX_PHI * (h - mu_h) + sig_h * shock
        vix[t] = VIX_FLOOR + math.exp(min(h, hi))
        s = SLOPE_MEAN + SLOPE_PHI * (s - SLOPE_MEAN) + sig_s * float(e_slope[t])
        slope[t] = s
    csum = np.cumsum(log_ret)  # sequential, hence prefix-stable
    lagged = np.concatenate([np.zeros(REGIME_WINDOW), csum[:-REGIME_WINDOW]])[:n_t]
    regime = ((csum - lagged) < 0).astype(np.int64)
    return vix_prev, vix, slope, market, regime


def generate_panel(
    start: str | pd.Timestamp = "2015-01-02",
    end: str | pd.Timestamp | None = None,
    n_days: int | None = None,
    n_names: int = 60,
    n_sectors: int = 6,
    kind: str = "linear",
    seed: int = 42,
    anomaly_fraction: float = 0.1,
) -> SyntheticPanel:
    """Simulate a daily returns panel with 4 true factors, macro observables and anomalies.

    Exactly one of ``end`` / ``n_days`` (default 1260 trading days from ``start``).
    ``regime`` = 1 (contraction) when the trailing 63-day cumulative market return,
    up to and including that day, is below 0. Prefix-stable: see the module docstring.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    if n_names < 1:
        raise ValueError(f"n_names must be >= 1, got {n_names}")
    if n_sectors < 1 or n_names < n_sectors:
        raise ValueError(
            f"need 1 <= n_sectors <= n_names, got n_sectors={n_sectors}, n_names={n_names}"
        )
    if not 0.0 <= anomaly_fraction <= 1.0:
        raise ValueError(f"anomaly_fraction must be in [0, 1], got {anomaly_fraction}")
    index = _calendar(start, end, n_days)
    n_t = len(index)
    n_anom = min(n_names, max(1, round(anomaly_fraction * n_names)))

    streams = [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(8)]
    rng_static, rng_mkt, rng_vix, rng_slope, rng_style, rng_idio, rng_anom, rng_obs = streams
    st = _static(rng_static, n_names, n_sectors, n_anom)
    b_exp, b_con = _loadings(st, kind)

    # Day-major draws: a longer panel extends a shorter one draw for draw.
    z = rng_mkt.standard_normal(n_t)
    e_vix = rng_vix.standard_normal(n_t)
    e_slope = rng_slope.standard_normal(n_t)
    u_style = rng_style.standard_normal((n_t, 3))
    eps = rng_idio.standard_normal((n_t, n_names))
    u_anom = rng_anom.random((n_t, n_anom, 3))
    obs_noise = rng_obs.standard_normal(n_t)

    vix_prev, vix, slope, market, regime = _macro_paths(z, e_vix, e_slope, st["init"])
    prev_regime = np.concatenate([[0], regime[:-1]]) if kind == "regime" else np.zeros(n_t, int)
    scale = np.sqrt(vix_prev / VIX_MEAN)  # style and idio vol scale, day t

    # Factors: style_1 carries the slope innovation (so daily slope changes price it).
    style_mult = np.where(prev_regime == 1, CONTRACTION_STYLE_VOL, 1.0) * scale
    shocks = u_style.copy()
    shocks[:, 0] = SLOPE_STYLE_CORR * e_slope + math.sqrt(1 - SLOPE_STYLE_CORR**2) * u_style[:, 0]
    factors = np.column_stack([market, STYLE_VOLS * shocks * style_mult[:, None]])

    # Systematic part, elementwise over k (no BLAS, so rows do not depend on T).
    returns = np.zeros((n_t, n_names))
    contraction = (prev_regime == 1)[:, None]
    for k in range(len(FACTORS)):
        b_k = np.where(contraction, b_con[:, k], b_exp[:, k]) if kind == "regime" else b_exp[:, k]
        returns += factors[:, k : k + 1] * b_k

    # Idiosyncratic part with planted anomaly episodes (burst, then negative drift).
    idio = st["idio"] * scale[:, None] * eps
    in_burst, in_drift, burst_after, idle_after = _anomaly_schedule(u_anom)
    a_idx = st["anomaly_idx"]
    drift_rate = DRIFT_TOTAL / ((DRIFT_DAYS[0] + DRIFT_DAYS[1]) / 2)
    idio[:, a_idx] = idio[:, a_idx] * np.where(in_burst, BURST_MULT, 1.0) + in_drift * drift_rate
    returns = np.maximum(returns + idio, -0.95)  # simple returns stay above -100 %

    # Observed VIX: the state with a little multiplicative noise.
    volatility = vix * np.array([math.exp(VIX_OBS_NOISE * float(x)) for x in obs_noise])

    tickers = [f"S{i:0{max(3, len(str(n_names - 1)))}d}" for i in range(n_names)]
    names = (
        GICS_SECTORS
        if n_sectors <= len(GICS_SECTORS)
        else [f"Sector {j + 1:02d}" for j in range(n_sectors)]
    )
    ticker_index = pd.Index(tickers, name="ticker")
    observables = pd.DataFrame(
        {"market": market, "volatility": volatility, "macro_slope": slope, "regime": regime},
        index=index,
    )
    truth = _Truth(
        vix=vix,
        regime=regime,
        loadings_contraction=b_con,
        anomaly_idx=a_idx,
        burst_left=burst_after,
        idle=idle_after,
    )
    return SyntheticPanel(
        returns=pd.DataFrame(returns, index=index, columns=ticker_index),
        observables=observables,
        factors=pd.DataFrame(factors, index=index, columns=FACTORS),
        loadings=pd.DataFrame(b_exp, index=ticker_index, columns=FACTORS),
        sectors=pd.Series([names[j] for j in st["sector_of"]], index=ticker_index, name="sector"),
        anomaly=pd.Series(np.isin(np.arange(n_names), a_idx), index=ticker_index, name="anomaly"),
        idio_vol=pd.Series(st["idio"], index=ticker_index, name="idio_vol"),
        kind=kind,
        seed=seed,
        _truth=truth,
    )
