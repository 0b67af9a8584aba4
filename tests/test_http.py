"""The HTTP tasks (SPEC 4) against a real server on 127.0.0.1, never the internet."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from email.utils import formatdate
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from capport_dagster.core import http
from capport_dagster.core.builtin_tasks import DEFAULT_REGISTRY
from capport_dagster.core.graph import PipelineGraph, load_project
from capport_dagster.core.modes import RunMode
from capport_dagster.errors import TaskError, ValidationError
from tests.conftest import free_port, run_stages

# Responses must be able to overlap (out-of-order arrival, the concurrency bound, a slow handler
# next to fast ones): the plugin's `httpserver` fixture uses this server, threaded, on 127.0.0.1.


@pytest.fixture(scope="module")
def make_httpserver() -> Iterator[HTTPServer]:
    server = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    server.start()
    yield server
    server.clear()
    server.stop()


@pytest.fixture
def variables(tmp_path: Path) -> dict[str, str]:
    return {
        "CONFIG_DIR": str(tmp_path / "config"),
        "OUTPUT_DIR": str(tmp_path / "out"),
        "REF_DATE": "2024-03-05",
        "REF_DATETIME": "2024-03-05T06:30:00+08:00",
    }


def pipeline(*stages: str) -> str:
    return "pipeline:\n  p:\n" + "".join(f"    - {stage}\n" for stage in stages)


def load_urls(*urls: str | None, name: str = "URLS") -> str:
    """A `load_csv` stage reading the URLs from a CSV in the working directory (None: null)."""
    Path(f"{name.lower()}.csv").write_text("url\n" + "".join(f"{u or ''}\n" for u in urls))
    args = f"{{ filepath: {name.lower()}.csv, df_name: {name} }}"
    return f"{{ label: load, task: load_csv, args: {args} }}"


def fetch(args: str = "") -> str:
    return (
        "{ label: fetch, task: http_request, args: { df_from: URLS, url_column: url, "
        f"df_to: BODIES{args} }} }}"
    )


def run(
    graph: PipelineGraph,
    variables: Mapping[str, str],
    mode: RunMode = RunMode.SYNC_LAZY,
) -> dict[str, pl.DataFrame]:
    """Every stage in list order without Dagster; the final version of each frame, collected."""
    store = run_stages(graph, mode, variables)
    return {name: store[version].lazy().collect() for name, version in graph.final_versions.items()}


def run_config(write_config, variables, *stages: str, mode=RunMode.SYNC_LAZY):
    graph = load_project(write_config({"p.yml": pipeline(*stages)})).graphs["p"]
    return run(graph, variables, mode)


def run_config_files(write_config, variables, files, *stages: str, mode=RunMode.SYNC_LAZY):
    graph = load_project(write_config({"p.yml": pipeline(*stages), **files})).graphs["p"]
    return run(graph, variables, mode)


def failure(write_config, variables, *stages: str, mode=RunMode.SYNC_LAZY) -> str:
    with pytest.raises(TaskError) as info:
        run_config(write_config, variables, *stages, mode=mode)
    return str(info.value)


def errors(config: Path) -> list[str]:
    with pytest.raises(ValidationError) as info:
        load_project(config)
    return [str(problem) for problem in info.value.errors]


class Counter:
    """A handler wrapper that counts calls and the most requests in flight at once."""

    def __init__(self, handler: Callable[[Request, int], Response], delay: float = 0.0) -> None:
        self.handler, self.delay = handler, delay
        self.calls = self.in_flight = self.peak = 0
        self.lock = threading.Lock()

    def __call__(self, request: Request) -> Response:
        with self.lock:
            self.calls += 1
            call = self.calls
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
        try:
            time.sleep(self.delay)
            return self.handler(request, call)
        finally:
            with self.lock:
                self.in_flight -= 1


def as_json(body: object, status: int = 200, **headers: str) -> Response:
    return Response(json.dumps(body), status=status, headers=headers, mimetype="application/json")


def test_the_public_api():
    assert http.__all__ == [
        "DEFAULT_BACKOFF",
        "DEFAULT_MAX_CONCURRENT",
        "DEFAULT_RETRIES",
        "DEFAULT_TIMEOUT",
        "MAX_BACKOFF",
        "MAX_RETRY_AFTER",
        "HttpOptions",
        "HttpRequestArgs",
        "HttpSingleRequestArgs",
        "RowShape",
        "UrlParam",
        "register_http_tasks",
        "send_with_retries",
    ]
    assert {"http_request", "http_single_request", "http_request_json"} <= set(DEFAULT_REGISTRY)
    assert DEFAULT_REGISTRY.get("http_request").waits_on_io


# --- http_request ----------------------------------------------------------------------------


@pytest.mark.parametrize("mode", [RunMode.SYNC_LAZY, RunMode.ASYNC_EAGER])
def test_one_row_per_object_body(write_config, variables, httpserver, mode):
    httpserver.expect_request("/p/1").respond_with_json({"id": 1, "name": "ann", "ok": True})
    httpserver.expect_request("/p/2").respond_with_json({"id": 2, "name": "bob", "ok": False})
    urls = load_urls(httpserver.url_for("/p/1"), httpserver.url_for("/p/2"))
    graph = load_project(write_config({"p.yml": pipeline(urls, fetch())})).graphs["p"]
    node = graph.by_label["fetch"]
    assert (node.reads, node.writes) == (("URLS",), ("BODIES",))
    assert node.args == http.HttpRequestArgs("URLS", "url", "BODIES", http.HttpOptions())
    assert_frame_equal(
        run(graph, variables, mode)["BODIES"],
        pl.DataFrame({"id": [1, 2], "name": ["ann", "bob"], "ok": [True, False]}),
    )


def test_nested_objects_become_structs_that_a_transform_selects(
    write_config, variables, httpserver
):
    httpserver.expect_request("/p/8478402").respond_with_json(
        {"playerId": 8478402, "firstName": {"default": "Connor"}, "draft": {"year": 2015}}
    )
    httpserver.expect_request("/p/8477934").respond_with_json(
        {"playerId": 8477934, "firstName": {"default": "Leon", "cs": "León"}}
    )
    config = write_config(
        {
            "p.yml": pipeline(
                load_urls(httpserver.url_for("/p/8478402"), httpserver.url_for("/p/8477934")),
                fetch(),
                "{ label: names, task: transform, args: { name: names, input: BODIES, "
                "save_df: NAMES } }",
            ),
            "t.yml": """
                transform:
                  names:
                    - select: { id: playerId, first: firstName.default, draft: draft.year }
            """,
        }
    )
    frames = run(load_project(config).graphs["p"], variables)
    assert frames["BODIES"].schema == pl.Schema(
        {
            "playerId": pl.Int64,
            "firstName": pl.Struct({"default": pl.String, "cs": pl.String}),
            "draft": pl.Struct({"year": pl.Int64}),
        }
    )
    assert_frame_equal(
        frames["NAMES"],
        pl.DataFrame(
            {"id": [8478402, 8477934], "first": ["Connor", "Leon"], "draft": [2015, None]}
        ),
    )


def test_arrays_give_many_rows_in_url_order_whatever_order_responses_arrive(
    write_config, variables, httpserver
):
    arrived: list[str] = []

    def page(request: Request) -> Response:
        number = int(request.path.rsplit("/", 1)[1])
        if number == 1:
            time.sleep(0.3)  # the first URL answers last
        arrived.append(request.path)
        rows = [{"page": number, "item": item} for item in range(number)]  # page 0: no rows
        return as_json(rows)

    for number in range(4):
        httpserver.expect_request(f"/page/{number}").respond_with_handler(page)
    urls = load_urls(*(httpserver.url_for(f"/page/{n}") for n in (1, 0, 3, 2)))
    frames = run_config(write_config, variables, urls, fetch(), mode=RunMode.ASYNC_LAZY)
    assert arrived[-1] == "/page/1"
    assert_frame_equal(
        frames["BODIES"],
        pl.DataFrame({"page": [1, 3, 3, 3, 2, 2], "item": [0, 0, 1, 2, 0, 1]}),
    )


def test_types_are_inferred_over_every_row(write_config, variables, httpserver):
    httpserver.expect_request("/a").respond_with_json([{"n": 1}, {"n": 2, "extra": "x"}])
    httpserver.expect_request("/b").respond_with_json({"n": 2.5})
    urls = load_urls(httpserver.url_for("/a"), httpserver.url_for("/b"))
    assert_frame_equal(
        run_config(write_config, variables, urls, fetch())["BODIES"],
        pl.DataFrame({"n": [1.0, 2.0, 2.5], "extra": [None, "x", None]}),
    )


def test_null_urls_are_skipped(write_config, variables, httpserver):
    httpserver.expect_request("/a").respond_with_json({"v": "a"})
    httpserver.expect_request("/b").respond_with_json({"v": "b"})
    urls = load_urls(None, httpserver.url_for("/a"), None, httpserver.url_for("/b"))
    assert_frame_equal(
        run_config(write_config, variables, urls, fetch())["BODIES"],
        pl.DataFrame({"v": ["a", "b"]}),
    )


@pytest.mark.parametrize("urls", [(), (None, None)])
def test_no_url_gives_an_empty_frame_without_columns(write_config, variables, urls):
    frames = run_config(write_config, variables, load_urls(*urls), fetch())
    assert frames["BODIES"].shape == (0, 0)


# --- no input: empty frames with the expected columns ----------------------------------------

PLAYER_MODEL = """
model:
  player:
    id: int64
    born: date
    nickname?: str
"""


def run_shaped(write_config, variables, *stages: str, files: Mapping[str, str] | None = None):
    config = write_config({"p.yml": pipeline(*stages), "m.yml": PLAYER_MODEL, **(files or {})})
    return run(load_project(config).graphs["p"], variables)


@pytest.mark.parametrize("urls", [(), (None, None)])
@pytest.mark.parametrize(
    ("shape", "expected"),
    [
        (
            "select: { id: playerId, name: firstName.default }",
            pl.DataFrame(schema={"id": pl.Null, "name": pl.Null}),
        ),
        (
            "model: player",  # optional columns too, as the model gives them
            pl.DataFrame(schema={"id": pl.Int64, "born": pl.Date, "nickname": pl.String}),
        ),
        (
            "select: { id: playerId, born: birthDate }, model: player",
            pl.DataFrame(schema={"id": pl.Int64, "born": pl.Date, "nickname": pl.String}),
        ),
    ],
    ids=["select", "model", "select-then-model"],
)
def test_no_url_gives_the_columns_of_select_or_model(
    write_config, variables, urls, shape, expected
):
    frames = run_shaped(write_config, variables, load_urls(*urls), fetch(f", {shape}"))
    assert_frame_equal(frames["BODIES"], expected)


@pytest.mark.parametrize("mode", list(RunMode))
def test_a_day_without_input_runs_through_with_empty_outputs(write_config, variables, mode):
    transform = """
        transform:
          shape:
            - select: { id:, label: { action: concat, args: { cols: [id, born] } } }
    """
    frames = run_config_files(
        write_config,
        variables,
        {"t.yml": transform, "m.yml": PLAYER_MODEL},
        load_urls(),
        fetch(", select: { id: playerId, born: birthDate }, model: player"),
        "{ label: shape, task: transform, args: { name: shape, input: BODIES, save_df: OUT } }",
        "{ label: save, task: save_csv, args: { filepath: $OUTPUT_DIR/out.csv, df_name: OUT } }",
        mode=mode,
    )
    assert_frame_equal(frames["OUT"], pl.DataFrame(schema={"id": pl.Int64, "label": pl.String}))
    assert (Path(variables["OUTPUT_DIR"]) / "out.csv").read_text() == "id,label\n"


def test_an_empty_array_gives_the_columns_too(write_config, variables, httpserver):
    httpserver.expect_request("/none").respond_with_json([])
    frames = run_shaped(
        write_config, variables, load_urls(httpserver.url_for("/none")), fetch(", model: player")
    )
    assert_frame_equal(
        frames["BODIES"],
        pl.DataFrame(schema={"id": pl.Int64, "born": pl.Date, "nickname": pl.String}),
    )


def test_single_request_with_no_param_value_gives_the_models_columns(
    write_config, variables, httpserver
):
    Path("ids.csv").write_text("id\n\n")
    frames = run_shaped(
        write_config,
        variables,
        "{ label: ids, task: load_csv, args: { filepath: ids.csv, df_name: IDS } }",
        "{ label: get, task: http_single_request, args: { template: "
        f"'{httpserver.url_for('/players')}', url_params: [{{ df_from: IDS, param_column: id }}],"
        " df_to: PLAYERS, select: { id: playerId, born: birthDate, nickname: nick.name } } }",
    )
    assert_frame_equal(
        frames["PLAYERS"],
        pl.DataFrame(schema={"id": pl.Null, "born": pl.Null, "nickname": pl.Null}),
    )


def test_rows_are_selected_then_reshaped_by_the_model(write_config, variables, httpserver):
    httpserver.expect_request("/p/1").respond_with_json(
        {"playerId": 1, "birthDate": "2001-02-03", "name": {"default": "Ann"}, "extra": True}
    )
    httpserver.expect_request("/p/2").respond_with_json(
        {"playerId": 2, "birthDate": "1999-12-31", "name": {"default": "Bob"}}
    )
    frames = run_shaped(
        write_config,
        variables,
        load_urls(httpserver.url_for("/p/1"), httpserver.url_for("/p/2")),
        fetch(", select: { id: playerId, born: birthDate, nickname: name.default }, model: player"),
    )
    assert_frame_equal(
        frames["BODIES"],
        pl.DataFrame(
            {"id": [1, 2], "born": ["2001-02-03", "1999-12-31"], "nickname": ["Ann", "Bob"]},
            schema_overrides={"born": pl.Date},
        ),
    )


def test_a_select_of_a_column_no_response_has_fails_naming_it(write_config, variables, httpserver):
    httpserver.expect_request("/p/1").respond_with_json({"playerId": 1})
    assert failure(
        write_config,
        variables,
        load_urls(httpserver.url_for("/p/1")),
        fetch(", select: { id: playerId, born: birthDate }"),
    ) == (
        "config/p.yml:4, pipeline 'p', stage 'fetch' (#2): http_request: select on the response"
        " rows: column 'birthDate' not found (columns: playerId)"
    )


def test_a_model_and_a_select_are_checked_by_validate(write_config):
    stage = fetch(", model: playr, select: { id: { action: frmat } }")
    config = write_config({"p.yml": pipeline(LOAD, stage), "m.yml": PLAYER_MODEL})
    where = "error: config/p.yml:4, pipeline 'p', stage 'fetch' (#2)"
    assert errors(config) == [
        f"{where}: task 'http_request': select: column 'id': unknown action 'frmat' - did you"
        " mean 'format'? (valid actions: concat, format)",
        f"{where}: unknown model 'playr' - did you mean 'player'?",
    ]


def test_url_column_is_a_column_path_into_structs(write_config, variables, httpserver):
    players = [
        {"id": 2, "links": {"player": httpserver.url_for("/player/2")}},
        {"id": 1, "links": {"player": httpserver.url_for("/player/1")}},
    ]
    httpserver.expect_request("/players").respond_with_json(players)
    httpserver.expect_request("/player/1").respond_with_json({"name": "ann"})
    httpserver.expect_request("/player/2").respond_with_json({"name": "bob"})
    frames = run_config(
        write_config,
        variables,
        f"{{ label: list, task: http_single_request, args: {{ template: "
        f"'{httpserver.url_for('/players')}', url_params: [], df_to: PLAYERS }} }}",
        "{ label: each, task: http_request, args: { df_from: PLAYERS, url_column: links.player, "
        "df_to: NAMES } }",
    )
    assert_frame_equal(frames["NAMES"], pl.DataFrame({"name": ["bob", "ann"]}))


def test_a_bad_column_path_fails_at_run_time(write_config, variables, httpserver):
    urls = load_urls(httpserver.url_for("/a"))
    stage = (
        "{ label: fetch, task: http_request, args: { df_from: URLS, url_column: %s, df_to: B } }"
    )
    assert failure(write_config, variables, urls, stage % "link") == (
        "config/p.yml:4, pipeline 'p', stage 'fetch' (#2): http_request: url_column 'link' of "
        "frame 'URLS': column 'link' not found (columns: url)"
    )
    assert failure(write_config, variables, urls, stage % "url.player") == (
        "config/p.yml:4, pipeline 'p', stage 'fetch' (#2): http_request: url_column "
        "'url.player' of frame 'URLS': struct field 'player' not found"
    )


def test_urls_must_be_strings(write_config, variables):
    Path("urls.csv").write_text("url\n1\n")
    load = "{ label: load, task: load_csv, args: { filepath: urls.csv, df_name: URLS } }"
    assert failure(write_config, variables, load, fetch()) == (
        "config/p.yml:4, pipeline 'p', stage 'fetch' (#2): http_request: url_column 'url' of "
        "frame 'URLS' must hold URLs as strings, got Int64"
    )


def test_404_fails_at_once_naming_url_and_status(write_config, variables, httpserver):
    missing = Counter(lambda request, call: Response("gone", status=404))
    httpserver.expect_request("/missing").respond_with_handler(missing)
    url = httpserver.url_for("/missing")
    assert failure(write_config, variables, load_urls(url), fetch()) == (
        f"config/p.yml:4, pipeline 'p', stage 'fetch' (#2): http_request: GET {url} failed: "
        "404 Not Found"
    )
    assert missing.calls == 1


def test_5xx_is_retried_until_it_passes(write_config, variables, httpserver):
    flaky = Counter(
        lambda request, call: Response("busy", status=503) if call < 3 else as_json({"ok": 1})
    )
    httpserver.expect_request("/flaky").respond_with_handler(flaky)
    urls = load_urls(httpserver.url_for("/flaky"))
    frames = run_config(write_config, variables, urls, fetch(", backoff: 0.01"))
    assert_frame_equal(frames["BODIES"], pl.DataFrame({"ok": [1]}))
    assert flaky.calls == 3


def test_5xx_fails_when_retries_run_out(write_config, variables, httpserver):
    broken = Counter(lambda request, call: Response("oops", status=500))
    httpserver.expect_request("/broken").respond_with_handler(broken)
    url = httpserver.url_for("/broken")
    assert failure(
        write_config, variables, load_urls(url), fetch(", retries: 2, backoff: 0.01")
    ) == (
        f"config/p.yml:4, pipeline 'p', stage 'fetch' (#2): http_request: GET {url} failed: "
        "500 Internal Server Error (gave up after 3 attempts)"
    )
    assert broken.calls == 3


def test_429_waits_for_retry_after(write_config, variables, httpserver):
    limited = Counter(
        lambda request, call: (
            Response("slow down", status=429, headers={"Retry-After": "1"})
            if call == 1
            else as_json({"ok": 1})
        )
    )
    httpserver.expect_request("/limited").respond_with_handler(limited)
    urls = load_urls(httpserver.url_for("/limited"))
    start = time.monotonic()
    frames = run_config(write_config, variables, urls, fetch(", backoff: 0.01"))
    assert time.monotonic() - start >= 1.0
    assert_frame_equal(frames["BODIES"], pl.DataFrame({"ok": [1]}))
    assert limited.calls == 2


def test_retry_after_is_read_in_seconds_or_as_a_date_and_capped():
    read = http._retry_after
    assert (read(None), read("2"), read(" 0.5 "), read("-3"), read("soon")) == (
        None,
        2.0,
        0.5,
        0.0,
        None,
    )
    assert read("86400") == http.MAX_RETRY_AFTER == 60.0
    assert 8 <= read(formatdate(time.time() + 10, usegmt=True)) <= 10
    assert read(formatdate(time.time() - 100, usegmt=True)) == 0.0


def test_a_slow_response_times_out(write_config, variables, httpserver):
    release = threading.Event()
    slow = Counter(lambda request, call: release.wait(5) and as_json({}))
    httpserver.expect_request("/slow").respond_with_handler(slow)
    url = httpserver.url_for("/slow")
    try:
        message = failure(
            write_config, variables, load_urls(url), fetch(", timeout: 0.2, retries: 1, backoff: 0")
        )
    finally:
        release.set()
    assert message == (
        f"config/p.yml:4, pipeline 'p', stage 'fetch' (#2): http_request: GET {url} failed: "
        "timed out after 0.2 s (gave up after 2 attempts)"
    )
    assert slow.calls == 2


def test_connection_refused(write_config, variables):
    url = f"http://127.0.0.1:{free_port()}/x"
    assert failure(write_config, variables, load_urls(url), fetch(", backoff: 0.01")) == (
        f"config/p.yml:4, pipeline 'p', stage 'fetch' (#2): http_request: GET {url} failed: "
        "connection error (ConnectError: All connection attempts failed) "
        "(gave up after 4 attempts)"
    )


def test_a_body_that_is_not_json(write_config, variables, httpserver):
    page = "<html><body>" + "x" * 200 + "</body></html>"
    httpserver.expect_request("/html").respond_with_data(page, content_type="text/html")
    url = httpserver.url_for("/html")
    assert failure(write_config, variables, load_urls(url), fetch()) == (
        f"config/p.yml:4, pipeline 'p', stage 'fetch' (#2): http_request: GET {url} returned a "
        f"body that is not JSON (content type text/html): {page[:100]!r}..."
    )


@pytest.mark.parametrize(
    ("body", "got"),
    [
        (3, "the number 3"),
        ("text", 'the string "text"'),
        (None, "null"),
        ([{"a": 1}, 2], "an array holding the number 2"),
        ([[{"a": 1}]], "an array holding an array"),
    ],
)
def test_a_json_body_must_be_objects(write_config, variables, httpserver, body, got):
    httpserver.expect_request("/odd").respond_with_json(body)
    url = httpserver.url_for("/odd")
    assert failure(write_config, variables, load_urls(url), fetch()) == (
        f"config/p.yml:4, pipeline 'p', stage 'fetch' (#2): http_request: GET {url} returned "
        f"{got}; a body must be a JSON object (one row) or an array of objects (one row each)"
    )


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("ftp://127.0.0.1/x", "is not an http or https URL (scheme 'ftp')"),
        ("127.0.0.1/x", "is not an http or https URL (no scheme)"),
        ("http:///x", "has no host"),
    ],
)
def test_only_http_urls_are_fetched(write_config, variables, httpserver, url, why):
    good = Counter(lambda request, call: as_json({}))
    httpserver.expect_request("/good").respond_with_handler(good)
    urls = load_urls(httpserver.url_for("/good"), url)
    assert failure(write_config, variables, urls, fetch()) == (
        f"config/p.yml:4, pipeline 'p', stage 'fetch' (#2): http_request: URL {url!r} {why}"
    )
    assert good.calls == 0  # every URL is checked before any request


def test_at_most_max_concurrent_requests_are_in_flight(write_config, variables, httpserver):
    counter = Counter(lambda request, call: as_json({"path": request.path}), delay=0.1)
    for n in range(8):
        httpserver.expect_request(f"/c/{n}").respond_with_handler(counter)
    urls = load_urls(*(httpserver.url_for(f"/c/{n}") for n in range(8)))
    frames = run_config(write_config, variables, urls, fetch(", max_concurrent: 2"))
    assert frames["BODIES"]["path"].to_list() == [f"/c/{n}" for n in range(8)]
    assert (counter.calls, counter.peak) == (8, 2)


# --- http_single_request ---------------------------------------------------------------------


def test_single_request_query_joins_each_params_values(write_config, variables, httpserver):
    httpserver.expect_request(
        "/v1/players", query_string="season=2024&id=1,2,3&team=NJD&tag=a%20b,c%26d"
    ).respond_with_json([{"id": 1}, {"id": 2}, {"id": 3}])
    Path("ids.csv").write_text("pid,tag\n1,a b\n2,c&d\n3,a b\n")
    Path("teams.csv").write_text("team\nNJD\n")
    config = write_config(
        {
            "p.yml": pipeline(
                "{ label: ids, task: load_csv, args: { filepath: ids.csv, df_name: IDS } }",
                "{ label: teams, task: load_csv, args: { filepath: teams.csv, df_name: TEAMS } }",
                "{ label: get, task: http_single_request, args: { template: "
                f"'{httpserver.url_for('/v1/players')}?season=2024', url_params: ["
                "{ df_from: IDS, param_column: pid, template: 'id={}' }, "
                "{ df_from: TEAMS, param_column: team }, "
                "{ df_from: IDS, param_column: tag }], df_to: PLAYERS } }",
            )
        }
    )
    graph = load_project(config).graphs["p"]
    node = graph.by_label["get"]
    assert (node.reads, node.writes) == (("IDS", "TEAMS"), ("PLAYERS",))
    assert node.args.url_params == (
        http.UrlParam("IDS", "pid", "id={}"),
        http.UrlParam("TEAMS", "team", "team={}"),
        http.UrlParam("IDS", "tag", "tag={}"),
    )
    assert_frame_equal(run(graph, variables)["PLAYERS"], pl.DataFrame({"id": [1, 2, 3]}))


def test_single_request_template_expands_variables(
    write_config, variables, httpserver, monkeypatch
):
    monkeypatch.setenv("CAPPORT_TEST_API", "v9")
    httpserver.expect_request("/v9/2024-03-05/teams", query_string="id=1,2").respond_with_json(
        {"teams": 2}
    )
    Path("ids.csv").write_text("id\n1\n2\n1\n")
    frames = run_config(
        write_config,
        {**variables, "CAPPORT_TEST_API": "v9"},
        "{ label: ids, task: load_csv, args: { filepath: ids.csv, df_name: IDS } }",
        "{ label: get, task: http_single_request, args: { template: "
        f"'{httpserver.url_for('/')}$CAPPORT_TEST_API/${{REF_DATE}}/teams', "
        "url_params: [{ df_from: IDS, param_column: id }], df_to: TEAMS } }",
        mode=RunMode.ASYNC_EAGER,
    )
    assert_frame_equal(frames["TEAMS"], pl.DataFrame({"teams": [2]}))


def test_single_request_with_no_param_value_sends_nothing(write_config, variables, httpserver):
    teams = Counter(lambda request, call: as_json({}))
    httpserver.expect_request("/teams").respond_with_handler(teams)
    Path("ids.csv").write_text("id\n\n\n")
    frames = run_config(
        write_config,
        variables,
        "{ label: ids, task: load_csv, args: { filepath: ids.csv, df_name: IDS } }",
        "{ label: get, task: http_single_request, args: { template: "
        f"'{httpserver.url_for('/teams')}', url_params: [{{ df_from: IDS, param_column: id }}], "
        "df_to: TEAMS } }",
    )
    assert frames["TEAMS"].shape == (0, 0)
    assert teams.calls == 0


def test_single_request_failure_names_the_url(write_config, variables, httpserver):
    httpserver.expect_request("/teams").respond_with_data("no", status=400)
    Path("ids.csv").write_text("id\n7\n")
    url = httpserver.url_for("/teams")
    assert failure(
        write_config,
        variables,
        "{ label: ids, task: load_csv, args: { filepath: ids.csv, df_name: IDS } }",
        f"{{ label: get, task: http_single_request, args: {{ template: '{url}', "
        "url_params: [{ df_from: IDS, param_column: id }], df_to: T } }",
    ) == (
        f"config/p.yml:4, pipeline 'p', stage 'get' (#2): http_single_request: GET {url}?id=7 "
        "failed: 400 Bad Request"
    )


# --- config errors ---------------------------------------------------------------------------


LOAD = "{ label: load, task: load_csv, args: { filepath: u.csv, df_name: URLS } }"


@pytest.mark.parametrize(
    ("args", "cause"),
    [
        (
            "url_colum: x",
            "malformed args for task 'http_request': unknown key 'url_colum' - did you mean "
            "'url_column'? (keys: backoff, df_from, df_to, format, max_concurrent, method, "
            "model, retries, select, timeout, url_column)",
        ),
        (
            "method: POST",
            "task 'http_request': method 'POST' is not supported yet (supported: GET)",
        ),
        ("format: xml", "task 'http_request': format 'xml' is not supported yet (supported: json)"),
        (
            "max_concurrent: 0, timeout: 0, retries: -1",
            "malformed args for task 'http_request': timeout: input should be greater than 0; "
            "retries: input should be greater than or equal to 0; max_concurrent: input should "
            "be greater than or equal to 1",
        ),
        (
            "url_column: 'a..b'",
            "task 'http_request': url_column 'a..b' is not a column path (a name, or a.b.c into "
            "struct fields, with no empty part)",
        ),
    ],
)
def test_http_request_args_are_checked(write_config, args, cause):
    stage = (
        "{ label: fetch, task: http_request, args: { df_from: URLS, df_to: B, "
        + ("" if "url_column:" in args else "url_column: url, ")
        + args
        + " } }"
    )
    config = write_config({"p.yml": pipeline(LOAD, stage)})
    assert errors(config) == [f"error: config/p.yml:4, pipeline 'p', stage 'fetch' (#2): {cause}"]


def test_method_and_format_are_not_case_sensitive(write_config):
    stage = fetch(", method: get, format: JSON")
    graph = load_project(write_config({"p.yml": pipeline(LOAD, stage)})).graphs["p"]
    assert graph.by_label["fetch"].args.options.method == "GET"


@pytest.mark.parametrize(
    ("args", "cause"),
    [
        (
            "url_params: [{ df_from: URLS, param: id }]",
            "malformed args for task 'http_single_request': url_params.0.param_column: field "
            "required; url_params.0.param: extra inputs are not permitted",
        ),
        (
            "url_params: [{ df_from: URLS, param_column: id, template: 'id=' }]",
            "task 'http_single_request': url_params.0.template 'id=' has no '{}' for the values "
            "(e.g. 'id={}')",
        ),
        (
            "url_params: [], method: PUT",
            "task 'http_single_request': method 'PUT' is not supported yet (supported: GET)",
        ),
        (
            "url_params: [], template: 'http://h/$CAPPORT_NO_SUCH_VAR'",
            "undefined variable $CAPPORT_NO_SUCH_VAR in 'http://h/$CAPPORT_NO_SUCH_VAR' (define "
            "it in the environment; built-ins: CONFIG_DIR, OUTPUT_DIR, REF_DATE, REF_DATETIME)",
        ),
        (
            "url_params: [], max_concurrent: 2",
            "malformed args for task 'http_single_request': unknown key 'max_concurrent' (keys: "
            "backoff, df_to, format, method, model, retries, select, template, timeout, "
            "url_params)",
        ),
    ],
)
def test_http_single_request_args_are_checked(write_config, args, cause):
    template = "" if "template: 'http" in args else "template: 'http://h/x', "
    stage = f"{{ label: get, task: http_single_request, args: {{ {template}df_to: B, {args} }} }}"
    config = write_config({"p.yml": pipeline(LOAD, stage)})
    assert errors(config) == [f"error: config/p.yml:4, pipeline 'p', stage 'get' (#2): {cause}"]


def test_the_log_line_counts_in_the_singular_and_plural(
    write_config, variables, httpserver, caplog
):
    httpserver.expect_request("/one").respond_with_json({"v": 1})
    with caplog.at_level("INFO", logger="capport"):
        run_config(write_config, variables, load_urls(httpserver.url_for("/one"), None), fetch())
    assert "http_request: 1 request -> 1 row in BODIES (1 null URL skipped)" in caplog.messages


# --- http_request_json: http_request under the original capport's arg names -----------------


def fetch_json(args: str = "") -> str:
    return (
        "{ label: fetch, task: http_request_json, args: { df: URLS, select: url, "
        f"save_df: BODIES{args} }} }}"
    )


@pytest.mark.parametrize("mode", list(RunMode))
def test_http_request_json_is_http_request_with_the_original_names(
    write_config, variables, httpserver, mode
):
    httpserver.expect_request("/j/1").respond_with_json({"id": 1, "name": {"default": "ann"}})
    httpserver.expect_request("/j/2").respond_with_json([{"id": 2, "name": {"default": "bob"}}])
    urls = load_urls(httpserver.url_for("/j/1"), None, httpserver.url_for("/j/2"))
    stage = fetch_json(", fields: { id: id, name: name.default }, timeout: 5, max_concurrent: 2")
    graph = load_project(write_config({"p.yml": pipeline(urls, stage)})).graphs["p"]
    node = graph.by_label["fetch"]
    assert (node.reads, node.writes) == (("URLS",), ("BODIES",))
    assert node.spec.run is DEFAULT_REGISTRY.get("http_request").run
    args = node.args
    assert (args.df_from, args.url_column, args.df_to) == ("URLS", "url", "BODIES")
    assert (args.task, args.column_arg) == ("http_request_json", "select")
    assert args.options == http.HttpOptions(timeout=5, max_concurrent=2)
    assert [item.name for item in args.shape.select] == ["id", "name"]
    assert_frame_equal(
        run(graph, variables, mode)["BODIES"],
        pl.DataFrame({"id": [1, 2], "name": ["ann", "bob"]}),
    )


def test_http_request_json_without_fields_keeps_every_field(write_config, variables, httpserver):
    httpserver.expect_request("/k/1").respond_with_json({"id": 1, "ok": True})
    result = run_config(
        write_config, variables, load_urls(httpserver.url_for("/k/1")), fetch_json()
    )
    assert_frame_equal(result["BODIES"], pl.DataFrame({"id": [1], "ok": [True]}))


def test_http_request_json_failures_name_its_own_args(write_config, variables, httpserver):
    httpserver.expect_request("/gone").respond_with_data("no", status=404)
    urls = load_urls(httpserver.url_for("/gone"))
    assert failure(write_config, variables, urls, fetch_json()) == (
        "config/p.yml:4, pipeline 'p', stage 'fetch' (#2): http_request_json: GET "
        f"{httpserver.url_for('/gone')} failed: 404 Not Found"
    )
    stage = fetch_json().replace("select: url", "select: link")
    assert failure(write_config, variables, urls, stage) == (
        "config/p.yml:4, pipeline 'p', stage 'fetch' (#2): http_request_json: select 'link' of"
        " frame 'URLS': column 'link' not found (columns: url)"
    )


@pytest.mark.parametrize(
    ("args", "cause"),
    [
        (
            "df: URLS, url_column: url, save_df: B",
            "malformed args for task 'http_request_json': select: field required; unknown key "
            "'url_column' (keys: backoff, df, fields, format, max_concurrent, method, model, "
            "retries, save_df, select, timeout)",
        ),
        (
            "df: URLS, select: 'a..b', save_df: B",
            "task 'http_request_json': select 'a..b' is not a column path (a name, or a.b.c "
            "into struct fields, with no empty part)",
        ),
        (
            "df: URLS, select: url, save_df: B, fields: { id: { action: frmat } }",
            "task 'http_request_json': fields: column 'id': unknown action 'frmat' - did you "
            "mean 'format'? (valid actions: concat, format)",
        ),
        (
            "df: URLS, select: url, save_df: B, method: POST",
            "task 'http_request_json': method 'POST' is not supported yet (supported: GET)",
        ),
    ],
)
def test_http_request_json_args_are_checked(write_config, args, cause):
    stage = f"{{ label: fetch, task: http_request_json, args: {{ {args} }} }}"
    config = write_config({"p.yml": pipeline(LOAD, stage)})
    assert errors(config) == [f"error: config/p.yml:4, pipeline 'p', stage 'fetch' (#2): {cause}"]


def test_no_url_with_a_select_the_model_does_not_fit_fails_at_the_stage(write_config, variables):
    with pytest.raises(TaskError) as info:
        run_shaped(
            write_config, variables, load_urls(), fetch(", select: { id: x }, model: player")
        )
    assert str(info.value) == (
        "config/p.yml:4, pipeline 'p', stage 'fetch' (#2): model 'player': required column 'born'"
        " is missing (the data has columns: id)"
    )
