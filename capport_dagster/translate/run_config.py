"""The run config a capport job takes: flat, in capport's words, mapped onto Dagster's.

Users (and schedules, and `capport run`) write

    mode: async_eager          # sync_lazy | sync_eager | async_lazy | async_eager
    executor: in_process       # or multiprocess, celery, k8s
    max_concurrent: 4
    frames_dir: s3://bucket/frames   # where persisted frames go (or a local path)
    celery: { broker: "redis://host:6379/0", backend: null, poll_interval: 0.05 }
    k8s: { job_namespace: capport, ... }   # executor: k8s (dagster-k8s's executor config)
    output_dir: output
    ref_datetime: "2026-01-05T15:00:00+08:00"
    preview: false             # compute head and row count of final frames (lazy modes)
    catalog: true              # record each frame and sink in Dagster's asset catalog
    logger: default            # a logger entry: its file, and its level on the console
    log_level: INFO            # console level (default: the logger's, else INFO)
    progress: false            # a line per stage on stderr (what `capport run` shows)

and a Dagster `ConfigMapping` turns it into executor, resource and logger config, so the mode
chosen in the launchpad drives both the executor and the ops from one value. Defaults come from
the pipeline's runner (SPEC 9), else `sync_lazy` in process.

Values Dagster's types cannot check (a `ref_datetime` that does not parse, `max_concurrent: 0`,
an unknown `logger` or `log_level`) are checked by the mapping, all at once, and raised as a
`DagsterInvalidConfigError` before the run starts: in the launchpad, `execute_in_process` and
`capport run` alike a config error, never a resource that fails inside the run.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pendulum
from dagster import ConfigMapping, DagsterInvalidConfigError, Field, Noneable, Permissive
from dagster._config import DagsterEvaluationErrorReason, EvaluationError
from dagster._config.stack import EvaluationStackRoot
from dagster._utils.error import SerializableErrorInfo

from capport_dagster.core.loggers import LoggerSpec
from capport_dagster.core.modes import DEFAULT_MODE
from capport_dagster.core.partitions import Cadence
from capport_dagster.core.runners import Runner
from capport_dagster.core.uris import is_uri
from capport_dagster.core.variables import expand, run_variables
from capport_dagster.errors import ConfigError, Location, did_you_mean
from capport_dagster.translate.celery import MISSING_EXTRA, celery_available
from capport_dagster.translate.executor import (
    CELERY_CONFIG,
    CELERY_DEFAULTS,
    EXECUTOR_ENUM,
    MODE_ENUM,
    PERSISTING_EXECUTORS,
)
from capport_dagster.translate.k8s import K8S_MISSING_EXTRA, k8s_available, k8s_config_problems
from capport_dagster.translate.ops import RUN_RESOURCE_KEY
from capport_dagster.translate.resources import parse_reference

__all__ = [
    "FRAMES_DIR_VARIABLE",
    "LOG_LEVELS",
    "frames_dir",
    "run_config_mapping",
    "unreachable_frames_dir",
]

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
FRAMES_DIR_VARIABLE = "CAPPORT_FRAMES_DIR"


def default_logger(runner: Runner | None, loggers: Mapping[str, LoggerSpec]) -> str | None:
    """The runner's logger, else the one named `default` when there is one (SPEC 10)."""
    if runner is not None and runner.logger is not None:
        return runner.logger
    return "default" if "default" in loggers else None


def run_config_mapping(
    *,
    config_dir: str,
    runner: Runner | None,
    loggers: Mapping[str, LoggerSpec],
    persist: bool = False,
    partitions: Cadence | None = None,
) -> ConfigMapping:
    """`persist`: always keep frames as Parquet (asset jobs), not only between processes.
    `partitions`: the job's, which the run resource needs to find a partition's start."""
    mode = runner.mode if runner else DEFAULT_MODE
    executor = runner.executor if runner else "in_process"
    timezone = runner.schedule.timezone if runner and runner.schedule else "UTC"
    schema = {
        "mode": Field(MODE_ENUM, default_value=mode.value, description="capport run mode"),
        "executor": Field(EXECUTOR_ENUM, default_value=executor),
        "max_concurrent": Field(
            Noneable(int),
            default_value=runner.max_concurrent if runner else None,
            description="stages running at once in async modes, 1 or more (default: CPU count)",
        ),
        "frames_dir": Field(
            Noneable(str),
            default_value=runner.frames_dir if runner else None,
            description="where frames persist between processes: a directory or an object-store"
            f" URI (default: ${FRAMES_DIR_VARIABLE}, else the instance's storage)",
        ),
        "celery": Field(
            CELERY_CONFIG, default_value=CELERY_DEFAULTS, description="executor: celery"
        ),
        "k8s": Field(
            Permissive(),
            default_value={},
            description="executor: k8s (dagster-k8s's k8s_job_executor config)",
        ),
        "output_dir": Field(str, default_value="output", description="$OUTPUT_DIR"),
        "ref_datetime": Field(
            Noneable(str), default_value=None, description="$REF_DATETIME (default: run start)"
        ),
        "preview": Field(bool, default_value=False),
        "catalog": Field(
            bool,
            default_value=True,
            description="record a materialization of each frame and sink, and the model checks",
        ),
        "logger": Field(
            Noneable(str),
            default_value=default_logger(runner, loggers),
            description="logger entry whose file this run appends to",
        ),
        "log_level": Field(Noneable(str), default_value=None, description="console level"),
        "progress": Field(bool, default_value=False, description="print a line per stage"),
    }

    def to_dagster(values: Mapping[str, Any]) -> dict[str, Any]:
        _check_values(values, loggers, timezone)
        spec = _logger_spec(values["logger"], loggers)
        console = values["log_level"] or (spec.console_level if spec else "INFO")
        loggers_config: dict[str, Any] = {"console": {"config": {"log_level": console.upper()}}}
        if spec is not None and spec.level != "off":
            try:
                path = _log_path(spec, config_dir, values, timezone)
            except ConfigError as exc:  # e.g. its `output` names a variable no longer set
                raise _invalid(values, {"logger": str(exc)}) from None
            loggers_config["capport_file"] = {
                "config": {"path": str(path), "level": spec.python_level}
            }
        if values["progress"]:
            loggers_config["capport_progress"] = {"config": {}}
        return {
            "execution": {
                "config": {
                    "mode": values["mode"],
                    "executor": values["executor"],
                    "max_concurrent": values["max_concurrent"],
                    "celery": values["celery"],
                    "k8s": values["k8s"],
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
                        "catalog": values["catalog"],
                        "partitions": partitions.config() if partitions else None,
                    }
                },
                "io_manager": {
                    "config": {
                        "persist": persist or values["executor"] in PERSISTING_EXECUTORS,
                        "base_dir": frames_dir(values),
                    }
                },
            },
            "loggers": loggers_config,
        }

    return ConfigMapping(config_fn=to_dagster, config_schema=schema)


def _check_values(
    values: Mapping[str, Any], loggers: Mapping[str, LoggerSpec], timezone: str
) -> None:
    """Every value of the run config that its Dagster type lets through but the run cannot use,
    as one `DagsterInvalidConfigError` (Dagster lets it pass the mapping's error boundary)."""
    problems: dict[str, str] = {}
    if values["ref_datetime"] is not None:
        try:
            parse_reference(values["ref_datetime"], timezone)
        except ConfigError as exc:
            problems["ref_datetime"] = exc.message
    if values["executor"] == "celery" and not celery_available():
        problems["executor"] = MISSING_EXTRA
    if values["executor"] == "k8s":
        if not k8s_available():
            problems["executor"] = K8S_MISSING_EXTRA
        elif k8s := k8s_config_problems(values["k8s"]):
            problems["k8s"] = "; ".join(k8s)
    location = frames_dir(values)
    if location is not None and values["executor"] in PERSISTING_EXECUTORS:
        problem = unreachable_frames_dir(location)
        if problem is not None:
            problems["frames_dir"] = problem
    if values["max_concurrent"] is not None and values["max_concurrent"] < 1:
        problems["max_concurrent"] = (
            f"must be 1 or more, or null for the CPU count (got {values['max_concurrent']})"
        )
    try:
        _logger_spec(values["logger"], loggers)
    except ConfigError as exc:
        problems["logger"] = exc.message
    level = values["log_level"]
    if level is not None and level.upper() not in LOG_LEVELS:
        problems["log_level"] = (
            f"unknown level {level!r}{did_you_mean(level.upper(), LOG_LEVELS)}"
            f" (levels: {', '.join(LOG_LEVELS)})"
        )
    if problems:
        raise _invalid(values, problems)


def frames_dir(values: Mapping[str, Any]) -> str | None:
    """Where a run persists its frames: `frames_dir`, else `$CAPPORT_FRAMES_DIR`, else None
    (the instance's storage directory, dagster-polars' default)."""
    return values.get("frames_dir") or os.environ.get(FRAMES_DIR_VARIABLE) or None


def unreachable_frames_dir(location: str) -> str | None:
    """Why processes other than this one could not find frames at `location`, or None.

    A relative path would resolve in each worker's own working directory. Whether an absolute
    path is on a filesystem all workers share cannot be known from here: docs/deploy.md."""
    if is_uri(location) or Path(location).is_absolute():
        return None
    return (
        f"{location!r} is a relative path: stages in other processes would each look for it in"
        " their own working directory (give an absolute path on storage every worker shares,"
        " or an object-store URI such as s3://bucket/frames)"
    )


def _invalid(values: Mapping[str, Any], problems: Mapping[str, str]) -> DagsterInvalidConfigError:
    return DagsterInvalidConfigError(
        "Error in capport run config",
        [_evaluation_error(key, message) for key, message in problems.items()],
        dict(values),
    )


def _evaluation_error(key: str, message: str) -> EvaluationError:
    text = f"Invalid value at path root:{key}: {message}"
    return EvaluationError(
        stack=EvaluationStackRoot().for_field(key),
        reason=DagsterEvaluationErrorReason.FAILED_POST_PROCESSING,
        message=text,
        error_data=SerializableErrorInfo(message=text, stack=[], cls_name="ConfigError"),
    )


def _logger_spec(name: str | None, loggers: Mapping[str, LoggerSpec]) -> LoggerSpec | None:
    if name is None:
        return None
    if name not in loggers:
        raise ConfigError(
            f"unknown logger '{name}'{did_you_mean(name, loggers)}"
            f" (loggers: {', '.join(sorted(loggers)) or 'none defined'})",
            Location(section="logger", name=name),
        )
    return loggers[name]


def _log_path(spec: LoggerSpec, config_dir: str, values: Mapping[str, Any], timezone: str) -> Path:
    now = pendulum.now(timezone)
    reference = parse_reference(values["ref_datetime"], timezone) if values["ref_datetime"] else now
    variables = run_variables(
        config_dir=Path(config_dir),
        output_dir=values["output_dir"],
        ref_datetime=reference,
        environ=os.environ,
    )
    directory = expand(spec.output, variables, spec.location)
    if is_uri(directory):
        raise ConfigError(
            f"its output {spec.output} is {directory}, an object-store URI: a log file is"
            " appended to as the run goes, which objects cannot be (give it a local directory)",
            spec.location,
        )
    return Path(directory).absolute() / spec.file_name(now)
