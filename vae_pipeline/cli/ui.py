"""``vae ui`` (what ``make ui`` calls): the Dagster UI, after checking that no other process
holds the DuckDB file.

DuckDB locks the whole file per process. The pipeline itself opens it for milliseconds per
read or write, but a DuckDB shell, a notebook or a stuck process can keep it open; the UI
then loads, and every run launched from it waits two minutes for the lock and fails deep in
a step's log. ``vae ui`` says so up front, naming the process.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from pathlib import Path

import typer

from vae_pipeline.cli.app import app, err
from vae_pipeline.settings import PipelineSettings
from vae_pipeline.store.connection import DatabaseFileError, connect

DEFS = "vae_pipeline.pipeline.definitions"
SUPERSEDED = "ignore:Function `dev_command` is superseded"
HOLDER = re.compile(r"held in (?P<program>.+?) \(PID (?P<pid>\d+)\)")


def lock_holder(path, wait: float = 2.0) -> str | None:
    """'PROGRAM (PID N)' of the process holding ``path``'s lock for ``wait`` seconds (the
    pipeline's own holds last milliseconds), 'another process' when DuckDB does not say,
    None when the file is free or absent."""
    try:
        connect(path, read_only=True, lock_wait=wait).close()
    except FileNotFoundError:
        return None  # nothing stored yet: nothing to hold
    except DatabaseFileError as exc:
        if "kept it locked" not in str(exc):
            raise
        found = HOLDER.search(str(exc))
        return f"{found['program']} (PID {found['pid']})" if found else "another process"
    return None


@app.command("ui")
def ui(
    port: int = typer.Option(3000, help="port of the Dagster UI (bound to 127.0.0.1 only)"),
    check: bool = typer.Option(False, "--check", help="only check the DuckDB file, then exit"),
) -> None:
    """Start the Dagster UI (dagster dev) on http://127.0.0.1:PORT, after checking the DuckDB file.

    Lineage, checks, the launchpad, schedules. When another process holds the DuckDB file,
    says which and stops (runs launched from the UI would wait for it, then fail)."""
    try:
        settings = PipelineSettings.from_env()
    except ValueError as exc:
        err.print(f"Error: {exc}", style="red", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    db = settings.storage.db_path
    holder = lock_holder(db) if settings.storage.io == "duckdb" else None
    if holder is not None:
        err.print(
            f"{db} is held by {holder}: runs launched from the UI will wait for it, then fail.\n"
            "Close that process (a DuckDB shell, a notebook, a stuck vae run) and start again.",
            style="bold red",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(1)
    if check:
        err.print(f"{db}: no other process holds it", highlight=False, soft_wrap=True)
        return
    dagster = shutil.which("dagster", path=os.path.dirname(sys.executable)) or "dagster"
    where = ["-w", "workspace.yaml"] if Path("workspace.yaml").is_file() else ["-m", DEFS]
    argv = [dagster, "dev", *where, "-h", "127.0.0.1", "-p", str(port)]
    # `dagster dev` warns on every start that `dg dev` supersedes it; dg is a separate
    # package (dagster-dg-cli) this project does not need. That one warning only:
    os.environ["PYTHONWARNINGS"] = ",".join(
        filter(None, [os.environ.get("PYTHONWARNINGS"), SUPERSEDED])
    )
    sys.stdout.flush()
    os.execv(dagster, argv)  # become the server: Ctrl-C reaches dagster dev directly
