"""The one trading-day partitions definition and the window mappings built on it.

Partitions are weekdays (key ``YYYY-MM-DD``, "as of the close of day d"). Exchange
holidays stay in the key space but hold no data: ``raw_returns`` stores nothing on them,
the model assets skip them, and the schedule never asks for them. (Dagster's
``exclusions`` can drop them from the key space, but with ~100 dated exclusions it takes
minutes to list the partitions, so holidays are handled in the data instead.)

Window mappings count weekday partitions, so they are widened to cover W (or H) trading
days plus the holidays between; the assets then cut exactly W trading days.
"""

from __future__ import annotations

from dagster import TimeWindowPartitionMapping, TimeWindowPartitionsDefinition

from vae_pipeline.settings import PipelineSettings

WEEKDAYS_CRON = "0 0 * * 1-5"


def trading_day_partitions(start: str) -> TimeWindowPartitionsDefinition:
    """Weekday partitions from ``start`` up to and including the current weekday.

    ``end_offset=1``: a weekday cron puts Friday's window at [Fri, Mon), so without it
    Friday's partition would not exist until Monday, though its close is Friday's.
    """
    return TimeWindowPartitionsDefinition(
        start=start, fmt="%Y-%m-%d", cron_schedule=WEEKDAYS_CRON, timezone="UTC", end_offset=1
    )


def training_window(settings: PipelineSettings) -> TimeWindowPartitionMapping:
    """Partition d reads the weekdays covering the trailing W trading days up to d."""
    return TimeWindowPartitionMapping(
        start_offset=-(settings.evaluation.window_weekdays - 1), end_offset=0
    )


def evaluation_window(settings: PipelineSettings) -> TimeWindowPartitionMapping:
    """Partition d reads the trailing W + H trading days (training window of d-H, and (d-H, d])."""
    span = settings.evaluation.window_weekdays + settings.evaluation.horizon_weekdays
    return TimeWindowPartitionMapping(start_offset=-(span - 1), end_offset=0)


def decision_lag(settings: PipelineSettings) -> TimeWindowPartitionMapping:
    """Partition d reads the decisions made from d-H (in trading days) up to d."""
    return TimeWindowPartitionMapping(
        start_offset=-(settings.evaluation.horizon_weekdays - 1), end_offset=0
    )
