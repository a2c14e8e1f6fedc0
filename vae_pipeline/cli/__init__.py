"""The ``vae`` command line: ``vae train`` (the experiment), ``vae study`` (the horse race on
your own file), ``vae run`` / ``vae scorecard``, ``vae backfill`` (every daily asset over a range
of days), ``vae ui`` and ``vae dashboard``."""

from vae_pipeline.cli import backfill, pipeline, study, train, ui  # noqa: F401  (each registers its commands)
from vae_pipeline.cli.app import app

__all__ = ["app"]
