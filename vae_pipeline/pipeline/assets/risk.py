"""Risk: every estimator's covariance of the window, kept as its min-variance decision."""

import numpy as np
import pandas as pd
from dagster import AssetExecutionContext, AssetIn, asset

from vae_pipeline.core.covariance.spectrum import min_eigenvalue
from vae_pipeline.core.estimate import estimate_covariances
from vae_pipeline.core.minvar import minvar_weights
from vae_pipeline.core.training import TrainResult
from vae_pipeline.pipeline.assets.common import (
    DUCKDB_POOL,
    PARTITION_COLUMN,
    markdown_table,
    non_trading_day_results,
    partition_day,
    window_deps,
    with_date,
)
from vae_pipeline.pipeline.assets.models import (
    learned_noise_models,
    regime_labels,
    training_window_returns,
)
from vae_pipeline.pipeline.checks import gate, gate_specs
from vae_pipeline.pipeline.partitions import training_window
from vae_pipeline.pipeline.resources import DataSourceResource
from vae_pipeline.pipeline.window_store import WindowStore

COVARIANCE_COLUMNS = [
    "estimator",
    "ticker",
    "weight",
    "asset_vol",
    "predicted_vol",
    "min_eigenvalue",
]
ANNUAL = np.sqrt(252.0)


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


def min_variance_decisions(covs: dict[str, np.ndarray], tickers: list[str]):
    """Each estimator's covariance kept as its min-variance decision: ``(frame, psd problems,
    weight problems, summary rows)``. The smallest eigenvalue is computed once per estimator
    (``min_eigenvalue``: Cholesky + Lanczos at large N, not a full eigendecomposition)."""
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
            {"estimator": name, "predicted_vol": predicted, "max_abs_weight": float(np.abs(w).max())}
        )
    return pd.concat(frames, ignore_index=True), psd, weight_problems, summary


def build(partitions, settings, training_config) -> list:
    @asset(
        partitions_def=partitions,
        group_name="risk",
        metadata=PARTITION_COLUMN,
        ins={
            "standardised_panel": AssetIn(),
            "trained_vae": AssetIn(),
            "trained_cvae": AssetIn(),
        },
        deps=window_deps(training_window(settings), "market_observables"),
        check_specs=gate_specs(
            "covariance_estimates", ["covariance_symmetric_psd", "weights_sum_to_one"]
        ),
        output_required=False,
        pool=DUCKDB_POOL,
    )
    def covariance_estimates(
        context: AssetExecutionContext,
        config: training_config,
        source: DataSourceResource,
        store: WindowStore,
        standardised_panel: pd.DataFrame,
        trained_vae: TrainResult,
        trained_cvae: TrainResult,
    ):
        """Sample, Ledoit-Wolf, nonlinear shrinkage, PCA(k), factor analysis(k), the VAE (and its
        improved variants), the CVAE for today's regime, regime Ledoit-Wolf and, on synthetic
        data, the oracle: each kept as its global min-variance weights (O(N) rows per estimator,
        never an N x N table) with the predicted portfolio vol."""
        if (skipped := non_trading_day_results(context)) is not None:
            yield from skipped
            return
        day = partition_day(context)
        window = training_window_returns(
            store.returns(day, config.window), standardised_panel, day, config.window
        )
        tickers = list(window.columns)
        vae, cvae = trained_vae, trained_cvae
        regimes = regime_labels(store.observables(day, config.window), window.index)
        vae_hetero, cvae_hetero, hetero_init = learned_noise_models(
            config, window, vae, cvae, regimes
        )
        covs = estimate_covariances(
            window,
            k=config.latent_dim,
            vae=vae,
            cvae=cvae,
            regimes=regimes,
            oracle=source.get().oracle_covariance(day, tickers),
            seed=config.seed,
            vae_hetero=vae_hetero,
            cvae_hetero=cvae_hetero,
        )
        frame, psd, weight_problems, summary = min_variance_decisions(covs, tickers)
        problems = {"covariance_symmetric_psd": psd, "weights_sum_to_one": weight_problems}
        metadata = {
            "learned_noise_models_from": hetero_init,
            "estimators": len(covs),
            "names": len(tickers),
            "predicted": markdown_table(pd.DataFrame(summary)),
            **{f"predicted_vol_{r['estimator']}": r["predicted_vol"] for r in summary},
        }
        yield from gate(context, with_date(frame, day, COVARIANCE_COLUMNS), problems, metadata)

    return [covariance_estimates]
