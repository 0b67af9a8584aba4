"""The `sql` step: a Polars SQL query over the step's input (`self`) and its `sql_context`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from capport_dagster.core.graph import load_project
from capport_dagster.core.modes import RunMode
from capport_dagster.core.steps.sql import SqlStep
from capport_dagster.core.transforms import parse_transform
from capport_dagster.errors import ConfigError, Location, TaskError, ValidationError
from tests.conftest import run_stages, run_transform

LOC = Location(file="t.yml", section="transform", name="t")
MODES = pytest.mark.parametrize("mode", list(RunMode))

EVENTS = pl.DataFrame(
    {
        "player": [1, 2, 1, 3, 1, None],
        "team": ["EDM", "EDM", "EDM", "TOR", "EDM", "TOR"],
        "kind": ["goal", "goal", "shot", "goal", "goal", "goal"],
    }
)
PLAYERS = pl.DataFrame({"id": [1, 2, 3, 4], "name": ["Ann", "Bo", "Cy", "Di"]})


def parse_error(step: dict) -> str:
    with pytest.raises(ConfigError) as info:
        parse_transform("t", [step], LOC)
    return info.value.message


def check_error(step: dict, frame: pl.LazyFrame, **frames: pl.LazyFrame) -> str:
    with pytest.raises(TaskError) as info:
        parse_transform("t", [step], LOC).apply(frame, frames)
    return info.value.message


@MODES
def test_self_is_the_input_and_each_context_frame_a_table_of_its_name(
    tmp_path: Any, mode: RunMode
) -> None:
    step = {
        "sql": """
            SELECT p.name, self.team, COUNT(*) AS goals
            FROM self JOIN players AS p ON self.player = p.id
            WHERE self.kind = 'goal'
            GROUP BY p.name, self.team
            ORDER BY goals DESC, p.name
        """,
        "sql_context": ["players"],
    }
    frames = {"events": EVENTS, "players": PLAYERS}
    got = run_transform(tmp_path, [step], frames, mode, input="events")
    expected = pl.DataFrame(
        {"name": ["Ann", "Bo", "Cy"], "team": ["EDM", "EDM", "TOR"], "goals": [2, 1, 1]}
    )
    assert_frame_equal(got, expected)


@MODES
def test_sql_without_context_reads_self_only_and_keeps_nulls(tmp_path: Any, mode: RunMode) -> None:
    step = {"sql": "SELECT player, kind FROM self WHERE team = 'TOR'"}
    got = run_transform(tmp_path, [step], {"events": EVENTS}, mode)
    assert_frame_equal(got, pl.DataFrame({"player": [3, None], "kind": ["goal", "goal"]}))


@MODES
def test_a_left_join_in_sql_has_polars_sql_names_for_a_shared_column(
    tmp_path: Any, mode: RunMode
) -> None:
    step = {
        "sql": "SELECT * FROM self LEFT JOIN other USING (id) ORDER BY id",
        "sql_context": "other",
    }
    left = pl.DataFrame({"id": [2, 1], "v": ["b", "a"]})
    other = pl.DataFrame({"id": [1, 3], "v": ["x", "z"]})
    got = run_transform(tmp_path, [step], {"self_": left, "other": other}, mode)
    expected = pl.DataFrame(
        {"id": [1, 2], "v": ["a", "b"], "id:other": [1, None], "v:other": ["x", None]}
    )
    assert_frame_equal(got, expected)


def test_the_context_frames_are_what_the_step_reads() -> None:
    transform = parse_transform(
        "t",
        [
            {"sql": "SELECT * FROM self, b, a", "sql_context": ["b", "a"]},
            {"sql": "SELECT * FROM self JOIN c USING (id) ORDER BY id", "sql_context": "c"},
        ],
        LOC,
    )
    assert transform.steps[0] == SqlStep("SELECT * FROM self, b, a", ("b", "a"))
    assert transform.reads() == ("b", "a", "c")


@pytest.mark.parametrize(
    ("sql", "clause"),
    [
        ("SELECT team, COUNT(*) FROM self GROUP BY team", "GROUP BY"),
        ("SELECT * FROM self join\n o USING (id)", "JOIN"),
        ("SELECT DISTINCT team FROM self", "DISTINCT"),
        ("SELECT id FROM self UNION SELECT id FROM o", "UNION"),
    ],
)
def test_an_unordered_result_without_order_by_is_warned_about(sql: str, clause: str) -> None:
    transform = parse_transform("t", [{"sql": sql, "sql_context": ["o"]}], LOC)
    assert [w.message for w in transform.warnings] == [
        f"step 1 (sql): sql has {clause} but no ORDER BY, so its row order may differ between"
        " runs and run modes: add an ORDER BY (or a sort step after it) for a stable output"
    ]


def test_a_later_step_that_orders_the_rows_settles_an_unordered_querys_warning() -> None:
    query = {"sql": "SELECT team, COUNT(*) AS n FROM self GROUP BY team"}
    sorted_later = parse_transform(
        "t", [query, {"filter": {"n": {"gt": 1}}}, {"sort": ["team"]}], LOC
    )
    assert sorted_later.warnings == ()
    ordered_query = {"sql": "SELECT * FROM self ORDER BY team"}
    assert parse_transform("t", [query, ordered_query], LOC).warnings == ()
    # A sort before the query orders nothing the query gives; a second query needs its own.
    transform = parse_transform("t", [{"sort": ["team"]}, query, {"sort": ["team"]}, query], LOC)
    assert [(w.message, w.severity) for w in transform.warnings] == [
        (
            "step 4 (sql): sql has GROUP BY but no ORDER BY, so its row order may differ between"
            " runs and run modes: add an ORDER BY (or a sort step after it) for a stable output",
            "warning",
        )
    ]


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT team, COUNT(*) FROM self GROUP BY team ORDER BY team",
        "SELECT * FROM self WHERE kind = 'a JOIN b' -- GROUP BY",
        "SELECT team FROM self",
    ],
)
def test_an_ordered_or_order_keeping_query_is_not_warned_about(sql: str) -> None:
    assert parse_transform("t", [{"sql": sql}], LOC).warnings == ()


# -- errors --------------------------------------------------------------------------------------

NOT_A_TABLE = "which is neither self (the step's input) nor in sql_context"


@pytest.mark.parametrize(
    ("step", "message"),
    [
        ({"sql": ""}, 'sql is a query such as "SELECT * FROM self", got an empty string'),
        ({"sql": "  "}, 'sql is a query such as "SELECT * FROM self", got an empty string'),
        ({"sql": None}, 'sql is a query such as "SELECT * FROM self", got null'),
        (
            {"sql": "SELECT * FROM self", "sql_context": [1]},
            "sql_context is a list of frame names, got a list",
        ),
        (
            {"sql": "SELECT * FROM self", "sql_context": ["o", "o"]},
            "sql_context names 'o' twice",
        ),
        (
            {"sql": "SELECT * FROM self", "sql_context": ["self"]},
            "sql_context names 'self', which is the step's input already; remove it",
        ),
        (
            {"sql": "SELECT * FROM other"},
            f"sql reads table 'other', {NOT_A_TABLE}: add it to sql_context (sql_context: [other])",
        ),
        (
            {"sql": "SELECT * FROM Self"},
            f"sql reads table 'Self', {NOT_A_TABLE} - did you mean 'self'?: add it to"
            " sql_context (sql_context: [Self])",
        ),
        (
            {"sql": "SELECT * FROM self JOIN b ON self.a = b.a", "sql_context": ["a"]},
            f"sql reads table 'b', {NOT_A_TABLE}: add it to sql_context (sql_context: [a, b])",
        ),
        (
            {"sql": "SELECT * FROM self WHERE a IN (SELECT a FROM zz)"},
            f"sql reads table 'zz', {NOT_A_TABLE}: add it to sql_context (sql_context: [zz])",
        ),
        (
            {"sql": "SELECT * FROM self\nWHERE a = = 1"},
            "syntax error at line 2, column 11 of the sql: expected an expression, found '='",
        ),
        (
            {"sql": "SELECT * FROM self WHERE"},
            "syntax error at the end of the sql: expected an expression, found its end",
        ),
        (
            {"sql": "SELEC * FROM self"},
            "sql must be one query (SELECT ... or WITH ...), got 'SELEC' first: a step makes a"
            " frame, it does not change tables",
        ),
        (
            {"sql": "DROP TABLE self"},
            "sql must be one query (SELECT ... or WITH ...), got 'DROP' first: a step makes a"
            " frame, it does not change tables",
        ),
        (
            {"sql": "SELECT 1 FROM self; SELECT 2 FROM self"},
            "sql must be one query, got several statements (separated by ';')",
        ),
        (
            {"sql": "SELECT * FROM read_csv('secret.csv')"},
            "sql calls read_csv(), which reads a file outside the pipeline: load it in a stage"
            " and name its frame in sql_context",
        ),
        (
            {"sql": "SELECT * FROM self WHERE a = $team"},
            "sql has '$team', which is not expanded in sql (no $NAME is; a transform's $$kwargs"
            " are, before the sql is read): write the value itself",
        ),
        (
            {"sql": "SELECT * FROM self", "sqlcontext": ["o"]},
            "unknown key 'sqlcontext' - did you mean 'sql_context'? (a sql step takes"
            " sql_context beside it)",
        ),
    ],
)
def test_parse_errors(step: dict, message: str) -> None:
    assert parse_error(step) == f"step 1 (sql): {message}"


def test_text_in_literals_and_comments_is_not_read_as_sql() -> None:
    sql = "SELECT 'read_csv(' AS a, \"DROP\" FROM self /* FROM x */ -- JOIN y"
    transform = parse_transform("t", [{"sql": sql}], LOC)
    assert transform.steps == (SqlStep(sql),)


FRAME = pl.LazyFrame({"id": [1], "team": ["a"]})
TEAMS = pl.LazyFrame({"code": ["a"], "title": ["A"]})


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        (
            "SELECT idd FROM self",
            "sql reads column 'idd', not found - did you mean 'id'? (columns: id, team)",
        ),
        (
            "SELECT self.id, o.titel FROM self JOIN o ON self.team = o.code",
            "sql reads column 'titel' of table 'o', not found - did you mean 'title'?"
            " (columns: code, title)",
        ),
        # a table the parse could not see past a column of the frame without columns
        (
            "SELECT id FROM self UNION SELECT id FROM zz",
            f"sql reads table 'zz', {NOT_A_TABLE}: add it to sql_context (sql_context: [o, zz])",
        ),
        ("SELECT nosuch(id) FROM self", "sql: unsupported function 'nosuch'"),
    ],
)
def test_check_errors(sql: str, message: str) -> None:
    step = {"sql": sql, "sql_context": ["o"]}
    assert check_error(step, FRAME, o=TEAMS) == f"transform 't', step 1 (sql): {message}"


def test_the_context_frames_are_dependencies_of_the_stage(
    write_config: Callable[..., Path],
) -> None:
    config = write_config(
        {
            "p.yml": """
            pipeline:
              p:
                - label: enrich
                  task: transform
                  args: {name: t, input: EV, save_df: OUT}
                - label: load
                  task: load_csv
                  args: [{filepath: ev.csv, df_name: EV}, {filepath: teams.csv, df_name: TEAMS}]
            transform:
              t:
                - sql: SELECT * FROM self JOIN TEAMS ON self.team = TEAMS.code ORDER BY id
                  sql_context: [TEAMS]
            """
        }
    )
    with pytest.raises(ValidationError) as info:
        load_project(config)
    assert [p.message for p in info.value.problems if p.severity == "error"] == [
        f"reads frame '{name}' before any earlier stage writes it; it is written later by stage"
        " 'load' - move that stage first"
        for name in ("EV", "TEAMS")
    ]


@MODES
def test_a_transforms_kwargs_are_substituted_in_its_sql_before_it_is_read(
    write_config: Callable[..., Path], mode: RunMode
) -> None:
    """Unlike capport (no `$` in sql): `$$name` is substituted everywhere in a transform."""
    config = write_config(
        {
            "p.yml": """
            pipeline:
              p:
                - label: load
                  task: load_csv
                  args: {filepath: ev.csv, df_name: EV}
                - label: pick
                  task: transform
                  args: {name: t, input: EV, save_df: OUT, kwargs: {team: TOR}}
            transform:
              t:
                - sql: SELECT id FROM self WHERE team = '$$team' ORDER BY id
            """
        }
    )
    (config.parent / "ev.csv").write_text("id,team\n1,EDM\n2,TOR\n3,TOR\n")
    store = run_stages(load_project(config).graphs["p"], mode, {})
    (out,) = [frame for version, frame in store.items() if version.name == "OUT"]
    assert_frame_equal(out.lazy().collect(), pl.DataFrame({"id": [2, 3]}))
