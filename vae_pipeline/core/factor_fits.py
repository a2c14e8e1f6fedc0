"""Factor-analysis fits by EM, remembered for the process (pure layer, no Dagster).

The headline VAE and the headline CVAE of a day fit the same factor analyses on the same window:
both choose k by the same held-out selector (``k_max`` latents on the same 80 % of the days) and
the CVAE starts its regime EM from the pooled fit with that k, which is the VAE's final fit. In a
ranged run (a backfill) and in a one-day in-process run both assets run in one process, so the
second asks for fits the first already made: 40-55 % of the CVAE's fit time (measured at N = 60;
a 63-day backfill fitted 168 selectors for 84 windows).

Fits are keyed by a digest of the data's bytes and the fit's arguments: an equal key is the same
deterministic computation (sklearn's ``FactorAnalysis`` with a fixed ``random_state``), so a
remembered fit is bit-identical to a new one. functools.lru_cache cannot key on an array's
contents, hence this small byte-bounded cache.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
from sklearn.decomposition import FactorAnalysis

# Enough for a ranged run's two headline models over a year of windows at N = 500 (~45 MB);
# least recently used fits are dropped beyond it.
CACHE_BYTES = 256 << 20


@dataclass(frozen=True)
class FactorFit:
    """What the headline fits read from sklearn's ``FactorAnalysis`` (read-only arrays)."""

    components: np.ndarray  # k x N
    noise_variance: np.ndarray  # N
    mean: np.ndarray  # N
    loglike: tuple[float, ...]  # total log-likelihood per EM iteration
    n_iter: int

    @property
    def nbytes(self) -> int:
        return self.components.nbytes + self.noise_variance.nbytes + self.mean.nbytes


class _FitCache:
    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.fits: OrderedDict[tuple, FactorFit] = OrderedDict()
        self.bytes = 0
        self.hits = self.misses = 0
        self.lock = threading.Lock()

    def get(self, key: tuple) -> FactorFit | None:
        with self.lock:
            fit = self.fits.get(key)
            if fit is None:
                self.misses += 1
                return None
            self.fits.move_to_end(key)
            self.hits += 1
            return fit

    def put(self, key: tuple, fit: FactorFit) -> None:
        with self.lock:
            if key in self.fits or fit.nbytes > self.max_bytes:
                return
            self.fits[key] = fit
            self.bytes += fit.nbytes
            while self.bytes > self.max_bytes:
                _, old = self.fits.popitem(last=False)
                self.bytes -= old.nbytes

    def clear(self) -> None:
        with self.lock:
            self.fits.clear()
            self.bytes = self.hits = self.misses = 0


_CACHE = _FitCache(CACHE_BYTES)


def _frozen(a: np.ndarray) -> np.ndarray:
    a = np.array(a, copy=True)
    a.setflags(write=False)
    return a


def fit_factor_analysis(z: np.ndarray, k: int, max_iter: int, tol: float, seed: int) -> FactorFit:
    """``FactorAnalysis(n_components=k, max_iter, tol, random_state=seed).fit(z)``, or the same
    fit made earlier in this process on equal data (see the module doc)."""
    z = np.ascontiguousarray(z)
    digest = hashlib.blake2b(z.view(np.uint8), digest_size=16).hexdigest()
    key = (digest, z.shape, z.dtype.str, int(k), int(max_iter), float(tol), int(seed))
    fit = _CACHE.get(key)
    if fit is not None:
        return fit
    fa = FactorAnalysis(n_components=k, max_iter=max_iter, tol=tol, random_state=seed).fit(z)
    fit = FactorFit(
        components=_frozen(fa.components_),
        noise_variance=_frozen(fa.noise_variance_),
        mean=_frozen(fa.mean_),
        loglike=tuple(float(v) for v in fa.loglike_),
        n_iter=int(fa.n_iter_),
    )
    _CACHE.put(key, fit)
    return fit


def cache_info() -> dict[str, int]:
    """Hits, misses, fits held and their bytes (for tests and benchmarks)."""
    with _CACHE.lock:
        return {"hits": _CACHE.hits, "misses": _CACHE.misses, "fits": len(_CACHE.fits),
                "bytes": _CACHE.bytes}  # fmt: skip


def clear_cache() -> None:
    """Forget every remembered fit."""
    _CACHE.clear()
