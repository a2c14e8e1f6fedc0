"""The ``csv`` source: the user's own files (CSV, CSV.gz or Parquet), cleaned, offline.

``VAE_PIPELINE_PRICES`` is required (layouts in ``sources.files``); ``VAE_PIPELINE_SECTORS``,
``VAE_PIPELINE_FACTORS``, ``VAE_PIPELINE_MACRO`` and ``VAE_PIPELINE_MARKET`` are optional, and
each missing observable falls back as ``sources.observables`` describes (named in metadata).
Files are loaded and cleaned once per process (cached on their path, size and mtime).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from vae_pipeline.core.cleaning import CleaningConfig
from vae_pipeline.sources.files import (
    DataFileError,
    load_factors,
    load_macro,
    load_market_index,
    load_panel,
    load_sectors,
)
from vae_pipeline.sources.panel_source import LoadedPanel, PanelSource, build_panel


def _stamp(path: str | None, variable: str) -> tuple | None:
    """(path, size, mtime) so an edited file is reloaded; None when not configured."""
    if path is None:
        return None
    p = Path(path)
    if not p.exists():
        raise DataFileError(f"{variable} {path}: no such file")
    st = p.stat()
    return (str(p.resolve()), st.st_size, st.st_mtime_ns)


@lru_cache(maxsize=4)
def _load(prices, sectors, factors, macro, market, config: CleaningConfig) -> LoadedPanel:
    labels: dict[str, str] = {}
    factor_frame = macro_frame = index_returns = None
    if factors is not None:
        factor_frame, units = load_factors(factors[0])
        labels["factors"] = f"{Path(factors[0]).name}, {units}"
    if macro is not None:
        macro_frame, used = load_macro(macro[0])
        labels.update({k: f"{v} from {Path(macro[0]).name}" for k, v in used.items()})
    if market is not None:
        index_returns = load_market_index(market[0])
        labels["market"] = Path(market[0]).name
    return build_panel(
        load_panel(prices[0]),
        config,
        sectors=load_sectors(sectors[0]) if sectors is not None else None,
        factors=factor_frame,
        index_returns=index_returns,
        macro=macro_frame,
        labels=labels,
    )


PATH_KEYS = ("prices", "sectors", "factors", "macro", "market")


class CsvSource(PanelSource):
    """Returns, observables and sectors from the user's files."""

    name = "csv"

    def __init__(
        self,
        prices_path,
        sectors_path=None,
        factors_path=None,
        macro_path=None,
        market_path=None,
        cleaning: CleaningConfig | None = None,
        min_names: int = 10,
    ):
        super().__init__(min_names=min_names)
        self.paths = {
            "prices": str(prices_path),
            "sectors": str(sectors_path) if sectors_path else None,
            "factors": str(factors_path) if factors_path else None,
            "macro": str(macro_path) if macro_path else None,
            "market": str(market_path) if market_path else None,
        }
        self.cleaning = cleaning or CleaningConfig()

    @property
    def panel(self) -> LoadedPanel:
        p = self.paths
        return _load(
            *(_stamp(p[k], f"VAE_PIPELINE_{k.upper()}") for k in PATH_KEYS),
            self.cleaning,
        )
