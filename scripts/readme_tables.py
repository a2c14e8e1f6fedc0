"""Render README.md's result tables from the benchmark JSON in ``benchmarks/results/``.

The README's numbers used to be typed by hand and could drift from what the tools print. Now
each result table sits between marker comments, ``<!-- results:NAME ... -->`` and
``<!-- /results:NAME -->``, and this script rewrites what lies between them from the stored
JSON (``scripts/record_result.py`` stores it, with the command that made it):

    python scripts/readme_tables.py          # rewrite README.md in place (make readme)
    python scripts/readme_tables.py --check  # exit 1 and print a diff when README.md is stale

A table whose JSON file is absent (the real-data study needs ``../shared/data/real``) is left
as it is and named on stderr. Only tables are generated; the prose around them is not.
"""

from __future__ import annotations

import argparse
import difflib
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
README = ROOT / "README.md"

# The README's wording for each estimator, per table ({k} = the run's latent dimension).
SEED42_LABELS = {
    "oracle": "oracle (true covariance)",
    "factor_analysis": "factor_analysis (k = {k})",
    "vae_hetero": "vae_hetero (learned per-stock noise)",
    "pca": "pca (k = {k}, correlation scale)",
    "vae_posterior": "vae_posterior (aggregated posterior)",
    "vae": "**vae** (headline: linear VAE at its ELBO optimum, own k, closed form)",
    "vae_reference": "vae_reference (the seed's set-up: prior MC + diagonal residual)",
    "vae_mlp": "vae_mlp (MLP decoder, learned noise, trained to convergence)",
    "vae_shrunk": "vae_shrunk (Ledoit-Wolf residual)",
    "factor_analysis_matched": "factor_analysis_matched (k = the headline vae's)",
    "factor_analysis_auto": "factor_analysis_auto (k by Bai-Ng IC_p2)",
    "pca_auto": "pca_auto (k by Bai-Ng IC_p2)",
}
REGIME_LABELS = {
    "cvae": "cvae (regime-specific loadings)",
    "ledoit_wolf_regime": "ledoit_wolf_regime (fit on the current regime's days)",
}
# The regime table shows the estimators the regime discussion is about, not all of them.
REGIME_ROWS = ("oracle", "factor_analysis", "vae_hetero", "cvae", "cvae_reference", "vae",
               "vae_reference", "vae_mlp", "pca", "ledoit_wolf", "ledoit_wolf_regime")
REGIMES = ("expansion", "contraction")


def vol(x: float | None) -> str:
    """An annualised vol as the README writes it: ``10.03 %``."""
    return "-" if x is None else f"{100 * x:.2f} %"


def ci(interval: list[float] | None, star: bool = False) -> str:
    """A difference in vol points with its 95 % interval, ``-0.99 [-1.51, -0.57]``; with
    ``star``, `` *`` is appended when the interval excludes 0 (the real-data table's mark)."""
    if interval is None:
        return "-"
    d, lo, hi = interval
    mark = " *" if star and (hi < 0 or lo > 0) else ""
    return f"{100 * d:+.2f} [{100 * lo:+.2f}, {100 * hi:+.2f}]{mark}"


def table(header: list[str], align: str, rows: list[list[str]]) -> str:
    """A compact markdown table; ``align`` holds one ``l`` or ``r`` per column."""
    rule = "|" + "|".join("---:" if a == "r" else "---" for a in align) + "|"
    lines = ["| " + " | ".join(header) + " |", rule]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def render_seed42(single: dict, walk: dict) -> str:
    """Single split and walk-forward side by side, sorted by walk-forward vol; the gap to
    the oracle and both intervals are the walk-forward ones."""
    k = walk["config"]["latent"]
    names = sorted(walk["minvar"], key=lambda n: walk["minvar"][n])
    rows = [
        [
            SEED42_LABELS.get(n, n).format(k=k),
            vol(single["minvar"].get(n)),
            vol(walk["minvar"][n]),
            f"{100 * walk['gap_to_oracle'][n]:+.2f}",
            ci(walk["intervals"][n]["vs_ledoit_wolf"]),
            ci(walk["intervals"][n]["vs_pca"]),
        ]
        for n in names
    ]
    header = ["estimator", "single split", "walk-forward", "gap to oracle",
              "vs Ledoit-Wolf [95 % CI]", "vs PCA [95 % CI]"]
    return table(header, "llllll", rows)


def render_regime(regime: dict) -> str:
    """All days and each regime at the decision date, sorted by all-days vol."""
    per = regime["per_regime"]
    names = sorted((n for n in REGIME_ROWS if n in regime["minvar"]),
                   key=lambda n: regime["minvar"][n])
    rows = [
        [REGIME_LABELS.get(n, n), vol(regime["minvar"][n]),
         *(vol(per[r]["vol"].get(n)) for r in REGIMES),
         ci(regime["intervals"][n]["vs_ledoit_wolf"])]
        for n in names
    ]
    header = ["estimator", "all days", *(f"{r} ({per[r]['n_days']} days)" for r in REGIMES),
              "vs Ledoit-Wolf [95 % CI]"]
    return table(header, "lllll", rows)


def render_real_data(study: dict) -> str:
    """The real-data horse race, the JSON ``vae study`` writes, as ``vae study --markdown``
    renders it (one renderer): rows by vol; vol, then vs Ledoit-Wolf, vs nonlinear shrinkage
    and vs PCA where raced; * = the interval excludes 0."""
    from vae_pipeline.core.study import markdown_table

    return markdown_table(study)


def render_backfill(bench: dict) -> str:
    """``vae backfill`` of 1, 21 and 250 new days, cold (benchmarks/backfill.py): seconds and
    seconds per new day per case, the runs it took, and the 21-day / 1-day ratio per N."""
    one = {c["n"]: c["seconds"] for c in bench["cases"] if c["days"] == 1}
    rows = []
    for case in sorted(bench["cases"], key=lambda c: (c["n"], c["days"])):
        n, days, seconds = case["n"], case["days"], case["seconds"]
        ratio = f"{seconds / one[n]:.1f}x" if n in one and days > 1 else "-"
        total = f"{seconds / 60:.1f} min" if seconds >= 120 else f"{seconds:.0f} s"
        rows.append([f"N = {n}", str(days), total, f"{case['seconds_per_day']:.1f} s",
                     str(case["runs"]), ratio])
    header = ["universe", "new days", "wall time", "per new day", "runs", "vs 1 day"]
    return table(header, "lrrrrr", rows)


# Each marked block: the JSON files it needs and how it is rendered from them.
BLOCKS: dict[str, tuple[tuple[str, ...], Callable[..., str]]] = {
    "seed42": (("seed42_single_split.json", "seed42_walk_forward.json"), render_seed42),
    "regime": (("seed42_regime.json",), render_regime),
    "real_data": (("real_data_study.json",), render_real_data),
    "backfill": (("backfill.json",), render_backfill),
}


def render_blocks(results: Path = RESULTS) -> dict[str, str]:
    """Every block whose JSON files are all present, rendered."""
    out = {}
    for name, (files, render) in BLOCKS.items():
        paths = [results / f for f in files]
        if all(p.exists() for p in paths):
            out[name] = render(*(json.loads(p.read_text()) for p in paths))
    return out


def marked(text: str, name: str) -> re.Match:
    """The block ``<!-- results:name ... -->\\n...\\n<!-- /results:name -->`` of ``text``."""
    pattern = rf"(<!-- results:{name}\b[^>]*-->\n)(.*?)(<!-- /results:{name} -->)"
    found = list(re.finditer(pattern, text, flags=re.S))
    if len(found) != 1:
        raise SystemExit(f"README.md: expected one results:{name} block, found {len(found)}")
    return found[0]


def rewrite(text: str, blocks: dict[str, str]) -> str:
    """``text`` with each marked block's content replaced by its rendering."""
    for name, body in blocks.items():
        m = marked(text, name)
        text = text[: m.start(2)] + body + "\n" + text[m.end(2):]
    return text


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--check", action="store_true", help="exit 1 with a diff if README.md is stale")
    p.add_argument("--readme", type=Path, default=README)
    p.add_argument("--results", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    blocks = render_blocks(args.results)
    for name in BLOCKS.keys() - blocks.keys():
        print(f"{name}: JSON not in {args.results.name}/, table left as it is", file=sys.stderr)
    old = args.readme.read_text(encoding="utf-8")
    new = rewrite(old, blocks)
    if args.check:
        if new != old:
            sys.stdout.writelines(difflib.unified_diff(
                old.splitlines(keepends=True), new.splitlines(keepends=True),
                "README.md", "README.md (from benchmarks/results)"))
            return 1
        return 0
    if new != old:
        args.readme.write_text(new, encoding="utf-8")
    print(f"README.md: {', '.join(sorted(blocks)) or 'nothing'} rendered"
          + ("" if new != old else " (unchanged)"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
