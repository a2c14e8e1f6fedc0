"""The refit stages as the walk-forward's decision rule: one code path for the backtests.

:class:`WindowRefit` is what ``walk_forward_weights`` calls at each decision date: it fits the
window's models (:func:`fit_models`) and turns every estimator's covariance into min-variance
weights (:func:`estimate_decisions`), exactly as the daily pipeline does for one day.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from vae_pipeline.core.covariance import REGISTRY
from vae_pipeline.core.training import TrainConfig

from .decisions import estimate_decisions
from .models import FitProgress, FittedModels, fit_models


def experiment_estimators(conditional: bool) -> tuple[str, ...]:
    """The registry estimators ``vae train`` races: those marked ``experiment``, the
    regime-labelled ones only when ``conditional``; the oracle is added by the harness."""
    return tuple(
        name
        for name, spec in REGISTRY.items()
        if spec.experiment and not spec.needs_truth and (conditional or not spec.labels)
    )


@dataclass
class WindowRefit:
    """Fit-and-decide for one window at a time, counting the fits.

    ``labels``: one regime label per day (the CVAE's conditions; None without regime
    estimators); ``regime_at(decision)``: the regime the decision is made for (None: the last
    window day's label). Models of the latest window are cached, so the training part's models
    are reused when the horse race decides on the same window; with ``keep`` every window's
    models stay in ``fitted`` (by decision date) for later analyses.
    """

    config: TrainConfig
    k: int
    names: tuple[str, ...]
    labels: pd.Series | None = None
    regime_at: Callable[[Any], int] | None = None
    n_samples: int = 2000
    seed: int = 42
    progress: FitProgress | None = None
    keep: bool = False
    n_fits: int = 0
    seconds: float = 0.0
    fitted: dict[Any, FittedModels] = field(default_factory=dict)
    _latest: tuple[Any, FittedModels] | None = None

    def regimes(self, window: pd.DataFrame) -> np.ndarray | None:
        return None if self.labels is None else self.labels.loc[window.index].to_numpy()

    def models(
        self, window: pd.DataFrame, names: Iterable[str] | None = None, report: bool = False
    ) -> FittedModels:
        """The models ``names`` (default: all raced) read, trained on ``window`` once."""
        key = (window.index[0], window.index[-1])
        given = self._latest[1].models if self._latest and self._latest[0] == key else None
        fitted = fit_models(
            window,
            self.regimes(window),
            self.config,
            names=self.names if names is None else names,
            given=given,
            progress=self.progress if report else None,
        )
        self.n_fits += len(fitted.trained)
        self.seconds += fitted.seconds
        self._latest = (key, fitted)
        return fitted

    def __call__(
        self, decision: Any, train: pd.DataFrame
    ) -> tuple[Mapping[str, np.ndarray], Mapping[str, float]]:
        t0 = time.perf_counter()
        models = self.models(train)
        if self.keep:
            self.fitted[decision] = models
        t1 = time.perf_counter()
        decisions = estimate_decisions(
            train,
            models,
            self.regimes(train),
            self.k,
            seed=self.seed,
            n_samples=self.n_samples,
            condition=None if self.regime_at is None else self.regime_at(decision),
            names=self.names,
        )
        timing = {"fit_models": t1 - t0, "estimate_decisions": time.perf_counter() - t1}
        return decisions.weights(), timing
