"""Binding stages to their tasks: each stage's task, args, models and transforms looked up and
checked, with every problem of the stage recorded and what it reads and writes known as far as
its args allow (`core/graph.py` wires the bound stages into a graph).

One mistake never hides another: a lookup that fails is recorded and answered with a stand-in,
and a stage whose errors hide what it writes says which frames it may write (`Bound.may_write`),
so its readers are not blamed (no cascades).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from capport_dagster.core.config import CapportConfig, Entry, Stage
from capport_dagster.core.models import Model, parse_model
from capport_dagster.core.registry import TaskRegistry, TaskSpec
from capport_dagster.core.transforms import Transform, parse_transform
from capport_dagster.core.variables import (
    BUILTIN_VARIABLES,
    canonical_path,
    check_template,
    placeholders,
    substitute_kwargs,
)
from capport_dagster.errors import ConfigError, Location, Problem, ValidationError, did_you_mean

__all__ = [
    "ANY_FRAME",
    "MAX_TEMPLATE_EXPANSION",
    "Bound",
    "ConfigLookups",
    "bind",
    "problems_of",
    "user_of",
]

#: How many values `$$kwargs` substitution may produce in all: the size of a transform, added up
#: over every distinct (transform, kwargs) pair the stages use. Like an alias, a template used by
#: many stages multiplies its size, and each copy is substituted and checked; real configs stay
#: far below, a hostile one (a 10,000-column template used by 2,000 stages) fails fast.
MAX_TEMPLATE_EXPANSION = 1_000_000


@dataclass(frozen=True)
class Bound:
    """A stage whose task and args are known, as far as they could be: what it reads and
    writes, frames and files, and its own problems."""

    stage: Stage
    spec: TaskSpec | None
    args: Any
    reads: tuple[str, ...]
    writes: tuple[str, ...]
    read_files: tuple[str, ...] = ()
    write_files: tuple[str, ...] = ()
    problems: tuple[Problem, ...] = ()
    #: When the stage's errors hide what it writes, the frames it may write once mended: a
    #: later stage reading one of them is not told that nobody writes it (no cascade of
    #: errors). An unknown task may write the names its args mention; args that did not parse
    #: may lack the very name (`save_df`), so they may write anything (`ANY_FRAME`).
    may_write: frozenset[str] | None = None

    @property
    def broken(self) -> bool:
        return any(p.severity == "error" for p in self.problems)


#: Stand-ins a stage gets for a model or transform with errors (reported once, at the entry),
#: so the rest of its args are still checked and its reads and writes still known.
_STAND_IN_MODEL = Model("(invalid)", ())


class _InvalidEntry(ConfigError):
    """A stage uses a model or transform whose own errors are reported at its entry (naming
    the stages that use it): the stage adds no line of its own."""


class _Binder:
    """The `BindContext` tasks use while their args are checked. A lookup that fails is
    recorded as a problem of the stage and answered with a stand-in, so one mistake does not
    hide the stage's others, nor the frames it writes."""

    def __init__(self, lookups: ConfigLookups, location: Location) -> None:
        self.config = lookups.config
        self.location = location
        self.problems: list[Problem] = []
        self._lookups = lookups

    def model(self, name: str) -> Model:
        try:
            return self._lookups.model(name, self.location)
        except _InvalidEntry:
            return _STAND_IN_MODEL
        except ConfigError as exc:
            self.problems.extend(problems_of(exc))
            return _STAND_IN_MODEL

    def transform(self, name: str, kwargs: Mapping[str, Any] | None = None) -> Transform:
        try:
            return self._lookups.transform(name, kwargs or {}, self.location)
        except _InvalidEntry:
            return Transform(name, ())
        except ConfigError as exc:
            self.problems.extend(problems_of(exc))
            return Transform(name, ())

    def check_path(self, template: str) -> str:
        try:
            check_template(template, self._lookups.variable_names, self.location)
        except ConfigError as exc:
            self.problems.extend(problems_of(exc))
        return template


class ConfigLookups:
    """Models and transforms by name, each parsed once, with located errors, and who uses them
    (an entry's errors name the stages using it)."""

    def __init__(self, config: CapportConfig) -> None:
        self.config = config
        self.variable_names = frozenset(BUILTIN_VARIABLES) | frozenset(os.environ)
        self._known_paths = {**os.environ, "CONFIG_DIR": os.path.abspath(config.config_dir)}
        self.models: dict[str, Model] = {}
        self.model_problems: list[Problem] = []
        for name, entry in config.models.items():
            try:
                self.models[name] = parse_model(entry)
            except ConfigError as exc:
                self.model_problems.extend(problems_of(exc))
        self._transforms: dict[tuple[str, str], Transform] = {}
        self._failures: dict[tuple[str, str], Callable[[], ConfigError]] = {}
        self._broken: set[str] = set()  # transforms whose own problems were already reported
        self._warned: set[str] = set()  # transforms whose warnings were already reported
        self.transform_problems: list[Problem] = []
        self._sizes: dict[str, int] = {}
        self._placeholders: dict[str, frozenset[str]] = {}
        self._expanded = 0  # values substituted and parsed so far, over all (transform, kwargs)
        #: (section, entry name) -> the stages using it, in the order they were bound.
        self.users: dict[tuple[str, str], dict[str, None]] = {}
        #: A problem the schema flow found in a transform (`core/graph.py`) -> the stages whose
        #: inputs show it: those its message names, not every stage using the transform.
        self.schema_users: dict[Problem, dict[str, None]] = {}
        #: What the schema flow computed once for the whole config (`SchemaContext.cached`).
        self.schema_cache: dict[Any, Any] = {}

    def _use(self, section: str, name: str, location: Location) -> None:
        if location.stage is not None:
            self.users.setdefault((section, name), {})[user_of(location)] = None

    def entry_problems(self, bound: Iterable[Bound]) -> list[Problem]:
        """The problems of the models and transforms these stages use (found once, at the
        entry): a pipeline using a broken transform is not valid either."""
        stages = {user_of(item.stage.location) for item in bound}
        used = {key for key, users in self.users.items() if not stages.isdisjoint(users)}
        return [
            problem
            for problem in (*self.model_problems, *self.transform_problems)
            if (problem.location.section, problem.location.name) in used
        ]

    def paths(self, templates: Iterable[str], location: Location) -> tuple[str, ...]:
        """The canonical form of path templates a task reads or writes (see `canonical_path`)."""
        return tuple(
            dict.fromkeys(canonical_path(t, self._known_paths, location) for t in templates)
        )

    def model(self, name: str, location: Location) -> Model:
        self._use("model", name, location)
        if name in self.models:
            return self.models[name]
        if name in self.config.models:
            raise _InvalidEntry(f"model '{name}' is invalid (its errors are listed)", location)
        raise ConfigError(
            f"unknown model '{name}'{did_you_mean(name, self.config.models)}", location
        )

    def transform(self, name: str, kwargs: Mapping[str, Any], location: Location) -> Transform:
        entry: Entry | None = self.config.transforms.get(name)
        if entry is None:
            raise ConfigError(
                f"unknown transform '{name}'{did_you_mean(name, self.config.transforms)}",
                location,
            )
        self._use("transform", name, location)
        key = (name, repr(sorted(kwargs.items())))
        if key in self._failures:
            raise self._failures[key]()
        if key not in self._transforms:
            # Before counting its size: a stage repeating a misspelt kwarg is not an expansion.
            self._check_kwargs(name, entry, kwargs, location)
            if name not in self._sizes:
                self._sizes[name] = _size(entry.body)
            self._expanded += self._sizes[name]
            if self._expanded > MAX_TEMPLATE_EXPANSION:
                raise ConfigError(
                    f"transform templates expand to more than {MAX_TEMPLATE_EXPANSION:,} values"
                    f" in all: too many stages use transform '{name}' with different kwargs",
                    location,
                )
            body = substitute_kwargs(entry.body, kwargs, location)
            try:
                self._transforms[key] = parse_transform(name, body, entry.location)
                if name not in self._warned:  # a template's warnings, once, not per kwargs
                    self._warned.add(name)
                    self.transform_problems.extend(self._transforms[key].warnings)
            except ConfigError as exc:
                self._failures[key] = self._once(name, exc, location)
                raise self._failures[key]() from None
        return self._transforms[key]

    def _check_kwargs(
        self, name: str, entry: Entry, kwargs: Mapping[str, Any], location: Location
    ) -> None:
        if name not in self._placeholders:
            self._placeholders[name] = placeholders(entry.body)
        unused = [key for key in kwargs if key not in self._placeholders[name]]
        if unused:
            known = ", ".join(f"$${p}" for p in sorted(self._placeholders[name])) or "none"
            them = "them" if len(unused) > 1 else "it"
            raise ConfigError(
                f"kwargs {', '.join(repr(k) for k in unused)} not used by transform '{name}'"
                f" (its placeholders: {known}): remove {them} or correct the name",
                location,
            )

    def check_unused_transforms(self) -> list[Problem]:
        """The problems of transforms no stage uses: a mistake there is still a mistake, and
        the next stage to use the transform would meet it. A template (with `$$kwargs`) cannot
        be parsed without its kwargs; only the transforms without placeholders are checked."""
        problems: list[Problem] = []
        for name, entry in self.config.transforms.items():
            if ("transform", name) in self.users or placeholders(entry.body):
                continue
            try:
                problems.extend(parse_transform(name, entry.body, entry.location).warnings)
            except ConfigError as exc:
                problems.extend(problems_of(exc))
        return problems

    def _once(self, name: str, exc: ConfigError, location: Location) -> Callable[[], ConfigError]:
        """How a failed (transform, kwargs) fails again, when the next stage uses it.

        A transform's own problems are listed once, for the first kwargs that break it; other
        kwargs that break it too get one problem at their stage. Listing them all for every stage
        would be quadratic: a 70 KB config (a 2,000-column template used by 500 stages) made a
        million problems, 15 s and 500 MB. Only messages are kept, not exceptions (whose
        tracebacks would keep every problem list alive).
        """
        problems = problems_of(exc)
        if name not in self._broken:
            self._broken.add(name)
            self.transform_problems.extend(problems)
            return lambda: _InvalidEntry(
                f"transform '{name}' is invalid (its errors are listed)", location
            )
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        message = f"transform '{name}' is also invalid with these kwargs: {problems[0].message}"
        return lambda: ConfigError(message + more, location)


def user_of(location: Location) -> str:
    return f"pipeline '{location.name}', stage '{location.stage}' (#{location.index})"


def _size(value: Any) -> int:
    """How many values a YAML tree holds (mappings and lists count themselves and their items)."""
    total, stack = 0, [value]
    while stack:
        item = stack.pop()
        total += 1
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return total


def problems_of(exc: ConfigError) -> list[Problem]:
    if isinstance(exc, ValidationError):
        return list(exc.problems)
    return [Problem(exc.location, exc.message)]


def bind(stage: Stage, registry: TaskRegistry, lookups: ConfigLookups) -> Bound:
    """A stage's task and args, checked: every problem of the stage is recorded, and what it
    reads and writes is known as far as its args allow (see `Bound.may_write`)."""
    try:
        spec = registry.get(stage.task, stage.location)
    except ConfigError as exc:
        return Bound(
            stage,
            None,
            None,
            (),
            (),
            problems=tuple(problems_of(exc)),
            may_write=_mentioned(stage.args),
        )
    binder = _Binder(lookups, stage.location)
    problems = binder.problems
    try:
        args = spec.parse_args(stage.args, binder)
    except ConfigError as exc:
        problems.extend(problems_of(exc))
        return Bound(
            stage,
            spec,
            None,
            _salvaged_reads(spec, stage),
            (),
            problems=tuple(problems),
            may_write=ANY_FRAME,
        )
    except Exception as exc:  # a task's own parse function failing on args it did not expect
        problems.append(_code_failure(spec, "parse", spec.parse, exc, stage))
        return Bound(stage, spec, None, (), (), problems=tuple(problems), may_write=ANY_FRAME)
    reads = _declared(spec, "reads", args, stage, problems)
    writes = _declared(spec, "writes", args, stage, problems)
    files: dict[str, tuple[str, ...]] = {}
    for what in ("reads_files", "writes_files"):
        function = getattr(spec, what)
        try:
            files[what] = lookups.paths(
                _name_list(spec, what, function(args), stage), stage.location
            )
        except ConfigError as exc:
            problems.extend(problems_of(exc))
        except Exception as exc:
            problems.append(_code_failure(spec, what, function, exc, stage))
    return Bound(
        stage,
        spec,
        args,
        reads=reads or (),
        writes=writes or (),
        read_files=files.get("reads_files", ()),
        write_files=files.get("writes_files", ()),
        problems=tuple(problems),
        may_write=ANY_FRAME if writes is None else None,
    )


def _declared(
    spec: TaskSpec, what: str, args: Any, stage: Stage, problems: list[Problem]
) -> tuple[str, ...] | None:
    """The frames a task says it reads or writes; None (with a problem) when it cannot say."""
    function = getattr(spec, what)
    try:
        names = _name_list(spec, what, function(args), stage)
    except ConfigError as exc:
        problems.extend(problems_of(exc))
        return None
    except Exception as exc:
        problems.append(_code_failure(spec, what, function, exc, stage))
        return None
    result: dict[str, None] = {}  # a dict, not a list: `in` stays O(1) for thousands of frames
    for name in names:
        if not isinstance(name, str) or not name:
            problems.append(
                Problem(
                    stage.location,
                    f"task '{spec.name}' {what} a frame name that is not a string: {name!r}"
                    f" (its {what} function{_defined_at(function)})",
                )
            )
            return None
        if name in result and what == "writes":
            problems.append(Problem(stage.location, f"writes frame '{name}' twice"))
        result[name] = None
    return tuple(result)


def _name_list(spec: TaskSpec, what: str, value: Any, stage: Stage) -> list[Any]:
    """What a task's reads/writes function returned, as a list; a string or a non-iterable is
    a mistake in the task's code (a string would otherwise be read as its characters)."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        hint = f", e.g. [{value!r}]" if isinstance(value, str) else ""
        raise ConfigError(
            f"task '{spec.name}' is registered with a {what} function"
            f"{_defined_at(getattr(spec, what))} that returned {_describe(value)}: it must"
            f" return a list of {'paths' if what.endswith('files') else 'frame names'}{hint}",
            stage.location,
        )
    return list(value)


def _describe(value: Any) -> str:
    if isinstance(value, str):
        return f"the string {value!r}"
    return f"{value!r} ({type(value).__name__})"


def _defined_at(function: Any) -> str:
    """` (my_tasks.py:12)` for a function of the user's code: where to look."""
    code = getattr(function, "__code__", None)
    if code is None:
        return ""
    return f" ({os.path.basename(code.co_filename)}:{code.co_firstlineno})"


def _code_failure(
    spec: TaskSpec, what: str, function: Any, exc: Exception, stage: Stage
) -> Problem:
    """A task's own function failed on the stage's args: most often a key the args lack."""
    where = f"its {what} function{_defined_at(function)}"
    if isinstance(exc, KeyError) and exc.args:
        return Problem(
            stage.location,
            f"args for task '{spec.name}' have no key {exc.args[0]!r} ({where} needs it)",
        )
    return Problem(
        stage.location,
        f"task '{spec.name}' cannot read its args {stage.args!r}: {where} raised"
        f" {type(exc).__name__}: {exc}",
    )


def _salvaged_reads(spec: TaskSpec, stage: Stage) -> tuple[str, ...]:
    """The frames a stage whose args did not parse still evidently reads, so its own
    read-before-write mistakes are reported with its other problems."""
    if spec.salvage_reads is None:
        return ()
    try:
        names = spec.salvage_reads(stage.args)
    except Exception:  # salvaging is best effort: the args are already known to be malformed
        return ()
    return tuple(dict.fromkeys(n for n in names if isinstance(n, str) and n))


def _mentioned(raw: Any) -> frozenset[str]:
    """Every string in a stage's raw args: the frames it may write, once its errors are mended."""
    found: set[str] = set()
    stack = [raw]
    while stack:
        value = stack.pop()
        if isinstance(value, str):
            found.add(value)
        elif isinstance(value, Mapping):
            stack.extend(value.values())
        elif isinstance(value, list | tuple):
            stack.extend(value)
    return frozenset(found)


#: `Bound.may_write` of a stage whose args did not parse: every frame may be its.
ANY_FRAME = frozenset({"\0any"})
