"""The run config a capport job takes: flat, in capport's words, mapped onto Dagster's.

Users (and schedules, and `capport run`) write

    mode: async_eager          # sync_lazy | sync_eager | async_lazy | async_eager
    executor: in_process       # or multiprocess
    max_concurrent: 4
    output_dir: output
    ref_datetime: "2026-01-05T15:00:00+08:00"
    preview: false             # compute head and row count of final frames (lazy modes)
    log_level: INFO

and a Dagster `ConfigMapping` turns it into executor, resource and logger config, so the mode
chosen in the launchpad drives both the executor and the ops from one value. Defaults come from
the pipeline's runner (SPEC 9), else `sync_lazy` in process.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dagster import ConfigMapping, Field, Noneable

from capport_dagster.core.modes import DEFAULT_MODE
from capport_dagster.core.runners import Runner
from capport_dagster.translate.executor import EXECUTOR_ENUM, MODE_ENUM
from capport_dagster.translate.ops import RUN_RESOURCE_KEY

__all__ = ["LOG_LEVELS", "run_config_mapping"]

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def run_config_mapping(
    *, config_dir: str, runner: Runner | None, loggers: Mapping[str, Any] | None = None
) -> ConfigMapping:
    mode = runner.mode if runner else DEFAULT_MODE
    executor = runner.executor if runner else "in_process"
    timezone = runner.schedule.timezone if runner and runner.schedule else "UTC"
    schema = {
        "mode": Field(MODE_ENUM, default_value=mode.value, description="capport run mode"),
        "executor": Field(EXECUTOR_ENUM, default_value=executor),
        "max_concurrent": Field(
            Noneable(int),
            default_value=runner.max_concurrent if runner else None,
            description="stages running at once in async modes (default: CPU count)",
        ),
        "output_dir": Field(str, default_value="output", description="$OUTPUT_DIR"),
        "ref_datetime": Field(
            Noneable(str), default_value=None, description="$REF_DATETIME (default: run start)"
        ),
        "preview": Field(bool, default_value=False),
        "log_level": Field(str, default_value="INFO"),
        "progress": Field(bool, default_value=False, description="print a line per stage"),
    }

    def to_dagster(values: Mapping[str, Any]) -> dict[str, Any]:
        loggers_config: dict[str, Any] = {
            "console": {"config": {"log_level": values["log_level"].upper()}}
        }
        if values["progress"]:
            loggers_config["capport_progress"] = {"config": {}}
        return {
            "execution": {
                "config": {
                    "mode": values["mode"],
                    "executor": values["executor"],
                    "max_concurrent": values["max_concurrent"],
                }
            },
            "resources": {
                RUN_RESOURCE_KEY: {
                    "config": {
                        "config_dir": config_dir,
                        "mode": values["mode"],
                        "output_dir": values["output_dir"],
                        "ref_datetime": values["ref_datetime"],
                        "timezone": timezone,
                        "preview": values["preview"],
                    }
                },
                "io_manager": {"config": {"persist": values["executor"] == "multiprocess"}},
            },
            "loggers": loggers_config,
        }

    return ConfigMapping(config_fn=to_dagster, config_schema=schema)
