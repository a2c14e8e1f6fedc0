"""Validated result records (pydantic v2) returned by the analyses.

Every model rejects NaN / inf (``allow_inf_nan=False`` applies to nested floats too), forbids
unknown fields, and dumps to plain JSON-able Python (``model_dump()``; tuples become lists under
``model_dump(mode="json")`` and validate back either way).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

_UNIT_TOL = 1e-9  # correlations / R^2 computed in floating point may overshoot [0, 1] by rounding


class _Result(BaseModel):
    model_config = ConfigDict(allow_inf_nan=False, extra="forbid")


def _check_interval(ci: tuple[float, ...] | None, name: str) -> None:
    if ci is not None and ci[-2] > ci[-1]:
        raise ValueError(f"{name}: lower bound {ci[-2]} exceeds upper bound {ci[-1]}")


def _check_unit(values: list[float], name: str) -> None:
    bad = [v for v in values if not (-_UNIT_TOL <= v <= 1.0 + _UNIT_TOL)]
    if bad:
        raise ValueError(f"{name}: values outside [0, 1]: {bad}")


class CovarianceScore(_Result):
    """Out-of-sample score of one covariance estimator in the min-variance horse race."""

    estimator: str = Field(min_length=1)
    vol: float = Field(ge=0.0, description="realised annualised vol, decimal (0.12 = 12 %)")
    gap_to_oracle: float | None = Field(
        default=None, description="vol minus the oracle's vol (None when no oracle, e.g. real data)"
    )
    n_rebalances: int = Field(ge=1)
    ci_vs_ledoit_wolf: tuple[float, float, float] | None = Field(
        default=None,
        description="(diff, lo, hi) of annualised vol vs Ledoit-Wolf, paired bootstrap",
    )
    ci_vs_pca: tuple[float, float, float] | None = Field(
        default=None, description="(diff, lo, hi) of annualised vol vs PCA, paired bootstrap"
    )

    @model_validator(mode="after")
    def _intervals_ordered(self) -> CovarianceScore:
        _check_interval(self.ci_vs_ledoit_wolf, "ci_vs_ledoit_wolf")
        _check_interval(self.ci_vs_pca, "ci_vs_pca")
        return self


class LatentInterpretation(_Result):
    """What the latent dimensions track.

    ``abs_corr[observable][j]`` is |Pearson corr| of latent j with the observable;
    ``best_abs_corr[observable]`` its maximum over latents; ``recovery_r2[method][i]`` the in-sample
    R^2 of true factor ``factor_names[i]`` regressed on all of that method's latents (None on real
    data). ``baseline_best_abs_corr[method][observable]`` repeats ``best_abs_corr`` for the PCA /
    factor-analysis baselines so every VAE figure has its linear counterpart beside it.
    """

    latent_names: list[str]
    abs_corr: dict[str, list[float]]
    best_abs_corr: dict[str, float]
    recovery_r2: dict[str, list[float]] | None = None
    factor_names: list[str] = Field(default_factory=list)
    baseline_best_abs_corr: dict[str, dict[str, float]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _consistent(self) -> LatentInterpretation:
        k = len(self.latent_names)
        for obs, values in self.abs_corr.items():
            if len(values) != k:
                raise ValueError(f"abs_corr[{obs!r}] has {len(values)} values for {k} latents")
            _check_unit(values, f"abs_corr[{obs!r}]")
        if set(self.best_abs_corr) != set(self.abs_corr):
            raise ValueError("best_abs_corr and abs_corr must name the same observables")
        for obs, best in self.best_abs_corr.items():
            _check_unit([best], f"best_abs_corr[{obs!r}]")
            if self.abs_corr[obs] and abs(best - max(self.abs_corr[obs])) > 1e-9:
                raise ValueError(f"best_abs_corr[{obs!r}] is not the maximum of abs_corr[{obs!r}]")
        for method, best in self.baseline_best_abs_corr.items():
            _check_unit(list(best.values()), f"baseline_best_abs_corr[{method!r}]")
        if self.recovery_r2 is not None:
            for method, values in self.recovery_r2.items():
                if len(values) != len(self.factor_names):
                    raise ValueError(
                        f"recovery_r2[{method!r}] has {len(values)} values for "
                        f"{len(self.factor_names)} factor_names"
                    )
                _check_unit(values, f"recovery_r2[{method!r}]")
        return self


class AnomalyTest(_Result):
    """Does reconstruction error flag stocks that later suffer idiosyncratic drawdowns?

    Drawdowns are negative decimals (-0.25 = a 25 % fall from peak). Rank correlations are signed
    so that positive means "higher error goes with the planted flag / a deeper later drawdown".
    """

    error_vs_anomaly_rho: float | None = Field(
        default=None, ge=-1.0, le=1.0, description="Spearman(error, planted); None on real data"
    )
    high_error_mean_dd: float = Field(le=0.0, ge=-1.0)
    low_error_mean_dd: float = Field(le=0.0, ge=-1.0)
    partial_rho_given_idio_vol: float = Field(ge=-1.0, le=1.0)
    partial_rho_ci: tuple[float, float]
    n_high: int = Field(ge=1)
    n_low: int = Field(ge=1)
    # The same test of the standardised surprise (the recent error in units of each stock's
    # own noise variance, core.anomaly.standardised_surprise); None where it was not computed.
    surprise_vs_anomaly_rho: float | None = Field(default=None, ge=-1.0, le=1.0)
    surprise_partial_rho: float | None = Field(default=None, ge=-1.0, le=1.0)
    surprise_partial_rho_ci: tuple[float, float] | None = None

    @field_validator("partial_rho_ci", "surprise_partial_rho_ci")
    @classmethod
    def _ci_valid(cls, ci: tuple[float, float] | None) -> tuple[float, float] | None:
        if ci is None:
            return ci
        if not (-1.0 <= ci[0] <= ci[1] <= 1.0):
            raise ValueError(f"partial_rho_ci must satisfy -1 <= lo <= hi <= 1, got {ci}")
        return ci


class EmbeddingResult(_Result):
    """2-D embedding of stock loadings and how well it separates sectors."""

    method: Literal["umap", "pca"]
    silhouette: float | None = Field(
        default=None,
        ge=-1.0,
        le=1.0,
        description="None when fewer than two sectors are known (e.g. no sectors file)",
    )


class TrainSummary(_Result):
    """Short record of one training run."""

    epochs: int = Field(ge=1)
    final_loss: float
    seconds: float = Field(ge=0.0)
