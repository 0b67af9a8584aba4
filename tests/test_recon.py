"""The `recon` task (core/recon.py): exact result frames, laziness and located errors."""

from __future__ import annotations

import json
import os
import re
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from capport_dagster.core import recon as recon_module
from capport_dagster.core.builtin_tasks import DEFAULT_REGISTRY
from capport_dagster.core.graph import load_project
from capport_dagster.core.modes import RunMode
from capport_dagster.core.recon import ReconArgs, recon
from capport_dagster.errors import Location, TaskError, ValidationError
from tests.conftest import PolarsExecutions, capport, run_stages
from tests.services import require_service

LEFT = pl.DataFrame(
    {
        "id": [1, 2, 3, 4, None],
        "name": ["ann", "bob", "cy", None, "zed"],
        "note": ["l1", "l2", "l3", "l4", "l5"],  # only on the left: rides along
    }
)
RIGHT = pl.DataFrame(
    {
        "id": [4, 2, None, 1, 9],
        "name": [None, "BOB", "zed", "ann", "x"],
        "team": ["t", "t", "t", "t", "t"],  # only on the right: not compared
    }
)


def result(ids: list, names: list, notes: list, recons: list) -> pl.DataFrame:
    return pl.DataFrame(
        {"id": ids, "name": names, "note": notes, "recon": recons},
        schema={"id": pl.Int64, "name": pl.String, "note": pl.String, "recon": pl.String},
    )


def test_the_public_api():
    assert recon_module.__all__ == [
        "DIFFERS",
        "MISSING",
        "RECON_COLUMN",
        "ReconArgs",
        "recon",
        "register_recon_task",
    ]
    assert "recon" in DEFAULT_REGISTRY
    assert not DEFAULT_REGISTRY.get("recon").waits_on_io


# --- the result ------------------------------------------------------------------------------


def test_with_on_rows_are_missing_or_differ_in_left_order():
    got = recon(LEFT, RIGHT, ["id"]).collect()
    # 1 and 4 agree (4's null name equals the right's null); null id matches the null id and
    # agrees; 2 differs in name; 3 has no key on the right.
    assert_frame_equal(got, result([2, 3], ["bob", "cy"], ["l2", "l3"], ["differs", "missing"]))


def test_without_on_every_common_column_is_the_key_and_unmatched_rows_are_missing():
    got = recon(LEFT, RIGHT).collect()
    assert_frame_equal(got, result([2, 3], ["bob", "cy"], ["l2", "l3"], ["missing", "missing"]))


def test_on_every_common_column_gives_only_missing():
    got = recon(LEFT, RIGHT, ["name", "id"]).collect()
    assert_frame_equal(got, result([2, 3], ["bob", "cy"], ["l2", "l3"], ["missing", "missing"]))


def test_nulls_compare_equal_to_nulls():
    left = pl.DataFrame(
        {"k": [None, None, 1], "v": [None, 1, None]}, schema={"k": pl.Int64, "v": pl.Int64}
    )
    right = pl.DataFrame({"k": [None, 1], "v": [None, 2]}, schema={"k": pl.Int64, "v": pl.Int64})
    got = recon(left, right, ["k"]).collect()
    assert_frame_equal(
        got,
        pl.DataFrame(
            {"k": [None, 1], "v": [1, None], "recon": ["differs", "differs"]},
            schema={"k": pl.Int64, "v": pl.Int64, "recon": pl.String},
        ),
    )


def test_struct_and_list_columns_compare_by_value_and_nan_equals_nan():
    left = pl.DataFrame({"k": [1, 2], "s": [{"a": 1}, {"a": 2}], "li": [[1], [2]]})
    right = pl.DataFrame({"k": [2, 1], "s": [{"a": 3}, {"a": 1}], "li": [[2], [1]]})
    got = recon(left, right, ["k"]).collect()
    assert_frame_equal(got, left.filter(pl.col("k") == 2).with_columns(recon=pl.lit("differs")))
    floats = pl.DataFrame({"x": [1.0, float("nan")]})
    got = recon(floats, pl.DataFrame({"x": [float("nan")]})).collect()
    assert_frame_equal(got, pl.DataFrame({"x": [1.0], "recon": ["missing"]}))


def test_a_row_agrees_when_any_right_row_with_its_key_is_identical():
    left = pl.DataFrame({"k": [1, 2], "v": ["a", "b"]})
    right = pl.DataFrame({"k": [1, 1, 2, 2], "v": ["x", "a", "y", "z"]})
    got = recon(left, right, ["k"]).collect()
    assert_frame_equal(got, pl.DataFrame({"k": [2], "v": ["b"], "recon": ["differs"]}))


def test_a_left_row_that_occurs_twice_is_reported_twice():
    left = pl.DataFrame({"k": [5, 1, 5], "v": ["a", "b", "a"]})
    right = pl.DataFrame({"k": [1], "v": ["b"]})
    got = recon(left, right, ["k"]).collect()
    assert_frame_equal(
        got, pl.DataFrame({"k": [5, 5], "v": ["a", "a"], "recon": ["missing", "missing"]})
    )


@pytest.mark.parametrize("on", [None, ["id"]])
def test_frames_that_agree_give_an_empty_frame_with_the_left_columns_and_recon(on):
    right = LEFT.drop("note").reverse()
    got = recon(LEFT, right, on).collect()
    assert_frame_equal(got, result([], [], [], []))


def test_the_result_is_a_plan_nothing_is_computed(monkeypatch):
    executions = PolarsExecutions(monkeypatch)
    plan = recon(LEFT.lazy(), RIGHT.lazy(), ["id"])
    assert isinstance(plan, pl.LazyFrame)
    assert executions.passes == 0
    assert plan.collect_schema() == pl.Schema(
        {"id": pl.Int64, "name": pl.String, "note": pl.String, "recon": pl.String}
    )


# --- errors at run time ------------------------------------------------------------------------

WHERE = Location(file="p.yml", section="pipeline", name="p", stage="recon", index=3)


@pytest.mark.parametrize(
    ("left", "right", "on", "message"),
    [
        (
            LEFT,
            RIGHT,
            ["id", "nme"],
            "recon: on column 'nme' not found in frame 'L' (columns: id, name, note)",
        ),
        (
            LEFT,
            RIGHT,
            ["note"],
            "recon: on column 'note' not found in frame 'R' (columns: id, name, team)",
        ),
        (
            LEFT,
            RIGHT.with_columns(pl.col("id").cast(pl.String), pl.col("name").cast(pl.Categorical)),
            ["id"],
            "recon: the frames' types differ in columns 'id' (Int64 in 'L', String in 'R'), "
            "'name' (String in 'L', Categorical in 'R'); cast one side (a model or a transform) "
            "so that the values compare",
        ),
        (
            LEFT,
            pl.DataFrame({"x": [1]}),
            None,
            "recon: frames 'L' (id, name, note) and 'R' (x) have no column in common; rename "
            "columns in a transform, or give on:",
        ),
        (
            LEFT.with_columns(recon=pl.lit("x")),
            RIGHT,
            None,
            "recon: frame 'L' already has a column 'recon', which the result adds; rename or "
            "drop it in a transform first",
        ),
    ],
    ids=["on not in left", "on not in right", "dtypes differ", "nothing in common", "recon column"],
)
def test_run_time_errors_are_located(left, right, on, message):
    with pytest.raises(TaskError) as info:
        recon(left.lazy(), right.lazy(), on, names=("L", "R"), location=WHERE)
    assert str(info.value) == f"p.yml, pipeline 'p', stage 'recon' (#3): {message}"


# --- in a pipeline ---------------------------------------------------------------------------


def pipeline(*stages: str) -> str:
    return "pipeline:\n  p:\n" + "".join(f"    - {stage}\n" for stage in stages)


LOADS = (
    "{ label: left, task: load_csv, args: { filepath: left.csv, df_name: L } }",
    "{ label: right, task: load_csv, args: { filepath: right.csv, df_name: R } }",
)


def write_frames(tmp_path: Path) -> None:
    LEFT.write_csv(tmp_path / "left.csv")
    RIGHT.write_csv(tmp_path / "right.csv")


def run(config: Path, variables: Mapping[str, str], mode: RunMode) -> dict[str, pl.DataFrame]:
    graph = load_project(config).graphs["p"]
    store = run_stages(graph, mode, variables)
    return {name: store[version].lazy().collect() for name, version in graph.final_versions.items()}


@pytest.mark.parametrize("mode", list(RunMode))
def test_recon_in_a_pipeline_in_every_mode(write_config, tmp_path, mode):
    write_frames(tmp_path)
    args = "left_df: L, right_df: R, on: id, save_neq_rows: NEQ"
    stage = f"{{ label: recon, task: recon, args: {{ {args} }} }}"
    config = write_config({"p.yml": pipeline(*LOADS, stage)})
    node = load_project(config).graphs["p"].by_label["recon"]
    assert node.args == ReconArgs("L", "R", "NEQ", ("id",))
    assert (node.reads, node.writes) == (("L", "R"), ("NEQ",))
    got = run(config, {}, mode)["NEQ"]
    assert_frame_equal(got, result([2, 3], ["bob", "cy"], ["l2", "l3"], ["differs", "missing"]))


def test_a_run_time_error_names_the_stage(write_config, tmp_path):
    write_frames(tmp_path)
    args = "left_df: L, right_df: R, on: [nme], save_neq_rows: NEQ"
    stage = f"{{ label: recon, task: recon, args: {{ {args} }} }}"
    config = write_config({"p.yml": pipeline(*LOADS, stage)})
    with pytest.raises(TaskError) as info:
        run(config, {}, RunMode.SYNC_LAZY)
    assert str(info.value) == (
        "config/p.yml:5, pipeline 'p', stage 'recon' (#3): recon: on column 'nme' not found in "
        "frame 'L' (columns: id, name, note)"
    )


@pytest.mark.parametrize(
    ("args", "cause"),
    [
        (
            "left_df: L, right_df: R",
            "malformed args for task 'recon': save_neq_rows: field required",
        ),
        (
            "left_df: L, right_df: R, save_neq_rows: N, key: id",
            "malformed args for task 'recon': unknown key 'key' (keys: left_df, on, right_df, "
            "save_neq_rows)",
        ),
        (
            "left_df: L, right_df: R, save_neq_rows: N, on: []",
            "task 'recon': on is empty: name the key columns, or leave on out to compare every "
            "column the frames have in common",
        ),
        (
            "left_df: L, right_df: R, save_neq_rows: N, on: [id, name, id]",
            "task 'recon': on names 'id' more than once",
        ),
        (
            "left_df: L, right_df: NOPE, save_neq_rows: N",
            "reads frame 'NOPE' before any earlier stage writes it",
        ),
    ],
)
def test_args_are_checked_by_validate(write_config, args, cause):
    stage = f"{{ label: recon, task: recon, args: {{ {args} }} }}"
    config = write_config({"p.yml": pipeline(*LOADS, stage)})
    with pytest.raises(ValidationError) as info:
        load_project(config)
    assert [str(p) for p in info.value.errors] == [
        f"error: config/p.yml:5, pipeline 'p', stage 'recon' (#3): {cause}"
    ]


# --- the original capport example's player_recon pipeline, end to end -------------------------

# The original's `player_recon` (config/pipeline.yml of cap-sized/capport): players from the
# warehouse -> their API URLs -> the API's players -> reshaped like ours -> recon -> discord.
# Here with `on: player_id` (the original compares every column, so nothing could be 'differs').
PLAYER_RECON = """
pipeline:
  player_recon:
    - label: fetch_players
      task: postgres
      args:
        database: warehouse
        cmd: SELECT * FROM SCHEMA.players ORDER BY player_id
        model: player
        save_df: PLAYER
    - label: nhl_player_urls
      task: transform
      args: { name: cs_player_to_nhl_player_url, input: PLAYER, save_df: NHL_PLAYER_URLS }
    - label: nhl_player
      task: http_request_json
      args: { df: NHL_PLAYER_URLS, select: nhl_url, save_df: NHL_PLAYER }
    - label: cs_player
      task: transform
      args: { name: nhl_player_to_player, input: NHL_PLAYER, save_df: NHL_PLAYER }
    - label: recon_player
      task: recon
      args: { left_df: PLAYER, right_df: NHL_PLAYER, on: player_id, save_neq_rows: RECON_PLAYER }
    - label: inform_recon
      task: discord
      args: { level: WARN, job_type: recon, args: { df: RECON_PLAYER } }
"""
PLAYER_MODEL = """
model:
  player:
    player_id: int64
    first_name: str
    last_name: str
    team_id: int64
    position: str
"""
PLAYER_TRANSFORMS = """
transform:
  cs_player_to_nhl_player_url:
    - select:
        nhl_url:
          action: format
          args: { template: "API/v1/player/{}/landing", cols: [player_id] }
  nhl_player_to_player:
    - select:
        player_id: playerId
        first_name: firstName.default
        last_name: lastName.default
        team_id: currentTeamId
        position:
"""
PLAYERS_CSV = (
    "player_id,first_name,last_name,team_id,position\n"
    "8478402,Connor,McDavid,22,C\n"  # the API agrees
    "8477934,Leon,Draisaitl,22,C\n"  # the API has him in team 23: differs
    "8480000,Ghost,Player,1,D\n"  # the API has no such player (an empty array): missing
    "8471214,Alex,Ovechkin,15,L\n"  # the API agrees
)
API_PLAYERS = {
    "8478402": {"playerId": 8478402, "first": "Connor", "last": "McDavid", "team": 22, "pos": "C"},
    "8477934": {"playerId": 8477934, "first": "Leon", "last": "Draisaitl", "team": 23, "pos": "C"},
    "8471214": {"playerId": 8471214, "first": "Alex", "last": "Ovechkin", "team": 15, "pos": "L"},
}
RECON_PLAYER = pl.DataFrame(
    {
        "player_id": [8477934, 8480000],
        "first_name": ["Leon", "Ghost"],
        "last_name": ["Draisaitl", "Player"],
        "team_id": [22, 1],
        "position": ["C", "D"],
        "recon": ["differs", "missing"],
    }
)
DISCORD_MESSAGE = (
    "[WARN] recon: 2 rows in RECON_PLAYER (pipeline 'player_recon', stage 'inform_recon' (#6))\n"
    "```\n"
    "| player_id | first_name | last_name | team_id | position | recon   |\n"
    "|-----------|------------|-----------|---------|----------|---------|\n"
    "| 8477934   | Leon       | Draisaitl | 22      | C        | differs |\n"
    "| 8480000   | Ghost      | Player    | 1       | D        | missing |\n"
    "```"
)
WEBHOOK = "/api/webhooks/42/player-recon-s3cr3t"


@pytest.fixture(scope="module")
def make_httpserver() -> Iterator[HTTPServer]:
    server = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    server.start()
    yield server
    server.clear()
    server.stop()


def nhl_api(request: Request) -> Response:
    """The players API: `/v1/player/ID/landing` is the player's object, or `[]` if unknown."""
    player_id = request.path.split("/")[3]
    p = API_PLAYERS.get(player_id)
    body = (
        []
        if p is None
        else {
            "playerId": p["playerId"],
            "firstName": {"default": p["first"]},
            "lastName": {"default": p["last"]},
            "currentTeamId": p["team"],
            "position": p["pos"],
        }
    )
    return Response(json.dumps(body), mimetype="application/json")


PG_URL = "postgresql://postgres@127.0.0.1:5432/test"


@pytest.fixture
def warehouse() -> Iterator[str]:
    """The players table in a PostgreSQL schema of this test's own; yields the schema."""
    require_service("postgres")
    import adbc_driver_postgresql.dbapi as adbc

    schema = f"capport_recon_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    with adbc.connect(PG_URL, autocommit=True) as conn, conn.cursor() as cursor:
        cursor.execute(f'CREATE SCHEMA "{schema}"')
        cursor.execute(
            f'CREATE TABLE "{schema}".players (player_id bigint, first_name text,'
            " last_name text, team_id bigint, position text)"
        )
        for row in PLAYERS_CSV.splitlines()[1:]:
            pid, first, last, team, position = row.split(",")
            cursor.execute(
                f'INSERT INTO "{schema}".players VALUES'
                f" ({pid}, '{first}', '{last}', {team}, '{position}')"
            )
    try:
        yield schema
    finally:
        with adbc.connect(PG_URL, autocommit=True) as conn, conn.cursor() as cursor:
            cursor.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture
def player_recon(write_config, warehouse, httpserver, monkeypatch) -> Path:
    """The config, the players' table, the API and the webhook (its URL in
    $DISCORD_WEBHOOK_URL)."""
    httpserver.expect_request(re.compile(r"/v1/player/\d+/landing")).respond_with_handler(nhl_api)
    httpserver.expect_request(WEBHOOK, method="POST").respond_with_data("", status=204)
    monkeypatch.setenv("DISCORD_WEBHOOK_URL", httpserver.url_for(WEBHOOK))
    api = httpserver.url_for("").rstrip("/")
    return write_config(
        {
            "pipeline.yml": PLAYER_RECON.replace("SCHEMA", f'"{warehouse}"'),
            "connection.yml": f"connection:\n  warehouse: {{ url: '{PG_URL}' }}\n",
            "model.yml": PLAYER_MODEL,
            "transform.yml": PLAYER_TRANSFORMS.replace("API", api),
        }
    )


def webhook_posts(server: HTTPServer) -> list[dict]:
    return [json.loads(r.get_data()) for r, _ in server.log if r.path == WEBHOOK]


@pytest.mark.parametrize("mode", list(RunMode))
def test_player_recon_end_to_end(player_recon, httpserver, mode):
    graph = load_project(player_recon).graphs["player_recon"]
    store = run_stages(graph, mode, {"DISCORD_WEBHOOK_URL": httpserver.url_for(WEBHOOK)})
    assert_frame_equal(store[graph.final_versions["RECON_PLAYER"]].lazy().collect(), RECON_PLAYER)
    assert webhook_posts(httpserver) == [
        {"content": DISCORD_MESSAGE, "allowed_mentions": {"parse": []}}
    ]


@pytest.mark.parametrize(
    ("mode", "executor"),
    [*((mode, "in_process") for mode in RunMode), (RunMode.ASYNC_LAZY, "multiprocess")],
)
def test_player_recon_runs_with_capport_run(player_recon, tmp_path, httpserver, mode, executor):
    result = capport(
        "run",
        "-c",
        str(player_recon),
        "-p",
        "player_recon",
        "-o",
        str(tmp_path / "out"),
        "--mode",
        mode.value,
        "--executor",
        executor,
        cwd=tmp_path,
        DISCORD_WEBHOOK_URL=httpserver.url_for(WEBHOOK),
    )
    assert result.returncode == 0, result.stderr
    assert webhook_posts(httpserver) == [
        {"content": DISCORD_MESSAGE, "allowed_mentions": {"parse": []}}
    ]
    assert "[capport] inform_recon: started" in result.stderr
    # The webhook's URL is its credential: nowhere in what the run printed.
    assert "s3cr3t" not in result.stdout + result.stderr
