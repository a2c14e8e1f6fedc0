"""Store a benchmark's JSON under ``benchmarks/results/`` with a provenance field.

The README's result tables are rendered from these files (``scripts/readme_tables.py``), so
each file says how it was made: the command, the git commit, the date and the wall time. The
tools themselves are not changed: this script either runs a command that prints one JSON
object on stdout, or adopts a JSON file a tool already wrote (``--from``, e.g. the real-data
study's ``--out``), and adds a top-level ``"provenance"`` key.

    python scripts/record_result.py benchmarks/results/seed42_single_split.json -- vae train --json --no-progress
    python scripts/record_result.py benchmarks/results/real_data_study.json \\
        --from /tmp/study.json --command "python benchmarks/real_data_study.py --out /tmp/study.json" \\
        --seconds 1500
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def git_commit() -> str:
    """The commit the numbers came from (``+dirty`` when the tree had local changes)."""
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True,
                          text=True, check=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                           capture_output=True, text=True, check=True).stdout.strip()
    return head + ("+dirty" if dirty else "")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("target", type=Path, help="JSON file to write; then -- and a command printing one JSON object, or --from")
    p.add_argument("--from", dest="source", type=Path, help="adopt this JSON file instead of running")
    p.add_argument("--command", help="the command that produced --from (recorded as given)")
    p.add_argument("--seconds", type=float, help="wall time of the --from run")
    p.add_argument("--commit", help="commit of the --from run (default: HEAD now)")
    p.add_argument("--date", help="UTC date of the --from run (default: now)")
    argv = sys.argv[1:] if argv is None else list(argv)
    # everything after "--" is the command, so its options never reach this parser
    cmd = argv[argv.index("--") + 1 :] if "--" in argv else []
    args = p.parse_args(argv[: len(argv) - len(cmd) - (1 if "--" in argv else 0)])

    started = dt.datetime.now(dt.timezone.utc)
    commit = args.commit or git_commit()
    if args.source:
        data = json.loads(args.source.read_text())
        command, seconds = args.command or f"(adopted from {args.source.name})", args.seconds
        if seconds is None and isinstance(data.get("seconds"), int | float):
            seconds = data["seconds"]  # the tool's own wall time (vae study writes it)
    else:
        if not cmd:
            p.error("give a command after -- or --from FILE")
        t0 = time.perf_counter()
        run = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        seconds = time.perf_counter() - t0
        if run.returncode:
            sys.stderr.write(run.stderr)
            return run.returncode
        data = json.loads(run.stdout)
        command = shlex.join(cmd)
    if "provenance" in data:
        p.error("the tool's JSON already has a 'provenance' key")
    data["provenance"] = {
        "command": command,
        "git_commit": commit,
        "date": args.date or started.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "seconds": None if seconds is None else round(seconds, 1),
    }
    args.target.parent.mkdir(parents=True, exist_ok=True)
    args.target.write_text(json.dumps(data, indent=2) + "\n")
    print(f"{args.target}: {command} ({data['provenance']['seconds']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
