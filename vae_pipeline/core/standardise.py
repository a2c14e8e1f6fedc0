"""Per-column standardisation fitted on a training window only.

Hand-written rather than ``sklearn.preprocessing.StandardScaler`` because we want two things
StandardScaler does not do: refuse constant columns loudly (StandardScaler silently uses scale 1,
which would hide a dead ticker) and serialise to plain JSON lists for the Dagster metadata / IO layer.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

# Columns whose std is below this (in the input's units) count as constant.
_MIN_SCALE = 1e-12


def _as_array(X: pd.DataFrame | np.ndarray) -> np.ndarray:
    arr = X.to_numpy(dtype=np.float64) if isinstance(X, pd.DataFrame) else np.asarray(X, np.float64)
    if arr.ndim != 2:
        raise ValueError(f"expected a 2-D T x N panel, got shape {arr.shape}")
    return arr


class Standardiser:
    """Column-wise ``(x - mean) / std`` with parameters from the training window only.

    Attributes after :meth:`fit`: ``mean_`` and ``scale_`` (float64, one per column) and
    ``columns_`` (column labels, or ``None`` when fitted on an ndarray).
    """

    def __init__(self) -> None:
        self.mean_: np.ndarray | None = None
        self.scale_: np.ndarray | None = None
        self.columns_: list[str] | None = None

    def fit(self, X: pd.DataFrame | np.ndarray) -> Standardiser:
        """Estimate mean and (population) std per column; raise on NaN/inf or constant columns."""
        arr = _as_array(X)
        if arr.shape[0] < 2:
            raise ValueError("need at least 2 rows to fit a Standardiser")
        if not np.isfinite(arr).all():
            raise ValueError("Standardiser.fit: input contains NaN or inf; clean the panel first")
        columns = [str(c) for c in X.columns] if isinstance(X, pd.DataFrame) else None
        mean = arr.mean(axis=0)
        scale = arr.std(axis=0)
        constant = np.flatnonzero(scale < _MIN_SCALE)
        if constant.size:
            names = [columns[i] for i in constant] if columns else [int(i) for i in constant]
            raise ValueError(f"Standardiser.fit: zero-variance (constant) columns: {names}")
        self.mean_, self.scale_, self.columns_ = mean, scale, columns
        return self

    def _check(self, arr: np.ndarray) -> None:
        if self.mean_ is None or self.scale_ is None:
            raise RuntimeError("Standardiser is not fitted")
        if arr.shape[1] != self.mean_.shape[0]:
            raise ValueError(f"expected {self.mean_.shape[0]} columns, got {arr.shape[1]}")

    def transform(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        """Standardise ``X``; returns float32 (what the torch model consumes)."""
        arr = _as_array(X)
        self._check(arr)
        # A reordered panel would silently scale every stock with another stock's parameters.
        if isinstance(X, pd.DataFrame) and self.columns_ is not None:
            if [str(c) for c in X.columns] != self.columns_:
                raise ValueError("Standardiser.transform: columns differ from those fitted on")
        if not np.isfinite(arr).all():
            raise ValueError("Standardiser.transform: input contains NaN or inf")
        return ((arr - self.mean_) / self.scale_).astype(np.float32)

    def inverse_transform(self, Z: np.ndarray) -> np.ndarray:
        """Map standardised values back to the original units (float64)."""
        arr = _as_array(Z)
        self._check(arr)
        return arr * self.scale_ + self.mean_

    def fit_transform(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        return self.fit(X).transform(X)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able state (plain lists of floats)."""
        if self.mean_ is None or self.scale_ is None:
            raise RuntimeError("Standardiser is not fitted")
        return {
            "mean": self.mean_.tolist(),
            "scale": self.scale_.tolist(),
            "columns": self.columns_,
        }

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> Standardiser:
        out = cls()
        out.mean_ = np.asarray(state["mean"], dtype=np.float64)
        out.scale_ = np.asarray(state["scale"], dtype=np.float64)
        cols = state.get("columns")
        out.columns_ = list(cols) if cols is not None else None
        if out.mean_.shape != out.scale_.shape or out.mean_.ndim != 1:
            raise ValueError("Standardiser.from_dict: mean and scale must be equal-length lists")
        return out


# z-scores of the fitted window itself must be (0, 1) up to float32 rounding.
MOMENT_TOLERANCE = 1e-3
SCALER_COLUMNS = ["ticker", "mean", "scale", "n_obs", "z_mean", "z_std"]


def scaler_frame(wide: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """The per-stock scaler of a window as rows (ticker, mean, scale, n_obs and the z-scores'
    own moments), and the problems found (a constant name, z-moments off)."""
    try:
        scaler = Standardiser().fit(wide)
    except ValueError as exc:  # e.g. a constant (zero-variance) name
        return pd.DataFrame(columns=SCALER_COLUMNS), [str(exc)]
    z = scaler.transform(wide)
    z_mean, z_std = z.mean(axis=0), z.std(axis=0)
    worst = float(max(np.abs(z_mean).max(), np.abs(z_std - 1).max()))
    problems = [f"z-score moments off by {worst:.2e}"] if worst > MOMENT_TOLERANCE else []
    frame = pd.DataFrame(
        {
            "ticker": wide.columns.astype(str),
            "mean": scaler.mean_,
            "scale": scaler.scale_,
            "n_obs": len(wide),
            "z_mean": z_mean.astype(float),
            "z_std": z_std.astype(float),
        }
    )
    return frame, problems
