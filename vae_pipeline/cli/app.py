"""The ``vae`` command-line application object, its consoles and its one-line error exit.

Every command module registers on :data:`app`; ``vae_pipeline.cli`` imports them all, so this
module imports none of them (no import cycle between the command modules).
"""

from __future__ import annotations

from typing import NoReturn

import typer
from rich.console import Console

app = typer.Typer(
    name="vae",
    help="Learn equity factors with a VAE and judge them in a min-variance horse race.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

# stdout carries only the result (tables or the JSON object); progress and errors go to stderr.
out = Console()
err = Console(stderr=True)

USAGE_ERROR = 2  # click's exit code for bad options


@app.callback()
def main() -> None:
    """Learn equity factors with a VAE and judge them in a min-variance horse race."""


def _fail(message: str) -> NoReturn:
    err.print(f"[bold red]Error:[/] {message}", highlight=False, soft_wrap=True)  # one line
    raise typer.Exit(USAGE_ERROR)
