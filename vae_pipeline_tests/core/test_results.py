"""Result records: validation on construction and JSON round trips."""

import json
import math

import pytest
from pydantic import ValidationError

from vae_pipeline.core.results import (
    AnomalyTest,
    CovarianceScore,
    EmbeddingResult,
    LatentInterpretation,
    TrainSummary,
)

NAN = float("nan")


def _valid():
    return [
        CovarianceScore(
            estimator="vae",
            vol=0.11,
            gap_to_oracle=0.004,
            n_rebalances=24,
            ci_vs_ledoit_wolf=(0.001, -0.002, 0.004),
            ci_vs_pca=None,
        ),
        LatentInterpretation(
            latent_names=["z0", "z1"],
            abs_corr={"market": [0.9, 0.1], "volatility": [0.2, 0.3]},
            best_abs_corr={"market": 0.9, "volatility": 0.3},
            recovery_r2={"vae": [0.95, 0.5], "pca": [0.97, 0.4]},
            factor_names=["market", "style_1"],
            baseline_best_abs_corr={"pca": {"market": 0.95}},
        ),
        AnomalyTest(
            error_vs_anomaly_rho=0.4,
            high_error_mean_dd=-0.2,
            low_error_mean_dd=-0.1,
            partial_rho_given_idio_vol=0.3,
            partial_rho_ci=(0.1, 0.5),
            n_high=12,
            n_low=48,
        ),
        EmbeddingResult(method="pca", silhouette=0.5),
        TrainSummary(epochs=300, final_loss=41.2, seconds=3.5),
    ]


@pytest.mark.parametrize("model", _valid(), ids=lambda m: type(m).__name__)
def test_round_trip(model):
    dumped = model.model_dump()
    json.dumps(dumped)  # plain Python, JSON-able
    assert type(model).model_validate(dumped) == model
    assert type(model).model_validate_json(model.model_dump_json()) == model


def test_optional_fields_default_to_none():
    score = CovarianceScore(estimator="sample", vol=0.2, n_rebalances=1)
    assert score.gap_to_oracle is None and score.ci_vs_pca is None
    assert (
        LatentInterpretation(
            latent_names=["z0"], abs_corr={"market": [0.5]}, best_abs_corr={"market": 0.5}
        ).recovery_r2
        is None
    )


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(vol=NAN),
        dict(vol=-0.01),
        dict(vol=math.inf),
        dict(gap_to_oracle=NAN),
        dict(n_rebalances=0),
        dict(ci_vs_pca=(0.0, 0.1, -0.1)),  # lo > hi
        dict(ci_vs_ledoit_wolf=(NAN, 0.0, 0.1)),
        dict(estimator=""),
        dict(unknown_field=1),
    ],
)
def test_covariance_score_rejects(kwargs):
    base = dict(estimator="vae", vol=0.1, n_rebalances=5)
    with pytest.raises(ValidationError):
        CovarianceScore(**{**base, **kwargs})


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(abs_corr={"market": [1.2, 0.1]}, best_abs_corr={"market": 1.2}),
        dict(abs_corr={"market": [NAN, 0.1]}, best_abs_corr={"market": 0.1}),
        dict(abs_corr={"market": [0.5]}, best_abs_corr={"market": 0.5}),  # wrong length
        dict(best_abs_corr={"market": 0.7}),  # not the max
        dict(best_abs_corr={"volatility": 0.9}),  # different keys
        dict(recovery_r2={"vae": [1.5]}, factor_names=["market"]),
        dict(recovery_r2={"vae": [-0.2]}, factor_names=["market"]),
        dict(recovery_r2={"vae": [0.5, 0.5]}, factor_names=["market"]),
        dict(baseline_best_abs_corr={"pca": {"market": 1.1}}),
    ],
)
def test_latent_interpretation_rejects(kwargs):
    base = dict(
        latent_names=["z0", "z1"], abs_corr={"market": [0.9, 0.1]}, best_abs_corr={"market": 0.9}
    )
    with pytest.raises(ValidationError):
        LatentInterpretation(**{**base, **kwargs})


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(high_error_mean_dd=0.1),  # a drawdown is <= 0
        dict(low_error_mean_dd=NAN),
        dict(partial_rho_given_idio_vol=1.5),
        dict(partial_rho_ci=(0.5, 0.1)),
        dict(partial_rho_ci=(-1.5, 0.1)),
        dict(error_vs_anomaly_rho=NAN),
        dict(n_high=0),
    ],
)
def test_anomaly_test_rejects(kwargs):
    base = dict(
        high_error_mean_dd=-0.2,
        low_error_mean_dd=-0.1,
        partial_rho_given_idio_vol=0.3,
        partial_rho_ci=(0.1, 0.5),
        n_high=12,
        n_low=48,
    )
    with pytest.raises(ValidationError):
        AnomalyTest(**{**base, **kwargs})


@pytest.mark.parametrize(
    "cls,kwargs",
    [
        (EmbeddingResult, dict(method="tsne", silhouette=0.1)),
        (EmbeddingResult, dict(method="pca", silhouette=1.5)),
        (EmbeddingResult, dict(method="umap", silhouette=NAN)),
        (TrainSummary, dict(epochs=0, final_loss=1.0, seconds=1.0)),
        (TrainSummary, dict(epochs=1, final_loss=math.inf, seconds=1.0)),
        (TrainSummary, dict(epochs=1, final_loss=1.0, seconds=-1.0)),
    ],
)
def test_small_models_reject(cls, kwargs):
    with pytest.raises(ValidationError):
        cls(**kwargs)
