"""Every covariance estimator of one decision date, from already trained models."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from vae_pipeline.core.covariance import (
    CVAECovariance,
    CVAEHeteroCovariance,
    OracleCovariance,
    VAECovariance,
    VAEHeteroCovariance,
    VAEPosteriorCovariance,
    VAEShrunkCovariance,
    make_estimator,
)
from vae_pipeline.core.training import TrainResult, train_vae

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
    vae_hetero: TrainResult | None = None,
    cvae_hetero: TrainResult | None = None,
) -> dict[str, np.ndarray]:
    """Covariances (N x N, in the column order of ``window``) by estimator name.

    ``vae`` / ``cvae`` are models trained on this same window; ``regimes`` are the
    window's regime labels (the last one is the regime at the decision date). The sample
    covariance is left out when N >= T - 1 (rank T - 1 after demeaning: singular).

    "vae_hetero" needs its own model (a learned per-stock noise variance): ``vae_hetero`` when
    given, else one trained here on ``window`` with the VAE's own ``TrainConfig`` and
    ``noise="learned"`` (about as cheap as the VAE's fit). "cvae_hetero" likewise from the
    CVAE's ``TrainConfig`` and the window's regime labels.
    """
    covs: dict[str, np.ndarray] = {}
    for name in CLASSICAL:
        if name == "sample" and window.shape[1] >= window.shape[0] - 1:
            continue  # N >= T - 1: singular, so it has no min-variance portfolio
        params = {"n_components": k} if name in ("pca", "factor_analysis") else {}
        covs[name] = make_estimator(name, **params).fit(window).covariance_
    if vae is not None:
        for name, cls in (
            ("vae", VAECovariance),
            ("vae_posterior", VAEPosteriorCovariance),
            ("vae_shrunk", VAEShrunkCovariance),
        ):
            covs[name] = cls.from_trained(vae, window, n_samples=n_samples, seed=seed).covariance_
    if vae_hetero is None and vae is not None:
        vae_hetero = train_vae(window, replace(vae.config, noise="learned"))
    if vae_hetero is not None:
        covs["vae_hetero"] = VAEHeteroCovariance.from_trained(
            vae_hetero, window, n_samples=n_samples, seed=seed
        ).covariance_
    if cvae is not None:
        if regimes is None:
            raise ValueError("the CVAE covariance needs the window's regime labels")
        est = CVAECovariance.from_trained(
            cvae, window, y=np.asarray(regimes), n_samples=n_samples, seed=seed
        )
        covs["cvae"] = est.covariance_
        if cvae_hetero is None:
            cvae_hetero = train_vae(
                window,
                replace(cvae.config, noise="learned"),
                conditions=np.asarray(regimes),
                n_conditions=cvae.n_conditions,
            )
        covs["cvae_hetero"] = CVAEHeteroCovariance.from_trained(
            cvae_hetero, window, y=np.asarray(regimes), n_samples=n_samples, seed=seed
        ).covariance_
        covs["ledoit_wolf_regime"] = (
            make_estimator("ledoit_wolf_regime").fit(window, np.asarray(regimes)).covariance_
        )
    if oracle is not None:
        covs["oracle"] = OracleCovariance(covariance=oracle).fit(window).covariance_
    return covs
