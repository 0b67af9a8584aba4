"""The task registry: what a stage's `task:` name means.

A task is declared once, with everything the graph and the translator need: how to check its args,
which dataframes it **reads** and **writes** (computed from the args alone, so dependencies are
known before anything runs) and the function that does the work. Built-in tasks are registered
exactly like a user's own:

    from capport_dagster import task

    @task("dedupe", reads=lambda a: [a["input"]], writes=lambda a: [a["save_df"]])
    def dedupe(args, frames, ctx):
        return {args["save_df"]: frames[args["input"]].unique()}

The run function receives the frames it reads (`pl.LazyFrame` in lazy modes, `pl.DataFrame` in
eager ones) and returns a mapping of the frames it writes, lazy or eager as is convenient: the
runtime converts to the run's mode. It may be an `async def` (I/O-bound tasks).
"""

from __future__ import annotations

import importlib.util
import inspect
import logging
import os
import sys
import traceback
from collections.abc import Awaitable, Callable, Hashable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias

import polars as pl
from pydantic import BaseModel
from pydantic import ValidationError as PydanticValidationError

from capport_dagster.core.lineage import LineageFn, whole_input
from capport_dagster.core.modes import RunMode
from capport_dagster.core.secrets import Redactor
from capport_dagster.core.sinkpass import SinkPass
from capport_dagster.core.uris import is_uri, normalize_uri
from capport_dagster.errors import ConfigError, Location, TaskError, did_you_mean

if TYPE_CHECKING:
    from capport_dagster.core.config import CapportConfig
    from capport_dagster.core.models import Model
    from capport_dagster.core.transforms import Transform

__all__ = [
    "BindContext",
    "Frame",
    "RunContext",
    "SchemaContext",
    "SchemaFn",
    "TaskRegistry",
    "TaskSpec",
    "import_task_modules",
]

Frame: TypeAlias = pl.DataFrame | pl.LazyFrame
RunFn: TypeAlias = Callable[..., Mapping[str, Frame] | Awaitable[Mapping[str, Frame]] | None]


class BindContext(Protocol):
    """What a task may look up while its args are checked (at validation time, before any run)."""

    config: CapportConfig
    location: Location

    def model(self, name: str) -> Model:
        """The named model, or a located ConfigError with a did-you-mean."""

    def transform(self, name: str, kwargs: Mapping[str, Any] | None = None) -> Transform:
        """The named transform with `$$kwargs` substituted, parsed and checked."""

    def check_path(self, template: str) -> str:
        """Check a path template's `$VARIABLES` are defined; returns the template unchanged."""


class SchemaContext(Protocol):
    """What a task may look at while `validate` infers the schemas of the frames it writes."""

    location: Location

    def existing_file(self, template: str) -> Path | None:
        """The file a path template names, when it is there now and neither an earlier stage
        of the pipeline nor a stage of another pipeline writes it (its columns then are the
        run's); None otherwise."""

    def cached(self, key: Hashable, compute: Callable[[], Any]) -> Any:
        """`compute()`, once per key for the whole validation (a transform used by 1,000 stages
        on frames of one schema is checked once). A `ConfigError` it raises is cached too."""


#: `output_schemas(args, inputs, ctx)`: the schemas of the frames a task writes, from its args
#: and the schemas of the frames it reads (`inputs` holds only those known). A frame left out
#: is unknown; a `ConfigError` (a located `ValidationError`) is a problem of the config.
SchemaFn: TypeAlias = Callable[
    [Any, Mapping[str, pl.Schema], SchemaContext], Mapping[str, pl.Schema]
]


@dataclass(frozen=True)
class RunContext:
    """What a task sees while it runs: the mode, the run's variables and where it is."""

    mode: RunMode
    variables: Mapping[str, str]
    location: Location
    log: logging.Logger | logging.LoggerAdapter = field(
        default_factory=lambda: logging.getLogger("capport")
    )
    #: Masks secret values (SECRETS in `core/secrets.py`) in errors and logs of this run.
    redact: Redactor = field(default_factory=Redactor)
    #: Where a sink task executes what it writes, with the checks and previews that go with it
    #: (`core/sinkpass.py`): `ctx.sink_pass.execute([frame.sink_csv(tmp, lazy=True)], ...)`.
    sink_pass: SinkPass = field(default_factory=SinkPass)

    def path(self, template: str) -> Path:
        """Expand `$VARIABLES` in a path; relative paths resolve against the working directory.
        A template naming an object-store URI is an error: a `Path` would fold `s3://b/k` into
        the local path `./s3:/b/k` (tasks that handle URIs call `resolve`)."""
        where = self.resolve(template)
        if isinstance(where, str):
            raise TaskError(
                f"'{template}' is the object-store URI {where}, and this task reads and writes "
                "local files only (give a local path)",
                self.location,
            )
        return where

    def resolve(self, template: str) -> Path | str:
        """Expand `$VARIABLES` in a path or URI: an object-store URI stays a URI string,
        normalized (`$OUTPUT_DIR/b.csv` is `s3://bucket/out/b.csv` when `$OUTPUT_DIR` is
        `s3://bucket/out`); a local path becomes an absolute `Path` (relative ones resolve
        against the working directory)."""
        from capport_dagster.core.variables import expand

        expanded = expand(template, self.variables, self.location)
        if is_uri(expanded):
            return normalize_uri(expanded)
        return Path(expanded).expanduser().absolute()


@dataclass(frozen=True)
class TaskSpec:
    """Everything the project knows about one task.

    `parse` turns the raw YAML args into the value the other three functions receive; it raises
    `ConfigError` (located by the caller) for malformed args. It defaults to pydantic validation
    when `args_model` is given, else to passing the YAML through.
    """

    name: str
    run: RunFn
    reads: Callable[[Any], Iterable[str]]
    writes: Callable[[Any], Iterable[str]]
    parse: Callable[[Any, BindContext], Any] | None = None
    args_model: type[BaseModel] | None = None
    description: str = ""
    #: The frames the task shapes with a model, by name, from its args: a lazy cast failing in a
    #: later stage can still name the model, and the asset view checks the model's constraints
    #: on those frames.
    model_frames: Callable[[Any], Iterable[tuple[str, Model]]] = lambda args: ()
    #: The files the task reads and writes, as path templates from its args. A file one stage
    #: writes and a later stage reads or writes again orders them like a frame does, in every
    #: mode (see `core/graph.py`).
    reads_files: Callable[[Any], Iterable[str]] = lambda args: ()
    writes_files: Callable[[Any], Iterable[str]] = lambda args: ()
    #: The frames a stage evidently reads when its raw args fail to parse (say `input` of a
    #: `transform` without `save_df`): the stage's read-before-write mistakes are then
    #: reported with its other problems instead of after they are mended.
    salvage_reads: Callable[[Any], Iterable[str]] | None = None
    #: The schemas of the frames the task writes, inferred at `validate` time without data
    #: (`SchemaFn`): loads with a model or of files already there, a transform on inputs of
    #: known schemas. The frames a later stage reads are then checked before anything runs.
    #: None (the default, a custom task): what it writes is unknown, and nothing is checked.
    output_schemas: SchemaFn | None = None
    #: The column lineage of the frames the task writes, from its args and the schemas of the
    #: frames it reads and writes (`core/lineage.py`'s `LineageFn`), for each frame's Dagster
    #: metadata. The default (a custom task's) tells nothing: every written column then comes
    #: from every column the stage reads. `lineage.by_name` suits tasks that keep columns.
    lineage: LineageFn = whole_input

    @property
    def waits_on_io(self) -> bool:
        """An `async def` task spends its time awaiting I/O (HTTP), not computing: the async
        modes let such stages run beyond `max_concurrent`, which bounds the Polars work."""
        return inspect.iscoroutinefunction(self.run)

    def parse_args(self, raw: Any, ctx: BindContext) -> Any:
        if self.parse is not None:
            return self.parse(raw, ctx)
        if self.args_model is not None:
            return validate_model(
                self.args_model, raw, ctx.location, f"args for task '{self.name}'"
            )
        return raw


def validate_model(model: type[BaseModel], raw: Any, location: Location, what: str) -> BaseModel:
    """Pydantic validation whose failure reads like the rest of capport's errors.

    `what` names the thing checked, e.g. "args for task 'load_csv'" or "runner".
    """
    try:
        return model.model_validate({} if raw is None else raw)
    except PydanticValidationError as exc:
        causes = "; ".join(_cause(err, model) for err in exc.errors())
        raise ConfigError(f"malformed {what}: {causes}", location) from None


def _cause(error: Any, model: type[BaseModel]) -> str:
    where = ".".join(str(p) for p in error["loc"]) or "args"
    if error["type"] == "extra_forbidden" and len(error["loc"]) == 1:
        known = {
            alias
            for name, info in model.model_fields.items()
            for alias in (name, *getattr(info.validation_alias, "choices", ()))
            if isinstance(alias, str)
        }
        return (
            f"unknown key '{where}'{did_you_mean(where, known)} (keys: {', '.join(sorted(known))})"
        )
    return f"{where}: {_lower_first(error['msg'])}"


def _lower_first(message: str) -> str:
    """'Field required' -> 'field required'. Only the first word: the rest may quote the user's
    values or a Literal's choices, which keep their case (and 'URL ...' stays as it is)."""
    return message[:1].lower() + message[1:] if message[1:2].islower() else message


class TaskRegistry:
    """Task names to their specs. Copy it to give a project its own set of tasks."""

    def __init__(self, specs: Iterable[TaskSpec] = ()) -> None:
        self._specs: dict[str, TaskSpec] = {}
        for spec in specs:
            self.register(spec)

    def register(self, spec: TaskSpec, *, replace: bool = False) -> TaskSpec:
        if spec.name in self._specs and not replace:
            raise ValueError(f"task '{spec.name}' is already registered (pass replace=True)")
        self._specs[spec.name] = spec
        return spec

    def task(
        self,
        name: str,
        *,
        reads: Callable[[Any], Iterable[str]],
        writes: Callable[[Any], Iterable[str]],
        args: type[BaseModel] | None = None,
        parse: Callable[[Any, BindContext], Any] | None = None,
        reads_files: Callable[[Any], Iterable[str]] | None = None,
        writes_files: Callable[[Any], Iterable[str]] | None = None,
        output_schemas: SchemaFn | None = None,
        lineage: LineageFn | None = None,
        replace: bool = False,
    ) -> Callable[[RunFn], RunFn]:
        """Decorator registering the decorated function as the run function of task `name`.

        `reads_files`/`writes_files` give the path templates of the files it reads and writes
        (from its args), so stages touching the same file run in list order in every mode.
        `output_schemas` tells `validate` the schemas of the frames it writes (`SchemaFn`), so
        the transforms of later stages are checked against them before anything runs.
        `lineage` says which read columns each written column comes from (`LineageFn`; default:
        all of them).
        """

        def decorate(fn: RunFn) -> RunFn:
            spec = TaskSpec(
                name=name,
                run=fn,
                reads=reads,
                writes=writes,
                parse=parse,
                args_model=args,
                description=(fn.__doc__ or "").strip().split("\n")[0],
                **({"reads_files": reads_files} if reads_files else {}),
                **({"writes_files": writes_files} if writes_files else {}),
                output_schemas=output_schemas,
                **({"lineage": lineage} if lineage else {}),
            )
            self.register(spec, replace=replace)
            return fn

        return decorate

    def get(self, name: str, location: Location | None = None) -> TaskSpec:
        try:
            return self._specs[name]
        except KeyError:
            raise ConfigError(self._unknown(name), location) from None

    def _unknown(self, name: str) -> str:
        """What to say about a task name nobody registered.

        Without custom tasks the likeliest causes are a typo (a close name is suggested) or a
        task of the user's own whose module was not imported (the hint names `-m`); with custom
        tasks, the two kinds are listed apart so that a user sees whether theirs arrived.
        """
        close = did_you_mean(name, self._specs)
        custom = sorted(n for n, spec in self._specs.items() if not _is_builtin(spec))
        if custom:
            builtin = sorted(n for n in self._specs if n not in custom)
            return (
                f"unknown task '{name}'{close} (custom tasks: {', '.join(custom)}; "
                f"built-in tasks: {', '.join(builtin) or 'none'})"
            )
        known = f"unknown task '{name}'{close} (tasks: {', '.join(sorted(self._specs))})"
        if close:
            return known
        return (
            f"{known} - if it is your own task, name the module that registers it: -m MODULE"
            " (capport) or $CAPPORT_TASK_MODULES (Dagster)"
        )

    def copy(self) -> TaskRegistry:
        return TaskRegistry(self._specs.values())

    def __contains__(self, name: object) -> bool:
        return name in self._specs

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._specs))


def import_task_modules(modules: Iterable[str], *, given_as: str = "-m {}") -> None:
    """Import the modules that register a user's own tasks (`capport run -m my_tasks`).

    The working directory is searched first, as `python -m` and `dagster -m` do: `my_tasks.py`
    in it is found although the `capport` script's own directory is what Python put on
    `sys.path`. A module that cannot be found or fails while importing is a `ConfigError` naming
    it as the user gave it (`given_as`, e.g. "-m {}" or "$CAPPORT_TASK_MODULES module '{}'") and
    the module's own error in one line, at its file and line; the traceback stays on the
    exception's cause, for `--debug`.
    """
    modules = list(modules)
    if modules and not any(_is_cwd(entry) for entry in sys.path):
        sys.path.insert(0, os.getcwd())
    for module in modules:
        try:
            importlib.import_module(module)
        except Exception as exc:
            error = _import_error(module, given_as.format(module), exc)
            if _not_found(module, exc) or _is_path(module):
                raise error from None  # its traceback would only show importlib
            raise error from exc


def _is_cwd(entry: str) -> bool:
    try:
        return entry in ("", ".") or os.path.samefile(entry, os.getcwd())
    except OSError:
        return False


def _import_error(module: str, given: str, exc: Exception) -> ConfigError:
    if _is_path(module):
        name = module.removesuffix(".py").replace("/", ".").strip(".")
        return ConfigError(
            f"{given}: a module name is expected, not a file path ('{name}' for the file "
            f"{module.removesuffix('.py').lstrip('./')}.py in the working directory)"
        )
    if _not_found(module, exc):
        assert isinstance(exc, ModuleNotFoundError) and exc.name is not None
        here = Path.cwd()
        # Names beside the user, for a misspelt top-level module (a missing submodule of a
        # package that exists gets no guess).
        local = (
            sorted(
                p.stem if p.suffix == ".py" else p.name
                for p in here.iterdir()
                if (p.suffix == ".py" and p.is_file()) or (p / "__init__.py").is_file()
            )
            if "." not in exc.name
            else []
        )
        return ConfigError(
            f"{given}: no module named '{exc.name}' in the working directory ({here}) or on the "
            f"Python path{did_you_mean(exc.name, local)}"
        )
    if isinstance(exc, SyntaxError):
        where = Location(file=exc.filename, line=exc.lineno) if exc.filename else Location()
        return ConfigError(f"{given}: the module does not compile: {exc.msg}", where)
    frame = _origin_frame(module, exc)
    where = Location(file=frame.filename, line=frame.lineno) if frame else Location()
    return ConfigError(
        f"{given}: importing the module raised {type(exc).__name__}: {_one_line(exc)}", where
    )


def _is_path(module: str) -> bool:
    """`-m my_tasks.py`, `-m ./tasks`: a file where a module name belongs."""
    return module.endswith(".py") or "/" in module or module.startswith(".")


def _not_found(module: str, exc: Exception) -> bool:
    """`-m pkg.tasks` itself is missing ('pkg' or 'pkg.tasks' not found), not something the
    module imports ('requests')."""
    if not isinstance(exc, ModuleNotFoundError) or not exc.name:
        return False
    return module == exc.name or module.startswith(f"{exc.name}.")


def _origin_frame(module: str, exc: BaseException) -> traceback.FrameSummary | None:
    """The line of the user's module that raised: its own file's deepest frame, else the
    deepest frame outside Python's import machinery."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if not f.filename.startswith("<")]
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        spec = None
    origin = spec.origin if spec is not None else None
    own = [f for f in frames if origin is not None and f.filename == origin]
    return (own or frames or [None])[-1]


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= 300 else f"{text[:297]}..."


def _is_builtin(spec: TaskSpec) -> bool:
    return getattr(spec.run, "__module__", "").startswith("capport_dagster.")
