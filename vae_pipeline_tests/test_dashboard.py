"""The in-browser demo (dashboard.html) and the Streamlit dashboard (``vae dashboard``).

- dashboard.html holds the seed-42 panel, renders offline in headless Chromium, and the
  numbers its JavaScript computes match numpy and the pipeline's own estimators;
- ``vae dashboard`` serves on 127.0.0.1 and keeps reading the DuckDB file while the
  pipeline materialises a partition into it, with no lock error on either side.
"""

import importlib.util
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from sklearn.linear_model import LinearRegression
from sklearn.metrics import silhouette_score

from vae_pipeline.core.covariance import LedoitWolfCovariance, PCACovariance
from vae_pipeline.core.minvar import annualised_vol, minvar_weights
from vae_pipeline_tests.browser import chromium_path
from vae_pipeline_tests.conftest import DAY, daily_keys, tiny_settings

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "dashboard.html"
requires_chromium = pytest.mark.skipif(chromium_path() is None, reason="chromium not installed")


def _builder():
    spec = importlib.util.spec_from_file_location(
        "build_dashboard", ROOT / "scripts" / "build_dashboard.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def demo():
    builder = _builder()
    return builder, builder.demo_panel()


def _embedded(page: str) -> dict:
    match = re.search(r'<script id="demo-data" type="application/json">(.*?)</script>', page, re.S)
    return json.loads(match.group(1))


def test_dashboard_html_embeds_the_current_seed_42_panel_and_fetches_nothing(demo):
    builder, panel = demo
    page = PAGE.read_text(encoding="utf-8")
    assert _embedded(page) == json.loads(json.dumps(builder.payload(panel))), (
        "dashboard.html is stale: run .venv/bin/python scripts/build_dashboard.py"
    )
    assert not re.search(r"<script[^>]+src=|<link[^>]+href=|<img[^>]+src=", page)
    assert len(page.encode()) < 1_100_000


class _Stats(HTMLParser):
    """``data-value`` of every element whose id starts with ``stat-``, and the body's status."""

    def __init__(self):
        super().__init__()
        self.values: dict[str, str] = {}
        self.status = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "body":
            self.status = a.get("data-status")
        if a.get("id", "").startswith("stat-") and "data-value" in a:
            self.values[a["id"]] = a["data-value"]


def _reference(builder, panel: dict, k: int) -> dict:
    """What the page must show, from numpy and the pipeline's estimators."""
    R = panel["returns"]
    T, N = R.shape
    obs = panel["panel"].observables
    market = np.round(obs["market"].to_numpy() / builder.RETURN_SCALE) * builder.RETURN_SCALE
    fit = R[-builder.FIT_DAYS :]
    Z = (fit - fit.mean(0)) / fit.std(0)
    lam, U = np.linalg.eigh(Z.T @ Z / len(Z))
    lam, U = lam[::-1], U[:, ::-1]
    U = U * np.where(U.sum(0) < 0, -1.0, 1.0)
    scores = Z @ U[:, :k]
    sigma2 = lam[k:].mean()
    truth = (
        np.round(panel["panel"].factors.to_numpy() / builder.RETURN_SCALE) * builder.RETURN_SCALE
    )
    r2 = (
        LinearRegression()
        .fit(scores, truth[-builder.FIT_DAYS :, 0])
        .score(scores, truth[-builder.FIT_DAYS :, 0])
    )
    # Anomalies: reconstruction from the posterior mean, top 20 % flagged.
    zhat = scores @ np.diag((lam[:k] - sigma2) / lam[:k]) @ U[:, :k].T
    errors = ((Z - zhat) ** 2).mean(0)
    flagged = np.argsort(-errors, kind="stable")[: round(builder.TOP_FRACTION * N)]
    hits = int(panel["panel"].anomaly.to_numpy()[flagged].sum())
    # Embedding: standardised loadings on their top-2 principal components.
    L = U[:, :k] * np.sqrt(lam[:k])
    Ls = (L - L.mean(0)) / L.std(0)
    _, _, vt = np.linalg.svd(Ls - Ls.mean(0), full_matrices=False)
    xy = (Ls - Ls.mean(0)) @ vt[:2].T
    silhouette = silhouette_score(xy, panel["sector_index"])
    # Walk-forward min-variance test.
    daily = {name: [] for name in ("sample", "ledoitwolf", "ppcak", "oracle", "equalweight")}
    oracle = panel["oracle_weights"].astype(np.float64)
    for i, t in enumerate(builder.rebalance_starts(T)):
        window, held = R[t - builder.MV_WINDOW : t], R[t : t + builder.MV_HOLD]
        weights = {
            "sample": minvar_weights(np.cov(window, rowvar=False)),
            "ledoitwolf": minvar_weights(LedoitWolfCovariance().fit(window).covariance_),
            "ppcak": minvar_weights(PCACovariance(k).fit(window).covariance_),
            "oracle": oracle[i],
            "equalweight": np.full(N, 1.0 / N),
        }
        for name, w in weights.items():
            daily[name].append(held @ w)
    vols = {f"stat-vol-{n}": annualised_vol(np.concatenate(d)) for n, d in daily.items()}
    return {
        "stat-explained": lam[:k].sum() / N,
        "stat-corr-market": abs(np.corrcoef(scores[:, 0], market[-builder.FIT_DAYS :])[0, 1]),
        "stat-r2-market": r2,
        "stat-sigma2": sigma2,
        "stat-anomaly-hits": hits,
        "stat-silhouette": silhouette,
        **vols,
    }


@requires_chromium
def test_dashboard_html_computes_the_factors_offline_and_matches_numpy(demo):
    from vae_pipeline_tests.browser import dump_dom

    builder, panel = demo
    dom = dump_dom(PAGE, budget_ms=30000, offline=True)
    stats = _Stats()
    stats.feed(dom)
    assert stats.status == "ready", stats.status
    assert dom.count('class="main-svg"') >= 8  # every chart drawn
    expected = _reference(builder, panel, builder.K_DEFAULT)
    for key, value in expected.items():
        assert float(stats.values[key]) == pytest.approx(value, rel=1e-8, abs=1e-12), key
    # The shown text agrees with the attribute (e.g. "49.42 %").
    shown = re.search(r'id="stat-explained"[^>]*>([^<]+)<', dom).group(1)
    assert shown == f"{100 * expected['stat-explained']:.2f} %"


# ---- the Streamlit dashboard ------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, timeout: float = 5) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return resp.status, resp.read().decode("utf-8", "replace")


def _wait_until_serving(port: int, proc, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"vae dashboard exited:\n{proc.stdout.read()}")
        try:
            if _get(f"http://127.0.0.1:{port}/_stcore/health")[1].strip() == "ok":
                return
        except OSError:
            time.sleep(0.2)
    raise AssertionError("vae dashboard did not start serving")


def _listening_addresses(port: int) -> set[str]:
    """Local addresses with a listening TCP socket on ``port`` (from /proc/net/tcp{,6})."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        if not os.path.exists(table):
            continue
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.rsplit(":", 1)
            if state == "0A" and int(hex_port, 16) == port:
                found.add(address)
    return found


@requires_chromium
def test_vae_dashboard_serves_while_the_pipeline_materialises_into_the_same_file(
    materialised, tmp_path
):
    pytest.importorskip("streamlit")
    pytest.importorskip("websockets")
    from dagster import DagsterInstance

    from vae_pipeline.pipeline.definitions import build_definitions
    from vae_pipeline_tests.browser import Page

    settings, *_ = materialised
    db = tmp_path / "pipeline.duckdb"
    shutil.copy(settings.storage.db_path, db)
    port = _free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from vae_pipeline.cli import app; app()",
            "dashboard",
            "--port",
            str(port),
        ],
        env={**os.environ, "VAE_PIPELINE_DB": str(db)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        _wait_until_serving(port, proc)
        assert _listening_addresses(port) == {"0100007F"}  # 127.0.0.1 only
        defs = build_definitions(tiny_settings(db))
        outcome = {}

        def materialise():
            job = defs.resolve_implicit_global_asset_job_def()
            outcome["result"] = job.execute_in_process(
                partition_key=DAY,
                instance=DagsterInstance.ephemeral(),
                asset_selection=daily_keys(defs),
                raise_on_error=False,
            )

        writer = threading.Thread(target=materialise)
        reads_while_writing, pages_while_writing = 0, 0
        with Page(height=1200) as page:
            page.goto(f"http://127.0.0.1:{port}/")
            text = page.wait_for([f"Partition {DAY}", "Min-variance scorecard", "read at"], 90)
            writer.start()
            while writer.is_alive() or reads_while_writing == 0:
                status, html = _get(f"http://127.0.0.1:{port}/")  # the page itself
                assert status == 200 and "<title>" in html
                pages_while_writing += writer.is_alive()
                # Clear the app's cache and rerun: a fresh read of the DuckDB file.
                before = re.search(r"read at [0-9:.]+", text).group(0)
                # Click Reload (again every 10 s: a click during a rerun can be dropped).
                deadline, clicked = time.monotonic() + 90, 0.0
                while before in page.text() and time.monotonic() < deadline:
                    if time.monotonic() - clicked > 10:
                        page.evaluate(
                            "[...document.querySelectorAll('button')]"
                            ".find(b => b.innerText.includes('Reload'))?.click()"
                        )
                        clicked = time.monotonic()
                    time.sleep(0.1)
                text = page.wait_for([f"Partition {DAY}", "read at"], 60)
                assert before not in text, "the dashboard did not re-read the database"
                for problem in (
                    "Could not set lock",
                    "holding the database",
                    "Could not read",
                    "Traceback",
                ):
                    assert problem not in text, text[-2000:]
                reads_while_writing += writer.is_alive()
                if not writer.is_alive():
                    break
            writer.join(timeout=300)
        assert outcome["result"].success, "the pipeline failed while the dashboard was reading"
        assert reads_while_writing >= 1 and pages_while_writing >= 1
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # the process group this test started
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    log = proc.stdout.read()
    assert "Traceback" not in log and "Could not set lock" not in log, log[-3000:]
