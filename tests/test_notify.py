"""The webhook tasks `discord` and `notify` (core/notify.py) against a local HTTP server standing
in for the webhook."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator, Mapping
from pathlib import Path

import polars as pl
import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from capport_dagster.core import notify
from capport_dagster.core.builtin_tasks import DEFAULT_REGISTRY
from capport_dagster.core.graph import PipelineGraph, load_project
from capport_dagster.core.http import HttpOptions
from capport_dagster.core.modes import RunMode
from capport_dagster.core.notify import NotifyArgs, Webhook, message
from capport_dagster.errors import TaskError, ValidationError
from tests.conftest import free_port, run_stages

#: The secret part of every webhook URL in these tests: it must never be seen.
TOKEN = "s3cr3t-W3bh00k-T0ken"
HOOK = f"/api/webhooks/1234/{TOKEN}"


@pytest.fixture(scope="module")
def make_httpserver() -> Iterator[HTTPServer]:
    server = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    server.start()
    yield server
    server.clear()
    server.stop()


@pytest.fixture
def hook_url(httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch) -> str:
    """The webhook URL, also in $DISCORD_WEBHOOK_URL and $NOTIFY_WEBHOOK_URL (validate checks
    that the variables are defined)."""
    url = httpserver.url_for(HOOK)
    monkeypatch.setenv("DISCORD_WEBHOOK_URL", url)
    monkeypatch.setenv("NOTIFY_WEBHOOK_URL", url)
    return url


def pipeline(*stages: str) -> str:
    return "pipeline:\n  p:\n" + "".join(f"    - {stage}\n" for stage in stages)


LOAD = "{ label: load, task: load_csv, args: { filepath: neq.csv, df_name: NEQ } }"
NEQ = pl.DataFrame({"id": [2, 3], "name": ["bob", None], "recon": ["differs", "missing"]})


def tell(task: str = "discord", args: str = "") -> str:
    level = "" if "level:" in args else "level: warn, "
    return (
        f"{{ label: tell, task: {task}, args: {{ {level}task_type: recon, "
        f"args: {{ df: NEQ }}{args} }} }}"
    )


def graph_of(write_config, *stages: str, files: Mapping[str, str] | None = None) -> PipelineGraph:
    return load_project(write_config({"p.yml": pipeline(*stages), **(files or {})})).graphs["p"]


def run(graph: PipelineGraph, mode: RunMode = RunMode.SYNC_LAZY) -> None:
    """The stages in list order, with the webhook variables `hook_url` set as the variables."""
    run_stages(graph, mode, {k: v for k, v in os.environ.items() if k.endswith("_WEBHOOK_URL")})


EXPECTED = (
    "[WARN] recon: 2 rows in NEQ (pipeline 'p', stage 'tell' (#2))\n"
    "```\n"
    "| id | name | recon   |\n"
    "|----|------|---------|\n"
    "| 2  | bob  | differs |\n"
    "| 3  | null | missing |\n"
    "```"
)


def posted(server: HTTPServer) -> list[dict]:
    return [json.loads(request.get_data()) for request, _ in server.log]


def seen(caplog: pytest.LogCaptureFixture) -> str:
    """Every log line of the run (the stand-in server's own request log left out: a real
    webhook's server is not ours)."""
    return "\n".join(r.getMessage() for r in caplog.records if r.name != "werkzeug")


def test_the_public_api():
    assert notify.__all__ == [
        "DEFAULT_MAX_ROWS",
        "LEVELS",
        "MAX_MESSAGE",
        "NotifyArgs",
        "Webhook",
        "message",
        "register_notify_tasks",
    ]
    for task in ("discord", "notify"):
        assert DEFAULT_REGISTRY.get(task).waits_on_io


# --- the message -----------------------------------------------------------------------------


def test_a_message_is_a_title_and_the_rows_in_a_code_block():
    title = "[WARN] recon: 2 rows in NEQ (pipeline 'p', stage 'tell' (#2))"
    assert message(NEQ, 2, title) == EXPECTED


def test_rows_not_shown_are_counted():
    text = message(NEQ.head(1), 7, "T")
    assert text == (
        "T\n```\n| id | name | recon   |\n|----|------|---------|\n| 2  | bob  | differs |\n```\n"
        "(first 1 of 7 rows)"
    )


def test_a_long_message_shows_fewer_rows_to_fit_discords_limit():
    frame = pl.DataFrame(
        {"id": list(range(10)), "a": ["x" * 300] * 10, "b": ["y" * 100] * 10, "c": ["z" * 100] * 10}
    )
    text = message(frame, 20, "T")
    # Values are cut at 100 characters: each line of the table is 318 characters; 4 rows fit in
    # 2,000 characters (1,944), 5 would not (2,263).
    lines = text.split("\n")
    assert [len(line) for line in lines] == [1, 3, *[318] * 6, 3, 20]
    assert lines[-1] == "(first 4 of 20 rows)"
    assert lines[4].startswith("| 0  | " + "x" * 100 + "... | " + "y" * 100 + " |")
    assert lines[7].startswith("| 3  | ")
    assert len(text) == 1944


def test_one_row_wider_than_the_limit_is_cut():
    frame = pl.DataFrame({f"c{i}": ["y" * 100] for i in range(40)})
    text = message(frame, 1, "T")
    assert len(text) == notify.MAX_MESSAGE
    assert text.startswith("T\n```\n| c0 ")
    assert text.endswith("...\n```")


def test_a_fence_in_the_data_does_not_end_the_code_block():
    text = message(pl.DataFrame({"v": ["a```b"]}), 1, "T")
    assert text.count("```") == 2
    assert "a``\u200b`b" in text


# --- posting ---------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", list(RunMode))
def test_discord_posts_the_summary_of_a_non_empty_frame(
    write_config, tmp_path, httpserver, hook_url, mode, caplog
):
    NEQ.write_csv(tmp_path / "neq.csv")
    httpserver.expect_request(HOOK, method="POST").respond_with_data("", status=204)
    graph = graph_of(write_config, LOAD, tell())
    node = graph.by_label["tell"]
    assert (node.reads, node.writes) == (("NEQ",), ())
    assert node.args == NotifyArgs(
        "NEQ",
        "WARN",
        "recon",
        Webhook("$DISCORD_WEBHOOK_URL", "$DISCORD_WEBHOOK_URL"),
        HttpOptions(method="POST", max_concurrent=1),
    )
    with caplog.at_level(logging.DEBUG):
        run(graph, mode)
    assert posted(httpserver) == [{"content": EXPECTED, "allowed_mentions": {"parse": []}}]
    request = httpserver.log[0][0]
    assert request.headers["Content-Type"] == "application/json"
    assert "discord: posted 2 rows of NEQ to webhook $DISCORD_WEBHOOK_URL" in caplog.messages
    assert TOKEN not in seen(caplog)


def test_notify_posts_text(write_config, tmp_path, httpserver, hook_url):
    NEQ.write_csv(tmp_path / "neq.csv")
    httpserver.expect_request(HOOK, method="POST").respond_with_data("ok")
    run(graph_of(write_config, LOAD, tell("notify")))
    assert posted(httpserver) == [{"text": EXPECTED}]


@pytest.mark.parametrize("mode", [RunMode.SYNC_LAZY, RunMode.ASYNC_EAGER])
def test_an_empty_frame_posts_nothing(write_config, tmp_path, httpserver, hook_url, mode, caplog):
    NEQ.clear().write_csv(tmp_path / "neq.csv")
    with caplog.at_level(logging.DEBUG):
        run(graph_of(write_config, LOAD, tell()), mode)
    assert httpserver.log == []
    assert "discord: NEQ is empty: nothing posted" in caplog.messages


@pytest.mark.parametrize(
    ("webhook", "files", "source"),
    [
        ("hooks", {"c.yml": "connection:\n  hooks:\n    url: $ALERTS_URL\n"}, "connection 'hooks'"),
        ("hooks", {"s.yml": "service:\n  hooks:\n    url: $ALERTS_URL\n"}, "service 'hooks'"),
        ("$ALERTS_URL", {}, "$ALERTS_URL"),
    ],
)
def test_the_webhook_may_be_a_variable_or_an_entry_holding_url(
    write_config, tmp_path, httpserver, monkeypatch, webhook, files, source, caplog
):
    monkeypatch.setenv("ALERTS_URL", httpserver.url_for(HOOK))
    monkeypatch.delenv("DISCORD_WEBHOOK_URL", raising=False)
    NEQ.write_csv(tmp_path / "neq.csv")
    httpserver.expect_request(HOOK, method="POST").respond_with_data("", status=204)
    graph = graph_of(write_config, LOAD, tell(args=f", webhook: {webhook}"), files=files)
    assert graph.by_label["tell"].args.webhook.source == source
    with caplog.at_level(logging.DEBUG):
        run_stages(graph, RunMode.SYNC_LAZY, {"ALERTS_URL": httpserver.url_for(HOOK)})
    assert len(posted(httpserver)) == 1
    assert f"discord: posted 2 rows of NEQ to webhook {source}" in caplog.messages
    assert TOKEN not in seen(caplog)


def test_a_5xx_is_retried_with_the_http_tasks_retries(
    write_config, tmp_path, httpserver, hook_url, caplog
):
    NEQ.write_csv(tmp_path / "neq.csv")
    calls = []

    def handler(request: Request) -> Response:
        calls.append(json.loads(request.get_data()))
        return Response("busy", status=503 if len(calls) == 1 else 204)

    httpserver.expect_request(HOOK, method="POST").respond_with_handler(handler)
    with caplog.at_level(logging.DEBUG):
        run(graph_of(write_config, LOAD, tell(args=", backoff: 0")))
    assert len(calls) == 2 and calls[0] == calls[1]
    assert (
        "discord: POST webhook $DISCORD_WEBHOOK_URL: 503 Service Unavailable; retrying in 0 s"
        in caplog.messages
    )
    assert TOKEN not in seen(caplog)


# --- the URL is a secret ---------------------------------------------------------------------


def failure(graph: PipelineGraph, variables: Mapping[str, str]) -> str:
    with pytest.raises(TaskError) as info:
        run_stages(graph, RunMode.SYNC_LAZY, variables)
    assert info.value.__cause__ is None  # no chained exception quoting the URL either
    return str(info.value)


@pytest.mark.parametrize(
    ("status", "args", "cause"),
    [
        (404, "", "404 Not Found"),
        (500, ", retries: 1, backoff: 0", "500 Internal Server Error (gave up after 2 attempts)"),
    ],
)
def test_a_failed_post_never_shows_the_url(
    write_config, tmp_path, httpserver, hook_url, capsys, caplog, status, args, cause
):
    NEQ.write_csv(tmp_path / "neq.csv")
    httpserver.expect_request(HOOK, method="POST").respond_with_data(HOOK, status=status)
    graph = graph_of(write_config, LOAD, tell(args=args))
    with caplog.at_level(logging.DEBUG):
        error = failure(graph, {"DISCORD_WEBHOOK_URL": hook_url})
    assert error == (
        "config/p.yml:4, pipeline 'p', stage 'tell' (#2): discord: POST webhook "
        f"$DISCORD_WEBHOOK_URL failed: {cause}"
    )
    out, err = capsys.readouterr()
    assert TOKEN not in out + err + seen(caplog)


def test_a_refused_connection_never_shows_the_url(write_config, tmp_path, monkeypatch, caplog):
    url = f"http://127.0.0.1:{free_port()}{HOOK}"
    monkeypatch.setenv("DISCORD_WEBHOOK_URL", url)
    NEQ.write_csv(tmp_path / "neq.csv")
    graph = graph_of(write_config, LOAD, tell(args=", retries: 0"))
    with caplog.at_level(logging.DEBUG):
        error = failure(graph, {"DISCORD_WEBHOOK_URL": url})
    assert error.startswith(
        "config/p.yml:4, pipeline 'p', stage 'tell' (#2): discord: POST webhook "
        "$DISCORD_WEBHOOK_URL failed: connection error (ConnectError: "
    )
    assert error.endswith("(gave up after 1 attempt)")
    assert TOKEN not in error + seen(caplog)


def test_a_variable_that_is_not_a_url_is_said_without_its_value(
    write_config, tmp_path, monkeypatch
):
    monkeypatch.setenv("DISCORD_WEBHOOK_URL", f"ftp://host{HOOK}")
    NEQ.write_csv(tmp_path / "neq.csv")
    graph = graph_of(write_config, LOAD, tell())
    assert failure(graph, {"DISCORD_WEBHOOK_URL": f"ftp://host{HOOK}"}) == (
        "config/p.yml:4, pipeline 'p', stage 'tell' (#2): discord: the URL of webhook "
        "$DISCORD_WEBHOOK_URL is not an http or https URL with a host"
    )


def test_the_webhook_variable_is_one_of_the_runs_secrets(write_config, hook_url):
    """Masked in whatever any stage of the run says, not only by the webhook tasks."""
    project = load_project(write_config({"p.yml": pipeline(LOAD, tell())}))
    assert project.redactor(f"posting to {hook_url} failed") == "posting to *** failed"


# --- validate --------------------------------------------------------------------------------


def errors(config: Path) -> list[str]:
    with pytest.raises(ValidationError) as info:
        load_project(config)
    return [str(problem) for problem in info.value.errors]


@pytest.mark.parametrize(
    ("task", "args", "files", "cause"),
    [
        (
            "discord",
            ", level: loud",
            {},
            "task 'discord': level 'loud' is not a level (levels: DEBUG, INFO, WARN, ERROR, "
            "CRITICAL)",
        ),
        (
            "discord",
            ", webhook: hookz",
            {"c.yml": "connection:\n  hooks: { url: 'http://h/x' }\n"},
            "task 'discord': webhook 'hookz' is neither a URL, a $VARIABLE nor the name of a "
            "connection or service entry - did you mean 'hooks'? (entries: hooks)",
        ),
        (
            "notify",
            ", webhook: hooks",
            {"s.yml": "service:\n  hooks: { host: h }\n"},
            "task 'notify': webhook names service 'hooks', which has no url (give it url: "
            "https://... or url: $VARIABLE)",
        ),
        (
            "discord",
            ", webhook: 'https://discord.example/api/webhooks/1/s3cr3t'",
            {},
            "task 'discord': a webhook URL written in the args is not kept secret (stage args are"
            " shown in Dagster): put it in a variable (webhook: $MY_WEBHOOK_URL) or in a"
            " connection entry's url (webhook: ENTRY)",
        ),
        (
            "notify",
            ", webhook: hooks",
            {"c.yml": "connection:\n  hooks: { url: 'mailto://x' }\n"},
            "task 'notify': the url of connection 'hooks' is not an http or https URL with a host",
        ),
        (
            "discord",
            ", webhook: $CAPPORT_NO_SUCH_HOOK",
            {},
            "undefined variable $CAPPORT_NO_SUCH_HOOK in '$CAPPORT_NO_SUCH_HOOK' (define it in "
            "the environment; built-ins: CONFIG_DIR, OUTPUT_DIR, REF_DATE, REF_DATETIME)",
        ),
        (
            "discord",
            ", channel: x, max_rows: 0",
            {},
            "malformed args for task 'discord': max_rows: input should be greater than or equal "
            "to 1; unknown key 'channel' (keys: args, backoff, job_type, level, max_rows, "
            "retries, task_type, timeout, webhook)",
        ),
    ],
)
def test_args_are_checked_by_validate(write_config, hook_url, task, args, files, cause):
    config = write_config({"p.yml": pipeline(LOAD, tell(task, args)), **files})
    assert errors(config) == [f"error: config/p.yml:4, pipeline 'p', stage 'tell' (#2): {cause}"]


def test_the_default_webhook_variable_must_be_defined(write_config, monkeypatch):
    monkeypatch.delenv("DISCORD_WEBHOOK_URL", raising=False)
    monkeypatch.delenv("NOTIFY_WEBHOOK_URL", raising=False)
    config = write_config({"p.yml": pipeline(LOAD, tell(), tell("notify").replace("tell", "t2"))})
    assert errors(config) == [
        f"error: config/p.yml:{line}, pipeline 'p', stage '{label}' (#{n}): undefined variable "
        f"${var} in '${var}' (define it in the environment; built-ins: CONFIG_DIR, OUTPUT_DIR, "
        "REF_DATE, REF_DATETIME)"
        for line, label, n, var in (
            (4, "tell", 2, "DISCORD_WEBHOOK_URL"),
            (5, "t2", 3, "NOTIFY_WEBHOOK_URL"),
        )
    ]


def test_job_type_the_originals_name_is_accepted(write_config, hook_url):
    stage = (
        "{ label: tell, task: discord, args: { level: WARN, job_type: recon, args: { df: NEQ } } }"
    )
    graph = graph_of(write_config, LOAD, stage)
    assert graph.by_label["tell"].args.task_type == "recon"
