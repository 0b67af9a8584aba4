"""Secrets stay out of errors, logs and Dagster's event log."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from dagster import DagsterInstance

from capport_dagster.core.secrets import (
    MASK,
    Redactor,
    is_secret_variable,
    looks_secret,
    secret_values,
)

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
        ("DB_PWD", True),
        ("MYSQL_PWD", True),
        ("pwd", True),  # a config key `pwd` in a service entry is a password
        ("PGPASSWORD", True),  # libpq's
        ("SYSTEM_ACCESSTOKEN", True),  # Azure Pipelines'
        ("DISCORD_WEBHOOK_URL", True),  # a webhook's URL is its credential
        ("slack_webhook", True),
        ("WEBHOOK_TIMEOUT", False),
        ("HOST", False),
        ("monkey", False),
        ("LESSKEY", False),  # less's key bindings file
        ("OLDPWD", False),
        ("TOKENIZER_PATH", False),
        ("AWS_ACCESS_KEY_ID", False),
        ("SSH_PUBLIC_KEY", False),
        ("stripe_publishable_key", False),
    ],
)
def test_which_names_look_secret(name, secret):
    assert looks_secret(name) is secret


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        ("PWD", False),  # the working directory: every path under it would print as ***
        ("OLDPWD", False),
        ("GPG_KEY", False),  # the Python images' release-signing key fingerprint
        ("GOOGLE_APPLICATION_CREDENTIALS", False),  # a path; the file is the secret
        ("DB_PWD", True),
        ("MYSQL_PWD", True),
        ("CI_JOB_TOKEN", True),  # GitLab
        ("ACTIONS_RUNTIME_TOKEN", True),  # GitHub Actions
        ("AWS_SESSION_TOKEN", True),
    ],
)
def test_which_environment_variables_are_secret(name, secret):
    assert is_secret_variable(name) is secret


def test_capport_secret_vars_marks_even_a_public_looking_variable():
    environ = {"PWD": "/home/ann/project", "CAPPORT_SECRET_VARS": "PWD"}
    assert secret_values({}, environ) == {"/home/ann/project"}


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


def typical_environment(tmp_path: Path) -> dict[str, str]:
    """What a login shell, a GitHub Actions runner, a Python Docker image and Dagster set, with
    every path under `tmp_path`; no secret among them."""
    return {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path / "user"),
        "PWD": str(tmp_path),
        "OLDPWD": str(tmp_path.parent),
        "USER": "runner",
        "LOGNAME": "runner",
        "SHELL": "/bin/bash",
        "SHLVL": "1",
        "TERM": "xterm-256color",
        "LANG": "C.UTF-8",
        "HOSTNAME": "runner-host",
        "_": sys.executable,
        "CI": "true",
        "GITHUB_ACTIONS": "true",
        "GITHUB_WORKSPACE": str(tmp_path),
        "GITHUB_REPOSITORY": "acme/pipelines",
        "GITHUB_SHA": "3f786850e387550fdab836ed7e6dc881de23001b",
        "RUNNER_OS": "Linux",
        "RUNNER_TEMP": str(tmp_path / "runner-temp"),
        "RUNNER_TOOL_CACHE": str(tmp_path / "toolcache"),
        "GPG_KEY": "A035C8C19219BA821ECEA86B64E628F8D684696D",
        "PYTHON_VERSION": "3.11.7",
        "PYTHONUNBUFFERED": "1",
        "DAGSTER_HOME": str(tmp_path / "home"),
    }


def test_a_typical_environment_masks_nothing(write_config, tmp_path, monkeypatch):
    """No secret configured: every path prints in full, in errors, logs and the event log."""
    config = write_config(
        {
            "a.csv": "x\n1\n",
            "p.yml": """
                pipeline:
                  good:
                    - { label: load, task: load_csv, args: { filepath: $CONFIG_DIR/a.csv,
                        df_name: A } }
                    - { label: save, task: save_csv, args: { filepath: $OUTPUT_DIR/a.csv,
                        df_name: A } }
                  bad:
                    - { label: load, task: load_csv, args: { filepath: $CONFIG_DIR/none.csv,
                        df_name: A } }
            """,
            "l.yml": "logger:\n  default: { level: info, output: logs }\n",
        }
    )
    home = tmp_path / "home"
    home.mkdir()
    env = typical_environment(tmp_path)
    assert secret_values({}, env) == set()

    def capport(pipeline: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "capport_dagster.cli", "run", "-c", "config"]
        return subprocess.run(
            [*command, "-p", pipeline, "-o", "out"],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            env=env,
            timeout=120,
        )

    good = capport("good")
    assert good.returncode == 0, good.stderr
    [log] = list((tmp_path / "logs").iterdir())
    assert f"save_csv: wrote A to {tmp_path}/out/a.csv" in log.read_text()
    bad = capport("bad")
    assert bad.returncode == 1
    assert f"load_csv: no such file {config}/none.csv\n" in bad.stderr
    everything = [good.stdout, good.stderr, bad.stdout, bad.stderr, log.read_text()]
    everything.append(event_log_text(home, monkeypatch))
    assert str(tmp_path / "out" / "a.csv") in everything[-1]
    assert [text for text in everything if MASK in text] == []


def test_asset_definitions_mask_a_secret_written_in_a_stages_args(write_config):
    from capport_dagster import load_definitions

    config = write_config(
        {
            "service.yml": CONFIG["service.yml"],
            "p.yml": f"""
                pipeline:
                  p:
                    - {{ label: load, task: load_csv, args: {{ filepath: /x/{SERVICE_PASSWORD}.csv,
                        df_name: A }} }}
                    - {{ label: save, task: save_csv, args: {{ filepath: out.csv, df_name: A }} }}
            """,
        }
    )
    specs = load_definitions(config).resolve_all_asset_specs()
    metadata = {str(spec.key): spec.metadata for spec in specs}
    assert metadata["AssetKey(['p', 'A'])"]["capport/args"] == (
        "{'filepath': '/x/***.csv', 'df_name': 'A'}"
    )
    assert SERVICE_PASSWORD not in repr(metadata)
