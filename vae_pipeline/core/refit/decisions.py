"""Stage 2b of the daily refit: each covariance kept as its min-variance decision.

A decision is O(N) rows per estimator (weights, asset vols, the predicted portfolio vol and the
covariance's smallest eigenvalue), never an N x N table, so it is cheap to store at any N.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from vae_pipeline.core.covariance.spectrum import min_eigenvalue
from vae_pipeline.core.minvar import minvar_weights

from .covariances import estimate_covariances
from .models import FittedModels

ANNUAL = np.sqrt(252.0)
DECISION_COLUMNS = ["estimator", "ticker", "weight", "asset_vol", "predicted_vol", "min_eigenvalue"]


@dataclass(frozen=True)
class Decisions:
    """Min-variance decisions of one date: ``frame`` (long, ``DECISION_COLUMNS``), the
    symmetric-PSD and weight-sum problems found (empty when all pass), and one summary row per
    estimator (predicted vol, largest absolute weight)."""

    frame: pd.DataFrame
    psd_problems: list[str]
    weight_problems: list[str]
    summary: list[dict]

    @property
    def estimators(self) -> list[str]:
        return list(dict.fromkeys(self.frame["estimator"]))

    def weights(self) -> dict[str, np.ndarray]:
        """Each estimator's weight vector (the window's column order)."""
        return {
            name: rows["weight"].to_numpy()
            for name, rows in self.frame.groupby("estimator", sort=False)
        }


def covariance_problems(
    covs: dict[str, np.ndarray], min_eigs: dict[str, float] | None = None
) -> list[str]:
    """Symmetric-PSD problems over all estimators (empty when all pass); ``min_eigs`` are the
    smallest eigenvalues when already known (computed here otherwise)."""
    psd: list[str] = []
    for name, cov in covs.items():
        if not np.isfinite(cov).all() or not np.allclose(cov, cov.T, atol=1e-12, rtol=1e-8):
            psd.append(f"{name}: not finite and symmetric")
            continue
        min_eig = min_eigs[name] if min_eigs else min_eigenvalue(cov)
        if min_eig < -1e-10 * max(float(np.trace(cov)), 1e-300):
            psd.append(f"{name}: min eigenvalue {min_eig:.3g} < 0")
    return psd


def min_variance_decisions(covs: dict[str, np.ndarray], tickers: list[str]) -> Decisions:
    """Each estimator's covariance kept as its min-variance decision. The smallest eigenvalue
    is computed once per estimator (``min_eigenvalue``: Cholesky + Lanczos at large N, not a
    full eigendecomposition)."""
    min_eigs = {
        name: min_eigenvalue(cov) if np.isfinite(cov).all() else float("nan")
        for name, cov in covs.items()
    }
    psd = covariance_problems(covs, min_eigs)
    frames, weight_problems, summary = [], [], []
    for name, cov in covs.items():
        w = minvar_weights(cov)
        if not np.isfinite(w).all() or abs(w.sum() - 1.0) > 1e-8:
            weight_problems.append(f"{name}: weights sum to {w.sum():.10f}")
        predicted = float(np.sqrt(w @ cov @ w) * ANNUAL)
        frames.append(
            pd.DataFrame(
                {
                    "estimator": name,
                    "ticker": tickers,
                    "weight": w,
                    "asset_vol": np.sqrt(np.diag(cov)) * ANNUAL,
                    "predicted_vol": predicted,
                    "min_eigenvalue": min_eigs[name],
                }
            )
        )
        summary.append(
            {
                "estimator": name,
                "predicted_vol": predicted,
                "max_abs_weight": float(np.abs(w).max()),
            }
        )
    frame = (
        pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=DECISION_COLUMNS)
    )
    return Decisions(frame, psd, weight_problems, summary)


def estimate_decisions(
    window: pd.DataFrame,
    models: FittedModels | None,
    regimes: np.ndarray | None,
    k: int,
    oracle: np.ndarray | None = None,
    seed: int = 42,
    n_samples: int = 2000,
    condition: int | None = None,
    names: Iterable[str] | None = None,
) -> Decisions:
    """Every servable estimator's covariance of ``window`` (see ``estimate_covariances``; no
    training here) kept as its min-variance decision."""
    covs = estimate_covariances(
        window, k, models, regimes, oracle, condition, n_samples, seed, names
    )
    return min_variance_decisions(covs, list(window.columns))
