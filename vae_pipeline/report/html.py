"""Write a self-contained HTML report: plotly.js inlined once, so it opens offline, no server.

plotly.js is the bundle shipped inside the ``plotly`` Python package (the same file
``include_plotlyjs=True`` inlines); it is written once at the top of the page and every
figure after it is emitted with ``include_plotlyjs=False``.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
from plotly.offline import get_plotlyjs

STYLE = """
body { font-family: -apple-system, 'Segoe UI', Roboto, Helvetica, Arial, sans-serif;
       margin: 0 auto; max-width: 1200px; padding: 0 24px 48px; color: #222; }
header { border-bottom: 2px solid #d62728; margin-bottom: 12px; }
h1 { margin: 24px 0 4px; font-size: 26px; }
h2 { margin: 32px 0 4px; font-size: 20px; }
p.lead, p.note { color: #555; margin: 4px 0 8px; }
nav a { margin-right: 12px; font-size: 14px; }
table.numbers { border-collapse: collapse; font-size: 13px; margin: 8px 0; }
table.numbers th, table.numbers td { border: 1px solid #ddd; padding: 3px 8px; text-align: right; }
table.numbers th:first-child, table.numbers td:first-child { text-align: left; }
table.numbers thead th { background: #f4f4f4; }
.figure { border: 1px solid #eee; border-radius: 6px; margin: 8px 0 16px; }
footer { color: #888; font-size: 12px; margin-top: 32px; }
"""


def figure_div_id(key: str) -> str:
    return f"fig-{key}"


def _table(frame: pd.DataFrame) -> str:
    fmt = {
        c: (lambda v: f"{v:.4f}") for c in frame.columns if pd.api.types.is_float_dtype(frame[c])
    }
    return frame.to_html(index=False, classes="numbers", border=0, formatters=fmt, na_rep="")


def render_report(
    title: str,
    lead: str,
    sections: list[tuple[str, str, str, go.Figure | None]],
    tables: Mapping[str, pd.DataFrame] | None = None,
    footer: str = "",
) -> str:
    """The page as a string. ``sections``: (key, heading, note, figure) in page order."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title>",
        f"<style>{STYLE}</style>",
        # plotly.js, inlined once (the plotly package's bundle; no CDN, works offline).
        f'<script type="text/javascript">{get_plotlyjs()}</script>',
        "</head><body>",
        f"<header><h1>{html.escape(title)}</h1><p class='lead'>{html.escape(lead)}</p>",
        "<nav>"
        + "".join(f'<a href="#{key}">{html.escape(h)}</a>' for key, h, _, _ in sections)
        + "".join(f'<a href="#table-{n}">{html.escape(n)}</a>' for n in (tables or {}))
        + "</nav></header>",
    ]
    for name, frame in (tables or {}).items():
        if name == "scorecard":
            parts += [f'<h2 id="table-{name}">Min-variance scorecard</h2>', _table(frame)]
    for key, heading, note, fig in sections:
        parts += [
            f'<section id="{key}"><h2>{html.escape(heading)}</h2>',
            f'<p class="note">{html.escape(note)}</p>',
        ]
        if fig is not None:
            parts.append('<div class="figure">')
            parts.append(
                fig.to_html(
                    full_html=False,
                    include_plotlyjs=False,
                    div_id=figure_div_id(key),
                    config={"displaylogo": False, "responsive": True},
                )
            )
            parts.append("</div>")
        parts.append("</section>")
    for name, frame in (tables or {}).items():
        if name != "scorecard":
            parts += [
                f'<h2 id="table-{name}">{html.escape(name.replace("_", " "))}</h2>',
                _table(frame),
            ]
    parts += [f"<footer>{html.escape(footer)}</footer>", "</body></html>"]
    return "\n".join(parts)


def report_file(storage, day) -> Path:
    """Where partition ``day``'s report lands (``storage``: the settings' storage group): under
    ``reports/`` beside the DuckDB file, or, on Parquet storage, under the Parquet root, the
    folder every worker shares (an object-store root, ``s3://...``, is not a local path: its
    reports stay beside ``VAE_PIPELINE_DB`` on the worker that built them)."""
    name = f"report_{pd.Timestamp(day):%Y-%m-%d}.html"
    root = str(storage.parquet_root)
    if storage.io == "parquet" and "://" not in root:
        return Path(root).resolve() / "reports" / name
    return Path(storage.db_path).resolve().parent / "reports" / name


def write_report(path: str | Path, page: str) -> Path:
    """Write atomically (a reader never sees half a report)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(path)
    return path


def write_figure_files(folder: str | Path, prefix: str, figs: Mapping[str, go.Figure]) -> dict:
    """One small HTML file per figure, sharing one ``plotly.min.js`` in ``folder`` (so a
    figure can be opened on its own, offline, without repeating the 4 MB bundle)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    bundle, js = folder / "plotly.min.js", get_plotlyjs()
    if not bundle.exists() or bundle.stat().st_size != len(js.encode("utf-8")):
        bundle.write_text(js, encoding="utf-8")
    paths = {}
    for key, fig in figs.items():
        path = folder / f"{prefix}_{key}.html"
        fig.write_html(path, include_plotlyjs="plotly.min.js", full_html=True)
        paths[key] = path
    return paths
