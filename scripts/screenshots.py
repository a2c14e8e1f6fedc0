"""Screenshots of the HTML report, the in-browser demo and the Dagster UI with headless Chromium.

    .venv/bin/python scripts/screenshots.py                     # -> /tmp/screenshots
    .venv/bin/python scripts/screenshots.py out/ --report data/reports/report_2024-06-03.html
    .venv/bin/python scripts/screenshots.py out/ --url http://127.0.0.1:8501 --wait-for "read at"
    .venv/bin/python scripts/screenshots.py out/ --dagster      # + lineage, catalog, checks

Writes ``<name>.png`` (the whole page, trailing blank space trimmed) and ``<name>_top.png``
(the first screen) for the report (default: the newest ``reports/report_*.html`` beside the
DuckDB file of ``VAE_PIPELINE_DB``) and for ``dashboard.html``, rendered offline (no host
name resolves); ``--url`` pages (``page1.png``, ...) are shot once their content settled.
``--dagster`` starts ``dagster-webserver`` on this environment's instance (``DAGSTER_HOME``,
after ``make run``) and pipeline (``VAE_PIPELINE_*``) and shoots the global lineage with every
group open (``dagster_lineage.png``), the catalog (``dagster_catalog.png``) and the stock
map's checks (``dagster_checks.png``). Images are outputs: never commit them.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from vae_pipeline_tests.browser import Page, chromium_path, screenshot  # noqa: E402

WIDTH = 1400
FULL_HEIGHT = 12000  # taller than any page here; the blank tail is trimmed


def newest_report() -> Path | None:
    from vae_pipeline.settings import PipelineSettings

    folder = PipelineSettings.from_env().storage.db_path.resolve().parent / "reports"
    pages = sorted(folder.glob("report_*.html"), key=lambda p: p.stat().st_mtime)
    return pages[-1] if pages else None


def trim(path: Path, margin: int = 24) -> None:
    """Cut the uniform background below the page's last content (needs Pillow)."""
    try:
        from PIL import Image, ImageChops
    except ImportError:
        return
    with Image.open(path) as im:
        rgb = im.convert("RGB")
        background = Image.new("RGB", rgb.size, rgb.getpixel((rgb.width - 1, rgb.height - 1)))
        box = ImageChops.difference(rgb, background).getbbox()
        if box is not None and box[3] + margin < rgb.height:
            rgb.crop((0, 0, rgb.width, box[3] + margin)).save(path)


def shoot(name: str, target: str | Path, out: Path, offline: bool, budget_ms: int) -> list[Path]:
    top = screenshot(target, out / f"{name}_top.png", WIDTH, 900, budget_ms, offline=offline)
    full = screenshot(target, out / f"{name}.png", WIDTH, FULL_HEIGHT, budget_ms, offline=offline)
    trim(full)
    return [top, full]


def shoot_live(
    name: str, url: str, out: Path, wait_for: list[str], settle_s: float = 90
) -> list[Path]:
    """A live page (e.g. the Streamlit app, whose content arrives over a websocket after the
    load event): shot once it shows every ``wait_for`` text and its text stopped changing."""
    import time

    with Page(width=WIDTH, height=1600) as page:
        page.goto(url)
        if wait_for:
            page.wait_for(wait_for, timeout=settle_s)
        deadline, last, stable_since = time.monotonic() + settle_s, None, time.monotonic()
        while time.monotonic() < deadline:
            text = page.text()
            if text != last:
                last, stable_since = text, time.monotonic()
            elif time.monotonic() - stable_since > 3:
                break
            time.sleep(0.5)
        time.sleep(2)  # charts finish drawing
        return [page.screenshot(out / f"{name}.png")]


def shoot_dagster(out: Path, settle_s: float = 8) -> list[Path]:
    """The Dagster UI of this environment's instance: lineage (every group open), catalog and
    one asset's checks, each once its asset names are on the page."""
    import os
    import time

    from vae_pipeline_tests.dagster_ui import (
        asset_nodes,
        dismiss_community_prompt,
        lineage_url,
        webserver,
    )

    if not os.environ.get("DAGSTER_HOME"):
        raise SystemExit("--dagster needs DAGSTER_HOME (the instance `make run` wrote to)")
    shots = []
    with webserver(dict(os.environ)) as url:
        nodes = asset_nodes(url)
        groups = sorted({node["groupName"] for node in nodes.values()})
        with Page(width=2200, height=2000) as page:
            page.goto(f"{url}/assets")
            page.wait_for(sorted(nodes)[:5], timeout=120)
            dismiss_community_prompt(page)
            for name, target, needles in (
                ("dagster_lineage", lineage_url(url, groups), groups),
                ("dagster_catalog", f"{url}/assets", sorted(nodes)[:5]),
                ("dagster_checks", f"{url}/assets/stock_embedding?view=checks", ["Checks"]),
            ):
                page.goto(target)
                page.wait_for(needles, timeout=120)
                time.sleep(settle_s)  # the graph lays out and the status dots fill in
                shots.append(page.screenshot(out / f"{name}.png"))
    return shots


def main(argv: list[str] | None = None) -> list[Path]:
    parser = argparse.ArgumentParser(description="Headless-Chromium screenshots of the pages.")
    parser.add_argument("out", nargs="?", type=Path, default=Path("/tmp/screenshots"))
    parser.add_argument("--report", type=Path, default=None, help="report HTML (default: newest)")
    parser.add_argument("--dashboard", type=Path, default=ROOT / "dashboard.html")
    parser.add_argument("--url", action="append", default=[], help="also shoot a live page")
    parser.add_argument(
        "--wait-for",
        action="append",
        default=[],
        help="text a --url page must show first (the Streamlit app: 'read at')",
    )
    parser.add_argument("--budget-ms", type=int, default=20000, help="page time for scripts")
    parser.add_argument(
        "--dagster", action="store_true", help="also shoot the Dagster UI (needs DAGSTER_HOME)"
    )
    args = parser.parse_args(argv)
    if chromium_path() is None:
        raise SystemExit("chromium is not installed (Debian: apt-get install chromium)")
    args.out.mkdir(parents=True, exist_ok=True)
    report = args.report or newest_report()
    written: list[Path] = []
    if report is None or not Path(report).exists():
        print("no report found: run `make run` first, or pass --report", file=sys.stderr)
    else:
        written += shoot("report", report, args.out, offline=True, budget_ms=args.budget_ms)
    if args.dashboard.exists():
        written += shoot("dashboard", args.dashboard, args.out, True, args.budget_ms)
    for i, url in enumerate(args.url):
        written += shoot_live(f"page{i + 1}", url, args.out, args.wait_for)
    if args.dagster:
        written += shoot_dagster(args.out)
    for path in written:
        print(path)
    if not written:
        raise SystemExit(1)
    return written


if __name__ == "__main__":
    main()
