"""The webhook tasks: `discord` (of the original capport example) and a generic `notify`.

Both post a message summarising a frame to a webhook, **only when the frame has rows** (a
reconciliation that finds nothing wrong stays silent)::

    - label: inform_recon
      task: discord
      args:
        level: WARN
        task_type: recon              # `job_type`, the original's name, is accepted too
        args: { df: RECON_PLAYER }
        webhook: $DISCORD_WEBHOOK_URL # the default

Args:

- `args: { df: FRAME }` (required): the frame summarised.
- `level` (default `INFO`): `DEBUG`, `INFO`, `WARN` (or `WARNING`), `ERROR` or `CRITICAL`, any
  case; it heads the message.
- `task_type` (optional): what produced the frame (`recon`), shown after the level.
- `webhook`: where to post. A URL (`https://...`), a template with `$VARIABLES`
  (`$DISCORD_WEBHOOK_URL`, `https://hooks.example.org/$TOKEN`), or the name of a `connection` or
  `service` entry whose `url` holds the URL (itself possibly a template). Default:
  `$DISCORD_WEBHOOK_URL` for `discord`, `$NOTIFY_WEBHOOK_URL` for `notify`. Checked by
  `validate`: an undefined variable or an unknown entry is a located error.
- `max_rows` (default 10): the most rows the message shows.
- `timeout`, `retries`, `backoff`: as the HTTP tasks (`core/http.py`), whose retrying request
  (`send_with_retries`) the post goes through: a connection error, a timeout, a 429 or a 5xx is
  retried; any other 4xx fails at once.

The message (at most `MAX_MESSAGE` = 2,000 characters, Discord's limit for `content`)::

    [WARN] recon: 2 rows in RECON_PLAYER (pipeline 'player_recon', stage 'inform_recon' (#6))
    ```
    | id | name | recon   |
    |----|------|---------|
    | 2  | bob  | differs |
    ```

followed by `(first N of M rows)` when not every row is shown. Fewer rows are shown until the
message fits; a single row wider than the limit is cut, ending in `...`. Values are never
truncated by Polars (up to 100 characters each).

`discord` posts `{"content": message, "allowed_mentions": {"parse": []}}` (a `@everyone` in
the data pings nobody); `notify` posts `{"text": message}`, the shape Slack's and Mattermost's
incoming webhooks (and most others) accept.

**The webhook URL is a secret** (a Discord webhook URL is its own credential): it is never in a
message, log line or error. Messages name where it came from instead
(`discord: POST webhook $DISCORD_WEBHOOK_URL failed: 404 Not Found`), and any text an error
carries is masked with the run's redactor extended by the URL.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import polars as pl
from pydantic import AliasChoices, BaseModel, ConfigDict, Field

from capport_dagster.core.http import (
    DEFAULT_BACKOFF,
    DEFAULT_RETRIES,
    DEFAULT_TIMEOUT,
    SCHEMES,
    HttpOptions,
    send_with_retries,
)
from capport_dagster.core.registry import (
    BindContext,
    Frame,
    RunContext,
    TaskRegistry,
    TaskSpec,
    validate_model,
)
from capport_dagster.core.secrets import RedactingLog, Redactor
from capport_dagster.core.variables import expand
from capport_dagster.errors import ConfigError, Location, TaskError, count, did_you_mean

__all__ = [
    "DEFAULT_MAX_ROWS",
    "LEVELS",
    "MAX_MESSAGE",
    "NotifyArgs",
    "Webhook",
    "message",
    "register_notify_tasks",
]

#: Discord's limit for a message's `content`.
MAX_MESSAGE = 2000
DEFAULT_MAX_ROWS = 10
LEVELS: tuple[str, ...] = ("DEBUG", "INFO", "WARN", "ERROR", "CRITICAL")
#: The longest value shown in a cell (Polars' table truncates longer ones with `...`).
_CELL_CHARS = 100
_FENCE = "```"

#: Each task's webhook when the args give none.
_DEFAULT_WEBHOOK = {"discord": "$DISCORD_WEBHOOK_URL", "notify": "$NOTIFY_WEBHOOK_URL"}


class _MaskUrls(logging.Filter):
    """Masks the webhook URLs in what httpx logs: it logs every request's URL at INFO
    (`HTTP Request: POST https://discord.com/api/webhooks/ID/TOKEN "HTTP/1.1 204"`), and a run
    at log level INFO would print the webhook's credential."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._redact = Redactor()

    def add(self, url: str) -> None:
        with self._lock:
            self._redact = Redactor(self._redact.secrets | {url})

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        masked = self._redact(text)
        if masked != text:
            record.msg, record.args = masked, None
        return True


_HTTPX_MASK = _MaskUrls()
logging.getLogger("httpx").addFilter(_HTTPX_MASK)


def _payload(task: str, text: str) -> dict[str, Any]:
    if task == "discord":
        return {"content": text, "allowed_mentions": {"parse": []}}
    return {"text": text}


# --- args ------------------------------------------------------------------------------------


class _FrameArg(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    df: str


class _NotifyEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    args: _FrameArg
    level: str = "INFO"
    task_type: str | None = Field(None, validation_alias=AliasChoices("task_type", "job_type"))
    webhook: str | None = None
    max_rows: int = Field(DEFAULT_MAX_ROWS, ge=1)
    timeout: float = Field(DEFAULT_TIMEOUT, gt=0)
    retries: int = Field(DEFAULT_RETRIES, ge=0)
    backoff: float = Field(DEFAULT_BACKOFF, ge=0)


@dataclass(frozen=True)
class Webhook:
    """Where to post: `template` (a URL, possibly with `$VARIABLES`) and `source`, what messages
    say instead of the URL (`$DISCORD_WEBHOOK_URL`, `connection 'alerts'`, `the args`)."""

    template: str
    source: str


@dataclass(frozen=True)
class NotifyArgs:
    df: str
    level: str
    task_type: str | None
    webhook: Webhook
    options: HttpOptions
    max_rows: int = DEFAULT_MAX_ROWS


def _parser(task: str) -> Any:
    def parse(raw: Any, ctx: BindContext) -> NotifyArgs:
        entry = validate_model(_NotifyEntry, raw, ctx.location, f"args for task '{task}'")
        assert isinstance(entry, _NotifyEntry)
        level = entry.level.upper()
        level = "WARN" if level == "WARNING" else level
        if level not in LEVELS:
            raise ConfigError(
                f"task '{task}': level {entry.level!r} is not a level"
                f"{did_you_mean(level, LEVELS)} (levels: {', '.join(LEVELS)})",
                ctx.location,
            )
        webhook = _webhook(entry.webhook or _DEFAULT_WEBHOOK[task], task, ctx)
        options = HttpOptions("POST", entry.timeout, entry.retries, entry.backoff, 1)
        return NotifyArgs(entry.args.df, level, entry.task_type, webhook, options, entry.max_rows)

    return parse


def _webhook(value: str, task: str, ctx: BindContext) -> Webhook:
    """A URL, a `$VARIABLE` template, or a connection/service entry's `url` (see the docstring).
    No message quotes a URL: only variable names and entry names."""
    if "$" in value:
        ctx.check_path(value)
        return Webhook(value, value if value.startswith("$") else "(URL with variables)")
    if "://" in value:
        # Stage args are config, shown as the asset's `capport/args` metadata in Dagster: a
        # webhook URL is its own credential, so it may not be written there (as a password may
        # not be written in a stage's `url`).
        raise ConfigError(
            f"task '{task}': a webhook URL written in the args is not kept secret (stage args are"
            " shown in Dagster): put it in a variable (webhook: $MY_WEBHOOK_URL) or in a"
            " connection entry's url (webhook: ENTRY)",
            ctx.location,
        )
    for section in ("connection", "service"):
        entry = ctx.config.section(section).get(value)
        if entry is None:
            continue
        url = entry.body.get("url") if isinstance(entry.body, Mapping) else None
        if not isinstance(url, str) or not url:
            raise ConfigError(
                f"task '{task}': webhook names {section} '{value}', which has no url"
                " (give it url: https://... or url: $VARIABLE)",
                ctx.location,
            )
        if "$" in url:
            ctx.check_path(url)
        elif (problem := _url_problem(url)) is not None:
            raise ConfigError(
                f"task '{task}': the url of {section} '{value}' {problem}", ctx.location
            )
        return Webhook(url, f"{section} '{value}'")
    entries = [*ctx.config.section("connection"), *ctx.config.section("service")]
    raise ConfigError(
        f"task '{task}': webhook {value!r} is neither a URL, a $VARIABLE nor the name of a"
        f" connection or service entry{did_you_mean(value, entries)}"
        f" (entries: {', '.join(sorted(entries)) or 'none defined'})",
        ctx.location,
    )


def _url_problem(url: str) -> str | None:
    """Why `url` cannot be posted to, in words that do not quote it; None when it can."""
    import httpx

    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        return "is not a valid URL"
    if parsed.scheme not in SCHEMES or not parsed.host:
        return "is not an http or https URL with a host"
    return None


# --- the message -----------------------------------------------------------------------------


def message(head: pl.DataFrame, rows: int, title: str, *, limit: int = MAX_MESSAGE) -> str:
    """`title`, then as many of `head`'s rows as fit in `limit` characters as a code block, then
    `(first N of M rows)` when not all `rows` are shown."""
    for shown in range(head.height, 0, -1):
        text = _compose(title, _table(head.head(shown)), shown, rows)
        if len(text) <= limit:
            return text
    # One row is still too wide: cut the table itself.
    tail = _tail(1, rows)
    budget = limit - len(f"{title}\n{_FENCE}\n...\n{_FENCE}{tail}")
    table = _table(head.head(1))[: max(budget, 0)]
    return f"{title}\n{_FENCE}\n{table}...\n{_FENCE}{tail}"[:limit]


def _compose(title: str, table: str, shown: int, rows: int) -> str:
    return f"{title}\n{_FENCE}\n{table}\n{_FENCE}{_tail(shown, rows)}"


def _tail(shown: int, rows: int) -> str:
    return "" if shown >= rows else f"\n(first {shown} of {count(rows, 'row')})"


def _table(frame: pl.DataFrame) -> str:
    with pl.Config(
        tbl_formatting="ASCII_MARKDOWN",
        tbl_hide_dataframe_shape=True,
        tbl_hide_column_data_types=True,
        tbl_rows=-1,
        tbl_cols=-1,
        tbl_width_chars=65_535,
        fmt_str_lengths=_CELL_CHARS,
        fmt_table_cell_list_len=10,
    ):
        text = str(frame)
    # A fence inside the data would end the code block early.
    return text.replace(_FENCE, "``\u200b`")


def _title(task: str, args: NotifyArgs, rows: int, location: Location) -> str:
    what = f"[{args.level}] {args.task_type}" if args.task_type else f"[{args.level}]"
    where = []
    if location.name is not None:
        where.append(f"pipeline '{location.name}'")
    if location.stage is not None:
        where.append(f"stage '{location.stage}' (#{location.index})")
    return f"{what}: {count(rows, 'row')} in {args.df}" + (
        f" ({', '.join(where)})" if where else ""
    )


# --- run -------------------------------------------------------------------------------------


def _head_and_rows(frame: Frame, rows: int) -> tuple[pl.DataFrame, int]:
    """The first rows and the row count, in one pass over a lazy frame."""
    if isinstance(frame, pl.DataFrame):
        return frame.head(rows), frame.height
    head, length = pl.collect_all([frame.head(rows), frame.select(pl.len())], engine="streaming")
    return head, int(length.item())


def _runner(task: str) -> Any:
    async def run(args: NotifyArgs, frames: Mapping[str, Frame], ctx: RunContext) -> None:
        head, rows = await asyncio.to_thread(_head_and_rows, frames[args.df], args.max_rows)
        if rows == 0:
            ctx.log.info(f"{task}: {args.df} is empty: nothing posted")
            return None
        text = message(head, rows, _title(task, args, rows, ctx.location))
        await _post(task, args, text, ctx)
        ctx.log.info(
            f"{task}: posted {count(rows, 'row')} of {args.df} to webhook {args.webhook.source}"
        )
        return None

    run.__doc__ = f"Post a summary of a non-empty frame to a {task} webhook."
    return run


async def _post(task: str, args: NotifyArgs, text: str, ctx: RunContext) -> None:
    """Post `text`, the URL masked in everything said on the way (see the module docstring)."""
    import httpx

    url = expand(args.webhook.template, ctx.variables, ctx.location)
    _HTTPX_MASK.add(url)
    redact = Redactor(ctx.redact.secrets | {url})
    quiet = dataclasses.replace(ctx, log=RedactingLog(ctx.log, redact), redact=redact)
    shown = f"webhook {args.webhook.source}"
    problem = _url_problem(url)
    if problem is not None:
        raise TaskError(f"{task}: the URL of {shown} {problem}", ctx.location)
    try:
        async with httpx.AsyncClient(
            timeout=httpx.Timeout(args.options.timeout), follow_redirects=True
        ) as client:
            await send_with_retries(
                client, url, args.options, task, quiet, shown=shown, json_body=_payload(task, text)
            )
    except TaskError as exc:
        raise TaskError(redact(exc.message), exc.location) from None
    except (httpx.HTTPError, OSError, ValueError) as exc:
        raise TaskError(
            redact(f"{task}: POST {shown} failed: {type(exc).__name__}: {exc}"), ctx.location
        ) from None


# --- registration ----------------------------------------------------------------------------


def register_notify_tasks(registry: TaskRegistry) -> TaskRegistry:
    """Register `discord` and `notify` in `registry` (the default one already has them)."""
    for task, description in (
        ("discord", "Post a summary of a non-empty frame to a Discord webhook."),
        ("notify", 'Post a summary of a non-empty frame to a webhook as {"text": ...}.'),
    ):
        registry.register(
            TaskSpec(
                task,
                _runner(task),
                reads=lambda a: (a.df,),
                writes=lambda a: (),
                parse=_parser(task),
                salvage_reads=_salvage_reads,
                description=description,
            )
        )
    return registry


def _salvage_reads(raw: Any) -> list[str]:
    inner = raw.get("args") if isinstance(raw, Mapping) else None
    frame = inner.get("df") if isinstance(inner, Mapping) else None
    return [frame] if isinstance(frame, str) else []
