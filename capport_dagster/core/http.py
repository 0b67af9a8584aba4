"""The HTTP tasks of SPEC 4: `http_request` and `http_single_request` (JSON APIs into frames).

`http_request` sends one GET per URL in a column; `http_single_request` sends one GET whose query
string lists a column's values::

    - label: fetch_players
      task: http_request
      args: { df_from: PLAYER_URLS, url_column: links.landing, df_to: LANDINGS }
    - label: fetch_teams
      task: http_single_request
      args:
        template: https://api.example.org/v1/teams?season=$SEASON
        url_params:
          - { df_from: PLAYERS, param_column: team_id, template: "id={}" }
          - { df_from: FILTERS, param_column: team }      # team={}
        df_to: TEAMS                                       # GET ...?season=2024&id=1,6&team=NJD

`http_request_json` is `http_request` under the original capport example's arg names: `df` (the
frame of URLs), `select` (the URL column path), `save_df`, and `fields` for the select of the
response rows (`select` in `http_request`); the other args are the same::

    - label: nhl_player
      task: http_request_json
      args: { df: NHL_PLAYER_URLS, select: nhl_url, save_df: NHL_PLAYER }

`send_with_retries` is the retrying request the HTTP tasks share (the webhook tasks of
`core/notify.py` post through it too).

Args (both tasks, all optional but the frame names, the column and the template):

- `method`: only `GET` (any case) for now; anything else is a config error.
- `format`: only `json` for now; anything else is a config error.
- `timeout` (seconds, default 30): the limit for one attempt of one request, from connecting to
  the last byte of the body.
- `retries` (default 3): extra attempts after a connection error, a timeout, a `429 Too Many
  Requests` or a 5xx response. Other 4xx responses fail at once.
- `backoff` (seconds, default 0.5): the wait before the first retry, doubled for each later one
  and capped at 30 s. A `Retry-After` header on a 429 or 5xx (seconds, or an HTTP date) replaces
  the backoff for that wait, capped at 60 s.
- `max_concurrent` (`http_request` only, default 16): requests in flight at once for the stage.

Behaviour:

- Only `http` and `https` URLs are accepted; every URL is checked before any request is sent.
  Redirects are followed. Requests send `Accept: application/json`.
- `http_request`: `url_column` is a column path (`links.player` reads the struct field `player`
  of the column `links`) holding strings. **Null URLs are skipped** (no request, no rows).
  Rows come out in the order of the URL column, whatever order the responses arrive in.
- `http_single_request`: each param's column is read as text; nulls are left out and
  **duplicates are dropped** (first occurrence kept), then the values, percent-encoded, are joined
  with `,` and put in the param's template (default `COLUMN={}`, COLUMN being the last part of
  the column path) in place of `{}`. The params are joined with `&` and appended to `template`
  after `?`, or `&` when the template already has a query (nothing when it ends in `?` or `&`).
  `$VARIABLES` (SPEC 2) in `template` are checked by `validate` and expanded when the stage runs;
  param templates are used as written. When a param has no value at all, no request is sent and
  the result is the empty frame below. With `url_params: []` the template is fetched as it is.
- A JSON object in a body is one row, an array of objects is one row per object (an empty array
  none); nested objects become struct columns, so a transform can `select` `firstName.default`.
  A body that is not JSON (whatever its content type says), or whose JSON is a scalar or an
  array holding anything but objects, fails the stage naming the URL. Column types are inferred
  over all rows of all responses (Polars' supertypes: an int in one response and a float in
  another give a float column; a field missing from a row is null).
- `select` (optional, both tasks): a `{new_col: SOURCE}` mapping as in a transform's `select`
  step, applied to the rows (paths reach into struct fields: `name: firstName.default`);
  `model` (optional): the name of a model the rows are then reshaped by (exactly its columns,
  strict casts, its constraints checked), as `load_csv` does.
- **No URL, no param value or no row at all gives an empty frame with the columns the stage's
  `select`, else its `model`, names** (a model's dtypes; `select` columns are typed null unless
  a model casts them), so a day without input runs through with empty outputs. Without either
  there is no response to learn columns from: the frame has 0 rows and 0 columns, and a later
  `select` of a column fails naming the column.
- A definitive failure fails the stage: `http_request: GET URL failed: 404 Not Found`, and when
  retries run out the last cause with the number of attempts
  (`... failed: 503 Service Unavailable (gave up after 4 attempts)`).
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import polars as pl
from pydantic import BaseModel, ConfigDict, Field

from capport_dagster.core.lineage import ColumnSource
from capport_dagster.core.models import Model, reshape
from capport_dagster.core.paths import split_path
from capport_dagster.core.registry import (
    BindContext,
    Frame,
    RunContext,
    TaskRegistry,
    TaskSpec,
    validate_model,
)
from capport_dagster.core.selects import SelectItem, check_items, select_exprs
from capport_dagster.core.tasks import raw_names
from capport_dagster.core.transforms import parse_select, path_expr, valid_path
from capport_dagster.core.variables import expand
from capport_dagster.errors import (
    ConfigError,
    Location,
    Problem,
    TaskError,
    ValidationError,
    count,
)

if TYPE_CHECKING:
    import httpx

__all__ = [
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

DEFAULT_TIMEOUT = 30.0
DEFAULT_MAX_CONCURRENT = 16
DEFAULT_RETRIES = 3
DEFAULT_BACKOFF = 0.5
#: The longest wait between two attempts that the doubling backoff reaches.
MAX_BACKOFF = 30.0
#: The longest wait a server's `Retry-After` header can impose.
MAX_RETRY_AFTER = 60.0

METHODS: tuple[str, ...] = ("GET",)
FORMATS: tuple[str, ...] = ("json",)
SCHEMES: tuple[str, ...] = ("http", "https")

#: Characters of a body quoted in the error for a body that is not JSON.
_BODY_PREVIEW = 100


# --- args ------------------------------------------------------------------------------------


class _Options(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    df_to: str
    method: str = "GET"
    format: str = "json"
    timeout: float = Field(DEFAULT_TIMEOUT, gt=0)
    retries: int = Field(DEFAULT_RETRIES, ge=0)
    backoff: float = Field(DEFAULT_BACKOFF, ge=0)
    select: Any = None
    model: str | None = None


class _RequestEntry(_Options):
    df_from: str
    url_column: str
    max_concurrent: int = Field(DEFAULT_MAX_CONCURRENT, ge=1)


class _ParamEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    df_from: str
    param_column: str
    template: str | None = None


class _SingleEntry(_Options):
    template: str
    url_params: list[_ParamEntry]


@dataclass(frozen=True)
class HttpOptions:
    """How requests are sent: the same for both tasks (`max_concurrent` is 1 for a single one)."""

    method: str = "GET"
    timeout: float = DEFAULT_TIMEOUT
    retries: int = DEFAULT_RETRIES
    backoff: float = DEFAULT_BACKOFF
    max_concurrent: int = DEFAULT_MAX_CONCURRENT


@dataclass(frozen=True)
class RowShape:
    """What the response rows become: `select` picks and renames columns, then `model` casts.
    Either one also gives the columns of the frame when there is no row at all, so that the
    stages after it see the columns they expect on a day without input."""

    select: tuple[SelectItem, ...] | None = None
    model: Model | None = None

    def empty(self, location: Location) -> pl.DataFrame:
        """The frame of no rows: the select's columns, else the model's (0x0 without either);
        a model the select's columns do not fit fails at the stage, as with rows."""
        if self.select is not None:
            names: tuple[str, ...] = tuple(item.name for item in self.select)
        elif self.model is not None:
            names = tuple(column.name for column in self.model.columns if not column.optional)
        else:
            return pl.DataFrame()
        frame = pl.DataFrame(schema=dict.fromkeys(names, pl.Null()))
        return frame if self.model is None else reshape(frame, self.model, location=location)

    def apply(self, frame: pl.DataFrame, task: str, location: Location) -> pl.DataFrame:
        if self.select is not None:
            problems = check_items(self.select, frame.schema)
            if problems:
                raise TaskError(
                    f"{task}: select on the response rows: {'; '.join(problems)}", location
                )
            try:
                frame = frame.select(select_exprs(self.select))
            except pl.exceptions.PolarsError as exc:
                detail = str(exc).split("\n\n")[0].strip()
                raise TaskError(f"{task}: select on the response rows: {detail}", location) from exc
        if self.model is not None:
            frame = reshape(frame, self.model, location=location)
        return frame


@dataclass(frozen=True)
class HttpRequestArgs:
    """`http_request`: one request per URL of `url_column` (a column path) of `df_from`."""

    df_from: str
    url_column: str
    df_to: str
    options: HttpOptions
    shape: RowShape = RowShape()
    #: The task and arg names the messages use: `http_request_json` runs this task under the
    #: original capport's names (`select` for the URL column).
    task: str = "http_request"
    column_arg: str = "url_column"


@dataclass(frozen=True)
class UrlParam:
    """One query parameter of `http_single_request`: `template` with `{}` -> the joined values."""

    df_from: str
    param_column: str
    template: str


@dataclass(frozen=True)
class HttpSingleRequestArgs:
    """`http_single_request`: one request to `template` (with `$VARIABLES`) plus the params."""

    template: str
    url_params: tuple[UrlParam, ...]
    df_to: str
    options: HttpOptions
    shape: RowShape = RowShape()

    def reads(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(param.df_from for param in self.url_params))


def _options(entry: _Options, task: str, ctx: BindContext, max_concurrent: int = 1) -> HttpOptions:
    method = entry.method.upper()
    if method not in METHODS:
        raise ConfigError(
            f"task '{task}': method {entry.method!r} is not supported yet"
            f" (supported: {', '.join(METHODS)})",
            ctx.location,
        )
    if entry.format.lower() not in FORMATS:
        raise ConfigError(
            f"task '{task}': format {entry.format!r} is not supported yet"
            f" (supported: {', '.join(FORMATS)})",
            ctx.location,
        )
    return HttpOptions(method, entry.timeout, entry.retries, entry.backoff, max_concurrent)


def _shape(entry: _Options, task: str, ctx: BindContext, select_arg: str = "select") -> RowShape:
    """The args' `select` and `model`, both checked: a problem in one does not hide the other.
    `select_arg` names the select in messages (`fields` in `http_request_json`)."""
    problems: list[Problem] = []
    select = model = None
    if entry.select is not None:
        try:
            select = parse_select(entry.select, ctx.location, f"task '{task}': {select_arg}")
        except ValidationError as exc:
            problems.extend(exc.problems)
        except ConfigError as exc:
            problems.append(Problem(exc.location, exc.message))
    if entry.model is not None:
        try:
            model = ctx.model(entry.model)
        except ConfigError as exc:
            problems.append(Problem(exc.location, exc.message))
    ValidationError.raise_if_any(problems)
    return RowShape(select, model)


def _model_frames(args: HttpRequestArgs | HttpSingleRequestArgs) -> tuple[tuple[str, Model], ...]:
    return ((args.df_to, args.shape.model),) if args.shape.model is not None else ()


def _check_column_path(path: str, label: str, task: str, ctx: BindContext) -> str:
    if not valid_path(path):
        raise ConfigError(
            f"task '{task}': {label} {path!r} is not a column path (a name, or a.b.c into"
            " struct fields, with no empty part)",
            ctx.location,
        )
    return path


def _parse_http_request(raw: Any, ctx: BindContext) -> HttpRequestArgs:
    entry = validate_model(_RequestEntry, raw, ctx.location, "args for task 'http_request'")
    assert isinstance(entry, _RequestEntry)
    options = _options(entry, "http_request", ctx, entry.max_concurrent)
    path = _check_column_path(entry.url_column, "url_column", "http_request", ctx)
    shape = _shape(entry, "http_request", ctx)
    return HttpRequestArgs(entry.df_from, path, entry.df_to, options, shape)


def _parse_http_single_request(raw: Any, ctx: BindContext) -> HttpSingleRequestArgs:
    task = "http_single_request"
    entry = validate_model(_SingleEntry, raw, ctx.location, f"args for task '{task}'")
    assert isinstance(entry, _SingleEntry)
    options = _options(entry, task, ctx)
    params = []
    for number, param in enumerate(entry.url_params):
        label = f"url_params.{number}"
        path = _check_column_path(param.param_column, f"{label}.param_column", task, ctx)
        template = param.template
        if template is None:
            template = path.split(".")[-1] + "={}"
        elif "{}" not in template:
            raise ConfigError(
                f"task '{task}': {label}.template {template!r} has no '{{}}' for the values"
                " (e.g. 'id={}')",
                ctx.location,
            )
        params.append(UrlParam(param.df_from, path, template))
    base = ctx.check_path(entry.template)
    shape = _shape(entry, task, ctx)
    return HttpSingleRequestArgs(base, tuple(params), entry.df_to, options, shape)


# --- run -------------------------------------------------------------------------------------


async def _run_http_request(
    args: HttpRequestArgs, frames: Mapping[str, Frame], ctx: RunContext
) -> dict[str, Frame]:
    task = args.task
    urls = await asyncio.to_thread(_url_values, frames[args.df_from], args, ctx.location)
    wanted = [url for url in urls if url is not None]
    skipped = len(urls) - len(wanted)
    bodies = await _fetch_all(wanted, args.options, task, ctx)
    frame = await asyncio.to_thread(_rows_frame, bodies, wanted, task, ctx.location, args.shape)
    ctx.log.info(
        f"{task}: {count(len(wanted), 'request')} -> {count(frame.height, 'row')} in {args.df_to}"
        + (f" ({count(skipped, 'null URL')} skipped)" if skipped else "")
    )
    return {args.df_to: frame}


async def _run_http_single_request(
    args: HttpSingleRequestArgs, frames: Mapping[str, Frame], ctx: RunContext
) -> dict[str, Frame]:
    task = "http_single_request"
    values = await asyncio.to_thread(_param_values, frames, args.url_params, ctx.location)
    empty = [p.param_column for p, v in zip(args.url_params, values, strict=True) if not v]
    if empty:
        ctx.log.info(
            f"{task}: no value in {', '.join(empty)}: no request sent, {args.df_to} is empty"
        )
        return {args.df_to: args.shape.empty(ctx.location)}
    url = _single_url(expand(args.template, ctx.variables, ctx.location), args.url_params, values)
    _check_url(url, task, ctx.location)
    bodies = await _fetch_all([url], args.options, task, ctx)
    frame = await asyncio.to_thread(_rows_frame, bodies, [url], task, ctx.location, args.shape)
    ctx.log.info(f"{task}: GET {url} -> {count(frame.height, 'row')} in {args.df_to}")
    return {args.df_to: frame}


def _single_url(base: str, params: Sequence[UrlParam], values: Sequence[list[str]]) -> str:
    query = "&".join(
        param.template.replace("{}", ",".join(quote(value, safe="") for value in column))
        for param, column in zip(params, values, strict=True)
    )
    if not query:
        return base
    if base.endswith(("?", "&")):
        return base + query
    return base + ("&" if "?" in base else "?") + query


# --- reading columns (in a thread) -----------------------------------------------------------


def _column(frame: Frame, path: str, what: str, location: Location) -> pl.Series:
    """The values at a column path; `what` names the arg and the frame, for the errors."""
    try:
        return frame.lazy().select(path_expr(path)).collect().to_series()
    except pl.exceptions.StructFieldNotFoundError as exc:
        detail = str(exc).split("\n\n")[0].strip()
        raise TaskError(f"{what}: struct field {detail!r} not found", location) from exc
    except pl.exceptions.ColumnNotFoundError as exc:
        columns = ", ".join(frame.lazy().collect_schema().names()) or "none"
        head = path.split(".")[0]
        raise TaskError(
            f"{what}: column '{head}' not found (columns: {columns})", location
        ) from exc


def _url_values(frame: Frame, args: HttpRequestArgs, location: Location) -> list[str | None]:
    """The URL column (nulls kept), every URL checked, before any request is sent."""
    what = f"{args.task}: {args.column_arg} {args.url_column!r} of frame '{args.df_from}'"
    series = _column(frame, args.url_column, what, location)
    if isinstance(series.dtype, pl.Categorical | pl.Enum):
        series = series.cast(pl.String)
    if series.dtype not in (pl.String, pl.Null):
        raise TaskError(f"{what} must hold URLs as strings, got {series.dtype}", location)
    urls = series.cast(pl.String).to_list()
    for url in urls:
        if url is not None:
            _check_url(url, args.task, location)
    return urls


def _param_values(
    frames: Mapping[str, Frame], params: Sequence[UrlParam], location: Location
) -> list[list[str]]:
    values = []
    for param in params:
        what = (
            f"http_single_request: param_column {param.param_column!r} of frame '{param.df_from}'"
        )
        series = _column(frames[param.df_from], param.param_column, what, location)
        try:
            text = series.cast(pl.String)
        except pl.exceptions.PolarsError as exc:
            raise TaskError(
                f"{what}: a {series.dtype} column cannot be written in a query string", location
            ) from exc
        values.append(list(dict.fromkeys(text.drop_nulls().to_list())))
    return values


def _check_url(url: str, task: str, location: Location) -> None:
    import httpx  # here, not at the top: most runs make no request

    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise TaskError(f"{task}: invalid URL {url!r}: {exc}", location) from exc
    if parsed.scheme not in SCHEMES:
        raise TaskError(
            f"{task}: URL {url!r} is not an http or https URL"
            f" ({'scheme ' + repr(parsed.scheme) if parsed.scheme else 'no scheme'})",
            location,
        )
    if not parsed.host:
        raise TaskError(f"{task}: URL {url!r} has no host", location)


# --- requests --------------------------------------------------------------------------------


async def _fetch_all(
    urls: Sequence[str], options: HttpOptions, task: str, ctx: RunContext
) -> list[Any]:
    """The parsed JSON body of each URL, in the order of `urls`, at most `max_concurrent` in
    flight at once. The first definitive failure cancels the other requests and is raised."""
    import httpx

    bodies: list[Any] = [None] * len(urls)
    if not urls:
        return bodies
    workers = min(options.max_concurrent, len(urls))
    limits = httpx.Limits(max_connections=workers, max_keepalive_connections=workers)
    pending: Iterator[tuple[int, str]] = iter(enumerate(urls))
    async with httpx.AsyncClient(
        limits=limits,
        timeout=httpx.Timeout(options.timeout),
        follow_redirects=True,
        headers={"Accept": "application/json"},
    ) as client:

        async def work() -> None:
            # The iterator is shared: each worker takes the next URL when it is free, so at
            # most `workers` requests are ever in flight.
            for index, url in pending:
                bodies[index] = await _fetch(client, url, options, task, ctx)

        jobs = [asyncio.create_task(work()) for _ in range(workers)]
        try:
            await asyncio.gather(*jobs)
        except BaseException:
            for job in jobs:
                job.cancel()
            await asyncio.gather(*jobs, return_exceptions=True)
            raise
    return bodies


async def _fetch(
    client: httpx.AsyncClient, url: str, options: HttpOptions, task: str, ctx: RunContext
) -> Any:
    """One URL's parsed JSON body, retrying what may pass (see the module docstring)."""
    response = await send_with_retries(client, url, options, task, ctx)
    request = f"{options.method} {url}"
    return await asyncio.to_thread(_parse_json, response, request, task, ctx.location)


async def send_with_retries(
    client: httpx.AsyncClient,
    url: str,
    options: HttpOptions,
    task: str,
    ctx: RunContext,
    *,
    shown: str | None = None,
    json_body: Any = None,
) -> httpx.Response:
    """The first successful response to `options.method url`, retrying what may pass: a
    connection error, a timeout, a 429 or a 5xx, with the doubling backoff or the server's
    `Retry-After` (see the module docstring). Any other answer, or the last failure once the
    retries run out, is a TaskError. `shown` stands for the URL in messages and logs when the
    URL itself is a secret (a webhook); `json_body` is sent as the request's JSON body.
    """
    import httpx

    request = f"{options.method} {url if shown is None else shown}"
    extra: dict[str, Any] = {} if json_body is None else {"json": json_body}
    attempt = 0
    while True:
        attempt += 1
        retry_after: float | None = None
        try:
            async with asyncio.timeout(options.timeout):
                response = await client.request(options.method, url, **extra)
        except (TimeoutError, httpx.TimeoutException):
            cause = f"timed out after {options.timeout:g} s"
        except (httpx.NetworkError, httpx.RemoteProtocolError) as exc:
            cause = f"connection error ({type(exc).__name__}: {exc or 'no detail'})"
        except httpx.HTTPError as exc:
            raise TaskError(
                f"{task}: {request} failed: {type(exc).__name__}: {exc}", ctx.location
            ) from exc
        else:
            status = _status(response)
            if response.is_success:
                return response
            if response.status_code != 429 and response.status_code < 500:
                raise TaskError(f"{task}: {request} failed: {status}", ctx.location)
            cause = status
            retry_after = _retry_after(response.headers.get("Retry-After"))
        if attempt > options.retries:
            tries = f"{attempt} attempt{'s' if attempt != 1 else ''}"
            raise TaskError(
                f"{task}: {request} failed: {cause} (gave up after {tries})", ctx.location
            )
        if retry_after is None:
            wait = min(options.backoff * 2 ** (attempt - 1), MAX_BACKOFF)
        else:
            wait = retry_after
        ctx.log.warning(f"{task}: {request}: {cause}; retrying in {wait:g} s")
        await asyncio.sleep(wait)


def _status(response: httpx.Response) -> str:
    """`404 Not Found`: the standard phrase (servers differ in case), else the server's."""
    import httpx

    phrase = httpx.codes.get_reason_phrase(response.status_code) or response.reason_phrase
    return f"{response.status_code} {phrase}".strip()


def _retry_after(value: str | None) -> float | None:
    """Seconds to wait from a `Retry-After` header (delay-seconds or an HTTP date), capped."""
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError, IndexError):
            return None
    if math.isnan(seconds):
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def _parse_json(response: httpx.Response, request: str, task: str, location: Location) -> Any:
    try:
        return json.loads(response.content)
    except ValueError:
        content_type = response.headers.get("Content-Type", "none given")
        text = response.content[:_BODY_PREVIEW].decode("utf-8", errors="replace")
        more = "..." if len(response.content) > _BODY_PREVIEW else ""
        raise TaskError(
            f"{task}: {request} returned a body that is not JSON"
            f" (content type {content_type}): {text!r}{more}",
            location,
        ) from None


# --- rows (in a thread) ----------------------------------------------------------------------


def _rows_frame(
    bodies: Sequence[Any], urls: Sequence[str], task: str, location: Location, shape: RowShape
) -> pl.DataFrame:
    rows: list[dict[str, Any]] = []
    for body, url in zip(bodies, urls, strict=True):
        if isinstance(body, dict):
            rows.append(body)
        elif isinstance(body, list) and all(isinstance(item, dict) for item in body):
            rows.extend(body)
        else:
            got = _json_kind(body)
            raise TaskError(
                f"{task}: GET {url} returned {got}; a body must be a JSON object (one row) or"
                " an array of objects (one row each)",
                location,
            )
    if not rows:
        return shape.empty(location)
    try:
        frame = pl.DataFrame(rows, infer_schema_length=None)
    except (pl.exceptions.PolarsError, TypeError, ValueError) as exc:
        detail = str(exc).split("\n\n")[0].strip()
        raise TaskError(
            f"{task}: the JSON bodies do not make one frame: {detail}", location
        ) from exc
    return shape.apply(frame, task, location)


def _json_kind(body: Any, *, top: bool = True) -> str:
    if isinstance(body, list):
        if not top:
            return "an array"
        odd = next(item for item in body if not isinstance(item, dict))
        return f"an array holding {_json_kind(odd, top=False)}"
    if body is None:
        return "null"
    if isinstance(body, bool):
        return f"the boolean {json.dumps(body)}"
    if isinstance(body, int | float):
        return f"the number {json.dumps(body)}"
    if isinstance(body, str):
        return f"the string {json.dumps(body)[:40]}"
    return type(body).__name__


def _http_lineage(
    args: HttpRequestArgs | HttpSingleRequestArgs,
    inputs: Mapping[str, pl.Schema],
    outputs: Mapping[str, pl.Schema],
) -> dict[str, dict[str, tuple[ColumnSource, ...]]]:
    """The rows are the responses' (from outside the graph) to the requests the stage made of
    its URL column, or of its params' columns: each column comes from those columns only (none
    when no frame is read, as for any load)."""
    if isinstance(args, HttpRequestArgs):
        sources = ((args.df_from, split_path(args.url_column)[0]),)
    else:
        params = args.url_params
        sources = tuple(dict.fromkeys((p.df_from, split_path(p.param_column)[0]) for p in params))
    return {args.df_to: dict.fromkeys(outputs.get(args.df_to, ()), sources)}


# --- registration ----------------------------------------------------------------------------


def register_http_tasks(registry: TaskRegistry) -> TaskRegistry:
    """Register `http_request`, `http_single_request` and `http_request_json` (the former under
    the original capport's arg names) in `registry` (the default one already has them)."""
    registry.register(
        TaskSpec(
            "http_request",
            _run_http_request,
            reads=lambda a: (a.df_from,),
            writes=lambda a: (a.df_to,),
            parse=_parse_http_request,
            model_frames=_model_frames,
            lineage=_http_lineage,
            salvage_reads=lambda raw: raw_names(raw, "df_from"),
            description="GET each URL of a column concurrently; JSON bodies become rows.",
        )
    )
    registry.register(
        TaskSpec(
            "http_single_request",
            _run_http_single_request,
            reads=HttpSingleRequestArgs.reads,
            writes=lambda a: (a.df_to,),
            parse=_parse_http_single_request,
            model_frames=_model_frames,
            lineage=_http_lineage,
            salvage_reads=lambda raw: raw_names(
                raw.get("url_params") if isinstance(raw, Mapping) else None, "df_from"
            ),
            description="GET one URL whose query lists columns' values; JSON bodies become rows.",
        )
    )
    registry.register(
        TaskSpec(
            "http_request_json",
            _run_http_request,
            reads=lambda a: (a.df_from,),
            writes=lambda a: (a.df_to,),
            parse=_parse_http_request_json,
            model_frames=_model_frames,
            lineage=_http_lineage,
            salvage_reads=lambda raw: raw_names(raw, "df"),
            description="http_request under the original capport's arg names (df, select).",
        )
    )
    return registry


# `http_request_json` is `http_request` under the original capport example's arg names: `df`
# (the frame of URLs), `select` (the URL column path), `save_df`. Its `select` names the URL
# column, so the select of the response rows, `select` in `http_request`, is `fields` here.


class _RequestJsonEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    df: str
    select: str
    save_df: str
    fields: Any = None
    model: str | None = None
    method: str = "GET"
    format: str = "json"
    timeout: float = Field(DEFAULT_TIMEOUT, gt=0)
    retries: int = Field(DEFAULT_RETRIES, ge=0)
    backoff: float = Field(DEFAULT_BACKOFF, ge=0)
    max_concurrent: int = Field(DEFAULT_MAX_CONCURRENT, ge=1)


def _parse_http_request_json(raw: Any, ctx: BindContext) -> HttpRequestArgs:
    task = "http_request_json"
    entry = validate_model(_RequestJsonEntry, raw, ctx.location, f"args for task '{task}'")
    assert isinstance(entry, _RequestJsonEntry)
    same = _RequestEntry(
        df_from=entry.df,
        url_column=entry.select,
        df_to=entry.save_df,
        select=entry.fields,
        model=entry.model,
        method=entry.method,
        format=entry.format,
        timeout=entry.timeout,
        retries=entry.retries,
        backoff=entry.backoff,
        max_concurrent=entry.max_concurrent,
    )
    options = _options(same, task, ctx, entry.max_concurrent)
    path = _check_column_path(entry.select, "select", task, ctx)
    shape = _shape(same, task, ctx, select_arg="fields")
    return HttpRequestArgs(entry.df, path, entry.save_df, options, shape, task, "select")
