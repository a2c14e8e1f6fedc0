"""The daily analysis as a few pure stages, shared by the pipeline, ``vae train`` and the
benchmarks, so every estimator and model variant is wired once (in the estimator registry).

1. :func:`fit_models` -- every model the estimators need (the only stage that trains);
2. :func:`estimate_decisions` -- every covariance as its min-variance decision, with problems;
3. :func:`score_decision` -- a decision's realised vol over the days it was held;
plus the analyses of the day's model:

4. :func:`evaluate_anomalies` -- reconstruction errors and flags, and the test of the flags of
   the decision date H days earlier (:func:`evaluate_flags`);
5. :func:`interpret_factors` -- what each latent tracks, and true-factor recovery when known;
6. :func:`embed_stocks` -- the 2-D stock map of the factor loadings and its sector silhouette;

the factor series (:func:`latent_means`), the window cut (:func:`training_window_returns`,
:func:`regime_labels`) and :class:`WindowRefit`, the stages as a walk-forward decision rule.
"""

from .anomalies import (
    ANOMALY_REPORT_COLUMNS,
    AnomalyReport,
    FlagEvaluation,
    evaluate_anomalies,
    evaluate_flags,
    flagged_errors,
    model_errors,
    reconstruction_errors,
)
from .covariances import estimate_covariances, make_fitted_estimator, servable_estimators
from .decisions import (
    DECISION_COLUMNS,
    Decisions,
    covariance_problems,
    estimate_decisions,
    min_variance_decisions,
)
from .embedding import Embedding, embed_stocks, stock_maps
from .factors import as_latents, latent_means, latents_wide
from .interpretation import (
    BASELINE_METHODS,
    INTERPRETATION_COLUMNS,
    Interpretation,
    interpret_factors,
    interpretation_rows,
)
from .models import (
    CVAE_MODEL,
    VAE_MODEL,
    FittedModels,
    SiblingWarmStart,
    WarmChains,
    chained,
    cold_train_config,
    condition_count,
    fit_model,
    fit_model_range,
    fit_models,
    model_config,
)
from .scoring import score_decision
from .sweep import SWEEP_BETAS, SWEEP_COLUMNS, sweep_betas
from .walk_forward import WindowRefit, experiment_estimators
from .window import regime_labels, training_window_returns

__all__ = [
    "ANOMALY_REPORT_COLUMNS",
    "BASELINE_METHODS",
    "CVAE_MODEL",
    "SWEEP_BETAS",
    "SWEEP_COLUMNS",
    "WarmChains",
    "chained",
    "condition_count",
    "fit_model",
    "fit_model_range",
    "sweep_betas",
    "DECISION_COLUMNS",
    "INTERPRETATION_COLUMNS",
    "VAE_MODEL",
    "AnomalyReport",
    "Decisions",
    "Embedding",
    "FittedModels",
    "FlagEvaluation",
    "Interpretation",
    "SiblingWarmStart",
    "WindowRefit",
    "as_latents",
    "cold_train_config",
    "covariance_problems",
    "embed_stocks",
    "estimate_covariances",
    "estimate_decisions",
    "evaluate_anomalies",
    "evaluate_flags",
    "experiment_estimators",
    "fit_models",
    "flagged_errors",
    "interpret_factors",
    "interpretation_rows",
    "latent_means",
    "latents_wide",
    "make_fitted_estimator",
    "min_variance_decisions",
    "model_config",
    "model_errors",
    "reconstruction_errors",
    "regime_labels",
    "score_decision",
    "servable_estimators",
    "stock_maps",
    "training_window_returns",
]
