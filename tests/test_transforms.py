"""Transforms: parsing select/join/drop steps with every problem reported, and applying them as a
lazy Polars plan."""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from capport_dagster.core import transforms
from capport_dagster.core.expressions import Column, Concat
from capport_dagster.core.graph import load_project
from capport_dagster.core.modes import RunMode
from capport_dagster.core.transforms import (
    DropStep,
    JoinStep,
    SelectItem,
    SelectStep,
    Transform,
    parse_select,
    parse_transform,
    select_exprs,
)
from capport_dagster.core.yaml_source import parse_yaml
from capport_dagster.errors import ConfigError, Location, TaskError, ValidationError
from tests.conftest import capport, run_stages

LOC = Location(file="transforms.yml", section="transform", name="enrich")
STAGE = Location(stage="enrich", index=3)

PLAYERS = pl.LazyFrame(
    {
        "id": [1, 2, 3],
        "team": ["a", "b", "c"],
        "name": [{"first": "Ann", "last": "Lee"}, {"first": None, "last": "Kim"}, None],
        "info": [{"bio": {"age": 30}}, {"bio": {"age": None}}, {"bio": None}],
    }
)
TEAMS = pl.LazyFrame({"code": ["a", "b", "d"], "title": ["Aces", "Bees", "Dogs"]})


def run(body: list, frame: pl.LazyFrame = PLAYERS, **frames: pl.LazyFrame) -> pl.DataFrame:
    result = parse_transform("enrich", body, LOC).apply(frame, frames)
    assert isinstance(result, pl.LazyFrame)
    return result.collect()


def test_public_api() -> None:
    assert set(transforms.__all__) == {
        "ACTIONS",
        "JOIN_HOWS",
        "PLANNED_STEPS",
        "STEPS",
        "DropStep",
        "JoinStep",
        "SelectItem",
        "SelectStep",
        "Step",
        "Transform",
        "parse_select",
        "parse_transform",
        "path_expr",
        "select_exprs",
        "valid_path",
    }


# -- parsing: valid ------------------------------------------------------------------------------


def test_parse_every_step_kind() -> None:
    body = [
        {"select": {"id": None, "first": "name.first", "t": {"args": "team"}}},
        {
            "join": {
                "join": "TEAMS",
                "right_select": {"code": None},
                "left_on": "t",
                "right_on": ["code"],
                "how": "left",
            }
        },
        {"join": {"right": "OTHER", "how": "cross"}},
        {"join": {"join": "TEAMS", "left_on": "a, b", "right_on": "c,d", "how": "inner"}},
        {"drop": {"first": True, "id": False}},
    ]
    assert parse_transform("enrich", body, LOC) == Transform(
        "enrich",
        (
            SelectStep(
                (
                    SelectItem("id", Column("id")),
                    SelectItem("first", Column("name.first")),
                    SelectItem("t", Column("team")),
                )
            ),
            JoinStep("TEAMS", "left", ("t",), ("code",), (SelectItem("code", Column("code")),)),
            JoinStep("OTHER", "cross"),
            JoinStep("TEAMS", "inner", ("a", "b"), ("c", "d")),
            DropStep(("first",)),
        ),
    )


def test_reads_names_joined_frames_in_step_order_once() -> None:
    join = {"left_on": "id", "right_on": "id", "how": "left"}
    body = [
        {"join": {"join": "B", **join}},
        {"join": {"right": "A", **join}},
        {"join": {"join": "B", **join}},
    ]
    assert parse_transform("t", body, LOC).reads() == ("B", "A")
    assert parse_transform("t", [{"drop": {"x": True}}], LOC).reads() == ()


@pytest.mark.parametrize(
    ("source", "path"),
    [
        ({"action": None, "args": "name.first"}, "name.first"),
        ({"args": "name.first"}, "name.first"),
        ({"action": None}, "out"),
        ({"action": None, "args": None}, "out"),
        ({"args": None}, "out"),
        ({}, "out"),
        (None, "out"),
    ],
)
def test_a_source_without_an_action_is_a_plain_column(source: Any, path: str) -> None:
    """capport reads `{action: null, args: col}` as the column `col`, and null args as the key."""
    assert parse_select({"out": source}, LOC, "ctx") == (SelectItem("out", Column(path)),)


def test_parse_select_is_reusable() -> None:
    items = parse_select(
        {"full": {"action": "concat", "args": {"cols": ["a", "b"], "separator": "-"}}}, LOC, "ctx"
    )
    assert items == (SelectItem("full", Concat((Column("a"), Column("b")), "-")),)
    frame = pl.DataFrame({"a": ["x"], "b": [1]})
    assert_frame_equal(frame.select(select_exprs(items)), pl.DataFrame({"full": ["x-1"]}))


# -- parsing: invalid ----------------------------------------------------------------------------

HOWS = "(valid: left, right, full, cross, inner)"
ALL_STEPS = (
    "select, with_columns, join, drop, sql, unnest_list, unnest_struct, unnest_list_of_struct,"
    " time, uniform_id_type, filter, sort, limit, head, tail, distinct, group_by, rename,"
    " fill_null"
)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            {"select": {"a": None}},
            "a transform is a list of steps (- select: ..., - filter: ..., - join: ...), got a"
            " mapping",
        ),
        ([], "a transform needs at least one step"),
        # steps
        (
            ["select"],
            f"step 1: a step is a mapping with one step key ({ALL_STEPS}), got str 'select'",
        ),
        (
            [{}],
            f"step 1: a step is a mapping with one step key ({ALL_STEPS}), got an empty mapping",
        ),
        (
            [{"select": {"a": None}, "drop": {"a": True}}],
            "step 1: a step has one step key, got 2 keys: select, drop",
        ),
        (
            [{"select": {"a": None}, "how": "left"}],
            "step 1 (select): unknown key 'how' (a select step takes no other key)",
        ),
        (
            [{"selct": {}}],
            f"step 1: unknown step 'selct' - did you mean 'select'? (valid steps: {ALL_STEPS})",
        ),
        ([{"bogus": {}}], f"step 1: unknown step 'bogus' (valid steps: {ALL_STEPS})"),
        (
            [{"order": ["a"]}],
            f"step 1: unknown step 'order' - did you mean 'sort'? (valid steps: {ALL_STEPS})",
        ),
        # select
        (
            [{"select": None}],
            "step 1 (select): expected a mapping of new column -> source, got null",
        ),
        (
            [{"select": {}}],
            "step 1 (select): expected a mapping of new column -> source, got an empty mapping",
        ),
        ([{"select": {1: "a"}}], "step 1 (select): column name 1 must be a non-empty string"),
        (
            [{"select": {"a": "b..c"}}],
            "step 1 (select): column 'a': column path 'b..c' has an empty part",
        ),
        (
            [{"select": {"a": 3}}],
            "step 1 (select): column 'a': a source is a column path, null or a mapping with"
            " action and args, got int 3",
        ),
        (
            [{"select": {"a": {"action": "to_list", "args": {"cols": ["b"]}}}}],
            "step 1 (select): column 'a': unknown action 'to_list' (valid actions: concat, format)",
        ),
        (
            [{"select": {"a": {"action": "formt", "args": {}}}}],
            "step 1 (select): column 'a': unknown action 'formt' - did you mean 'format'? (valid"
            " actions: concat, format)",
        ),
        (
            [{"select": {"a": {"action": "format", "arg": {}}}}],
            "step 1 (select): column 'a': unknown key 'arg' - did you mean 'args'? (a source"
            " mapping takes action, args)",
        ),
        (
            [{"select": {"a": {"args": ["b"]}}}],
            "step 1 (select): column 'a': args without an action is a column path, got ['b']",
        ),
        (
            [{"select": {"a": {"action": None, "args": {"cols": "b"}}}}],
            "step 1 (select): column 'a': args without an action is a column path, got"
            " {'cols': 'b'}",
        ),
        (
            [{"select": {"a": {"action": None, "args": "b..c"}}}],
            "step 1 (select): column 'a': column path 'b..c' has an empty part",
        ),
        (
            [{"select": {"a": {"action": "format", "args": "b"}}}],
            "step 1 (select): column 'a' (format): args must be a mapping, got str 'b'",
        ),
        (
            [
                {
                    "select": {
                        "a": {"action": "format", "args": {"template": "x/{}/{}", "cols": ["b"]}}
                    }
                }
            ],
            "step 1 (select): column 'a' (format): template 'x/{}/{}' has 2 placeholders '{}'"
            " but cols has 1 column; they must match",
        ),
        (
            [{"select": {"a": {"action": "format", "args": {"cols": ["b"]}}}}],
            "step 1 (select): column 'a' (format): template must be a string, got null",
        ),
        (
            [{"select": {"a": {"action": "concat", "args": {"cols": []}}}}],
            "step 1 (select): column 'a' (concat): cols is required (a list of columns)",
        ),
        (
            [{"select": {"a": {"action": "concat", "args": {"cols": [1]}}}}],
            "step 1 (select): column 'a' (concat): cols must be a column name, a comma-separated"
            " string or a list of names, got a list",
        ),
        (
            [{"select": {"a": {"action": "concat", "args": {"cols": "b", "separator": 1}}}}],
            "step 1 (select): column 'a' (concat): separator must be a string, got int 1",
        ),
        (
            [{"select": {"a": {"action": "concat", "args": {"cols": "b", "sep": " "}}}}],
            "step 1 (select): column 'a' (concat): unknown key 'sep' (concat args takes cols,"
            " separator)",
        ),
        # join
        (
            [{"join": "TEAMS"}],
            "step 1 (join): expected a mapping with join, left_on, right_on and how",
        ),
        (
            [{"join": {"left_on": "a", "right_on": "a", "how": "left"}}],
            "step 1 (join): the right frame is required: join: FRAME_NAME",
        ),
        (
            [{"join": {"join": "A", "right": "B", "left_on": "a", "right_on": "a", "how": "left"}}],
            "step 1 (join): name the right frame with 'join' or 'right', not both",
        ),
        (
            [{"join": {"join": "A", "left_on": "a", "right_on": "a"}}],
            "step 1 (join): how is required (one of left, right, full, cross, inner)",
        ),
        (
            [{"join": {"join": "A", "left_on": "a", "right_on": "a", "how": "outer"}}],
            f"step 1 (join): unknown how 'outer' {HOWS}",
        ),
        (
            [{"join": {"join": "A", "left_on": "a", "right_on": "a", "how": "LEFT"}}],
            f"step 1 (join): unknown how 'LEFT' - did you mean 'left'? {HOWS}",
        ),
        (
            [{"join": {"join": "A", "left_on": "a", "right_on": "a", "how": "inr"}}],
            f"step 1 (join): unknown how 'inr' - did you mean 'inner'? {HOWS}",
        ),
        (
            [{"join": {"join": "A", "left_on": "a, b", "right_on": ["a"], "how": "left"}}],
            "step 1 (join): left_on has 2 columns but right_on has 1",
        ),
        (
            [{"join": {"join": "A", "left_on": "a", "right_on": "a,b,c", "how": "inner"}}],
            "step 1 (join): left_on has 1 column but right_on has 3",
        ),
        (
            [{"join": {"join": "A", "how": "full"}}],
            "step 1 (join): left_on and right_on are required for how: full (only a cross join"
            " takes no keys)",
        ),
        (
            [{"join": {"join": "A", "left_on": "a", "how": "right"}}],
            "step 1 (join): right_on is required for how: right (only a cross join takes no keys)",
        ),
        (
            [{"join": {"join": "A", "left_on": "a", "right_on": "a", "how": "cross"}}],
            "step 1 (join): a cross join takes no keys; remove left_on and right_on",
        ),
        (
            [{"join": {"join": "A", "left_on": "a,", "right_on": "a", "how": "left"}}],
            "step 1 (join): left_on 'a,' has an empty column name",
        ),
        (
            [{"join": {"join": "A", "left_on": 1, "right_on": "a", "how": "left"}}],
            "step 1 (join): left_on must be a column name, a comma-separated string or a list of"
            " names, got int 1",
        ),
        (
            [
                {
                    "join": {
                        "join": "A",
                        "lefton": "a",
                        "left_on": "a",
                        "right_on": "a",
                        "how": "left",
                    }
                }
            ],
            "step 1 (join): unknown key 'lefton' - did you mean 'left_on'? (a join takes join,"
            " right, right_select, left_on, right_on, how, left_prefix, right_prefix)",
        ),
        (
            [
                {
                    "join": {
                        "join": "A",
                        "left_on": "a",
                        "right_on": "a",
                        "how": "left",
                        "right_select": {"a": 1},
                    }
                }
            ],
            "step 1 (join) right_select: column 'a': a source is a column path, null or a"
            " mapping with action and args, got int 1",
        ),
        # drop
        (
            [{"drop": ["a"]}],
            "step 1 (drop): expected a mapping of column -> true/false, got a list",
        ),
        (
            [{"drop": {}}],
            "step 1 (drop): expected a mapping of column -> true/false, got an empty mapping",
        ),
        (
            [{"drop": {"a": "yes"}}],
            "step 1 (drop): column 'a': 'yes' is not a drop flag (true or null drops the column,"
            " false keeps it)",
        ),
        (
            [{"drop": {"a": 1}}],
            "step 1 (drop): column 'a': 1 is not a drop flag (true or null drops the column,"
            " false keeps it)",
        ),
    ],
)
def test_parse_errors(body: Any, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_transform("enrich", body, LOC)
    assert type(info.value) is ConfigError
    assert info.value.message == message
    assert info.value.location == LOC


def test_parse_reports_every_problem_with_its_line() -> None:
    text = """\
transform:
  enrich:
    - select: { a: { action: concat, args: { cols: [] } }, b: { action: to_list } }
    - selct: { a: null }
    - join: { join: A, left_on: [a, b], right_on: a, how: lft }
"""
    body = parse_yaml(text, "transforms.yml")["transform"]["enrich"]
    with pytest.raises(ValidationError) as info:
        parse_transform("enrich", body, LOC)
    assert [(p.location.line, p.message) for p in info.value.problems] == [
        (3, "step 1 (select): column 'a' (concat): cols is required (a list of columns)"),
        (
            3,
            "step 1 (select): column 'b': unknown action 'to_list' (valid actions: concat, format)",
        ),
        (4, f"step 2: unknown step 'selct' - did you mean 'select'? (valid steps: {ALL_STEPS})"),
        (5, "step 3 (join): left_on has 2 columns but right_on has 1"),
        (5, f"step 3 (join): unknown how 'lft' - did you mean 'left'? {HOWS}"),
    ]
    assert str(info.value).splitlines()[1] == (
        "  error: transforms.yml:3:7, transform 'enrich': step 1 (select): column 'a' (concat):"
        " cols is required (a list of columns)"
    )


def test_parse_select_raises_with_the_callers_context() -> None:
    with pytest.raises(
        ConfigError,
        match=r"^transforms.yml, transform 'enrich': here: column 'a': unknown action 'x'",
    ):
        parse_select({"a": {"action": "x"}}, LOC, "here")


# -- select --------------------------------------------------------------------------------------


def test_select_keeps_exactly_the_listed_columns_in_order() -> None:
    result = run(
        [
            {
                "select": {
                    "team": None,
                    "player": "id",
                    "first": "name.first",
                    "age": "info.bio.age",
                    "last": {"args": "name.last"},
                    "same": {"args": None},
                    "bio": {"action": None, "args": "info.bio"},
                    "info": {"action": None},
                }
            }
        ],
        PLAYERS.with_columns(same=pl.lit("s")),
    )
    expected = pl.DataFrame(
        {
            "team": ["a", "b", "c"],
            "player": [1, 2, 3],
            "first": ["Ann", None, None],
            "age": [30, None, None],
            "last": ["Lee", "Kim", None],
            "same": ["s", "s", "s"],
            "bio": [{"age": 30}, {"age": None}, None],
            "info": [{"bio": {"age": 30}}, {"bio": {"age": None}}, {"bio": None}],
        }
    )
    assert_frame_equal(result, expected)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (
            {"action": "format", "args": {"template": "p/{}/{}", "cols": ["id", "name.last"]}},
            ["p/1/Lee", "p/2/Kim", None],
        ),
        (
            {"action": "format", "args": {"template": "{}:{}", "cols": "team, name.first"}},
            ["a:Ann", None, None],
        ),
        (
            {"action": "format", "args": {"template": "age {}", "cols": ["info.bio.age"]}},
            ["age 30", None, None],
        ),
        (
            {"action": "concat", "args": {"cols": ["name.first", "name.last"]}},
            ["Ann Lee", None, None],
        ),
        (
            {"action": "concat", "args": {"cols": ["team", "id"], "separator": ""}},
            ["a1", "b2", "c3"],
        ),
        (
            {"action": "concat", "args": {"cols": "team,id,name.last", "separator": "-"}},
            ["a-1-Lee", "b-2-Kim", None],
        ),
    ],
)
def test_select_actions_cast_to_text_and_null_in_gives_null(source: dict, expected: list) -> None:
    result = run([{"select": {"out": source}}])
    assert_frame_equal(result, pl.DataFrame({"out": expected}, schema={"out": pl.String}))


# -- join ----------------------------------------------------------------------------------------

LEFT = pl.LazyFrame({"id": [1, 2, 3], "k": ["a", "b", "c"], "v": ["x", "y", "z"]})
RIGHT = pl.LazyFrame({"key": ["b", "d", "a"], "v": ["B", "D", "A"], "n": [2, 4, 1]})


def join(how: str, **extra: Any) -> pl.DataFrame:
    step = {"join": "R", "left_on": "k", "right_on": "key", "how": how, **extra}
    return run([{"join": step}], LEFT, R=RIGHT)


@pytest.mark.parametrize(
    ("how", "expected"),
    [
        (
            "left",
            {
                "id": [1, 2, 3],
                "k": ["a", "b", "c"],
                "v": ["x", "y", "z"],
                "v_right": ["A", "B", None],
                "n": [1, 2, None],
            },
        ),
        (
            "inner",
            {"id": [1, 2], "k": ["a", "b"], "v": ["x", "y"], "v_right": ["A", "B"], "n": [1, 2]},
        ),
        # full: both keys kept, as capport does (not coalesced); unmatched right rows last
        (
            "full",
            {
                "id": [1, 2, 3, None],
                "k": ["a", "b", "c", None],
                "v": ["x", "y", "z", None],
                "key": ["a", "b", None, "d"],
                "v_right": ["A", "B", None, "D"],
                "n": [1, 2, None, 4],
            },
        ),
        # right: the right key name and the right row order
        (
            "right",
            {
                "id": [2, None, 1],
                "v": ["y", None, "x"],
                "key": ["b", "d", "a"],
                "v_right": ["B", "D", "A"],
                "n": [2, 4, 1],
            },
        ),
    ],
)
def test_join_hows(how: str, expected: dict) -> None:
    assert_frame_equal(join(how), pl.DataFrame(expected))


@pytest.mark.parametrize(
    ("right", "left_on", "right_on"),
    [
        (RIGHT, ["k"], ["key"]),
        (RIGHT.rename({"key": "k"}), ["k"], ["k"]),
        (RIGHT.with_columns(id=pl.lit(2)), ["k", "id"], ["key", "id"]),
        (RIGHT.with_columns(k2=pl.col("key")), ["k", "k"], ["key", "k2"]),
        (RIGHT.with_columns(v_right=pl.col("v")).rename({"v": "w"}), ["v"], ["v_right"]),
    ],
)
def test_a_full_join_has_the_columns_and_rows_of_polars_full_join(
    right: pl.LazyFrame, left_on: list[str], right_on: list[str]
) -> None:
    """The full join is built from a left and an anti join (see `_full_join`): same frame as
    Polars' own (in-memory, where its order holds), on key names shared, clashing or repeated."""
    step = {"join": "R", "left_on": left_on, "right_on": right_on, "how": "full"}
    expected = LEFT.join(
        right,
        left_on=left_on,
        right_on=right_on,
        how="full",
        coalesce=False,
        maintain_order="left_right",
    ).collect(engine="in-memory")
    assert expected.height > LEFT.collect().height  # some right rows are unmatched
    assert_frame_equal(run([{"join": step}], LEFT, R=right), expected)


def test_a_full_join_on_a_shared_key_name_keeps_both_keys() -> None:
    right = RIGHT.rename({"key": "k"})
    step = {"join": "R", "left_on": "k", "right_on": "k", "how": "full"}
    result = run([{"join": step}], LEFT, R=right)
    expected = pl.DataFrame(
        {
            "id": [1, 2, 3, None],
            "k": ["a", "b", "c", None],
            "v": ["x", "y", "z", None],
            "k_right": ["a", "b", None, "d"],
            "v_right": ["A", "B", None, "D"],
            "n": [1, 2, None, 4],
        }
    )
    assert_frame_equal(result, expected)


@pytest.mark.parametrize(
    ("how", "expected"),
    [
        (
            "left",
            {
                "id": [1, 2, 3],
                "k": ["a", "b", "c"],
                "v": ["x", "y", "z"],
                "v_right": ["A", "B", None],
                "n": [1, 2, None],
            },
        ),
        (
            "inner",
            {"id": [1, 2], "k": ["a", "b"], "v": ["x", "y"], "v_right": ["A", "B"], "n": [1, 2]},
        ),
        (
            "right",
            {
                "id": [2, None, 1],
                "v": ["y", None, "x"],
                "k": ["b", "d", "a"],
                "v_right": ["B", "D", "A"],
                "n": [2, 4, 1],
            },
        ),
    ],
)
def test_other_joins_coalesce_a_shared_key_name(how: str, expected: dict) -> None:
    step = {"join": "R", "left_on": "k", "right_on": "k", "how": how}
    result = run([{"join": step}], LEFT, R=RIGHT.rename({"key": "k"}))
    assert_frame_equal(result, pl.DataFrame(expected))


def test_cross_join_takes_no_keys() -> None:
    for keys in ({}, {"left_on": None, "right_on": []}, {"left_on": "", "right_on": ""}):
        result = run(
            [{"join": {"right": "R", "how": "cross", **keys}}],
            LEFT.select("id"),
            R=RIGHT.select("n"),
        )
        assert_frame_equal(
            result, pl.DataFrame({"id": [1, 1, 1, 2, 2, 2, 3, 3, 3], "n": [2, 4, 1] * 3})
        )


@pytest.mark.parametrize(
    "keys",
    [
        {"left_on": "id, k", "right_on": "id,key"},
        {"left_on": ["id", "k"], "right_on": ["id", "key"]},
    ],
)
def test_join_on_several_keys(keys: dict) -> None:
    right = pl.LazyFrame({"id": [1, 2], "key": ["a", "x"], "n": [10, 20]})
    result = run([{"join": {"join": "R", "how": "inner", **keys}}], LEFT, R=right)
    assert_frame_equal(result, pl.DataFrame({"id": [1], "k": ["a"], "v": ["x"], "n": [10]}))


def test_right_select_applies_to_the_right_frame_first() -> None:
    result = join(
        "left",
        right_select={
            "key": None,
            "label": {"action": "format", "args": {"template": "<{}>", "cols": "v"}},
        },
    )
    expected = pl.DataFrame(
        {"id": [1, 2, 3], "k": ["a", "b", "c"], "v": ["x", "y", "z"], "label": ["<A>", "<B>", None]}
    )
    assert_frame_equal(result, expected)


def test_join_then_select_and_drop() -> None:
    body = [
        {"select": {"team": None, "player": "name.last"}},
        {
            "join": {
                "join": "TEAMS",
                "right_select": {"team": "code", "player": "title"},
                "left_on": "team",
                "right_on": "team",
                "how": "left",
            }
        },
        {"drop": {"team": True}},
    ]
    result = run(body, TEAMS=TEAMS)
    assert_frame_equal(
        result,
        pl.DataFrame({"player": ["Lee", "Kim", None], "player_right": ["Aces", "Bees", None]}),
    )


# -- drop ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("flag", "dropped"),
    [
        (True, True),
        (None, True),
        ("true", True),
        ("TRUE", True),
        (False, False),
        ("false", False),
        ("False", False),
    ],
)
def test_drop_flags(flag: Any, dropped: bool) -> None:
    result = run([{"drop": {"team": flag, "info": True}}])
    assert result.columns == (["id", "name"] if dropped else ["id", "team", "name"])


def test_drop_all_false_keeps_the_frame() -> None:
    assert parse_transform("t", [{"drop": {"a": False}}], LOC).steps == (DropStep(()),)
    assert run([{"drop": {"team": "false"}}]).columns == PLAYERS.collect_schema().names()


# -- applying: errors and laziness ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            [{"select": {"a": "nope"}}],
            "transform 'enrich', step 1 (select): column 'nope' not found"
            " (columns: id, team, name, info)",
        ),
        (
            [{"select": {"a": "tema"}}],
            "transform 'enrich', step 1 (select): column 'tema' not found - did you mean 'team'?"
            " (columns: id, team, name, info)",
        ),
        (
            [{"select": {"a": "name.middle"}}],
            "transform 'enrich', step 1 (select): column path 'name.middle': struct 'name' has"
            " no field 'middle' (fields: first, last)",
        ),
        (
            [{"drop": {"team": False}}, {"drop": {"idd": True}}],
            "transform 'enrich', step 2 (drop): column 'idd' not found - did you mean 'id'?"
            " (columns: id, team, name, info)",
        ),
        (
            [{"join": {"join": "MISSING", "how": "cross"}}],
            "transform 'enrich', step 1 (join): frame 'MISSING' was not given (frames: TEAMS)",
        ),
        (
            [{"join": {"join": "TEAMS", "left_on": "teem", "right_on": "code", "how": "left"}}],
            "transform 'enrich', step 1 (join): left_on column 'teem' not found in the left frame"
            " - did you mean 'team'? (columns: id, team, name, info)",
        ),
        (
            [{"join": {"join": "TEAMS", "left_on": "team", "right_on": "cod", "how": "full"}}],
            "transform 'enrich', step 1 (join): right_on column 'cod' not found in frame 'TEAMS'"
            " - did you mean 'code'? (columns: code, title)",
        ),
    ],
)
def test_apply_errors_name_the_step(body: list, message: str) -> None:
    transform = parse_transform("enrich", body, LOC)
    with pytest.raises(TaskError) as info:
        transform.apply(PLAYERS, {"TEAMS": TEAMS}, location=STAGE)
    assert info.value.message == message
    assert info.value.location == STAGE


def test_apply_builds_a_plan_without_reading_data() -> None:
    calls: list[int] = []

    def spy(series: pl.Series) -> pl.Series:
        calls.append(len(series))
        return series

    watched = PLAYERS.with_columns(pl.col("id").map_batches(spy, pl.Int64))
    body = [
        {"select": {"id": None, "team": None}},
        {"join": {"join": "TEAMS", "left_on": "team", "right_on": "code", "how": "full"}},
        {"drop": {"team": True}},
    ]
    plan = parse_transform("enrich", body, LOC).apply(
        watched, {"TEAMS": watched.select(code="team")}
    )
    assert isinstance(plan, pl.LazyFrame)
    assert calls == []
    assert plan.collect().height == 3
    assert calls != []


def test_select_pushes_the_projection_into_the_csv_scan(tmp_path: Path) -> None:
    path = tmp_path / "wide.csv"
    pl.DataFrame({f"c{i}": [i, i + 1] for i in range(20)}).write_csv(path)
    body = [{"select": {"a": "c3", "b": {"action": "concat", "args": {"cols": ["c7", "c3"]}}}}]
    plan = parse_transform("t", body, LOC).apply(pl.scan_csv(path), {})
    assert "PROJECT 2/20 COLUMNS" in plan.explain()
    assert_frame_equal(plan.collect(), pl.DataFrame({"a": [3, 4], "b": ["7 3", "8 4"]}))


def test_a_cross_join_keeps_its_row_order_on_the_streaming_engine() -> None:
    """Every mode must give the same rows in the same order; lazy sinks stream."""
    transform = parse_transform(
        "t", [{"join": {"right": "R", "how": "cross"}}], Location(file="t.yml")
    )
    left = pl.LazyFrame({"a": ["a", "b", "c"]})
    right = pl.LazyFrame({"x": ["x", "y"]})
    plan = transform.apply(left, {"R": right})
    expected = pl.DataFrame(
        {"a": ["a", "a", "b", "b", "c", "c"], "x": ["x", "y", "x", "y", "x", "y"]}
    )
    assert_frame_equal(plan.collect(engine="streaming"), expected)
    assert_frame_equal(plan.collect(), expected)


# -- join row order ------------------------------------------------------------------------------
# Polars keeps one side's order cheaply but not the order of one row's several matches unless
# asked: from ~12k rows, and for frames scanned back from Parquet (the multiprocess executor),
# that order changed between engines. So the expected frames are built here row by row.

ORDER_KEYS = 6_000  # ~3 matches per key: every row of one side has several partners


@cache
def order_sides() -> tuple[pl.DataFrame, pl.DataFrame]:
    """24k left rows and 20k right rows; keys repeat, some are null (nulls never match)."""
    draw = random.Random(11)

    def keys(n: int) -> list[int | None]:
        return [None if draw.random() < 0.01 else draw.randrange(ORDER_KEYS) for _ in range(n)]

    left = pl.DataFrame({"k": keys(24_000), "li": range(24_000)})
    right = pl.DataFrame({"key": keys(20_000), "ri": range(20_000)})
    return left, right


@cache
def expected_join(how: str) -> pl.DataFrame:
    """The documented order, from plain Python: the driving side's rows in order, each with its
    matches in the other side's order; a full join then adds the unmatched right rows."""
    left, right = order_sides()
    left_rows, right_rows = left.rows(), right.rows()
    if how == "right":
        by_key: dict[int, list[int]] = defaultdict(list)
        for k, li in left_rows:
            if k is not None:
                by_key[k].append(li)
        rows = [(li, k, ri) for k, ri in right_rows for li in (by_key.get(k) or [None])]
        return pl.DataFrame(rows, schema=["li", "key", "ri"], orient="row")
    matches: dict[int, list[int]] = defaultdict(list)
    for k, ri in right_rows:
        if k is not None:
            matches[k].append(ri)
    rows, matched = [], set()
    for k, li in left_rows:
        found = matches.get(k, []) if k is not None else []
        matched.update(found)
        if how == "full":
            rows += [(k, li, k, ri) for ri in found] or [(k, li, None, None)]
        elif found or how == "left":
            rows += [(k, li, ri) for ri in found] or [(k, li, None)]
    if how != "full":
        return pl.DataFrame(rows, schema=["k", "li", "ri"], orient="row")
    rows += [(None, None, k, ri) for k, ri in right_rows if ri not in matched]
    return pl.DataFrame(rows, schema=["k", "li", "key", "ri"], orient="row")


def in_memory(frame: pl.DataFrame, tmp_path: Path, name: str) -> pl.LazyFrame:
    return frame.lazy()


def from_parquet(frame: pl.DataFrame, tmp_path: Path, name: str) -> pl.LazyFrame:
    """As the multiprocess executor passes frames: sunk to Parquet, scanned back."""
    path = tmp_path / f"{name}.parquet"
    frame.lazy().sink_parquet(path, row_group_size=1_000)
    return pl.scan_parquet(path)


def collected(plan: pl.LazyFrame, tmp_path: Path) -> pl.DataFrame:
    return plan.collect()


def streamed(plan: pl.LazyFrame, tmp_path: Path) -> pl.DataFrame:
    return plan.collect(engine="streaming")


def sunk_to_csv(plan: pl.LazyFrame, tmp_path: Path) -> pl.DataFrame:
    """As `save_csv` writes in lazy modes."""
    plan.sink_csv(tmp_path / "out.csv")
    return pl.read_csv(tmp_path / "out.csv", schema=plan.collect_schema())


@pytest.mark.parametrize("how", ["left", "inner", "full", "right"])
@pytest.mark.parametrize("source", [in_memory, from_parquet])
@pytest.mark.parametrize("execute", [collected, streamed, sunk_to_csv])
def test_join_row_order_is_the_same_however_the_plan_runs(
    how: str,
    source: Callable[[pl.DataFrame, Path, str], pl.LazyFrame],
    execute: Callable[[pl.LazyFrame, Path], pl.DataFrame],
    tmp_path: Path,
) -> None:
    left, right = order_sides()
    step = {"join": "R", "left_on": "k", "right_on": "key", "how": how}
    plan = parse_transform("t", [{"join": step}], LOC).apply(
        source(left, tmp_path, "left"), {"R": source(right, tmp_path, "right")}
    )
    expected = expected_join(how)
    assert expected.height > 50_000
    assert_frame_equal(execute(plan, tmp_path), expected)


@pytest.mark.parametrize("how", ["full", "right"])
@pytest.mark.parametrize("mode", list(RunMode))
def test_join_row_order_in_every_run_mode(
    how: str, mode: RunMode, write_config: Callable[..., Path], tmp_path: Path
) -> None:
    left, right = order_sides()
    left.write_csv(tmp_path / "left.csv")
    right.write_csv(tmp_path / "right.csv")
    config = write_config(
        {
            "p.yml": f"""
                pipeline:
                  p:
                    - {{ label: load, task: load_csv, args: [{{ filepath: left.csv, df_name: L }},
                         {{ filepath: right.csv, df_name: R }}] }}
                    - {{ label: join, task: transform, args: {{ name: j, input: L, save_df: J }} }}
                    - {{ label: save, task: save_csv, args: {{ filepath: out.csv, df_name: J }} }}
                transform:
                  j:
                    - join: {{ join: R, left_on: k, right_on: key, how: {how} }}
            """
        }
    )
    run_stages(load_project(config).graphs["p"], mode, {"OUTPUT_DIR": str(tmp_path)})
    expected = expected_join(how)
    assert_frame_equal(pl.read_csv(tmp_path / "out.csv", schema=expected.schema), expected)


# -- messages: Polars' errors in the YAML's terms, found before data where possible -------------


def test_a_second_join_bringing_a_clashing_column_suggests_right_select() -> None:
    step = {"join": "TEAMS", "left_on": "team", "right_on": "code", "how": "left"}
    transform = parse_transform("enrich", [{"join": step}, {"join": step}], LOC)
    teams = TEAMS.with_columns(id=pl.lit(5))
    with pytest.raises(TaskError) as info:
        transform.apply(PLAYERS, {"TEAMS": teams}, location=STAGE)
    assert str(info.value) == (
        "stage 'enrich' (#3): transform 'enrich', step 2 (join): frame 'TEAMS' has a column 'id'"
        " that the left frame has too, and 'id_right' is taken (by an earlier join): keep and"
        " rename the right columns with right_select, e.g. right_select: {code: null, id_2: id}"
    )


def test_validate_finds_the_clash_where_the_steps_fix_the_columns() -> None:
    join = {
        "join": "R",
        "right_select": {"code": None, "v": None},
        "left_on": "team",
        "right_on": "code",
        "how": "left",
    }
    body = [{"select": {"team": None, "v": None}}, {"join": join}, {"join": join}]
    with pytest.raises(ConfigError) as info:
        parse_transform("enrich", body, LOC)
    assert str(info.value) == (
        "transforms.yml, transform 'enrich': step 3 (join): frame 'R' (after right_select) has a"
        " column 'v' that the left frame has too, and 'v_right' is taken (by an earlier join):"
        " keep and rename the right columns with right_select, e.g. right_select:"
        " {code: null, v_2: v}"
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            [{"select": {"a": "team.name"}}],
            "step 1 (select): column path 'team.name': 'team' is String, not a struct, so it has"
            " no field 'name'",
        ),
        (
            [{"select": {"a": "info.bio.age.years"}}],
            "step 1 (select): column path 'info.bio.age.years': 'info.bio.age' is Int64, not a"
            " struct, so it has no field 'years'",
        ),
        (
            [{"select": {"a": "name.middle"}}],
            "step 1 (select): column path 'name.middle': struct 'name' has no field 'middle'"
            " (fields: first, last)",
        ),
        (
            [{"select": {"a": "idd"}}],
            "step 1 (select): column 'idd' not found - did you mean 'id'? (columns: id, team,"
            " name, info)",
        ),
        (
            [
                {
                    "join": {
                        "join": "TEAMS",
                        "right_select": {"code": "name.first"},
                        "left_on": "team",
                        "right_on": "code",
                        "how": "inner",
                    }
                }
            ],
            "step 1 (join): right_select of frame 'TEAMS': column 'name' not found"
            " (columns: code, title)",
        ),
        (
            [{"join": {"join": "TEAMS", "left_on": "id", "right_on": "code", "how": "inner"}}],
            "step 1 (join): join keys of different types (left_on 'id' is Int64 but right_on"
            " 'code' is String): give both sides the same dtype, with a model where the frames"
            " are loaded",
        ),
        (
            [{"drop": {"nope": True, "zip": None, "id": True}}],
            "step 1 (drop): columns 'nope', 'zip' not found (columns: id, team, name, info)",
        ),
    ],
)
def test_run_time_mistakes_are_located_task_errors(body: list, message: str) -> None:
    transform = parse_transform("enrich", body, LOC)
    with pytest.raises(TaskError) as info:
        transform.apply(PLAYERS, {"TEAMS": TEAMS}, location=STAGE)
    assert str(info.value) == f"stage 'enrich' (#3): transform 'enrich', {message}"


def test_an_input_whose_schema_fails_is_named_as_the_input(tmp_path: Path) -> None:
    transform = parse_transform("enrich", [{"drop": {"a": True}}], LOC)
    with pytest.raises(TaskError) as info:
        transform.apply(pl.scan_csv(tmp_path / "gone.csv"), {}, location=STAGE)
    assert info.value.message.startswith("transform 'enrich': its input frame cannot be read: ")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            [{"select": {"team": None}}, {"drop": {"id": True}}],
            "step 2 (drop): column 'id' not found (columns: team)",
        ),
        (
            [{"select": {"team": None, "tag": None}}, {"drop": {"id": True, "tga": True}}],
            "step 2 (drop): columns 'id', 'tga' not found (columns: team, tag)",
        ),
        (
            [
                {"select": {"team": None}},
                {
                    "join": {
                        "join": "R",
                        "right_select": {"code": None},
                        "left_on": "team",
                        "right_on": "code",
                        "how": "full",
                    }
                },
                {"drop": {"cod": True}},
            ],
            "step 3 (drop): column 'cod' not found - did you mean 'code'? (columns: team, code)",
        ),
        (
            [{"select": {"team": None}}, {"select": {"t": "tema.name"}}],
            "step 2 (select): column 'tema' not found - did you mean 'team'? (columns: team)",
        ),
        (
            [
                {"select": {"team": None}},
                {
                    "join": {
                        "join": "R",
                        "right_select": {"code": None},
                        "left_on": "teams",
                        "right_on": "code",
                        "how": "left",
                    }
                },
            ],
            "step 2 (join): left_on column 'teams' not found in the left frame - did you mean"
            " 'team'? (columns: team)",
        ),
    ],
)
def test_validate_finds_a_missing_column_where_the_steps_fix_the_columns(
    body: list, message: str
) -> None:
    with pytest.raises(ConfigError) as info:
        parse_transform("enrich", body, LOC)
    assert type(info.value) is ConfigError
    assert info.value.message == message
    assert info.value.location == LOC


@pytest.mark.parametrize(
    "body",
    [
        # The input's columns are not known from the transform: nothing to say before data.
        [{"drop": {"anything": True}}],
        [{"select": {"a": "x.y"}}, {"select": {"b": "a.deep.field"}}],
        [{"select": {"a": None}}, {"join": {"join": "R", "how": "cross"}}, {"drop": {"z": True}}],
    ],
)
def test_validate_is_silent_where_the_columns_depend_on_the_input(body: list) -> None:
    parse_transform("enrich", body, LOC)


def test_a_csv_header_with_dots_is_reached_with_an_escaped_dot(tmp_path: Path) -> None:
    path = tmp_path / "stats.csv"
    path.write_text("player,stats.goals\nAnn,3\nKim,5\n")
    body = [{"select": {"player": None, "goals": "stats\\.goals"}}]
    result = parse_transform("t", body, LOC).apply(pl.scan_csv(path), {}).collect()
    assert_frame_equal(result, pl.DataFrame({"player": ["Ann", "Kim"], "goals": [3, 5]}))
    typed = parse_transform("t", [{"select": {"goals": "stats.goals"}}], LOC)
    with pytest.raises(TaskError) as info:
        typed.apply(pl.scan_csv(path), {})
    assert info.value.message == (
        "transform 't', step 1 (select): column 'stats' not found (columns: player,"
        " stats\\.goals); to read the column 'stats.goals', escape its dot: stats\\.goals (a dot"
        " goes into a struct field)"
    )


def test_escaped_dots_reach_struct_fields_and_concat_columns() -> None:
    frame = pl.LazyFrame({"a.b": [{"c.d": "x"}], "e": ["y"]})
    body = [
        {
            "select": {
                "f": "a\\.b.c\\.d",
                "g": {"action": "concat", "args": {"cols": "a\\.b.c\\.d, e"}},
            }
        }
    ]
    result = parse_transform("t", body, LOC).apply(frame, {}).collect()
    assert_frame_equal(result, pl.DataFrame({"f": ["x"], "g": ["x y"]}))


# -- format templates ----------------------------------------------------------------------------


def format_select(template: str, cols: str = "team") -> list:
    return [{"select": {"out": {"action": "format", "args": {"template": template, "cols": cols}}}}]


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{{}}}", "{a}"),
        ("{{}} {}", "{} a"),
        ("set {{{}, {}}}", "set {a, 1}"),
        ("}} {} {{", "} a {"),
        ("$ {}", "$ a"),
        ("{}$REF_DATE", "a$REF_DATE"),
    ],
)
def test_a_format_template_writes_literal_braces_doubled(template: str, expected: str) -> None:
    cols = "team, id" if template.count("{}") - template.count("{{}}") == 2 else "team"
    result = run(format_select(template, cols), PLAYERS.head(1))
    assert result["out"].to_list() == [expected]


@pytest.mark.parametrize(
    ("template", "message"),
    [
        (
            "{x}{}",
            "template '{x}{}' has an unmatched '{' at character 1 (write {} for a value, {{ and }}"
            " for a literal brace)",
        ),
        (
            "{} }",
            "template '{} }' has an unmatched '}' at character 4 (write {} for a value, {{ and }}"
            " for a literal brace)",
        ),
        (
            "{}/${REF_DATE}",
            "template '{}/${REF_DATE}' has '${REF_DATE}' at character 4, which a format template"
            " does not expand (write {} for a value, {{ and }} for a literal brace)",
        ),
        (
            "{{}}",
            "template '{{}}' has 0 placeholders '{}' but cols has 1 column; they must match",
        ),
    ],
)
def test_format_template_errors(template: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_transform("enrich", format_select(template), LOC)
    assert info.value.message == f"step 1 (select): column 'out' (format): {message}"


def test_a_variable_in_a_format_template_is_warned_about_and_kept() -> None:
    body = format_select("$OUTPUT_DIR/{}/$CAPPORT_T_VAR/$NOT_SET/$$")
    transform = parse_transform("enrich", body, LOC, variables={"OUTPUT_DIR", "CAPPORT_T_VAR"})
    assert [(str(p.location), p.severity, p.message) for p in transform.warnings] == [
        (
            "transforms.yml, transform 'enrich'",
            "warning",
            "step 1 (select): column 'out' (format): template '$OUTPUT_DIR/{}/$CAPPORT_T_VAR/"
            "$NOT_SET/$$' contains $OUTPUT_DIR, $CAPPORT_T_VAR, which a format template does not"
            " expand: the text stays as written (variables are expanded in paths and URLs)",
        )
    ]
    result = transform.apply(PLAYERS.head(1), {}).collect()
    assert result["out"].to_list() == ["$OUTPUT_DIR/a/$CAPPORT_T_VAR/$NOT_SET/$$"]


def test_variables_default_to_the_built_ins_and_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CAPPORT_T_VAR", "x")
    transform = parse_transform("enrich", format_select("$REF_DATE {} $CAPPORT_T_VAR"), LOC)
    assert [p.message.split(" contains ")[1].split(",")[:2] for p in transform.warnings] == [
        ["$REF_DATE", " $CAPPORT_T_VAR"]
    ]


# -- through the CLI -----------------------------------------------------------------------------


CLI_PIPELINE = """
    pipeline:
      p:
        - { label: load, task: load_csv, args: [{ filepath: players.csv, df_name: P },
            { filepath: teams.csv, df_name: T }] }
        - { label: enrich, task: transform, args: { name: enrich, input: P, save_df: E } }
        - { label: save, task: save_csv, args: { filepath: out.csv, df_name: E } }
"""


@pytest.mark.parametrize(
    ("steps", "code", "message"),
    [
        (
            "- select: { player: null, goals: stats\\.goals, team: null }\n"
            "- join: { join: T, left_on: team, right_on: code, how: left }\n"
            "- join: { join: T, left_on: team, right_on: code, how: left }",
            2,
            "error: config/t.yml:5:7, transform 'enrich' (used by pipeline 'p', stage 'enrich'"
            " (#2)):"
            " step 3 (join): frame 'T' has a column 'goals' that the left frame has too, and"
            " 'goals_right' is taken (by an earlier join): keep and rename the right columns"
            " with right_select, e.g. right_select: {code: null, goals_2: goals}",
        ),
        (
            "- select: { g: stats.goals }",
            2,
            "error: config/t.yml:3:7, transform 'enrich' (used by pipeline 'p', stage 'enrich'"
            " (#2)):"
            " step 1 (select): column 'stats' not found (columns: player, stats\\.goals, team);"
            " to read the column 'stats.goals', escape its dot: stats\\.goals (a dot goes into a"
            " struct field)",
        ),
        (
            "- select: { g: team.name }",
            2,
            "error: config/t.yml:3:7, transform 'enrich' (used by pipeline 'p', stage 'enrich'"
            " (#2)):"
            " step 1 (select): column path 'team.name': 'team' is String, not a struct, so it"
            " has no field 'name'",
        ),
        (
            "- drop: { stats: true }",
            2,
            "error: config/t.yml:3:7, transform 'enrich' (used by pipeline 'p', stage 'enrich'"
            " (#2)):"
            " step 1 (drop): column 'stats' not found - did you mean 'stats.goals'? (columns:"
            " player, stats.goals, team)",
        ),
        (
            "- select: { player: null }\n- drop: { team: true }",
            2,
            "error: config/t.yml:4:7, transform 'enrich' (used by pipeline 'p', stage 'enrich'"
            " (#2)): step 2 (drop): column 'team' not found (columns: player)",
        ),
    ],
)
def test_transform_mistakes_through_the_cli(
    steps: str, code: int, message: str, write_config: Callable[..., Path], tmp_path: Path
) -> None:
    (tmp_path / "players.csv").write_text("player,stats.goals,team\nAnn,3,a\nKim,5,b\n")
    (tmp_path / "teams.csv").write_text("code,goals\na,10\nb,20\n")
    body = "\n".join(f"    {line}" for line in steps.splitlines())
    config = write_config({"p.yml": CLI_PIPELINE, "t.yml": f"transform:\n  enrich:\n{body}\n"})
    result = capport("run", "-c", str(config), "-p", "p", cwd=tmp_path)
    assert result.returncode == code, result.stderr
    assert message in result.stderr.splitlines()
    assert not (tmp_path / "out.csv").exists()


def test_an_escaped_dot_and_literal_braces_run_through_the_cli(
    write_config: Callable[..., Path], tmp_path: Path
) -> None:
    (tmp_path / "players.csv").write_text("player,stats.goals,team\nAnn,3,a\nKim,5,b\n")
    (tmp_path / "teams.csv").write_text("code,goals\na,10\nb,20\n")
    steps = (
        "    - select: { player: null, goals: stats\\.goals,\n"
        "        tag: { action: format, args: { template: '{{{}}}', cols: team } } }\n"
    )
    config = write_config({"p.yml": CLI_PIPELINE, "t.yml": f"transform:\n  enrich:\n{steps}"})
    result = capport("run", "-c", str(config), "-p", "p", "--no-preview", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out.csv").read_text() == "player,goals,tag\nAnn,3,{a}\nKim,5,{b}\n"
