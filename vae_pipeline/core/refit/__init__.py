"""The daily analysis as a few pure stages, shared by the pipeline, ``vae train`` and the
benchmarks, so every estimator and model variant is wired once (in the estimator registry).

1. :func:`fit_models` -- every model the estimators need (the only stage that trains);
2. :func:`estimate_decisions` -- every covariance as its min-variance decision, with problems;
3. :func:`score_decision` -- a decision's realised vol over the days it was held;
plus the anomaly (:func:`model_errors`) and factor (:func:`latent_means`) stages, the window
cut (:func:`training_window_returns`, :func:`regime_labels`) and :class:`WindowRefit`, the
stages as a walk-forward decision rule.
"""

from .anomalies import flagged_errors, model_errors
from .covariances import estimate_covariances, make_fitted_estimator, servable_estimators
from .decisions import (
    DECISION_COLUMNS,
    Decisions,
    covariance_problems,
    estimate_decisions,
    min_variance_decisions,
)
from .factors import latent_means, latents_wide
from .models import (
    CVAE_MODEL,
    VAE_MODEL,
    FittedModels,
    SiblingWarmStart,
    cold_train_config,
    condition_count,
    fit_model,
    fit_models,
    model_config,
)
from .scoring import score_decision
from .sweep import SWEEP_BETAS, SWEEP_COLUMNS, sweep_betas
from .walk_forward import WindowRefit, experiment_estimators
from .window import regime_labels, training_window_returns

__all__ = [
    "CVAE_MODEL",
    "SWEEP_BETAS",
    "SWEEP_COLUMNS",
    "condition_count",
    "fit_model",
    "sweep_betas",
    "DECISION_COLUMNS",
    "VAE_MODEL",
    "Decisions",
    "FittedModels",
    "SiblingWarmStart",
    "WindowRefit",
    "cold_train_config",
    "covariance_problems",
    "estimate_covariances",
    "estimate_decisions",
    "experiment_estimators",
    "fit_models",
    "flagged_errors",
    "latent_means",
    "latents_wide",
    "make_fitted_estimator",
    "min_variance_decisions",
    "model_config",
    "model_errors",
    "regime_labels",
    "score_decision",
    "servable_estimators",
    "training_window_returns",
]
