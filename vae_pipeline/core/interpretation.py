"""What do the latent dimensions mean? Correlations with observables and true-factor recovery.

Works on arrays only (latent posterior means as a dates x k DataFrame), never on a torch model, so
the same functions score the VAE and its linear baselines (PCA, factor analysis) side by side.

Level vs change: a latent inferred from one day's *returns* tracks what moves returns that day,
which for a slow level series (a volatility index, a yield-curve slope) is its daily *change*, not
its level. So besides |corr| with each level series the table has ``volatility_change`` and
``macro_slope_change`` columns (first differences of the level, aligned to the same date).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from sklearn.decomposition import PCA, FactorAnalysis
from sklearn.linear_model import LinearRegression
from sklearn.metrics import r2_score
from sklearn.preprocessing import StandardScaler

from vae_pipeline.core.results import LatentInterpretation

CHANGE_COLUMNS = ("volatility", "macro_slope")


def _as_frame(x: pd.DataFrame | np.ndarray, prefix: str) -> pd.DataFrame:
    if isinstance(x, pd.DataFrame):
        return x
    arr = np.asarray(x, dtype=float)
    if arr.ndim == 1:
        arr = arr[:, None]
    return pd.DataFrame(arr, columns=[f"{prefix}{j}" for j in range(arr.shape[1])])


def _align(a: pd.DataFrame, b: pd.DataFrame, min_rows: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    common = a.index.intersection(b.index)
    if len(common) < min_rows:
        raise ValueError(f"only {len(common)} common dates; need at least {min_rows}")
    return a.loc[common], b.loc[common]


def _abs_pearson(latents: np.ndarray, y: np.ndarray) -> np.ndarray:
    """|corr| of every latent column with ``y`` over the rows where ``y`` is finite.

    A constant latent (a collapsed VAE dimension) correlates with nothing: 0, not NaN.
    """
    mask = np.isfinite(y)
    z, y = latents[mask], y[mask]
    zc, yc = z - z.mean(axis=0), y - y.mean()
    denom = np.sqrt((zc**2).sum(axis=0) * (yc**2).sum())
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.where(denom > 0, (zc * yc[:, None]).sum(axis=0) / denom, 0.0)
    return np.clip(np.abs(r), 0.0, 1.0)


def latent_observable_corr(latents: pd.DataFrame, observables: pd.DataFrame) -> pd.DataFrame:
    """|Pearson corr| of each latent with each observable, aligned on dates.

    Returns a (k latents x observables) DataFrame. Columns are the numeric observable columns
    (levels, e.g. market, volatility, macro_slope, regime) plus ``volatility_change`` /
    ``macro_slope_change`` (daily first differences, see module docstring) when those levels are
    present. An observable that is constant over the window carries no information and is dropped.
    """
    latents = _as_frame(latents, "z")
    obs = observables.select_dtypes(include=[np.number, "bool"]).astype(float)
    for col in CHANGE_COLUMNS:
        if col in obs.columns:
            # Difference on the observable's own calendar before aligning, so a change is always
            # a one-day change even if the latents cover fewer dates.
            obs[f"{col}_change"] = obs[col].diff()
    latents, obs = _align(latents, obs, min_rows=3)
    z = latents.to_numpy(dtype=float)
    if not np.isfinite(z).all():
        raise ValueError("latents contain NaN or inf")
    table = {}
    for col in obs.columns:
        y = obs[col].to_numpy()
        finite = y[np.isfinite(y)]
        if len(finite) < 3 or np.ptp(finite) == 0:
            continue
        table[col] = _abs_pearson(z, y)
    return pd.DataFrame(table, index=latents.columns)


def factor_recovery_r2(latents: pd.DataFrame, true_factors: pd.DataFrame) -> list[float]:
    """In-sample R^2 of each true factor regressed (OLS with intercept) on all latents.

    Rotation-invariant: any invertible linear mix of the true factors scores 1, which is the point
    (a VAE identifies factors only up to rotation). Aligned on dates; order follows the columns
    of ``true_factors``.
    """
    latents, true_factors = _align(_as_frame(latents, "z"), _as_frame(true_factors, "f"), 3)
    x, y = latents.to_numpy(dtype=float), true_factors.to_numpy(dtype=float)
    pred = LinearRegression().fit(x, y).predict(x)
    r2 = r2_score(y, pred, multioutput="raw_values")
    # In-sample OLS R^2 with an intercept lies in [0, 1]; clip rounding only.
    return [float(v) for v in np.clip(r2, 0.0, 1.0)]


def baseline_latents(
    returns: pd.DataFrame | np.ndarray, k: int, method: str = "pca", seed: int = 42
) -> pd.DataFrame:
    """Linear baseline "latents": PCA scores or factor-analysis scores of the standardised panel.

    Same index as ``returns``; columns ``{method}_0 .. {method}_{k-1}``.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    frame = _as_frame(returns, "s")
    x = frame.to_numpy(dtype=float)
    if not np.isfinite(x).all():
        raise ValueError("returns contain NaN or inf")
    x = StandardScaler().fit_transform(x)
    if method == "pca":
        scores = PCA(n_components=k, random_state=seed).fit_transform(x)
    elif method == "factor_analysis":
        scores = FactorAnalysis(n_components=k, random_state=seed).fit_transform(x)
    else:
        raise ValueError(f"method must be 'pca' or 'factor_analysis', got {method!r}")
    return pd.DataFrame(scores, index=frame.index, columns=[f"{method}_{j}" for j in range(k)])


def interpret(
    latents: pd.DataFrame,
    observables: pd.DataFrame,
    true_factors: pd.DataFrame | None = None,
    baselines: Mapping[str, pd.DataFrame] | None = None,
    name: str = "vae",
) -> LatentInterpretation:
    """Bundle correlations and (when the truth is known) recovery R^2 for ``latents`` and baselines.

    ``recovery_r2`` has one entry per method: ``name`` for ``latents`` plus each baseline.
    """
    latents = _as_frame(latents, "z")
    baselines = dict(baselines or {})
    corr = latent_observable_corr(latents, observables)
    baseline_best = {
        method: latent_observable_corr(b, observables).max(axis=0).astype(float).to_dict()
        for method, b in baselines.items()
    }
    recovery = None
    factor_names: list[str] = []
    if true_factors is not None:
        true_factors = _as_frame(true_factors, "f")
        factor_names = [str(c) for c in true_factors.columns]
        recovery = {name: factor_recovery_r2(latents, true_factors)}
        recovery.update({m: factor_recovery_r2(b, true_factors) for m, b in baselines.items()})
    return LatentInterpretation(
        latent_names=[str(c) for c in latents.columns],
        abs_corr={str(c): corr[c].astype(float).tolist() for c in corr.columns},
        best_abs_corr={str(c): float(corr[c].max()) for c in corr.columns},
        recovery_r2=recovery,
        factor_names=factor_names,
        baseline_best_abs_corr=baseline_best,
    )
