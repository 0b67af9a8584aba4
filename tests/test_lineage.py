"""Column lineage (core/lineage.py): each step kind's own, their composition through a transform,
the fallback to the whole input, the built-in tasks' lineages, and the example pipeline."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import polars as pl
import pytest

from capport_dagster.core.builtin_tasks import DEFAULT_REGISTRY
from capport_dagster.core.graph import PipelineGraph, StageNode, load_project
from capport_dagster.core.lineage import by_name, stage_lineage, whole_input
from capport_dagster.core.modes import RunMode
from capport_dagster.core.registry import TaskRegistry
from capport_dagster.core.steps.base import Schema
from capport_dagster.core.steps.select import SelectStep
from capport_dagster.core.transforms import Transform, parse_select, parse_transform
from capport_dagster.errors import Location
from tests.conftest import EXAMPLE_CONFIG, PolarsExecutions, run_stages

WriteConfig = Callable[..., Path]
LOC = Location(file="t.yml", section="transform", name="t")

#: The input of most transforms here, and a second frame for joins and sql contexts.
PLAYERS = pl.Schema(
    {
        "id": pl.Int64,
        "name": pl.String,
        "team": pl.String,
        "stats": pl.Struct({"goals": pl.Int64, "assists": pl.Int64}),
        "tags": pl.List(pl.String),
        "games": pl.List(pl.Struct({"gid": pl.Int64, "opp": pl.String})),
        "born": pl.String,
    }
)
TEAMS = pl.Schema({"code": pl.String, "title": pl.String, "name": pl.String})


def lineage(body: list, schema: pl.Schema = PLAYERS, **frames: pl.Schema) -> dict:
    """The transform's lineage, its columns checked against what Polars plans for it: a
    lineage naming other columns than the frame has would be wrong however its sources look."""
    transform = parse_transform("t", body, LOC)
    frames = {"TEAMS": TEAMS, **frames}
    output, problem = transform.output_schema(schema, frames)
    assert problem is None, problem
    assert output is not None
    found = transform.lineage(schema, frames)
    assert list(found) == output.names()
    return found


def me(*columns: str) -> tuple:
    """Sources in the transform's own input frame."""
    return tuple((None, column) for column in columns)


IDENTITY = {name: me(name) for name in PLAYERS}


# -- each step kind ------------------------------------------------------------------------------


def test_select_paths_actions_expressions_and_literals() -> None:
    found = lineage(
        [
            {
                "select": {
                    "id": None,
                    "who": "name",
                    "goals": "stats.goals",
                    "plain": {"args": "team"},
                    "url": {"action": "format", "args": {"template": "{}/{}", "cols": "team, id"}},
                    "full": {"action": "concat", "args": {"cols": ["name", "stats.assists"]}},
                    "there": "^born$",
                    "missing": "^nickname$",
                    "three": {"int64": 3},
                    "sql": {"sql": "id * 2 + length(team)"},
                    "text": {"cast": {"column": "id", "dtype": "str"}},
                    "first": {"coalesce": ["^nickname$", "name"]},
                    "filled": {"fill_null": {"column": "born", "value": {"col": "team"}}},
                }
            }
        ]
    )
    assert found == {
        "id": me("id"),
        "who": me("name"),
        "goals": me("stats"),
        "plain": me("team"),
        "url": me("team", "id"),
        "full": me("name", "stats"),
        "there": me("born"),
        "missing": (),
        "three": (),
        "sql": me("id", "team"),
        "text": me("id"),
        "first": me("name"),
        "filled": me("born", "team"),
    }


def test_with_columns_replaces_in_place_appends_and_reads_the_input() -> None:
    found = lineage(
        [{"with_columns": {"team": "name", "copy": "team", "n": {"int64": 1}, "id": "id"}}]
    )
    assert found == {**IDENTITY, "team": me("name"), "copy": me("team"), "n": ()}
    assert list(found)[:3] == ["id", "name", "team"]


@pytest.mark.parametrize(
    "step",
    [
        {"filter": {"team": {"eq": "EDM"}, "stats.goals": {"gt": 3}}},
        {"filter": "id > 3 AND name = 'x'"},
        {"sort": [{"name": "desc"}, "stats.goals"]},
        {"limit": 2},
        {"head": 2},
        {"tail": 2},
        {"distinct": {"subset": ["team"], "keep": "last"}},
        {"distinct": True},
        {"time": {"include": ["born"], "into": "%Y-%m-%d"}},
        {"uniform_id_type": {"include": ["id"], "into": "uint32"}},
        {"unnest_list": "tags"},
    ],
)
def test_steps_that_keep_every_column_give_each_from_itself(step: dict) -> None:
    assert lineage([step]) == IDENTITY


def test_drop_rename_and_fill_null() -> None:
    assert lineage([{"drop": {"tags": True, "games": None, "born": False}}]) == {
        name: sources for name, sources in IDENTITY.items() if name not in ("tags", "games")
    }
    swapped = lineage([{"rename": {"id": "name", "name": "id", "team": "club"}}])
    renamed = {"id": "name", "name": "id", "team": "club"}
    assert swapped == {renamed.get(name, name): me(name) for name in PLAYERS}
    assert list(swapped)[:3] == ["name", "id", "club"]
    filled = lineage([{"fill_null": {"born": {"col": "team"}, "id": 0, "name": {"sql": "team"}}}])
    assert filled == {**IDENTITY, "born": me("born", "team"), "name": me("name", "team")}


def test_group_by_keys_and_aggregations() -> None:
    found = lineage(
        [
            {
                "group_by": {
                    "by": ["team", "stats.goals"],
                    "agg": {
                        "players": {"count": "id"},
                        "assists": {"sum": "stats.assists"},
                        "names": {"list": {"concat": {"columns": ["name", "born"]}}},
                        "one": {"first": {"int64": 1}},
                    },
                }
            }
        ]
    )
    assert found == {
        "team": me("team"),
        "goals": me("stats"),
        "players": me("id"),
        "assists": me("stats"),
        "names": me("name", "born"),
        "one": (),
    }


def test_unnest_struct_fields_come_from_the_struct_where_it_stood() -> None:
    found = lineage([{"unnest_struct": "stats", "unnest_list_of_struct": ["games"]}])
    assert list(found) == ["id", "name", "team", "goals", "assists", "tags", "gid", "opp", "born"]
    assert found == {
        **{name: me(name) for name in ("id", "name", "team", "tags", "born")},
        "goals": me("stats"),
        "assists": me("stats"),
        "gid": me("games"),
        "opp": me("games"),
    }


def test_an_unnest_after_a_step_gets_the_struct_fields_from_polars() -> None:
    # After the select the dtypes are not tracked: the unnest asks for the exact schema.
    found = lineage(
        [
            {"select": {"who": "name", "s": "stats", "g": "games", "sg": "stats.goals"}},
            {"unnest_struct": "s", "unnest_list_of_struct": "g"},
        ]
    )
    assert found == {
        "who": me("name"),
        "goals": me("stats"),
        "assists": me("stats"),
        "gid": me("games"),
        "opp": me("games"),
        "sg": me("stats"),
    }


def test_sql_a_query_of_one_table_is_read_item_by_item() -> None:
    found = lineage(
        [
            {
                "sql": "SELECT id, upper(name) AS shout, 1 AS one, id + length(team),"
                ' "born" AS "b, c", count(*) OVER (PARTITION BY team) AS mates'
                " FROM self WHERE id > 1 ORDER BY name LIMIT 5"
            }
        ]
    )
    assert found == {
        "id": me("id"),
        "shout": me("name"),
        "one": (),
        "id:1": me("id", "team"),  # Polars names an unnamed item after its first column
        "b, c": me("born"),
        "mates": me("team"),
    }
    star = lineage([{"sql": "SELECT *, stats.goals AS g FROM self"}])
    assert star == {**IDENTITY, "g": me("stats")}
    # a column qualified by the table's alias reads, to Polars, as a column `p`: not told
    assert lineage([{"sql": "SELECT p.id, name FROM self p"}]) == {"id": None, "name": me("name")}


def test_sql_of_a_context_frame_and_a_group_by() -> None:
    found = lineage(
        [
            {
                "sql": "SELECT title, count(code) AS n, max(name) m FROM TEAMS GROUP BY title",
                "sql_context": ["TEAMS"],
            }
        ]
    )
    assert found == {
        "title": (("TEAMS", "title"),),
        "n": (("TEAMS", "code"),),
        "m": (("TEAMS", "name"),),
    }


@pytest.mark.parametrize(
    "query",
    [
        "SELECT p.id, t.title FROM self p JOIN TEAMS t ON p.team = t.code",
        "SELECT id FROM self UNION ALL SELECT 1 FROM TEAMS",
        "WITH x AS (SELECT * FROM self) SELECT id, name FROM x",
        "SELECT * EXCLUDE (stats) FROM self",
        "SELECT id FROM self WHERE team IN (SELECT code FROM TEAMS)",
        "SELECT id, title FROM self, TEAMS",
    ],
)
def test_sql_that_polars_cannot_tell_item_by_item_is_not_told(query: str) -> None:
    found = lineage([{"sql": query, "sql_context": ["TEAMS"]}])
    assert found and all(sources is None for sources in found.values())


# -- joins ---------------------------------------------------------------------------------------

LEFT = pl.Schema({"k": pl.Int64, "a": pl.Int64, "v": pl.Int64, "kk": pl.Int64})
RIGHT = pl.Schema({"a": pl.Int64, "kk": pl.Int64, "v": pl.Int64, "k": pl.Int64, "w": pl.Int64})


def join(how: str, **extra: Any) -> dict:
    keys = {} if how == "cross" else {"left_on": "k", "right_on": "kk"}
    return lineage([{"join": {"right": "R", "how": how, **keys, **extra}}], LEFT, R=RIGHT)


def r(*columns: str) -> tuple:
    return tuple(("R", column) for column in columns)


@pytest.mark.parametrize(
    ("how", "expected"),
    [
        (
            "left",
            {
                "k": (*me("k"), *r("kk")),
                "a": me("a"),
                "v": me("v"),
                "kk": me("kk"),
                "a_right": r("a"),
                "v_right": r("v"),
                "k_right": r("k"),
                "w": r("w"),
            },
        ),
        (
            "right",  # the left key goes, the right one stays: k is the right frame's own k
            {
                "a": me("a"),
                "v": me("v"),
                "kk": me("kk"),
                "a_right": r("a"),
                "kk_right": (*me("k"), *r("kk")),
                "v_right": r("v"),
                "k": r("k"),
                "w": r("w"),
            },
        ),
        (
            "full",  # keys are not coalesced: each side's key from its side
            {
                **{name: me(name) for name in LEFT},
                "a_right": r("a"),
                "kk_right": r("kk"),
                "v_right": r("v"),
                "k_right": r("k"),
                "w": r("w"),
            },
        ),
        (
            "cross",
            {
                **{name: me(name) for name in LEFT},
                "a_right": r("a"),
                "kk_right": r("kk"),
                "v_right": r("v"),
                "k_right": r("k"),
                "w": r("w"),
            },
        ),
    ],
)
def test_join_hows_keys_and_suffixes(how: str, expected: dict) -> None:
    assert join(how) == expected


def test_an_inner_join_on_shared_key_names_coalesces_each_key() -> None:
    found = lineage(
        [{"join": {"right": "R", "how": "inner", "left_on": ["k", "a"], "right_on": ["k", "a"]}}],
        LEFT,
        R=RIGHT,
    )
    assert found == {
        "k": (*me("k"), *r("k")),
        "a": (*me("a"), *r("a")),
        "v": me("v"),
        "kk": me("kk"),
        "kk_right": r("kk"),
        "v_right": r("v"),
        "w": r("w"),
    }


def test_join_right_select_and_prefixes() -> None:
    found = join(
        "left",
        right_select={"kk": None, "total": {"sql": "v + w"}, "one": {"str": "x"}},
        left_prefix="l_",
        right_prefix="r_",
        left_on="l_k",
        right_on="r_kk",
    )
    assert found == {
        **{name: me(name) for name in LEFT},
        "l_k": (*me("k"), *r("kk")),
        "l_a": me("a"),
        "l_v": me("v"),
        "l_kk": me("kk"),
        "kk_right": r("kk"),
        "total": r("v", "w"),
        "one": (),
        "r_total": r("v", "w"),
        "r_one": (),
    }


# -- composition and the fallback ----------------------------------------------------------------


def test_lineage_composes_through_the_steps() -> None:
    found = lineage(
        [
            {"select": {"id": None, "who": "name", "team": None, "g": "stats.goals"}},
            {"with_columns": {"label": {"format": {"template": "{} #{}", "columns": "who, id"}}}},
            {"join": {"right": "TEAMS", "left_on": "team", "right_on": "code", "how": "left"}},
            {"rename": {"title": "team_title", "name": "team_name"}},
            {"filter": {"g": {"gt": 0}}},
            {
                "group_by": {
                    "by": "team",
                    "agg": {"labels": {"list": "label"}, "t": {"first": "team_title"}},
                }
            },
            {"sql": "SELECT team, labels, t || team AS both FROM self"},
            {"drop": {"labels": True}},
        ]
    )
    assert found == {
        "team": (*me("team"), ("TEAMS", "code")),
        "both": (("TEAMS", "title"), *me("team"), ("TEAMS", "code")),
    }


@dataclass(frozen=True)
class Shout:
    """A step kind of a user's own, with no `lineage`: its columns come from everything."""

    kind: ClassVar[str] = "shout"

    def reads(self) -> tuple[str, ...]:
        return ()

    def check(self, schema: Schema, frames: Mapping[str, pl.LazyFrame]) -> list[str]:
        return []

    def apply(self, frame: pl.LazyFrame, frames: Mapping[str, pl.LazyFrame]) -> pl.LazyFrame:
        return frame.with_columns(loud=pl.col("who").str.to_uppercase())


def test_a_step_without_lineage_makes_its_columns_from_everything() -> None:
    pick = SelectStep(parse_select({"who": "name", "n": {"int64": 1}}, LOC, "step 1"))
    again = SelectStep(parse_select({"who": None}, LOC, "step 3"))
    assert Transform("t", (pick, Shout(), again)).lineage(PLAYERS, {}) == {"who": None}
    assert Transform("t", (pick, Shout())).lineage(PLAYERS, {}) == {
        "who": None,
        "n": None,
        "loud": None,
    }


# -- stages --------------------------------------------------------------------------------------

PIPELINE = """
pipeline:
  p:
    - { label: load, task: load_csv, args: [{ filepath: p.csv, df_name: P },
                                            { filepath: t.csv, df_name: T }] }
    - { label: shape, task: transform, args: { name: shape, input: P, save_df: Q } }
    - { label: custom, task: %s, args: { input: Q, other: T, output: R } }
    - { label: save, task: save_csv, args: { filepath: out.csv, df_name: R } }
transform:
  shape:
    - select: { id: null, who: name, team: null, tagged: { concat: { columns: [name, team] } } }
    - join: { right: T, right_select: { team: code, title: null }, left_on: team, right_on: team,
              how: left }
    - sql: "SELECT id, who, title, 'x' AS x, team FROM self"
"""
P = pl.Schema({"name": pl.String, "id": pl.Int64, "team": pl.String})
T = pl.Schema({"code": pl.String, "title": pl.String})
Q = pl.Schema(
    {"id": pl.Int64, "who": pl.String, "title": pl.String, "x": pl.String, "team": pl.String}
)


def custom_graph(write_config: WriteConfig, **task: Any) -> PipelineGraph:
    registry = DEFAULT_REGISTRY.copy()
    registry.task(
        "custom",
        reads=lambda a: [a["input"], a["other"]],
        writes=lambda a: [a["output"]],
        **task,
    )(lambda args, frames, ctx: {args["output"]: frames[args["input"]]})
    config = write_config({"p.yml": PIPELINE % "custom"})
    return load_project(config, registry).graphs["p"]


def at(graph: PipelineGraph, label: str, schemas: Mapping[str, pl.Schema]) -> dict:
    node = graph.by_label[label]
    return stage_lineage(
        node,
        {name: schemas[name] for name in node.reads},
        {name: schemas[name] for name in node.writes},
    )


def test_stages_load_transform_fall_back_and_sink(write_config: WriteConfig) -> None:
    graph = custom_graph(write_config)
    schemas = {"P": P, "T": T, "Q": Q, "R": Q}
    assert at(graph, "load", schemas) == {
        "P": {"name": (), "id": (), "team": ()},
        "T": {"code": (), "title": ()},
    }
    assert at(graph, "shape", schemas) == {
        "Q": {
            "id": (("P", "id"),),
            "who": (("P", "name"),),
            "title": (("T", "title"),),
            "x": (),
            "team": (("P", "team"), ("T", "code")),
        }
    }
    whole = (("Q", "id"), ("Q", "who"), ("Q", "title"), ("Q", "x"), ("Q", "team"))
    whole += (("T", "code"), ("T", "title"))
    assert at(graph, "custom", schemas) == {"R": dict.fromkeys(Q, whole)}
    assert at(graph, "save", schemas) == {}
    assert graph.by_label["custom"].spec.lineage is whole_input


def test_a_task_may_declare_its_lineage(write_config: WriteConfig) -> None:
    graph = custom_graph(write_config, lineage=by_name)
    schemas = {"Q": Q, "T": T, "R": pl.Schema({"title": pl.String, "id": pl.Int64, "new": pl.Int8})}
    whole = (*(("Q", name) for name in Q), ("T", "code"), ("T", "title"))
    # a column of the same name in both frames comes from the main input, the first read
    assert at(graph, "custom", schemas) == {
        "R": {"title": (("Q", "title"),), "id": (("Q", "id"),), "new": whole}
    }


@pytest.mark.parametrize(
    "declared",
    [
        lambda args, inputs, outputs: 1 / 0,
        lambda args, inputs, outputs: {"R": {"id": [("Q", "nope"), ("Z", "id")]}},
        lambda args, inputs, outputs: {"R": {"id": 42, "x": ["ab"]}},
        lambda args, inputs, outputs: None,
    ],
)
def test_a_lineage_that_fails_or_names_unknown_columns_falls_back(
    write_config: WriteConfig, declared: Callable
) -> None:
    graph = custom_graph(write_config, lineage=declared)
    whole = (*(("Q", name) for name in Q), ("T", "code"), ("T", "title"))
    assert at(graph, "custom", {"Q": Q, "T": T, "R": Q}) == {"R": dict.fromkeys(Q, whole)}


def test_sources_come_main_input_first_in_schema_order_without_duplicates(
    write_config: WriteConfig,
) -> None:
    def backwards(args: Any, inputs: Mapping, outputs: Mapping) -> dict:
        return {
            "R": {"id": [("T", "title"), ("Q", "who"), ("T", "code"), ("Q", "id"), ("Q", "who")]}
        }

    graph = custom_graph(write_config, lineage=backwards)
    found = at(graph, "custom", {"Q": Q, "T": T, "R": pl.Schema({"id": pl.Int64})})
    assert found == {"R": {"id": (("Q", "id"), ("Q", "who"), ("T", "code"), ("T", "title"))}}


def test_a_frame_or_input_schema_not_given_is_not_guessed(write_config: WriteConfig) -> None:
    graph = custom_graph(write_config)
    node = graph.by_label["shape"]
    # T's schema unknown: the join cannot be told, every column falls back to what is known
    assert stage_lineage(node, {"P": P}, {"Q": Q}) == {
        "Q": dict.fromkeys(Q, (("P", "name"), ("P", "id"), ("P", "team")))
    }
    assert stage_lineage(node, {"P": P, "T": T}, {}) == {"Q": {}}


def test_recon_keeps_the_left_columns_and_compares_the_common_ones(
    write_config: WriteConfig,
) -> None:
    config = write_config(
        {
            "p.yml": """
            pipeline:
              p:
                - { label: load, task: load_csv, args: [{ filepath: a.csv, df_name: A },
                                                        { filepath: b.csv, df_name: B }] }
                - { label: recon, task: recon,
                    args: { left_df: A, right_df: B, on: id, save_neq_rows: DIFF } }
                - { label: save, task: save_csv, args: { filepath: out.csv, df_name: DIFF } }
            """
        }
    )
    graph = load_project(config).graphs["p"]
    a = pl.Schema({"id": pl.Int64, "name": pl.String, "extra": pl.Int8})
    b = pl.Schema({"name": pl.String, "other": pl.Int8, "id": pl.Int64})
    diff = pl.Schema({**a, "recon": pl.String})
    assert at(graph, "recon", {"A": a, "B": b, "DIFF": diff}) == {
        "DIFF": {
            "id": (("A", "id"),),
            "name": (("A", "name"),),
            "extra": (("A", "extra"),),
            "recon": (("A", "id"), ("A", "name"), ("B", "name"), ("B", "id")),
        }
    }


def test_http_rows_come_from_the_url_and_param_columns(write_config: WriteConfig) -> None:
    config = write_config(
        {
            "p.yml": """
            pipeline:
              p:
                - { label: load, task: load_csv, args: { filepath: u.csv, df_name: U } }
                - { label: each, task: http_request,
                    args: { df_from: U, url_column: links.landing, df_to: ROWS } }
                - label: one
                  task: http_single_request
                  args:
                    template: http://127.0.0.1:1/teams
                    url_params: [{ df_from: U, param_column: team },
                                 { df_from: ROWS, param_column: x.y }]
                    df_to: TEAMS
                - { label: none, task: http_single_request,
                    args: { template: "http://127.0.0.1:1/all", url_params: [], df_to: ALL } }
                - { label: save, task: save_csv, args: [{ filepath: a.csv, df_name: TEAMS },
                                                        { filepath: b.csv, df_name: ALL }] }
            """
        }
    )
    graph = load_project(config).graphs["p"]
    u = pl.Schema({"team": pl.String, "links": pl.Struct({"landing": pl.String})})
    rows = pl.Schema({"x": pl.Struct({"y": pl.Int64}), "z": pl.Int64})
    out = pl.Schema({"id": pl.Int64, "name": pl.String})
    schemas = {"U": u, "ROWS": rows, "TEAMS": out, "ALL": out}
    assert at(graph, "each", schemas) == {"ROWS": dict.fromkeys(rows, (("U", "links"),))}
    assert at(graph, "one", schemas) == {
        "TEAMS": dict.fromkeys(out, (("U", "team"), ("ROWS", "x")))
    }
    assert at(graph, "none", schemas) == {"ALL": dict.fromkeys(out, ())}


# -- the example pipeline ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def enrich_events() -> tuple[PipelineGraph, dict[str, pl.Schema]]:
    """The example `enrich_events` pipeline and the schema of each frame version, by
    `stage:FRAME`, as a run of it gives them."""
    graph = load_project(EXAMPLE_CONFIG).graphs["enrich_events"]
    with tempfile.TemporaryDirectory() as output:
        variables = {"CONFIG_DIR": str(EXAMPLE_CONFIG), "OUTPUT_DIR": output}
        store = run_stages(graph, RunMode.SYNC_EAGER, variables)
    return graph, {str(version): frame.lazy().collect_schema() for version, frame in store.items()}


def example_lineage(
    graph: PipelineGraph, schemas: Mapping[str, pl.Schema], node: StageNode
) -> dict:
    return stage_lineage(
        node,
        {name: schemas[str(version)] for name, version in node.inputs.items()},
        {version.name: schemas[str(version)] for version in node.outputs},
    )


def test_the_example_join_players_stage(enrich_events: tuple) -> None:
    graph, schemas = enrich_events
    found = example_lineage(graph, schemas, graph.by_label["join_players"])
    assert found == {
        "EVENTS_ENRICHED": {
            "event_id": (("EVENTS_WITH_TEAMS", "event_id"),),
            "game_id": (("EVENTS_WITH_TEAMS", "game_id"),),
            "period": (("EVENTS_WITH_TEAMS", "period"),),
            "clock": (("EVENTS_WITH_TEAMS", "clock"),),
            "event": (("EVENTS_WITH_TEAMS", "event"),),
            "player_id": (("EVENTS_WITH_TEAMS", "player_id"), ("PLAYERS", "player_id")),
            "event_url": (("EVENTS_WITH_TEAMS", "event_url"),),
            "team": (("EVENTS_WITH_TEAMS", "team"),),
            "player_name": (("PLAYERS", "first_name"), ("PLAYERS", "last_name")),
            "position": (("PLAYERS", "position"),),
        }
    }


def test_every_stage_of_the_example_without_running_polars(
    enrich_events: tuple, monkeypatch: pytest.MonkeyPatch
) -> None:
    graph, schemas = enrich_events
    executions = PolarsExecutions(monkeypatch)
    found = {node.label: example_lineage(graph, schemas, node) for node in graph.nodes}
    assert executions.passes == 0
    events = ("event_id", "game_id", "period", "time_in_period", "event_type", "player_id")
    assert found["load_events"] == {"EVENTS": dict.fromkeys((*events, "team_id"), ())}
    assert found["load_reference"]["PLAYERS"]["first_name"] == ()
    assert found["shape_events"] == {
        "EVENTS_SHAPED": {
            "event_id": (("EVENTS", "event_id"),),
            "game_id": (("EVENTS", "game_id"),),
            "period": (("EVENTS", "period"),),
            "clock": (("EVENTS", "time_in_period"),),
            "event": (("EVENTS", "event_type"),),
            "player_id": (("EVENTS", "player_id"),),
            "team_id": (("EVENTS", "team_id"),),
            "event_url": (("EVENTS", "event_id"), ("EVENTS", "game_id")),
        }
    }
    shaped = ("event_id", "game_id", "period", "clock", "event", "player_id")
    assert found["join_teams"] == {
        "EVENTS_WITH_TEAMS": {
            **{name: (("EVENTS_SHAPED", name),) for name in shaped},
            "team_id": (("EVENTS_SHAPED", "team_id"), ("TEAMS", "team_id")),
            "event_url": (("EVENTS_SHAPED", "event_url"),),
            "team": (("TEAMS", "name"),),
        }
    }
    assert found["save_report"] == {}


def test_a_registry_without_lineage_falls_back_for_every_task() -> None:
    # TaskRegistry.task without lineage: the spec's default, the whole input.
    registry = TaskRegistry()
    registry.task("t", reads=lambda a: [], writes=lambda a: [])(lambda *a: {})
    assert registry.get("t").lineage is whole_input
