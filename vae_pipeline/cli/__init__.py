"""The ``vae`` command line: ``vae train`` (the experiment), ``vae study`` (the horse race on
your own file), ``vae run`` / ``vae scorecard``, ``vae backfill`` (every daily asset over a range of days)."""

from vae_pipeline.cli import backfill, pipeline, study, train  # noqa: F401  (each registers its commands)
from vae_pipeline.cli.app import app

__all__ = ["app"]
