"""Validation before running: schemas flow stage by stage at `validate` time, and every transform
step is checked against its input's schema with the message a run would give, located at the
step's line and naming the stages whose inputs show the mistake.

Schemas come from loads with a model, from files already there that no earlier stage writes
(CSV header, NDJSON, Parquet footer), from `load_sql` with a model, and through transforms.
Where an input's schema is unknown (a custom task, a file not there yet) nothing is checked.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest

from capport_dagster.cli import main
from capport_dagster.core.builtin_tasks import DEFAULT_REGISTRY
from capport_dagster.core.graph import load_project
from capport_dagster.core.modes import RunMode
from capport_dagster.core.registry import TaskSpec
from capport_dagster.core.transforms import parse_transform
from capport_dagster.errors import Location, TaskError, ValidationError
from tests.conftest import capport, run_stages

WriteConfig = Callable[..., Path]


def validate(config: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    """`capport validate -c config`: its exit code and every line it prints."""
    code = main(["validate", "-c", str(config)])
    return code, capsys.readouterr().err.splitlines()


MODEL = """
model:
  player:
    name: str
    goals: int64
    team: str
"""


def test_an_unknown_column_after_a_load_with_a_model_is_found_at_its_step(
    write_config: WriteConfig, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(
        {
            "p.yml": """
            pipeline:
              p:
                - { label: load, task: load_csv, args: { filepath: later.csv, df_name: P,
                    model: player } }
                - { label: pick, task: transform, args: { name: pick, input: P, save_df: Q } }
                - { label: save, task: save_csv, args: { filepath: out.csv, df_name: Q } }
            """,
            "m.yml": MODEL,
            "t.yml": """
            transform:
              pick:
                - select: { name: null }
                - drop: { name: false }
                - select: { name: null, goal: gols }
            """,
        }
    )
    assert validate(config, capsys) == (
        2,
        [
            "error: config/t.yml:5:7, transform 'pick' (used by pipeline 'p', stage 'pick' (#2)):"
            " step 3 (select): column 'gols' not found (columns: name)",
            "the configuration has 1 error",
        ],
    )


def test_the_did_you_mean_of_a_model_column(
    write_config: WriteConfig, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(
        {
            "p.yml": """
            pipeline:
              p:
                - { label: load, task: load_csv, args: { filepath: later.csv, df_name: P,
                    model: player } }
                - { label: pick, task: transform, args: { name: pick, input: P, save_df: Q } }
                - { label: save, task: save_csv, args: { filepath: out.csv, df_name: Q } }
            transform:
              pick:
                - drop: { gaols: true }
            """,
            "m.yml": MODEL,
        }
    )
    assert validate(config, capsys) == (
        2,
        [
            "error: config/p.yml:9:7, transform 'pick' (used by pipeline 'p', stage 'pick' (#2)):"
            " step 1 (drop): column 'gaols' not found - did you mean 'goals'? (columns: name,"
            " goals, team)",
            "the configuration has 1 error",
        ],
    )


LOAD_AND_PICK = """
pipeline:
  p:
    - { label: load, task: LOADER, args: { filepath: FILE, df_name: P } }
    - { label: pick, task: transform, args: { name: pick, input: P, save_df: Q } }
    - { label: save, task: save_csv, args: { filepath: out.csv, df_name: Q } }
transform:
  pick:
    - select: { player: nme }
"""

PICK_ERROR = (
    "error: config/p.yml:8:7, transform 'pick' (used by pipeline 'p', stage 'pick' (#2)): step 1"
    " (select): column 'nme' not found - did you mean 'name'? (columns: COLUMNS)"
)


def test_a_csv_header_gives_the_schema_without_reading_the_whole_file(
    write_config: WriteConfig, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # Row 300 has a field too many: reading the whole file would fail (and leave the schema
    # unknown, so nothing would be found); the header and the first rows are enough.
    rows = [f"p{i},{i}" for i in range(300)] + ["bad,1,extra"]
    (tmp_path / "players.csv").write_text("\n".join(["name,goals", *rows]) + "\n")
    text = LOAD_AND_PICK.replace("LOADER", "load_csv").replace("FILE", "players.csv")
    config = write_config({"p.yml": text})
    assert validate(config, capsys) == (
        2,
        [PICK_ERROR.replace("COLUMNS", "name, goals"), "the configuration has 1 error"],
    )


def test_an_ndjson_file_and_a_parquet_footer_give_the_schema(
    write_config: WriteConfig, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    (tmp_path / "players.json").write_text('{"name": "Ann", "team": "a"}\n')
    pl.DataFrame({"id": [1], "name": ["Ann"]}).write_parquet(tmp_path / "players.parquet")
    for loader, file, columns in (
        ("load_json", "players.json", "name, team"),
        ("load_parquet", "players.parquet", "id, name"),
    ):
        config = write_config(
            {"p.yml": LOAD_AND_PICK.replace("LOADER", loader).replace("FILE", file)}
        )
        assert validate(config, capsys) == (
            2,
            [PICK_ERROR.replace("COLUMNS", columns), "the configuration has 1 error"],
        )


@pytest.mark.parametrize(
    ("loader", "file", "content"),
    [
        ("load_csv", "players.csv", None),  # not there yet: made before the run, or by it
        ("load_csv", "players.csv", ""),  # empty: Polars cannot read a header
        ("load_json", "players.json", '[{"name": "Ann"}]'),  # an array: no scan, not read whole
        ("load_parquet", "players.parquet", "name\nAnn\n"),  # not Parquet
        ("load_json", "players.json", "not json"),
    ],
)
def test_a_file_that_cannot_be_read_now_is_unknown_and_checks_nothing(
    loader: str,
    file: str,
    content: str | None,
    write_config: WriteConfig,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    if content is not None:
        (tmp_path / file).write_text(content)
    config = write_config({"p.yml": LOAD_AND_PICK.replace("LOADER", loader).replace("FILE", file)})
    assert validate(config, capsys) == (0, [])


def test_a_file_an_earlier_stage_writes_is_unknown(
    write_config: WriteConfig, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # players.csv is there now with other columns, but the run reads what stage 'make' writes.
    (tmp_path / "players.csv").write_text("id,team\n1,a\n")
    config = write_config(
        {
            "p.yml": """
            pipeline:
              p:
                - { label: read, task: load_csv, args: { filepath: raw.csv, df_name: R } }
                - { label: make, task: save_csv, args: { filepath: players.csv, df_name: R } }
                - { label: load, task: load_csv, args: { filepath: players.csv, df_name: P } }
                - { label: pick, task: transform, args: { name: pick, input: P, save_df: Q } }
                - { label: save, task: save_csv, args: { filepath: out.csv, df_name: Q } }
            transform:
              pick:
                - select: { player: name }
            """
        }
    )
    assert validate(config, capsys) == (0, [])


def test_a_file_another_pipeline_writes_is_unknown(
    write_config: WriteConfig, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # shared.csv is left by an older run of 'make', before it gained the column 'name': 'use'
    # reads what 'make' writes now, so the stale file must not fail validate (nor Dagster).
    (tmp_path / "shared.csv").write_text("id\n1\n")
    (tmp_path / "raw.csv").write_text("id,name\n1,Ann\n")
    config = write_config(
        {
            "p.yml": """
            pipeline:
              make:
                - { label: read, task: load_csv, args: { filepath: raw.csv, df_name: R } }
                - { label: save, task: save_csv, args: { filepath: shared.csv, df_name: R } }
              use:
                - { label: load, task: load_csv, args: { filepath: shared.csv, df_name: P } }
                - { label: pick, task: transform, args: { name: pick, input: P, save_df: Q } }
                - { label: save, task: save_csv, args: { filepath: out.csv, df_name: Q } }
            transform:
              pick:
                - select: { player: name }
            """
        }
    )
    assert validate(config, capsys) == (0, [])
    assert main(["validate", "-c", str(config), "-p", "use"]) == 0
    capsys.readouterr()
    # Read by nobody else, the same file is checked.
    (config / "p.yml").write_text(
        (config / "p.yml").read_text().replace("shared.csv, df_name: R", "other.csv, df_name: R")
    )
    assert validate(config, capsys) == (
        2,
        [
            "error: config/p.yml:11:7, transform 'pick' (used by pipeline 'use', stage 'pick'"
            " (#2)): step 1 (select): column 'name' not found (columns: id)",
            "the configuration has 1 error",
        ],
    )


def test_a_mistake_through_two_chained_transforms(
    write_config: WriteConfig, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    (tmp_path / "players.csv").write_text("name,goals,team\nAnn,3,a\n")
    config = write_config(
        {
            "p.yml": """
            pipeline:
              p:
                - { label: load, task: load_csv, args: { filepath: players.csv, df_name: P } }
                - { label: rename, task: transform, args: { name: rename, input: P,
                    save_df: Q } }
                - { label: score, task: transform, args: { name: score, input: Q, save_df: S } }
                - { label: save, task: save_csv, args: { filepath: out.csv, df_name: S } }
            transform:
              rename:
                - select: { player: name, scored: goals }
              score:
                - select: { player: null }
                - drop: { player: false }
                - select: { player: null, goals: null }
            """
        }
    )
    assert validate(config, capsys) == (
        2,
        [
            "error: config/p.yml:14:7, transform 'score' (used by pipeline 'p', stage 'score'"
            " (#3)): step 3 (select): column 'goals' not found (columns: player)",
            "the configuration has 1 error",
        ],
    )


def test_a_column_a_previous_stages_transform_removed(
    write_config: WriteConfig, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(
        {
            "p.yml": """
            pipeline:
              p:
                - { label: load, task: load_csv, args: { filepath: later.csv, df_name: P,
                    model: player } }
                - { label: slim, task: transform, args: { name: slim, input: P, save_df: Q } }
                - { label: pick, task: transform, args: { name: pick, input: Q, save_df: R } }
                - { label: save, task: save_csv, args: { filepath: out.csv, df_name: R } }
            transform:
              slim:
                - drop: { team: true }
              pick:
                - select: { name: null, team: null }
            """,
            "m.yml": MODEL,
        }
    )
    assert validate(config, capsys) == (
        2,
        [
            "error: config/p.yml:12:7, transform 'pick' (used by pipeline 'p', stage 'pick'"
            " (#3)): step 1 (select): column 'team' not found (columns: name, goals)",
            "the configuration has 1 error",
        ],
    )


JOIN = """
pipeline:
  p:
    - { label: players, task: load_csv, args: { filepath: later.csv, df_name: P,
        model: player } }
    - { label: teams, task: load_csv, args: { filepath: teams.csv, df_name: T } }
    - { label: enrich, task: transform, args: { name: enrich, input: P, save_df: E } }
    - { label: save, task: save_csv, args: { filepath: out.csv, df_name: E } }
transform:
  enrich:
    - join: { right: T, left_on: team, right_on: KEY, how: left }
"""


def test_a_join_is_checked_against_its_right_frames_known_schema(
    write_config: WriteConfig, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    (tmp_path / "teams.csv").write_text("code,city\na,Oslo\n")
    config = write_config({"p.yml": JOIN.replace("KEY", "cod"), "m.yml": MODEL})
    assert validate(config, capsys) == (
        2,
        [
            "error: config/p.yml:10:7, transform 'enrich' (used by pipeline 'p', stage 'enrich'"
            " (#3)): step 1 (join): right_on column 'cod' not found in frame 'T' - did you mean"
            " 'code'? (columns: code, city)",
            "the configuration has 1 error",
        ],
    )


def test_nothing_is_checked_where_a_custom_task_makes_the_input(
    write_config: WriteConfig, capsys: pytest.CaptureFixture[str]
) -> None:
    registry = DEFAULT_REGISTRY.copy()
    registry.register(
        TaskSpec(
            "make",
            lambda args, frames, ctx: {"P": pl.LazyFrame({"x": [1]})},
            reads=lambda a: (),
            writes=lambda a: ("P",),
        ),
        replace=True,
    )
    config = write_config(
        {
            "p.yml": """
            pipeline:
              p:
                - { label: make, task: make }
                - { label: pick, task: transform, args: { name: pick, input: P, save_df: Q } }
                - { label: save, task: save_csv, args: { filepath: out.csv, df_name: Q } }
            transform:
              pick:
                - select: { nothing: like_this }
            """
        }
    )
    project = load_project(config, registry)
    assert project.warnings == ()
    assert [node.label for node in project.graphs["p"].nodes] == ["make", "pick", "save"]


CUSTOM = """
pipeline:
  p:
    - { label: load, task: load_csv, args: { filepath: later.csv, df_name: P, model: player } }
    - { label: dedupe, task: dedupe, args: { input: P, save_df: D } }
    - { label: pick, task: transform, args: { name: pick, input: D, save_df: Q } }
    - { label: save, task: save_csv, args: { filepath: out.csv, df_name: Q } }
transform:
  pick:
    - select: { who: nme }
model:
  player:
    name: str
"""


def test_a_custom_task_that_declares_its_output_schema_is_followed(
    write_config: WriteConfig,
) -> None:
    registry = DEFAULT_REGISTRY.copy()

    @registry.task(
        "dedupe",
        reads=lambda a: [a["input"]],
        writes=lambda a: [a["save_df"]],
        output_schemas=lambda a, inputs, ctx: (
            {a["save_df"]: inputs[a["input"]]} if a["input"] in inputs else {}
        ),
    )
    def dedupe(args: dict, frames: dict, ctx: object) -> dict:
        return {args["save_df"]: frames[args["input"]].unique()}

    config = write_config({"p.yml": CUSTOM})
    with pytest.raises(ValidationError) as found:
        load_project(config, registry)
    assert [str(p) for p in found.value.problems] == [
        "error: config/p.yml:9:7, transform 'pick' (used by pipeline 'p', stage 'pick' (#3)):"
        " step 1 (select): column 'nme' not found - did you mean 'name'? (columns: name)"
    ]


def test_a_custom_schema_hook_that_fails_leaves_its_frames_unknown(
    write_config: WriteConfig,
) -> None:
    registry = DEFAULT_REGISTRY.copy()

    def broken(args: dict, inputs: object, ctx: object) -> dict:
        raise KeyError("oops")

    registry.task(
        "dedupe",
        reads=lambda a: [a["input"]],
        writes=lambda a: [a["save_df"]],
        output_schemas=broken,
    )(lambda args, frames, ctx: {args["save_df"]: frames[args["input"]]})
    project = load_project(write_config({"p.yml": CUSTOM}), registry)
    assert [node.label for node in project.graphs["p"].nodes] == ["load", "dedupe", "pick", "save"]


TWO_USERS = """
pipeline:
  p:
    - { label: load, task: load_csv, args: { filepath: later.csv, df_name: P, model: player } }
    - { label: first, task: transform, args: { name: pick, input: P, save_df: A } }
    - { label: second, task: transform, args: { name: pick, input: P, save_df: B } }
    - { label: save_a, task: save_csv, args: { filepath: a.csv, df_name: A } }
    - { label: save_b, task: save_csv, args: { filepath: b.csv, df_name: B } }
  q:
    - { label: load, task: load_csv, args: { filepath: later.csv, df_name: P, model: SECOND } }
    - { label: third, task: transform, args: { name: pick, input: P, save_df: A } }
    - { label: save, task: save_csv, args: { filepath: a.csv, df_name: A } }
transform:
  pick:
    - select: { who: nam }
model:
  player:
    name: str
    goals: int64
  other:
    nam: str
"""


def test_a_transform_used_by_two_stages_names_both(
    write_config: WriteConfig, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config({"p.yml": TWO_USERS.replace("SECOND", "player")})
    assert validate(config, capsys) == (
        2,
        [
            "error: config/p.yml:14:7, transform 'pick' (used by pipeline 'p', stage 'first'"
            " (#2); pipeline 'p', stage 'second' (#3); pipeline 'q', stage 'third' (#2)): step 1"
            " (select): column 'nam' not found - did you mean 'name'? (columns: name, goals)",
            "the configuration has 1 error",
        ],
    )


def test_a_transform_used_by_several_stages_names_only_those_whose_input_shows_the_mistake(
    write_config: WriteConfig, capsys: pytest.CaptureFixture[str]
) -> None:
    # Stage 'third' reads a frame that has 'nam': the transform is right there.
    config = write_config({"p.yml": TWO_USERS.replace("SECOND", "other")})
    assert validate(config, capsys) == (
        2,
        [
            "error: config/p.yml:14:7, transform 'pick' (used by pipeline 'p', stage 'first'"
            " (#2); pipeline 'p', stage 'second' (#3)): step 1 (select): column 'nam' not found"
            " - did you mean 'name'? (columns: name, goals)",
            "the configuration has 1 error",
        ],
    )
    code = main(["validate", "-c", str(config), "-p", "q"])
    assert (code, capsys.readouterr().err) == (0, "")


def test_a_load_sql_with_a_model_gives_the_schema(
    write_config: WriteConfig, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    config = write_config(
        {
            "p.yml": f"""
            connection:
              wh: {{ driver: sqlite, path: '{tmp_path / "wh.db"}' }}
            pipeline:
              p:
                - {{ label: load, task: load_sql, args: {{ connection: wh, table: players,
                    df_name: P, model: player }} }}
                - {{ label: pick, task: transform, args: {{ name: pick, input: P,
                    save_df: Q }} }}
                - {{ label: save, task: save_csv, args: {{ filepath: out.csv, df_name: Q }} }}
            transform:
              pick:
                - select: {{ who: nme }}
            """,
            "m.yml": MODEL,
        }
    )
    assert validate(config, capsys) == (
        2,
        [
            "error: config/p.yml:12:7, transform 'pick' (used by pipeline 'p', stage 'pick' (#2)):"
            " step 1 (select): column 'nme' not found - did you mean 'name'? (columns: name,"
            " goals, team)",
            "the configuration has 1 error",
        ],
    )


# -- validate and run say the same thing ---------------------------------------------------------


def said_by_validate_and_run(config: Path, data: dict[Path, str]) -> str:
    """The problem `validate` finds once the `data` files are there, checked to be word for
    word the failure of a run in every mode (the config validated before the files were there,
    when nothing could be checked)."""
    graph = load_project(config).graphs["p"]
    for path, text in data.items():
        path.write_text(text)
    with pytest.raises(ValidationError) as found:
        load_project(config)
    (problem,) = found.value.errors
    assert problem.location.section == "transform"
    for mode in RunMode:
        with pytest.raises(TaskError) as failed:
            run_stages(graph, mode, {})
        assert failed.value.message == f"transform '{problem.location.name}', {problem.message}"
    return str(problem)


PLAYERS_CSV = "name,goals,team\nAnn,3,a\nKim,5,b\n"

ENRICH = """
pipeline:
  p:
    - { label: players, task: load_csv, args: { filepath: players.csv, df_name: P } }
    - { label: teams, task: load_csv, args: { filepath: teams.csv, df_name: T } }
    - { label: enrich, task: transform, args: { name: enrich, input: P, save_df: E } }
    - { label: save, task: save_csv, args: { filepath: out.csv, df_name: E } }
"""


@pytest.mark.parametrize(
    ("steps", "teams", "expected"),
    [
        (
            "- select: { who: nme }",
            "code,city\na,Oslo\n",
            "error: config/t.yml:3:7, transform 'enrich' (used by pipeline 'p', stage 'enrich'"
            " (#3)): step 1 (select): column 'nme' not found - did you mean 'name'? (columns:"
            " name, goals, team)",
        ),
        (
            "- drop: { goals: true }\n- select: { goals: null }",
            "code,city\na,Oslo\n",
            "error: config/t.yml:4:7, transform 'enrich' (used by pipeline 'p', stage 'enrich'"
            " (#3)): step 2 (select): column 'goals' not found (columns: name, team)",
        ),
        (
            "- join: { right: T, left_on: team, right_on: cod, how: left }",
            "code,city\na,Oslo\n",
            "error: config/t.yml:3:7, transform 'enrich' (used by pipeline 'p', stage 'enrich'"
            " (#3)): step 1 (join): right_on column 'cod' not found in frame 'T' - did you mean"
            " 'code'? (columns: code, city)",
        ),
        (  # Polars refuses (str and i64 keys): its refusal, in the words a run uses
            "- join: { right: T, left_on: team, right_on: code, how: left }",
            "code,city\n1,Oslo\n",
            None,
        ),
    ],
)
def test_validate_says_what_a_run_says(
    steps: str,
    teams: str,
    expected: str | None,
    write_config: WriteConfig,
    tmp_path: Path,
) -> None:
    (tmp_path / "teams.csv").write_text(teams)
    body = "".join(f"    {line}\n" for line in steps.splitlines())
    config = write_config({"p.yml": ENRICH, "t.yml": f"transform:\n  enrich:\n{body}"})
    said = said_by_validate_and_run(config, {tmp_path / "players.csv": PLAYERS_CSV})
    if expected is not None:
        assert said == expected
    else:
        assert said.startswith(
            "error: config/t.yml:3:7, transform 'enrich' (used by pipeline 'p', stage 'enrich'"
            " (#3)): step 1 (join): "
        )


def test_the_static_check_of_a_transform_is_the_run_time_check() -> None:
    """`Transform.output_schema` runs `apply`'s own checks on empty frames: same words."""
    where = Location(file="t.yml", section="transform", name="t")
    transform = parse_transform("t", [{"drop": {"c": True}}, {"drop": {"b": True}}], where)
    schema, problem = transform.output_schema({"a": pl.Int64, "c": pl.String}, {})
    assert schema is None and problem is not None
    with pytest.raises(TaskError) as failed:
        transform.apply(pl.LazyFrame({"a": [1], "c": ["x"]}), {})
    assert failed.value.message == f"transform 't', {problem.message}"
    assert problem.message == "step 2 (drop): column 'b' not found (columns: a)"
    good = parse_transform("t", [{"select": {"x": "a"}}], where)
    assert good.output_schema({"a": pl.Int64}, {}) == (pl.Schema({"x": pl.Int64}), None)


def test_validate_through_the_cli(write_config: WriteConfig, tmp_path: Path) -> None:
    (tmp_path / "players.csv").write_text(PLAYERS_CSV)
    text = LOAD_AND_PICK.replace("LOADER", "load_csv").replace("FILE", "players.csv")
    config = write_config({"p.yml": text})
    result = capport("validate", "-c", str(config), cwd=tmp_path)
    assert (result.returncode, result.stderr.splitlines()) == (
        2,
        [PICK_ERROR.replace("COLUMNS", "name, goals, team"), "the configuration has 1 error"],
    )
