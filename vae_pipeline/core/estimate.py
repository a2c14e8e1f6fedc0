"""Every covariance estimator of one decision date, from already trained models."""

from __future__ import annotations

import numpy as np
import pandas as pd

from vae_pipeline.core.covariance import (
    CVAECovariance,
    OracleCovariance,
    VAECovariance,
    VAEPosteriorCovariance,
    VAEShrunkCovariance,
    make_estimator,
)
from vae_pipeline.core.training import TrainResult

CLASSICAL = ("sample", "ledoit_wolf", "nonlinear_shrinkage", "pca", "factor_analysis")


def estimate_covariances(
    window: pd.DataFrame,
    k: int,
    vae: TrainResult | None = None,
    cvae: TrainResult | None = None,
    regimes: np.ndarray | None = None,
    oracle: np.ndarray | None = None,
    n_samples: int = 2000,
    seed: int = 42,
) -> dict[str, np.ndarray]:
    """Covariances (N x N, in the column order of ``window``) by estimator name.

    ``vae`` / ``cvae`` are models trained on this same window; ``regimes`` are the
    window's regime labels (the last one is the regime at the decision date).
    """
    covs: dict[str, np.ndarray] = {}
    for name in CLASSICAL:
        params = {"n_components": k} if name in ("pca", "factor_analysis") else {}
        covs[name] = make_estimator(name, **params).fit(window).covariance_
    if vae is not None:
        for name, cls in (
            ("vae", VAECovariance),
            ("vae_posterior", VAEPosteriorCovariance),
            ("vae_shrunk", VAEShrunkCovariance),
        ):
            covs[name] = cls.from_trained(vae, window, n_samples=n_samples, seed=seed).covariance_
    if cvae is not None:
        if regimes is None:
            raise ValueError("the CVAE covariance needs the window's regime labels")
        est = CVAECovariance.from_trained(
            cvae, window, y=np.asarray(regimes), n_samples=n_samples, seed=seed
        )
        covs["cvae"] = est.covariance_
        covs["ledoit_wolf_regime"] = (
            make_estimator("ledoit_wolf_regime").fit(window, np.asarray(regimes)).covariance_
        )
    if oracle is not None:
        covs["oracle"] = OracleCovariance(covariance=oracle).fit(window).covariance_
    return covs
