"""The run config of a capport job through Dagster's own API: checked like the YAML, before the
run starts, every bad value at once."""

from __future__ import annotations

import pytest
from dagster import (
    DagsterInstance,
    DagsterInvalidConfigError,
    build_reconstructable_job,
    execute_job,
)

from capport_dagster.core.graph import load_project
from capport_dagster.errors import ConfigError
from capport_dagster.translate.build import build_definitions
from capport_dagster.translate.resources import parse_reference

CONFIG = {
    "a.csv": "x\n1\n",
    "p.yml": """
        pipeline:
          p:
            - { label: load, task: load_csv, args: { filepath: $CONFIG_DIR/a.csv, df_name: A } }
            - { label: save, task: save_csv, args: { filepath: $OUTPUT_DIR/$REF_DATE.csv,
                df_name: A } }
    """,
    "l.yml": "logger:\n  default: { level: info, output: $OUTPUT_DIR/logs }\n",
}

NOT_ISO = "is not an ISO 8601 date or date-time (e.g. 2026-01-05 or 2026-01-05T15:00:00+08:00)"


@pytest.fixture
def job(write_config):
    write_config(CONFIG)
    return build_definitions(project=load_project("config")).resolve_job_def("p")


def config_errors(job, run_config: dict) -> list[str]:
    """What `execute_in_process` raises, before any op runs (no instance is even needed)."""
    with pytest.raises(DagsterInvalidConfigError) as info:
        job.execute_in_process(run_config=run_config)
    assert info.value.message.startswith("Error in capport run config\n")
    return list(info.value.error_messages)


@pytest.mark.parametrize(
    ("run_config", "messages"),
    [
        (
            {"ref_datetime": "someday"},
            [f"Invalid value at path root:ref_datetime: 'someday' {NOT_ISO}"],
        ),
        ({"ref_datetime": "P1D"}, [f"Invalid value at path root:ref_datetime: 'P1D' {NOT_ISO}"]),
        (
            {"ref_datetime": "2026-02-30"},
            [f"Invalid value at path root:ref_datetime: '2026-02-30' {NOT_ISO}"],
        ),
        (
            {"max_concurrent": 0, "mode": "async_eager"},
            [
                "Invalid value at path root:max_concurrent: must be 1 or more, or null for the "
                "CPU count (got 0)"
            ],
        ),
        (
            {"logger": "defualt"},
            [
                "Invalid value at path root:logger: unknown logger 'defualt' - did you mean "
                "'default'? (loggers: default)"
            ],
        ),
        (
            # Every bad value at once, in the order of the schema.
            {"ref_datetime": "", "max_concurrent": -2, "log_level": "loud"},
            [
                f"Invalid value at path root:ref_datetime: '' {NOT_ISO}",
                "Invalid value at path root:max_concurrent: must be 1 or more, or null for the "
                "CPU count (got -2)",
                "Invalid value at path root:log_level: unknown level 'loud' (levels: DEBUG, INFO, "
                "WARNING, ERROR, CRITICAL)",
            ],
        ),
    ],
    ids=["not a date", "a duration", "no such day", "max_concurrent 0", "logger", "all at once"],
)
def test_bad_values_are_config_errors_before_the_run(job, tmp_path, run_config, messages):
    assert config_errors(job, {"output_dir": "out", **run_config}) == messages
    assert not (tmp_path / "out").exists()  # nothing ran, not even the logger's file


def test_good_values_run(job, tmp_path):
    with DagsterInstance.ephemeral() as instance:
        result = job.execute_in_process(
            run_config={
                "output_dir": "out",
                "ref_datetime": "2026-01-05",
                "max_concurrent": 1,
                "mode": "async_eager",
                "log_level": "warning",  # any case
                "logger": None,
                "progress": False,
            },
            instance=instance,
        )
    assert result.success
    assert (tmp_path / "out" / "2026-01-05.csv").read_text() == "x\n1\n"
    assert not (tmp_path / "out" / "logs").exists()  # logger: null writes no file


@pytest.mark.parametrize(
    ("text", "timezone", "expected"),
    [
        ("2026-01-05", "UTC", "2026-01-05T00:00:00+00:00"),
        ("2026-01-05T15:00:00", "Asia/Singapore", "2026-01-05T15:00:00+08:00"),
        ("2026-01-05T15:00:00+01:00", "Asia/Singapore", "2026-01-05T15:00:00+01:00"),
    ],
)
def test_a_reference_is_an_iso_date_or_date_time(text, timezone, expected):
    assert parse_reference(text, timezone).isoformat() == expected


@pytest.mark.parametrize("text", ["someday", "P1D", "2026-13-01", "", "2026-01-05T25:00"])
def test_anything_else_is_a_config_error_quoting_it(text):
    with pytest.raises(ConfigError) as info:
        parse_reference(text, "UTC")
    assert str(info.value) == f"{text!r} {NOT_ISO}"


def test_a_log_file_path_that_no_longer_expands_is_a_config_error(write_config, monkeypatch):
    """The logger's `output` was checked when the config loaded; the environment of the run
    may have lost the variable since (a daemon started elsewhere)."""
    monkeypatch.setenv("CAPPORT_TEST_LOG_ROOT", "logs")
    write_config({**CONFIG, "l.yml": "logger:\n  default: { output: $CAPPORT_TEST_LOG_ROOT }\n"})
    job = build_definitions(project=load_project("config")).resolve_job_def("p")
    monkeypatch.delenv("CAPPORT_TEST_LOG_ROOT")
    assert config_errors(job, {"output_dir": "out"}) == [
        "Invalid value at path root:logger: config/l.yml:2, logger 'default': undefined variable "
        "$CAPPORT_TEST_LOG_ROOT in '$CAPPORT_TEST_LOG_ROOT' (define it in the environment; "
        "built-ins: CONFIG_DIR, OUTPUT_DIR, REF_DATE, REF_DATETIME)"
    ]


def test_a_relative_frames_dir_is_refused_where_stages_run_in_other_processes(job, tmp_path):
    assert config_errors(
        job, {"output_dir": "out", "executor": "multiprocess", "frames_dir": "frames"}
    ) == [
        "Invalid value at path root:frames_dir: 'frames' is a relative path: stages in other"
        " processes would each look for it in their own working directory (give an absolute"
        " path on storage every worker shares, or an object-store URI such as"
        " s3://bucket/frames)"
    ]


def test_a_relative_frames_dir_from_the_environment_is_refused_too(job, monkeypatch):
    monkeypatch.setenv("CAPPORT_FRAMES_DIR", "frames")
    [message] = config_errors(job, {"output_dir": "out", "executor": "multiprocess"})
    assert message.startswith("Invalid value at path root:frames_dir: 'frames' is a relative")


def test_celery_without_its_extra_is_a_config_error(job, monkeypatch):
    monkeypatch.setattr("capport_dagster.translate.run_config.celery_available", lambda: False)
    assert config_errors(job, {"output_dir": "out", "executor": "celery"}) == [
        "Invalid value at path root:executor: executor 'celery' needs dagster-celery, which is"
        " not installed: pip install 'capport-dagster[celery]'"
    ]


def test_frames_persist_under_frames_dir_with_the_multiprocess_executor(job, tmp_path):
    frames = tmp_path / "frames"  # created by the run
    (tmp_path / "home").mkdir()
    with DagsterInstance.local_temp(str(tmp_path / "home")) as instance:
        reconstructable = build_reconstructable_job(
            "capport_dagster.translate.build",
            "job_for",
            reconstructable_args=(str(tmp_path / "config"), "p", ()),
        )
        result = execute_job(
            reconstructable,
            instance=instance,
            run_config={
                "output_dir": str(tmp_path / "out"),
                "ref_datetime": "2026-01-05",
                "executor": "multiprocess",
                "frames_dir": str(frames),
            },
        )
        assert result.success
    assert [p.relative_to(frames).as_posix() for p in frames.rglob("*.parquet")] == [
        f"{result.run_id}/load/A.parquet"
    ]
    assert (tmp_path / "out" / "2026-01-05.csv").read_text() == "x\n1\n"
