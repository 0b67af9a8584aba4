"""Logger entries (SPEC 10): checked config, and log files where and at the level they say."""

from __future__ import annotations

import datetime

import pytest
from dagster import DagsterInstance

from capport_dagster.core.graph import load_project
from capport_dagster.errors import ValidationError
from capport_dagster.translate.build import build_definitions

PIPELINE = """
pipeline:
  p:
    - { label: load, task: load_csv, args: { filepath: $CONFIG_DIR/a.csv, df_name: A } }
    - { label: save, task: save_csv, args: { filepath: $OUTPUT_DIR/a.csv, df_name: A } }
"""


def errors(write_config, loggers: str) -> list[str]:
    write_config({"p.yml": PIPELINE, "a.csv": "x\n1\n", "l.yml": loggers})
    with pytest.raises(ValidationError) as info:
        load_project("config")
    return [str(p) for p in info.value.errors]


def test_bad_logger_entries_are_located_errors(write_config):
    assert errors(
        write_config,
        "logger:\n  a: { level: loud, output: logs }\n  b: { level: info }\n"
        "  c: { output: logs, prefix: x }\n  d: { output: $NO_SUCH_DIR }\n",
    ) == [
        "error: config/l.yml:2, logger 'a': malformed logger: level: input should be 'trace', "
        "'debug', 'info', 'warn', 'error' or 'off'",
        "error: config/l.yml:3, logger 'b': malformed logger: output: field required",
        "error: config/l.yml:4, logger 'c': malformed logger: unknown key 'prefix' - did you "
        "mean 'file_prefix'? (keys: file_prefix, file_timestamp, level, output)",
        "error: config/l.yml:5, logger 'd': undefined variable $NO_SUCH_DIR in '$NO_SUCH_DIR' "
        "(define it in the environment; built-ins: CONFIG_DIR, OUTPUT_DIR, REF_DATE, "
        "REF_DATETIME)",
    ]


def test_runner_naming_an_unknown_logger_is_an_error(write_config):
    assert errors(write_config, "runner:\n  r: { logger: defualt }\nlogger: {}\n") == [
        "error: config/l.yml:2, runner 'r': unknown logger 'defualt' (loggers: none defined)"
    ]


@pytest.mark.parametrize(
    ("level", "has_debug", "has_info"),
    [("debug", True, True), ("info", False, True), ("error", False, False)],
)
def test_a_run_appends_to_the_configured_file_at_the_configured_level(
    write_config, tmp_path, level, has_debug, has_info
):
    write_config(
        {
            "p.yml": PIPELINE,
            "a.csv": "x\n1\n",
            "l.yml": f"""
                logger:
                  default:
                    level: {level}
                    output: $OUTPUT_DIR/logs
                    file_prefix: run_
                    file_timestamp: "%Y"
            """,
        }
    )
    job = build_definitions(project=load_project("config")).resolve_job_def("p")
    with DagsterInstance.ephemeral() as instance:
        for _ in range(2):
            assert job.execute_in_process(
                run_config={"output_dir": "out"}, instance=instance
            ).success
    logs = list((tmp_path / "out" / "logs").iterdir())
    assert [p.name for p in logs] == [f"run_{datetime.date.today():%Y}.log"]
    text = logs[0].read_text()
    assert ("DEBUG" in text) is has_debug
    assert (" INFO " in text) is has_info
    if has_info:  # both runs appended to the same file
        assert text.count("save_csv: wrote A to") == 2
