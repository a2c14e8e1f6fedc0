"""A reconstructable daily-refit job for multiprocess tests (settings from the environment)."""

from vae_pipeline.pipeline.definitions import build_definitions


def daily_refit_job():
    return build_definitions().resolve_job_def("daily_refit")
