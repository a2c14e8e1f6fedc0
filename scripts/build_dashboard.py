"""Build ``dashboard.html``: the in-browser demo that runs with no server, offline.

    .venv/bin/python scripts/build_dashboard.py                  # writes ./dashboard.html
    .venv/bin/python scripts/build_dashboard.py --out /tmp/d.html --plotly-js path/to/plotly.min.js

The page runs the VAE's linear-Gaussian limit, probabilistic PCA (whose maximum-likelihood
solution is the top-k principal components), in JavaScript on the seed-42 synthetic panel, and
shows the latent factors, the fidelity-complexity trade-off over k, the min-variance covariance
test, the reconstruction-error anomalies and the sector embedding (scripts/dashboard/demo.js).

What this script embeds (all inline, nothing fetched at run time):
- ``generate_panel(seed=42)`` (1260 days x 60 names): returns quantised to 1e-5 as little-endian
  int16 (the page and the tests use exactly these values), the observables, the true factors,
  sectors and planted anomalies;
- the oracle's min-variance weights at each rebalance of the walk-forward test (the true
  covariance is known only to the generator), float32;
- plotly.js: the npm package ``plotly.js-basic-dist-min`` (MIT; scatter and bar traces), gzip +
  base64, inflated in the browser with ``DecompressionStream``. It is fetched once with
  ``npm pack`` into ~/.cache/vae_pipeline and checked against a pinned SHA-256; ``--plotly-js``
  takes a local file instead (e.g. the plotly Python package's full bundle).
"""

from __future__ import annotations

import argparse
import base64
import gzip
import hashlib
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent / "dashboard"
sys.path.insert(0, str(ROOT))

SEED = 42
RETURN_SCALE = 1e-5  # int16 quantum of a daily return (max |r| on the panel is ~0.22)
FIT_DAYS = 504  # factors, anomalies and the embedding: the last W days
TRAIN_DAYS = 756  # trade-off over k: fit on the first 756 days, score on the rest
MV_WINDOW = 252  # min-variance test: trailing estimation window ...
MV_HOLD = 21  # ... rebalanced every 21 days, held 21 days out of sample
K_MAX = 10
K_DEFAULT = 4
TOP_FRACTION = 0.2  # anomalies: the top 20 % by reconstruction error are flagged
PLOTLY_PACKAGE = "plotly.js-basic-dist-min@4.1.1"
PLOTLY_FILE = "plotly-basic.min.js"
PLOTLY_SHA256 = "99784e3abfb07b142a15e521a439e6d9addceadb3f79553fd24c72774f0649ba"


def rebalance_starts(n_days: int) -> list[int]:
    """First holding day of each rebalance: the window is rows [t-252, t), held [t, t+21)."""
    return list(range(MV_WINDOW, n_days - MV_HOLD + 1, MV_HOLD))


def demo_panel() -> dict:
    """The exact numbers the page computes on (quantised returns included)."""
    from vae_pipeline.core.minvar import minvar_weights
    from vae_pipeline.core.synthetic import generate_panel

    panel = generate_panel(seed=SEED)
    raw = panel.returns.to_numpy()
    q = np.round(raw / RETURN_SCALE)
    if np.abs(q).max() > np.iinfo(np.int16).max:
        raise ValueError("a return does not fit the int16 quantisation; raise RETURN_SCALE")
    q = q.astype("<i2")
    oracle = np.array(
        [
            minvar_weights(panel.true_covariance(panel.returns.index[t - 1]))
            for t in rebalance_starts(len(raw))
        ]
    )
    sectors = panel.sectors.astype(str)
    names = sorted(sectors.unique())
    return {
        "panel": panel,
        "returns_q": q,
        "returns": q.astype(np.float64) * RETURN_SCALE,
        "oracle_weights": oracle.astype("<f4"),
        "sector_names": names,
        "sector_index": [names.index(s) for s in sectors],
    }


def _b64(array: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(array).tobytes()).decode("ascii")


def _int16(values: np.ndarray, scale: float) -> str:
    q = np.round(np.asarray(values, dtype=float) / scale)
    assert np.abs(q).max() <= np.iinfo(np.int16).max
    return _b64(q.astype("<i2"))


def payload(demo: dict) -> dict:
    """The JSON the page embeds (everything but plotly.js)."""
    panel = demo["panel"]
    dates = panel.returns.index
    gaps = np.diff(dates.values).astype("timedelta64[D]").astype(int)
    obs = panel.observables
    return {
        "seed": SEED,
        "n_days": int(len(dates)),
        "n_names": int(panel.returns.shape[1]),
        "first_date": f"{dates[0]:%Y-%m-%d}",
        "date_gaps": "".join(str(g) for g in gaps),  # calendar days between trading days (1-9)
        "tickers": [str(t) for t in panel.returns.columns],
        "sector_names": demo["sector_names"],
        "sector_index": demo["sector_index"],
        "planted": [bool(a) for a in panel.anomaly],
        "return_scale": RETURN_SCALE,
        "returns_i16": _b64(demo["returns_q"]),  # row-major days x names
        "market_i16": _int16(obs["market"], RETURN_SCALE),
        "volatility_i16": _int16(obs["volatility"], 1e-2),
        "macro_slope_i16": _int16(obs["macro_slope"], 1e-4),
        "regime": "".join(str(int(r)) for r in obs["regime"]),
        "factor_names": [str(c) for c in panel.factors.columns],
        "factors_i16": _int16(panel.factors.to_numpy(), RETURN_SCALE),  # days x 4
        "oracle_weights_f32": _b64(demo["oracle_weights"]),  # rebalances x names
        "constants": {
            "fit_days": FIT_DAYS,
            "train_days": TRAIN_DAYS,
            "mv_window": MV_WINDOW,
            "mv_hold": MV_HOLD,
            "k_max": K_MAX,
            "k_default": K_DEFAULT,
            "top_fraction": TOP_FRACTION,
        },
    }


def plotly_bundle(path: Path | None) -> tuple[bytes, str]:
    """plotly.js source and a label saying where it came from."""
    if path is not None:
        return Path(path).read_bytes(), Path(path).name
    cache = Path.home() / ".cache" / "vae_pipeline" / PLOTLY_PACKAGE.replace("@", "-")
    target = cache / PLOTLY_FILE
    if not target.exists():
        npm = shutil.which("npm")
        if npm is None:
            raise SystemExit(
                "npm not found: install it, or pass --plotly-js (e.g. the plotly Python "
                "package's plotly.min.js) to embed another plotly.js build"
            )
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run(
                [npm, "pack", PLOTLY_PACKAGE, "--silent"],
                cwd=tmp,
                check=True,
                stdout=subprocess.DEVNULL,
            )
            tgz = next(Path(tmp).glob("*.tgz"))
            with tarfile.open(tgz) as tar:
                member = tar.getmember(f"package/{PLOTLY_FILE}")
                data = tar.extractfile(member).read()
        cache.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    data = target.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != PLOTLY_SHA256:
        raise SystemExit(f"{target}: SHA-256 {digest} is not the pinned {PLOTLY_SHA256}")
    return data, f"{PLOTLY_PACKAGE} (npm, MIT)"


def render(data: dict, plotly_js: bytes, plotly_label: str) -> str:
    template = (HERE / "template.html").read_text(encoding="utf-8")
    script = (HERE / "demo.js").read_text(encoding="utf-8")
    packed = base64.b64encode(gzip.compress(plotly_js, compresslevel=9, mtime=0)).decode()
    # "</" cannot appear inside the inline scripts (JSON has none; base64 has no "<").
    body = json.dumps(data, separators=(",", ":")).replace("</", "<\\/")
    return (
        template.replace("{{DATA}}", body)
        .replace("{{PLOTLY_GZ}}", packed)
        .replace("{{PLOTLY_LABEL}}", plotly_label)
        .replace("{{SCRIPT}}", script)
    )


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "dashboard.html")
    parser.add_argument("--plotly-js", type=Path, default=None, help="a plotly.js file to embed")
    args = parser.parse_args(argv)
    js, label = plotly_bundle(args.plotly_js)
    page = render(payload(demo_panel()), js, label)
    args.out.write_text(page, encoding="utf-8")
    print(f"{args.out}: {len(page.encode()) / 1e6:.2f} MB (plotly.js: {label})")
    return args.out


if __name__ == "__main__":
    main()
