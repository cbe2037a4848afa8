"""Console script ``lookout-count-aggregator``."""

from __future__ import annotations

import sys

from lookout_shared.telemetry import setup_process

from lookout_count_aggregator.entrypoints.cli import parse_args, run
from lookout_count_aggregator.settings import AggregatorSettings


def main() -> None:
    args = parse_args()
    settings = AggregatorSettings()
    setup_process(settings.service_name, settings.log_level)
    sys.exit(run(settings, args))
