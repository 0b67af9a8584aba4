"""Secrets stay out of errors, logs and Dagster's event log."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from dagster import DagsterInstance

from capport_dagster.core.secrets import Redactor, looks_secret, secret_values

TOKEN = "tok-abcdef123456"
SERVICE_PASSWORD = "svc-pass-987654"


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        ("DB_PASSWORD", True),
        ("api_token", True),
        ("AWS_SECRET_ACCESS_KEY", True),
        ("client_secret", True),
        ("password", True),
        ("credentials", True),
        ("HOST", False),
        ("monkey", False),
        ("TOKENIZER_PATH", False),
    ],
)
def test_which_names_look_secret(name, secret):
    assert looks_secret(name) is secret


def test_secret_values_come_from_services_and_the_environment():
    sections = {
        "service": {"db": {"host": "localhost", "password": SERVICE_PASSWORD, "port": 5432}},
        "connection": {
            "api": {
                "auth": {"token": "nested-token-1"},
                "dsn": "postgres://u:p@h",
                "secret_keys": ["dsn"],
            }
        },
    }
    environ = {
        "MY_API_TOKEN": TOKEN,
        "HOME": "/root",
        "PLAIN": "not-secret-value",
        "CAPPORT_SECRET_VARS": "PLAIN",
        "SHORT_KEY": "abc",
    }
    assert secret_values(sections, environ) == {
        SERVICE_PASSWORD,
        "nested-token-1",
        "postgres://u:p@h",
        TOKEN,
        "not-secret-value",
    }


def test_redactor_masks_every_occurrence_longest_first():
    redact = Redactor(frozenset({"abcd", "abcdef"}))
    assert redact("x abcdef y abcd z") == "x *** y *** z"
    assert Redactor()("nothing to hide") == "nothing to hide"


CONFIG = {
    "service.yml": f"service:\n  db: {{ host: localhost, password: {SERVICE_PASSWORD} }}\n",
    "p.yml": """
        pipeline:
          p:
            - { label: load, task: load_csv, args: { filepath: "$CONFIG_DIR/$MY_API_TOKEN.csv",
                df_name: A } }
            - { label: save, task: save_csv, args: { filepath: "$OUTPUT_DIR/$MY_API_TOKEN/a.csv",
                df_name: A } }
    """,
    "l.yml": "logger:\n  default: { level: debug, output: logs }\n",
}


def run(config, tmp_path, home):
    env = {**os.environ, "MY_API_TOKEN": TOKEN, "DAGSTER_HOME": str(home)}
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "capport_dagster.cli",
            "run",
            "-c",
            str(config),
            "-p",
            "p",
            "-o",
            "out",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=120,
    )


def event_log_text(home, monkeypatch) -> str:
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    with DagsterInstance.get() as instance:
        return "\n".join(
            str(record) for run in instance.get_runs() for record in instance.all_logs(run.run_id)
        )


def test_a_failing_path_with_a_secret_is_reported_masked(write_config, tmp_path, monkeypatch):
    config = write_config(CONFIG)
    home = tmp_path / "home"
    home.mkdir()
    result = run(config, tmp_path, home)
    assert result.returncode == 1
    assert f"load_csv: no such file {config}/***.csv" in result.stderr
    assert TOKEN not in result.stderr + result.stdout
    assert TOKEN not in event_log_text(home, monkeypatch)


def test_logs_and_events_of_a_good_run_hold_no_secret(write_config, tmp_path, monkeypatch):
    config = write_config({**CONFIG, f"{TOKEN}.csv": "x\n1\n"})
    home = tmp_path / "home"
    home.mkdir()
    result = run(config, tmp_path, home)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out" / TOKEN / "a.csv").exists()  # the path itself is the user's
    [log] = list((tmp_path / "logs").iterdir())
    text = log.read_text()
    assert "save_csv: wrote A to " in text and "/out/***/a.csv" in text
    assert TOKEN not in text
    assert TOKEN not in event_log_text(home, monkeypatch)
    assert SERVICE_PASSWORD not in result.stderr + result.stdout + text
