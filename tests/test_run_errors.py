"""`capport run` failing on data, files and tasks: one located line each, and the exit code.

Run failures exit 1, config errors 2 (the rule of `capport_dagster/errors.py`). The messages
themselves are tested in every mode beside their modules (tests/test_tasks.py,
tests/test_runtime.py); here they go through Dagster and the CLI, in-process and in processes.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from capport_dagster.cli import main
from tests.conftest import capport

BAD_CSV = {
    "a.csv": "a,b\n1,x\n",
    "b.csv": "a,b\n1,x\n2,y,z\n3,w\n",
    "p.yml": """
        pipeline:
          p:
            - label: load
              task: load_csv
              args:
                - { filepath: $CONFIG_DIR/a.csv, df_name: A }
                - { filepath: $CONFIG_DIR/b.csv, df_name: B }
            - { label: pick, task: transform, args: { name: keep, input: B, save_df: K } }
            - label: save
              task: save_csv
              args:
                - { filepath: $OUTPUT_DIR/a.csv, df_name: A }
                - { filepath: $OUTPUT_DIR/k.csv, df_name: K }
        transform:
          keep:
            - select: { a: null, b: null }
    """,
}


def run_errors(config: Path, *args: str, cwd: Path, **env: str) -> tuple[int, list[str], str]:
    """`capport run` in a subprocess (real exit code and stderr, no DAGSTER_HOME): its exit
    code, its `error:` lines and its stderr."""
    result = capport("run", "-c", str(config), *args, cwd=cwd, **env)
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert "Traceback" not in result.stderr
    return result.returncode, errors, result.stderr


@pytest.mark.parametrize("executor", ["in_process", "multiprocess"])
@pytest.mark.parametrize("mode", ["sync_lazy", "async_lazy", "sync_eager", "async_eager"])
def test_a_bad_csv_fails_the_run_at_its_load_naming_file_and_line(
    write_config, tmp_path, mode, executor
):
    """Lazy in-process runs read the file in the save, two stages later; multiprocess ones when
    the load's frame is persisted; eager ones in the load: the same line in every case."""
    config = write_config(BAD_CSV)
    out = tmp_path / "out"
    code, errors, stderr = run_errors(
        config, "-p", "p", "-o", str(out), "--mode", mode, "--executor", executor, cwd=tmp_path
    )
    assert (code, errors) == (
        1,
        [
            f"error: config/p.yml:3, pipeline 'p', stage 'load' (#1): load_csv: "
            f"{config / 'b.csv'}: line 3 has 3 fields but the header has 2 (quote a field that "
            "holds a comma, or fix the row)"
        ],
    )
    assert stderr.endswith("run failed\n")
    assert not (out / "k.csv").exists()


SAVE = """
    pipeline:
      p:
        - { label: load, task: load_csv, args: { filepath: $CONFIG_DIR/a.csv, df_name: A } }
        - { label: save, task: save_csv, args: { filepath: PATH, df_name: A } }
"""


@pytest.mark.parametrize("command", ["validate", "run"])
def test_a_filepath_ending_in_a_slash_is_a_config_error(write_config, capsys, command):
    config = write_config({"a.csv": "a\n1\n", "p.yml": SAVE.replace("PATH", "$OUTPUT_DIR/sub/")})
    args = ["-p", "p"] if command == "run" else []
    assert main([command, "-c", str(config), *args]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error")]
    assert errors == [
        "error: config/p.yml:4, pipeline 'p', stage 'save' (#2): task 'save_csv': filepath "
        "'$OUTPUT_DIR/sub/' names a directory, not a file (add the file's name: "
        "'$OUTPUT_DIR/sub/name.csv')"
    ]
    assert not Path("out").exists()


def test_a_save_to_a_directory_fails_the_run_naming_it(write_config, tmp_path):
    config = write_config({"a.csv": "a\n1\n", "p.yml": SAVE.replace("PATH", "$OUTPUT_DIR/sub")})
    (tmp_path / "out" / "sub").mkdir(parents=True)
    code, errors, _ = run_errors(config, "-p", "p", "-o", "out", cwd=tmp_path)
    assert (code, errors) == (
        1,
        [
            "error: config/p.yml:4, pipeline 'p', stage 'save' (#2): save_csv: cannot write "
            f"{tmp_path / 'out' / 'sub'}: it is a directory (give filepath the file's name too)"
        ],
    )
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["sub"]


TASKS = """
    import polars as pl
    from capport_dagster import task

    @task("listed", reads=lambda a: [], writes=lambda a: ["X"])
    def listed(args, frames, ctx):
        return {"X": [{"a": 1}]}

    @task("nested", reads=lambda a: [], writes=lambda a: ["X"])
    def nested(args, frames, ctx):
        return {"X": pl.DataFrame({"id": [1], "team": [{"name": "red", "size": 3}]})}
"""


@pytest.mark.parametrize(
    ("task", "line", "stage", "said"),
    [
        (
            "listed",
            3,
            "make' (#1)",
            "task 'listed' returned a list of 1 item (dict) for frame 'X', not a polars "
            "DataFrame or LazyFrame (return {'X': a frame})",
        ),
        (
            "nested",
            4,
            "save' (#2)",
            "save_csv: cannot write frame 'X' to {out}: column 'team' is a struct (fields: name, "
            "size), and a CSV file holds no nested values: select its fields as columns of their "
            "own (team.name, team.size), or join them into one text column with a select's "
            "'format' or 'concat' action",
        ),
    ],
)
def test_a_custom_tasks_wrong_result_fails_the_run_at_its_stage(
    write_config, tmp_path, task, line, stage, said
):
    (tmp_path / "my_tasks.py").write_text(textwrap.dedent(TASKS))
    config = write_config(
        {
            "p.yml": f"""
                pipeline:
                  p:
                    - {{ label: make, task: {task} }}
                    - {{ label: save, task: save_csv, args: {{ filepath: x.csv, df_name: X }} }}
            """
        }
    )
    code, errors, _ = run_errors(
        config, "-p", "p", "-m", "my_tasks", cwd=tmp_path, PYTHONPATH=str(tmp_path)
    )
    shown = said.replace("{out}", str(tmp_path / "x.csv"))
    assert (code, errors) == (
        1,
        [f"error: config/p.yml:{line}, pipeline 'p', stage '{stage}: {shown}"],
    )
    assert not (tmp_path / "x.csv").exists()
