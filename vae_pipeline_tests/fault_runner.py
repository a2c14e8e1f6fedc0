"""Materialise one day in a child process (settings from VAE_PIPELINE_*), for fault tests.

Usage: python -m vae_pipeline_tests.fault_runner DAY
"""

import sys
import warnings

warnings.filterwarnings("ignore")

from dagster import DagsterInstance  # noqa: E402

from vae_pipeline.pipeline.definitions import build_definitions  # noqa: E402
from vae_pipeline.pipeline.runner import materialise_day  # noqa: E402
from vae_pipeline.settings import PipelineSettings  # noqa: E402

if __name__ == "__main__":
    settings = PipelineSettings.from_env()
    results = materialise_day(
        build_definitions(settings), sys.argv[1], settings, instance=DagsterInstance.ephemeral()
    )
    sys.exit(0 if all(r.success for r in results) else 1)
