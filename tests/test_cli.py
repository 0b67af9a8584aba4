"""`capport` as a user runs it: exit codes, located one-line errors, results on stdout."""

from __future__ import annotations

import io
import logging
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from capport_dagster.cli import main
from capport_dagster.translate.progress import _ProgressHandler
from tests.conftest import EXAMPLE_CONFIG, FIXTURES, builtin_tasks, capport

ORIGINAL = FIXTURES / "capport_original"


# --- validate -------------------------------------------------------------------------------


def test_validate_reports_each_problem_of_an_original_capport_config(capsys, monkeypatch):
    monkeypatch.chdir(ORIGINAL)
    assert main(["validate", "-c", "."]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    where = "pipeline.yml:{}, pipeline 'players', stage '{}' (#{})".format
    assert err.splitlines() == [
        f"error: {where(6, 'fetch_ids', 1)}: task 'mongo': MongoDB is not supported (no MongoDB "
        "server is available to test it against, so it could not be kept working); export the "
        "collection to JSON or CSV and read it with load_json or load_csv, or copy it into "
        "PostgreSQL and read it with load_sql or postgres",
        f"error: {where(18, 'fetch_players', 3)}: malformed args for task 'http_request_json': "
        "df: field required; select: field required; save_df: field required; unknown key "
        "'df_from' (keys: backoff, df, fields, format, max_concurrent, "
        "method, model, retries, save_df, select, timeout); unknown key 'url_column' (keys: "
        "backoff, df, fields, format, max_concurrent, method, model, retries, save_df, select, "
        "timeout); unknown key 'df_to' (keys: backoff, df, fields, format, max_concurrent, "
        "method, model, retries, save_df, select, timeout)",
        f"error: {where(24, 'enrich', 4)}: malformed args for task 'transform': save_df: "
        "field required",
        f"error: {where(47, 'store', 8)}: task 'postgres' reads a table or query into a frame "
        "(args: database, table or cmd, save_df, model); to write frame 'PLAYERS_FINAL' to "
        "PostgreSQL use save_sql (connection, table, df_name, mode)",
        f"error: {where(53, 'reconcile', 9)}: malformed args for task 'recon': left_df: field "
        "required; right_df: field required; save_neq_rows: field required; unknown key 'df' "
        "(keys: left_df, on, right_df, save_neq_rows)",
        f"error: {where(56, 'notify', 10)}: malformed args for task 'discord': args: field "
        "required; unknown key 'channel' (keys: args, backoff, job_type, level, max_rows, "
        "retries, task_type, timeout, webhook); unknown key 'message' (keys: args, backoff, "
        "job_type, level, max_rows, retries, task_type, timeout, webhook)",
        "error: transform.yml:13:7, transform 'shape_players' (used by pipeline 'players', stage "
        "'listify' (#7)): step 1 (select): column 'teams': unknown action 'to_list' (valid "
        "actions: concat, format)",
        "the configuration has 7 errors",
    ]


def test_validate_accepts_the_examples():
    result = capport("validate", "-c", str(EXAMPLE_CONFIG))
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == f"valid: 7 pipelines, 38 stages in {EXAMPLE_CONFIG}\n"


def test_validate_prints_warnings_and_still_passes(write_config, capsys):
    write_config(
        {
            "p.yml": "pipeline:\n  p:\n    - {label: a, task: load_csv, args: "
            "{filepath: a.csv, df_name: A}}\n"
        }
    )
    assert main(["validate", "-c", "config"]) == 0
    _, err = capsys.readouterr()
    assert err == (
        "warning: config/p.yml:3, pipeline 'p', stage 'a' (#1): frame 'A' is written but no "
        "later stage reads it\n"
    )


def test_bad_yaml_exits_2_with_line_and_column(write_config, capsys):
    write_config({"p.yml": "pipeline:\n  p: [\n"})
    assert main(["validate", "-c", "config"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: config/p.yml:3:1: ")
    assert "Traceback" not in err


def test_missing_config_dir_exits_2(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["validate", "-c", "nowhere"]) == 2
    assert capsys.readouterr().err.startswith("error: ")


def test_usage_error_exits_2():
    result = capport("run", "-c", "config")
    assert result.returncode == 2
    assert "the following arguments are required: -p/--pipeline" in result.stderr


# --- run ------------------------------------------------------------------------------------


def test_run_shows_progress_and_prints_results(tmp_path):
    result = capport("run", "-c", str(EXAMPLE_CONFIG), "-p", "label_teams", "-o", str(tmp_path))
    assert result.returncode == 0, result.stderr
    progress = [line for line in result.stderr.splitlines() if line.startswith("[capport] ")]
    assert progress == [
        "[capport] running pipeline 'label_teams' (4 stages), mode sync_lazy, executor in_process",
        "[capport] load_teams: started",
        *progress[2:3],
        "[capport] label_teams: started",
        *progress[4:5],
        "[capport] drop_ids: started",
        *progress[6:7],
        "[capport] save_teams: started",
        *progress[8:9],
    ]
    assert all(line.endswith("s") and ": done in " in line for line in progress[2::2])
    assert result.stdout.startswith("TEAMS: shape (4, 2)\n")
    assert "│ Maple Leafs (TOR) ┆ Toronto  │" in result.stdout
    assert_frame_equal(
        pl.read_csv(tmp_path / "label_teams" / "teams.csv"),
        pl.DataFrame(
            {
                "label": ["Devils (NJD)", "Bruins (BOS)", "Maple Leafs (TOR)", "Oilers (EDM)"],
                "city": ["Newark", "Boston", "Toronto", "Edmonton"],
            }
        ),
    )


FAILING = {
    "data/people.csv": "id,name\n1,Ann\nx,Bob\n",
    "model.yml": "model:\n  person:\n    id: uint64\n    name: str\n",
    "p.yml": """
        pipeline:
          people:
            - label: load
              task: load_csv
              args: { filepath: $CONFIG_DIR/data/people.csv, df_name: PEOPLE, model: person }
            - label: save
              task: save_csv
              args: { filepath: $OUTPUT_DIR/people.csv, df_name: PEOPLE }
    """,
}


@pytest.mark.parametrize(
    ("mode", "options", "failing_stage"),
    [
        # Lazy: the cast runs when the sink collects, yet the load that applied the model is
        # named with its file, with or without the preview (it comes from the sink's pass).
        ("sync_lazy", ["--no-preview"], "load' (#1)"),
        ("sync_lazy", [], "load' (#1)"),
        ("sync_eager", [], "load' (#1)"),
        ("async_eager", ["--no-preview"], "load' (#1)"),
        # Multiprocess: the lazy frame is sunk to Parquet after its stage, still named.
        ("async_lazy", ["--no-preview", "--executor", "multiprocess"], "load' (#1)"),
    ],
)
def test_failed_cast_exits_1_names_model_column_and_value_and_writes_nothing(
    write_config, tmp_path, mode, options, failing_stage
):
    config = write_config(FAILING)
    out = tmp_path / "out"
    result = capport(
        "run",
        "-c",
        str(config),
        "-p",
        "people",
        "-o",
        str(out),
        "--mode",
        mode,
        *options,
        cwd=tmp_path,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert errors == [
        "error: config/p.yml:3, pipeline 'people', "
        f"stage '{failing_stage}: load_csv: {config / 'data' / 'people.csv'}: model 'person',"
        " column 'id': cannot cast value 'x' to uint64 (at least 1 value failed)"
    ]
    assert result.stderr.endswith("run failed\n")
    assert not out.exists() or list(out.rglob("*")) == []


def test_missing_input_file_is_a_located_run_failure(write_config, tmp_path):
    config = write_config(
        {
            "p.yml": "pipeline:\n  p:\n    - {label: load, task: load_csv, args: "
            "{filepath: nowhere.csv, df_name: A}}\n"
            "    - {label: save, task: save_csv, args: {filepath: o.csv, df_name: A}}\n"
        }
    )
    result = capport("run", "-c", str(config), "-p", "p", cwd=tmp_path)
    assert result.returncode == 1
    assert (
        f"error: config/p.yml:3, pipeline 'p', stage 'load' (#1): load_csv: no such file "
        f"{tmp_path / 'nowhere.csv'}\n" in result.stderr
    )


def test_debug_shows_the_traceback(write_config, tmp_path):
    config = write_config({"p.yml": "pipeline:\n  p:\n    - { label: a, task: nope }\n"})
    assert "Traceback" not in capport("validate", "-c", str(config)).stderr
    debug = capport("--debug", "validate", "-c", str(config))
    assert debug.returncode != 0 and "Traceback" in debug.stderr


def test_run_with_invalid_config_exits_2(write_config, capsys):
    write_config({"p.yml": "pipeline:\n  p:\n    - { label: a, task: nope }\n"})
    assert main(["run", "-c", "config", "-p", "p"]) == 2
    assert capsys.readouterr().err.startswith("error: config/p.yml:3, pipeline 'p', stage 'a'")


def test_run_unknown_pipeline_exits_2(capsys):
    assert main(["run", "-c", str(EXAMPLE_CONFIG), "-p", "enrich"]) == 2
    err = capsys.readouterr().err
    assert "unknown pipeline 'enrich'" in err


def test_bad_reference_date_exits_2(capsys, tmp_path):
    code = main(
        [
            "run",
            "-c",
            str(EXAMPLE_CONFIG),
            "-p",
            "label_teams",
            "-d",
            "someday",
            "-o",
            str(tmp_path),
        ]
    )
    assert code == 2
    assert "-d 'someday' is not an ISO 8601 date" in capsys.readouterr().err


# --- ordinary mistakes: each a located line and exit 2, never "unexpected" ------------------

TASKS_MODULE = """
import polars as pl

from capport_dagster import task


@task("double", reads=lambda a: [a["input"]], writes=lambda a: [a["save_df"]])
def double(args, frames, ctx):
    return {args["save_df"]: frames[args["input"]].with_columns(pl.col("x") * 2)}
"""


def custom_config(write_config, task: str = "double") -> Path:
    return write_config(
        {
            "data/a.csv": "x\n1\n2\n",
            "p.yml": f"""
                pipeline:
                  p:
                    - {{ label: load, task: load_csv, args: {{ filepath: $CONFIG_DIR/data/a.csv,
                        df_name: A }} }}
                    - {{ label: twice, task: {task}, args: {{ input: A, save_df: B }} }}
                    - {{ label: save, task: save_csv, args: {{ filepath: $OUTPUT_DIR/b.csv,
                        df_name: B }} }}
            """,
        }
    )


BUILTIN_TASKS = builtin_tasks()


@pytest.mark.parametrize("executor", ["in_process", "multiprocess"])
def test_a_task_module_in_the_working_directory_is_found(write_config, tmp_path, executor):
    """`capport -m my_tasks` with my_tasks.py beside the user, as `dagster -m` finds it: the
    installed script, whose sys.path does not hold the working directory by itself."""
    config = custom_config(write_config)
    (tmp_path / "my_tasks.py").write_text(TASKS_MODULE)
    valid = capport("validate", "-c", str(config), "-m", "my_tasks", cwd=tmp_path, script=True)
    assert (valid.returncode, valid.stderr) == (0, "")
    run = capport(
        *("run", "-c", "config", "-p", "p", "-m", "my_tasks", "-o", "out"),
        *("--executor", executor),
        cwd=tmp_path,
        script=True,
    )
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "out" / "b.csv").read_text() == "x\n2\n4\n"


def test_a_task_module_that_raises_is_named_with_its_error_in_one_line(write_config, tmp_path):
    config = custom_config(write_config)
    (tmp_path / "broken.py").write_text("import polars\n\nRATE = 1 / 0\n")
    result = capport("validate", "-c", str(config), "-m", "broken", cwd=tmp_path, script=True)
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == (
        "error: broken.py:3: -m broken: importing the module raised ZeroDivisionError: division "
        "by zero (run with --debug for the traceback)\n"
    )
    debug = capport("--debug", "run", "-c", "config", "-p", "p", "-m", "broken", cwd=tmp_path)
    assert debug.returncode != 0
    assert 'File "' + str(tmp_path / "broken.py") + '", line 3' in debug.stderr
    assert debug.stderr.rstrip().splitlines()[-1] == (
        "capport_dagster.errors.ConfigError: broken.py:3: -m broken: importing the module raised "
        "ZeroDivisionError: division by zero"
    )


def test_a_task_module_that_does_not_exist_is_a_usage_error(write_config, tmp_path, capsys):
    config = custom_config(write_config)
    (tmp_path / "my_tasks.py").write_text(TASKS_MODULE)
    assert main(["run", "-c", str(config), "-p", "p", "-m", "my_taks"]) == 2
    assert capsys.readouterr().err == (
        f"error: -m my_taks: no module named 'my_taks' in the working directory ({tmp_path}) or "
        "on the Python path - did you mean 'my_tasks'?\n"
    )


def test_an_unknown_task_hints_at_the_module_when_none_was_given(write_config, tmp_path):
    config = custom_config(write_config)
    result = capport("validate", "-c", str(config), cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "error: config/p.yml:5, pipeline 'p', stage 'twice' (#2): unknown task 'double' (tasks: "
        f"{BUILTIN_TASKS}) - if it is your own task, name the module that registers it: "
        "-m MODULE (capport) or $CAPPORT_TASK_MODULES (Dagster)",
        "the configuration has 1 error",
    ]


def test_an_unknown_task_lists_the_custom_tasks_when_a_module_was_given(write_config, tmp_path):
    config = custom_config(write_config, task="doubel")
    (tmp_path / "my_tasks.py").write_text(TASKS_MODULE)
    result = capport("validate", "-c", str(config), "-m", "my_tasks", cwd=tmp_path, script=True)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "error: config/p.yml:5, pipeline 'p', stage 'twice' (#2): unknown task 'doubel' - did you "
        f"mean 'double'? (custom tasks: double; built-in tasks: {BUILTIN_TASKS})",
        "the configuration has 1 error",
    ]


def test_a_config_directory_that_cannot_be_listed_exits_2(tmp_path, capsys, monkeypatch):
    """Root-proof: a symbolic link loop cannot be listed by anyone."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "config").symlink_to("config")
    assert main(["validate", "-c", "config"]) == 2
    assert main(["run", "-c", "config", "-p", "p"]) == 2
    assert (
        capsys.readouterr().err
        == ("error: config: cannot read the config directory: too many levels of symbolic links\n")
        * 2
    )


def test_dangling_and_looping_config_files_are_errors_at_their_names(write_config, capsys):
    config = write_config(
        {"p.yml": "pipeline:\n  p:\n    - { label: a, task: noop }\n", "m.yml": "model: {}\n"}
    )
    (config / "b.yml").symlink_to("gone.yml")
    (config / "c.yaml").symlink_to("c.yaml")
    (config / "d.yml").symlink_to("m.yml")  # a link to a file is read (clashes with m.yml: none)
    expected = [
        "error: config/b.yml: the symbolic link points to gone.yml, which does not exist: fix the "
        "link or remove it",
        "error: config/c.yaml: the symbolic link loops (c.yaml -> c.yaml -> ...): point it at a "
        "YAML file or remove it",
        "the configuration has 2 errors",
    ]
    assert main(["validate", "-c", "config"]) == 2
    assert capsys.readouterr().err.splitlines() == expected
    # `run` takes the config's text for the run first: it still says every problem at once.
    assert main(["run", "-c", "config", "-p", "p"]) == 2
    assert capsys.readouterr().err.splitlines() == expected


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({}, "the config directory has no YAML file (*.yml, *.yaml): nothing to run"),
        (
            {"m.yml": "model: {}\n", "notes.txt": "pipeline: {}"},
            "no file in the config directory has a `pipeline:` section: nothing to run",
        ),
    ],
    ids=["no YAML file", "no pipeline"],
)
def test_a_config_with_nothing_to_run(write_config, capsys, files, message):
    write_config(files)
    assert main(["validate", "-c", "config"]) == 0
    out, err = capsys.readouterr()
    assert err == f"warning: config: {message}\n"
    assert out.startswith("valid: 0 pipeline")
    assert main(["run", "-c", "config", "-p", "p"]) == 2
    assert capsys.readouterr() == ("", f"error: config: {message}\n")


@pytest.mark.parametrize(
    ("home", "message"),
    [
        (
            "dagster_home",
            "DAGSTER_HOME=dagster_home is relative: Dagster needs an absolute path (it stores the "
            "runs): export DAGSTER_HOME={tmp}/dagster_home, or unset it for a run that keeps no "
            "history",
        ),
        (
            "{tmp}/nowhere",
            "DAGSTER_HOME={tmp}/nowhere does not exist: Dagster needs an existing directory (it "
            "stores the runs): mkdir -p {tmp}/nowhere, or unset it for a run that keeps no history",
        ),
        (
            "{tmp}/config/p.yml",
            "DAGSTER_HOME={tmp}/config/p.yml is not a directory (it stores the runs): point it at "
            "a directory, or unset it for a run that keeps no history",
        ),
    ],
    ids=["relative", "missing", "a file"],
)
def test_a_dagster_home_dagster_cannot_use_exits_2_before_anything_runs(
    write_config, tmp_path, capsys, monkeypatch, home, message
):
    write_config({"p.yml": "pipeline:\n  p:\n    - { label: a, task: noop }\n"})
    (tmp_path / "dagster_home").mkdir()  # exists, but relative is still refused
    monkeypatch.setenv("DAGSTER_HOME", home.format(tmp=tmp_path))
    assert main(["run", "-c", "config", "-p", "p", "-o", "out"]) == 2
    assert capsys.readouterr() == ("", f"error: {message.format(tmp=tmp_path)}\n")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("output", "message"),
    [
        ("out.csv", "-o {tmp}/out.csv is a file"),
        ("out.csv/sub", "-o {tmp}/out.csv/sub is inside {tmp}/out.csv, a file"),
    ],
)
def test_an_output_directory_that_is_a_file_exits_2_before_any_stage(
    write_config, tmp_path, capsys, output, message
):
    config = write_config(FAILING)
    (tmp_path / "out.csv").write_text("keep me\n")
    assert main(["run", "-c", str(config), "-p", "people", "-o", output]) == 2
    assert capsys.readouterr() == (
        "",
        f"error: {message.format(tmp=tmp_path)}: $OUTPUT_DIR must be a directory (it is created "
        "if missing)\n",
    )
    assert (tmp_path / "out.csv").read_text() == "keep me\n"


def test_dagster_debug_lines_show_only_with_debug(tmp_path):
    """The multiprocess executor's stage processes log through the instance of DAGSTER_HOME,
    at DEBUG unless its dagster.yaml says otherwise: none of it reaches the terminal."""
    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    args = ("run", "-c", str(EXAMPLE_CONFIG), "-p", "label_teams", "-o", str(tmp_path / "o"))
    options = ("--executor", "multiprocess", "--no-preview")
    quiet = capport(*args, *options, cwd=tmp_path, DAGSTER_HOME=str(home))
    assert quiet.returncode == 0, quiet.stderr
    lines = quiet.stderr.splitlines()
    # (The whole stderr on failure: a CI run once saw 8 lines, pytest's repr hid which was gone.)
    assert len(lines) == 9 and all(line.startswith("[capport] ") for line in lines), quiet.stderr
    loud = capport("--debug", *args, *options, cwd=tmp_path, DAGSTER_HOME=str(home))
    assert loud.returncode == 0, loud.stderr
    assert " - DEBUG - label_teams - " in loud.stderr


# --- graph ----------------------------------------------------------------------------------


def test_graph_formats(capsys):
    assert (
        main(["graph", "-c", str(EXAMPLE_CONFIG), "-p", "label_teams", "--format", "mermaid"]) == 0
    )
    assert capsys.readouterr().out == (
        "flowchart LR\n"
        '  s0["load_teams<br/><i>load_csv</i>"]\n'
        '  s1["label_teams<br/><i>transform</i>"]\n'
        '  s2["drop_ids<br/><i>transform</i>"]\n'
        '  s3["save_teams<br/><i>save_csv</i>"]\n'
        "  s0 -->|TEAMS| s1\n"
        "  s1 -->|TEAMS| s2\n"
        "  s2 -->|TEAMS| s3\n"
    )
    assert main(["graph", "-c", str(EXAMPLE_CONFIG), "-p", "label_teams"]) == 0
    text = capsys.readouterr().out
    assert "  [3] drop_ids (transform)\n      reads  TEAMS <- label_teams\n" in text
    assert main(["graph", "-c", str(EXAMPLE_CONFIG), "-p", "label_teams", "--format", "dot"]) == 0
    assert '  s1 -> s2 [label="TEAMS"];\n' in capsys.readouterr().out


def test_reference_date_and_runner_reach_the_run(write_config, tmp_path):
    config = write_config(
        {
            "data/a.csv": "x\n1\n",
            "p.yml": """
                pipeline:
                  p:
                    - { label: load, task: load_csv, args: { filepath: $CONFIG_DIR/data/a.csv,
                        df_name: A } }
                    - { label: save, task: save_csv, args: { filepath:
                        "$OUTPUT_DIR/$REF_DATE/a.csv", df_name: A } }
            """,
            "r.yml": """
                runner:
                  eager:
                    run_with: async_eager
                    pipelines: [p]
                    schedule: { every: 1d, timezone: Asia/Singapore }
            """,
        }
    )
    result = capport(
        "run",
        "-c",
        str(config),
        "-p",
        "p",
        "-r",
        "eager",
        "-d",
        "2026-01-05T23:30:00",
        "-o",
        "out",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert "mode async_eager, executor in_process" in result.stderr
    assert (tmp_path / "out" / "2026-01-05" / "a.csv").read_text() == "x\n1\n"


def test_unknown_runner_exits_2(capsys, tmp_path):
    code = main(
        [
            "run",
            "-c",
            str(EXAMPLE_CONFIG),
            "-p",
            "label_teams",
            "-r",
            "nightly",
            "-o",
            str(tmp_path),
        ]
    )
    assert code == 2
    assert "unknown runner 'nightly' (runners: daily, default, weekly)" in capsys.readouterr().err


# --- output nobody reads --------------------------------------------------------------------


def start(*args: str, cwd: Path, **popen: object) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"}
    return subprocess.Popen(
        [sys.executable, "-m", "capport_dagster.cli", *args],
        text=True,
        cwd=cwd,
        env=env,
        **popen,  # type: ignore[call-overload]
    )


def read_one_line_and_close(process: subprocess.Popen[str]) -> str:
    """What `| head -1` does: read a line, close the pipe, leave the writer to find out."""
    assert process.stdout is not None
    try:
        line = process.stdout.readline()
    finally:
        process.stdout.close()
    try:
        process.wait(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)
    return line


@pytest.mark.parametrize(
    "options",
    [["--mode", "sync_lazy"], ["--mode", "async_eager", "--executor", "multiprocess"]],
    ids=["in_process", "multiprocess"],
)
def test_a_closed_pipe_loses_the_output_not_the_run(tmp_path, options):
    """`capport run ... 2>&1 | head -1`: progress and results cannot be written after the first
    line; the run still completes, writes its file, and exits 0 (the run succeeded)."""
    out = tmp_path / "out"
    args = ("run", "-c", str(EXAMPLE_CONFIG), "-p", "label_teams", "-o", str(out), *options)
    process = start(*args, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    first = read_one_line_and_close(process)
    assert first.startswith("[capport] running pipeline 'label_teams' (4 stages)")
    assert process.returncode == 0
    saved = pl.read_csv(out / "label_teams" / "teams.csv")
    assert saved["label"].to_list() == [
        "Devils (NJD)",
        "Bruins (BOS)",
        "Maple Leafs (TOR)",
        "Oilers (EDM)",
    ]


def test_a_closed_pipe_still_exits_1_when_the_run_fails(write_config, tmp_path):
    config = write_config(FAILING)
    process = start(
        "run",
        "-c",
        str(config),
        "-p",
        "people",
        "-o",
        str(tmp_path / "out"),
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    process.stdout = process.stderr  # read and close stderr, the stream the errors go to
    assert read_one_line_and_close(process).startswith("[capport] running pipeline 'people'")
    assert process.returncode == 1


def test_a_closed_stderr_descriptor_keeps_progress_off_stdout(tmp_path):
    """`capport run ... 2>&-`: Python starts without a stderr; progress must not fall through to
    stdout (print's fallback), only the results go there."""
    out = tmp_path / "out"
    process = start(
        *("run", "-c", str(EXAMPLE_CONFIG), "-p", "label_teams", "-o", str(out)),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        preexec_fn=lambda: os.close(2),
    )
    stdout, _ = process.communicate(timeout=120)
    assert process.returncode == 0
    assert stdout.startswith("TEAMS: shape ")
    assert "[capport]" not in stdout
    assert (out / "label_teams" / "teams.csv").exists()


class ClosedPipe(io.StringIO):
    def write(self, text: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")


@pytest.mark.parametrize("stderr", [io.StringIO, ClosedPipe])
def test_a_progress_line_that_cannot_be_written_is_dropped(monkeypatch, stderr):
    """Multiprocess stages print their progress from their own processes, where `capport run`'s
    forgiving stderr does not reach: the handler itself must not raise."""
    stream = stderr()
    monkeypatch.setattr(sys, "stderr", stream)
    record = logging.LogRecord("capport.progress", logging.INFO, __file__, 1, "", None, None)
    record.dagster_event = SimpleNamespace(
        event_type_value="STEP_START", step_key="load", event_specific_data=None
    )
    _ProgressHandler().emit(record)
    if stderr is io.StringIO:
        assert stream.getvalue() == "[capport] load: started\n"


# --- names Dagster refuses ---------------------------------------------------------------------


def test_pipelines_with_names_dagster_refuses_validate_draw_and_run(write_config, tmp_path):
    from tests.test_names import ODD_NAMES

    config = write_config({"p.yml": ODD_NAMES})
    (tmp_path / "in.csv").write_text("id,name\n1,Ann\n2,Bob\n")  # relative to the run
    valid = capport("validate", "-c", str(config), cwd=tmp_path)
    assert valid.returncode == 0, valid.stderr
    assert valid.stdout.splitlines() == [
        f"valid: 2 pipelines, 5 stages in {config}",
        "names in Dagster, where they differ:",
        "  pipeline 'meta' is Dagster job 'meta_'",
        "    stage 'load data' (#1) is op 'load_data'",
        "    stage 'fetch-players' (#2) is op 'fetch_players'",
        "    stage 'données' (#3) is op 'donnees'",
        "    frame 'input' is op input/output 'input_'",
        "    frame 'class' is op input/output 'class_'",
        "  pipeline 'nhl-daily' is Dagster job 'nhl_daily'",
        "    stage 'load.data' (#1) is op 'load_data'",
        "    stage 'context' (#2) is op 'context_'",
        "    frame '日本' is op input/output 'u65e5u672c'",
    ]
    graph = capport("graph", "-c", str(config), "-p", "nhl-daily", cwd=tmp_path)
    assert graph.stdout.splitlines()[:2] == [
        "pipeline nhl-daily (2 stages, Dagster job nhl_daily)",
        "  [1] load.data (load_csv) [op load_data]",
    ]
    for mode in ("sync_lazy", "async_eager"):
        run = capport("run", "-c", str(config), "-p", "nhl-daily", "--mode", mode, cwd=tmp_path)
        assert run.returncode == 0, run.stderr
        assert run.stdout.startswith("日本: shape (2, 2)\n")
        assert (tmp_path / "output" / "n.csv").read_text() == "id,name\n1,Ann\n2,Bob\n"


# --- a run carries its config: later stages never see edits made while it runs ---------------

EDITING_TASKS = """
from capport_dagster import task


@task("edit_config", reads=lambda a: [a["input"]], writes=lambda a: [a["save_df"]])
def edit_config(args, frames, ctx):
    # While the run is in flight its config is edited (the save goes elsewhere) and moved away.
    config = ctx.path(args["config"])
    pipeline = config / "p.yml"
    pipeline.write_text(pipeline.read_text().replace("b.csv", "edited.csv"))
    config.rename(config.with_name("config_moved"))
    return {args["save_df"]: frames[args["input"]]}
"""


def test_a_runs_later_stages_use_the_config_it_was_launched_with(write_config, tmp_path):
    """Each stage of a multiprocess run is a new process that rebuilds the job: it rebuilds it
    from the config text the run carries, not from the directory, edited and gone by then."""
    config = write_config(
        {
            "data/a.csv": "x\n1\n2\n",
            "p.yml": """
                pipeline:
                  p:
                    - { label: load, task: load_csv, args: { filepath: $CONFIG_DIR/data/a.csv,
                        df_name: A } }
                    - { label: edit, task: edit_config, args: { input: A, save_df: B,
                        config: $CONFIG_DIR } }
                    - { label: save, task: save_csv, args: { filepath: $OUTPUT_DIR/b.csv,
                        df_name: B } }
            """,
        }
    )
    (tmp_path / "editing.py").write_text(EDITING_TASKS)
    run = capport(
        *("run", "-c", str(config), "-p", "p", "-m", "editing", "-o", "out"),
        *("--executor", "multiprocess"),
        cwd=tmp_path,
        script=True,
    )
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "out" / "b.csv").read_text() == "x\n1\n2\n"
    assert not (tmp_path / "out" / "edited.csv").exists()
    assert not config.exists()
    assert "edited.csv" in (tmp_path / "config_moved" / "p.yml").read_text()
