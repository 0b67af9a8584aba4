"""The dependency graph of a pipeline, deduced from the frames its stages read and write.

Rule (SPEC 7): a stage that reads frame F depends on the *nearest earlier* stage, in list order,
that writes F. A later writer of F makes a new version; readers never see a later version. So the
graph is acyclic by construction and every concurrent run gives the sequential result.

Objects here are valid by construction (as Kedro's pipelines are): `PipelineGraph` and `Project`
run every check in their constructor and raise one `ValidationError` listing every problem, so a
graph that exists can be translated without further checks.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection, Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from types import MappingProxyType
from typing import Any

import polars as pl

from capport_dagster.core.binding import (
    ANY_FRAME,
    Bound,
    ConfigLookups,
    bind,
    problems_of,
    user_of,
)
from capport_dagster.core.builtin_tasks import DEFAULT_REGISTRY
from capport_dagster.core.config import CapportConfig, ConfigSnapshot, Pipeline, Stage
from capport_dagster.core.loggers import LoggerSpec, parse_logger
from capport_dagster.core.models import Model
from capport_dagster.core.names import dagster_name_problems
from capport_dagster.core.registry import TaskRegistry, TaskSpec
from capport_dagster.core.runners import Runner, parse_runner, runner_problems
from capport_dagster.core.secrets import SECRET_SECTIONS, Redactor, secret_values
from capport_dagster.core.uris import is_uri
from capport_dagster.core.variables import check_template
from capport_dagster.errors import ConfigError, Location, Problem, ValidationError, did_you_mean

__all__ = [
    "DraftStage",
    "FileEdge",
    "FrameVersion",
    "PipelineGraph",
    "Project",
    "StageNode",
    "draft_pipeline",
    "load_project",
]


@dataclass(frozen=True)
class FrameVersion:
    """One written version of a frame: the frame name and the stage that wrote it."""

    name: str
    writer: str
    index: int
    version: int

    def __str__(self) -> str:
        return f"{self.name}@{self.writer}"


@dataclass(frozen=True)
class StageNode:
    """A stage with its task resolved, its args checked and its dependencies known."""

    stage: Stage
    spec: TaskSpec
    args: Any
    inputs: Mapping[str, FrameVersion]
    outputs: tuple[FrameVersion, ...]
    #: Stages this one waits for because of files, not frames, in list order. A stage reading
    #: or overwriting a file waits for the nearest earlier stage writing it; a stage
    #: overwriting it also waits for the stages that read it since.
    after: tuple[FileEdge, ...] = ()
    #: Whether a later stage waits for this one's files (the Dagster op then has an output
    #: saying they are written).
    signals_files: bool = False
    #: Collect the frames this stage writes even in lazy modes: a later stage overwrites a file
    #: they were read from, and a lazy plan reads its files only when it is executed.
    materialize: bool = False

    @property
    def label(self) -> str:
        return self.stage.label

    @property
    def index(self) -> int:
        return self.stage.index

    @property
    def location(self) -> Location:
        return self.stage.location

    @property
    def reads(self) -> tuple[str, ...]:
        return tuple(self.inputs)

    @property
    def writes(self) -> tuple[str, ...]:
        return tuple(v.name for v in self.outputs)

    @property
    def upstream(self) -> tuple[str, ...]:
        """Labels of the stages this one waits for, frames and files, in list order."""
        writers = {v.writer: v.index for v in self.inputs.values()}
        writers.update({edge.writer: edge.index for edge in self.after})
        return tuple(sorted(writers, key=writers.__getitem__))


@dataclass(frozen=True)
class FileEdge:
    """A stage waits for an earlier one because both touch the same files (canonical paths,
    see `variables.canonical_path`)."""

    writer: str
    index: int
    paths: tuple[str, ...]


#: How many users an entry's error names before "and N more".
_USERS_SHOWN = 3


def _attributed(
    problems: Iterable[Problem],
    config: CapportConfig,
    lookups: ConfigLookups,
    pipelines: Collection[str] | None,
) -> list[Problem]:
    """Problems of transforms, models and runners, each saying who uses the entry; with a
    pipeline selection (`-p`), only those of entries the selected pipelines use."""
    result: list[Problem] = []
    for problem in problems:
        where = problem.location
        used_by: str | None = None
        if where.used_by is not None or where.name is None:
            pass
        elif where.section in ("transform", "model"):
            users = list(
                lookups.schema_users.get(problem)
                or lookups.users.get((where.section, where.name), ())
            )
            if not users and pipelines is not None:
                continue  # an entry the pipelines asked about do not use
            shown, more = users[:_USERS_SHOWN], len(users) - _USERS_SHOWN
            used_by = "; ".join(shown) + (f" and {more} more" if more > 0 else "") or "no stage"
        elif where.section == "runner":
            listed = [p for p in _runner_pipelines(config, where.name) if p in config.pipelines]
            if pipelines is not None and where.name != "default" and not set(listed) & {*pipelines}:
                continue  # not the runner of the pipelines asked about
            if listed:
                plural = "s" if len(listed) > 1 else ""
                used_by = f"pipeline{plural} " + ", ".join(f"'{p}'" for p in listed)
        if used_by is not None:
            problem = Problem(where.with_(used_by=used_by), problem.message, problem.severity)
        result.append(problem)
    return result


def _shown(problems: list[Problem], pipelines: Collection[str] | None) -> list[Problem]:
    """The documented rule: with `-p`, the problems of other pipelines are left out; a pipeline
    with errors gets no warnings (a stage with errors may be what a warning misses)."""
    broken = {
        p.location.name
        for p in problems
        if p.severity == "error" and p.location.section == "pipeline"
    }
    return [
        p
        for p in problems
        if p.location.section != "pipeline"
        or (
            (pipelines is None or p.location.name in pipelines)
            and (p.severity == "error" or p.location.name not in broken)
        )
    ]


def _runner_pipelines(config: CapportConfig, name: str) -> list[str]:
    """The pipelines a runner's entry lists, read from the YAML even when the runner is broken."""
    entry = config.runners.get(name)
    listed = entry.body.get("pipelines") if entry and isinstance(entry.body, Mapping) else None
    listed = [listed] if isinstance(listed, str) else listed
    return [p for p in listed if isinstance(p, str)] if isinstance(listed, list) else []


class PipelineGraph:
    """A pipeline whose every stage is bound to its task and wired to the frames it reads."""

    def __init__(
        self,
        pipeline: Pipeline,
        registry: TaskRegistry,
        lookups: ConfigLookups,
        *,
        bound: list[Bound] | None = None,
        files: WrittenFiles | None = None,
    ) -> None:
        """Build through `Project.from_config`, which shares the parsed models and transforms
        (and gives the stages already `bound`, and the files every pipeline writes)."""
        self.pipeline = pipeline
        if bound is None:
            bound = [bind(stage, registry, lookups) for stage in pipeline.stages]
        wired, problems = _wire(bound)
        problems += lookups.entry_problems(bound)
        problems += _schema_flow(wired, lookups, pipeline.name, files)
        if any(p.severity == "error" for p in problems):
            raise ValidationError(problems)
        self.nodes: tuple[StageNode, ...] = _nodes(wired)
        self.warnings: tuple[Problem, ...] = tuple(problems)

    @property
    def name(self) -> str:
        return self.pipeline.name

    @cached_property
    def by_label(self) -> Mapping[str, StageNode]:
        return MappingProxyType({node.label: node for node in self.nodes})

    @cached_property
    def final_versions(self) -> Mapping[str, FrameVersion]:
        """The last version of every frame, as the pipeline leaves it."""
        final: dict[str, FrameVersion] = {}
        for node in self.nodes:
            for version in node.outputs:
                final[version.name] = version
        return MappingProxyType(final)

    @cached_property
    def results(self) -> tuple[FrameVersion, ...]:
        """What the pipeline produces: frame versions that no later stage transforms further,
        i.e. read by nobody or only by stages that write no frame (sinks such as `save_csv`)."""
        return tuple(
            version
            for node in self.nodes
            for version in node.outputs
            if all(not reader.outputs for reader in self.readers[version])
        )

    @cached_property
    def readers(self) -> Mapping[FrameVersion, tuple[StageNode, ...]]:
        """The stages reading each frame version, in list order (none: nobody reads it)."""
        found: dict[FrameVersion, list[StageNode]] = {}
        for node in self.nodes:
            for version in node.inputs.values():
                found.setdefault(version, []).append(node)
        return MappingProxyType({v: tuple(found.get(v, ())) for n in self.nodes for v in n.outputs})

    @cached_property
    def previewed_by(self) -> Mapping[FrameVersion, str]:
        """The stage whose pass gives each result frame's head and length: the first sink
        reading it, in the same pass that writes it (`core/sinkpass.py`), or, when nobody reads
        it, the stage writing it (which must execute it anyway: results are part of the run)."""
        return MappingProxyType(
            {
                version: (self.readers[version] or (self.by_label[version.writer],))[0].label
                for version in self.results
            }
        )


_Wired = tuple[Bound, dict[str, FrameVersion], tuple[FrameVersion, ...]]


def _wire(bound: list[Bound]) -> tuple[list[_Wired], list[Problem]]:
    """Each stage's inputs (the nearest earlier writer of each frame it reads) and outputs, and
    the problems of the pipeline: its stages' own, then reads with no earlier writer."""
    problems = [problem for item in bound for problem in item.problems]
    # Writers of each frame, in list order, so "who writes it later" is easy to say.
    writers: dict[str, list[Stage]] = {}
    for item in bound:
        for name in item.writes:
            writers.setdefault(name, []).append(item.stage)

    latest: dict[str, FrameVersion] = {}
    versions_written: dict[str, int] = {}
    read_versions: set[FrameVersion] = set()
    may_be_written: set[str] = set()  # named by an earlier stage whose errors hide its writes
    wired: list[_Wired] = []
    for item in bound:
        stage = item.stage
        inputs: dict[str, FrameVersion] = {}
        for name in item.reads:
            if name in latest:
                inputs[name] = latest[name]
                read_versions.add(latest[name])
                continue
            if name in may_be_written or may_be_written >= ANY_FRAME:
                continue
            later = [s.label for s in writers.get(name, []) if s.index >= stage.index]
            hint = (
                f"; it is written later by stage '{later[0]}' - move that stage first"
                if later
                else f"{did_you_mean(name, latest)}"
            )
            problems.append(
                Problem(
                    stage.location,
                    f"reads frame '{name}' before any earlier stage writes it{hint}",
                )
            )
        if item.may_write is not None:
            may_be_written |= item.may_write
        outputs = []
        for name in item.writes:
            version = FrameVersion(name, stage.label, stage.index, versions_written.get(name, 0))
            versions_written[name] = version.version + 1
            outputs.append(version)
        for version in outputs:
            latest[version.name] = version
        wired.append((item, inputs, tuple(outputs)))

    if any(item.broken for item in bound):
        return wired, problems  # a stage with errors may be the reader: "never read" would mislead
    for item, _inputs, outputs in wired:
        for version in outputs:
            if version not in read_versions:
                problems.append(
                    Problem(
                        item.stage.location,
                        f"frame '{version.name}' is written but no later stage reads it",
                        severity="warning",
                    )
                )
    return wired, problems


def _schema_flow(
    wired: list[_Wired], lookups: ConfigLookups, pipeline: str, files: WrittenFiles | None
) -> list[Problem]:
    """The schema of every frame version that can be known before a run, stage by stage in
    list order (each task's `output_schemas`, from the schemas of what it reads), and the
    problems found on the way: a transform step naming a column its input lacks is reported
    now, at the step, naming the stages whose inputs show it. A frame of unknown schema (a
    custom task's, an HTTP source's, a file not there yet) is checked by nobody."""
    schemas: dict[FrameVersion, pl.Schema] = {}
    written: set[str] = set()  # files earlier stages write: their columns are the run's
    problems: list[Problem] = []
    for item, inputs, outputs in wired:
        spec = item.spec
        if spec is not None and spec.output_schemas is not None and not item.broken:
            known = {name: schemas[v] for name, v in inputs.items() if v in schemas}
            context = _SchemaFlow(item.stage.location, written, lookups, pipeline, files)
            found: Mapping[str, Any] = {}
            try:
                found = spec.output_schemas(item.args, known, context)
            except ConfigError as exc:
                for problem in problems_of(exc):
                    problems.append(problem)
                    users = lookups.schema_users.setdefault(problem, {})
                    users[user_of(item.stage.location)] = None
            except Exception:  # an inference that cannot run leaves the schema unknown
                found = {}
            for version in outputs:
                schema = found.get(version.name) if isinstance(found, Mapping) else None
                if isinstance(schema, pl.Schema):
                    schemas[version] = schema
        written.update(item.write_files)
    return problems


@dataclass(frozen=True)
class _SchemaFlow:
    """The `SchemaContext` of one stage while the schemas flow."""

    location: Location
    written: Collection[str]
    lookups: ConfigLookups
    pipeline: str
    files: WrittenFiles | None

    def existing_file(self, template: str) -> Path | None:
        try:
            (canonical,) = self.lookups.paths([template], self.location)
        except ConfigError:
            return None
        if "\0" in canonical or canonical in self.written:  # known at run time only
            return None
        if self.files is not None and self.files.by_another(canonical, self.pipeline):
            return None
        if is_uri(canonical):  # `validate` reads no object: its columns are the run's
            return None
        path = Path(canonical)
        return path if path.is_file() else None

    def cached(self, key: Hashable, compute: Callable[[], Any]) -> Any:
        cache = self.lookups.schema_cache
        if key not in cache:
            try:
                cache[key] = (compute(), None)
            except ConfigError as exc:
                cache[key] = (None, problems_of(exc))
        value, problems = cache[key]
        if problems is not None:
            raise ValidationError(problems)
        return value


class WrittenFiles:
    """The files the stages of each pipeline write (canonical paths), for the schema flow.

    A file another pipeline writes is not read at validate time: its columns are what that
    pipeline makes of it, which a file left by an older run may not show yet (a stale file
    must not make `validate`, or Dagster's loading of the definitions, fail). The pipelines
    not being validated are bound only if a load asks, in lookups of their own (no user of
    an entry, no problem of theirs, reaches the validation's).
    """

    def __init__(
        self, config: CapportConfig, registry: TaskRegistry, bound: Mapping[str, list[Bound]]
    ) -> None:
        self._config = config
        self._registry = registry
        self._bound = bound
        self._writers: dict[str, set[str]] | None = None

    def by_another(self, path: str, pipeline: str) -> bool:
        """Whether a stage of a pipeline other than `pipeline` writes `path`."""
        if self._writers is None:
            self._writers = self._collect()
        return bool(self._writers.get(path, set()) - {pipeline})

    def _collect(self) -> dict[str, set[str]]:
        writers: dict[str, set[str]] = {}
        scratch: ConfigLookups | None = None
        for name, pipeline in self._config.pipelines.items():
            items = self._bound.get(name)
            if items is None:
                scratch = scratch or ConfigLookups(self._config)
                items = [bind(stage, self._registry, scratch) for stage in pipeline.stages]
            for item in items:
                for path in item.write_files:
                    writers.setdefault(path, set()).add(name)
        return writers


def _nodes(wired: list[_Wired]) -> tuple[StageNode, ...]:
    """The nodes of a pipeline without errors (every stage bound), ordered by files too."""
    stages = [item for item, _inputs, _outputs in wired]
    after, materialize = _file_order(stages)
    signalling = {edge.writer for edges in after.values() for edge in edges}
    nodes = []
    for item, inputs, outputs in wired:
        assert item.spec is not None
        nodes.append(
            StageNode(
                item.stage,
                item.spec,
                item.args,
                MappingProxyType(inputs),
                outputs,
                after=after.get(item.stage.label, ()),
                signals_files=item.stage.label in signalling,
                materialize=item.stage.label in materialize,
            )
        )
    return tuple(nodes)


def _file_order(stages: list[Bound]) -> tuple[dict[str, tuple[FileEdge, ...]], set[str]]:
    """Who waits for whom because of files (as for frames: the nearest earlier writer), and the
    stages whose frames must be collected at once because a later stage overwrites their file.

    - read after write: a stage reading a file waits for the nearest earlier stage writing it;
    - write after write: a stage writing a file waits for the nearest earlier writer of it;
    - write after read: a stage writing a file waits for every stage that read it since the
      previous write, and those stages materialise what they read (a lazy scan would otherwise
      read the new file when a later stage executes the plan).
    """
    last_writer: dict[str, Bound] = {}
    readers: dict[str, list[Bound]] = {}
    waits: dict[str, dict[str, tuple[Bound, list[str]]]] = {}
    materialize: set[str] = set()

    def wait(item: Bound, on: Bound, path: str) -> None:
        if on is item:
            return
        edges = waits.setdefault(item.stage.label, {})
        edges.setdefault(on.stage.label, (on, []))[1].append(path)

    for item in stages:
        for path in item.read_files:
            if path in last_writer:
                wait(item, last_writer[path], path)
            readers.setdefault(path, []).append(item)
        for path in item.write_files:
            if path in last_writer:
                wait(item, last_writer[path], path)
            for reader in readers.pop(path, []):
                if reader is not item:
                    wait(item, reader, path)
                    materialize.add(reader.stage.label)
            last_writer[path] = item
    after = {
        label: tuple(
            FileEdge(on.stage.label, on.stage.index, tuple(dict.fromkeys(paths)))
            for on, paths in sorted(edges.values(), key=lambda e: e[0].stage.index)
        )
        for label, edges in waits.items()
    }
    return after, materialize


@dataclass(frozen=True)
class Project:
    """A validated config directory: the graph of every pipeline, the models and the runners.

    Build it with :meth:`Project.from_config`; it raises `ValidationError` listing every problem
    when anything is wrong, so a `Project` that exists is ready to translate.
    """

    config: CapportConfig
    graphs: Mapping[str, PipelineGraph]
    models: Mapping[str, Model]
    runners: Mapping[str, Runner]
    loggers: Mapping[str, LoggerSpec]
    warnings: tuple[Problem, ...] = field(default=())
    #: Masks the config's and the environment's secret values (see `core/secrets.py`).
    redactor: Redactor = field(default_factory=Redactor)

    @classmethod
    def from_config(
        cls,
        config: CapportConfig,
        registry: TaskRegistry = DEFAULT_REGISTRY,
        *,
        pipelines: Iterable[str] | None = None,
    ) -> Project:
        problems: list[Problem] = list(config.problems)
        lookups = ConfigLookups(config)

        loggers: dict[str, LoggerSpec] = {}
        for name, entry in config.loggers.items():
            try:
                loggers[name] = parse_logger(entry)
                check_template(loggers[name].output, lookups.variable_names, entry.location)
            except ConfigError as exc:
                problems.extend(problems_of(exc))

        runners: dict[str, Runner] = {}
        for name, entry in config.runners.items():
            try:
                runners[name] = parse_runner(entry, config.pipelines, config.loggers)
            except ConfigError as exc:
                problems.extend(problems_of(exc))
        problems.extend(runner_problems(runners))

        selected = list(config.pipelines) if pipelines is None else list(pipelines)
        bound = {
            name: [bind(stage, registry, lookups) for stage in config.pipelines[name].stages]
            for name in dict.fromkeys(selected)
            if name in config.pipelines
        }
        files = WrittenFiles(config, registry, bound)
        graphs: dict[str, PipelineGraph] = {}
        for name in selected:
            pipeline = config.pipelines.get(name)
            if pipeline is None:
                known = ", ".join(sorted(config.pipelines)) or "none defined"
                problems.append(
                    Problem(
                        Location(file=str(config.config_dir), section="pipeline", name=name),
                        f"unknown pipeline '{name}'{did_you_mean(name, config.pipelines)}"
                        f" (pipelines: {known})",
                    )
                )
                continue
            try:
                graph = PipelineGraph(pipeline, registry, lookups, bound=bound[name], files=files)
            except ValidationError as exc:
                problems.extend(exc.problems)
                continue
            graphs[name] = graph
            problems.extend(graph.warnings)
        # What Dagster would refuse, found now: a config `validate` accepts always builds. Not
        # for a pipeline with errors already (two stages labelled alike clash in Dagster too).
        broken = {p.location.name for p in problems if p.severity == "error"}
        good = {name: graph for name, graph in graphs.items() if name not in broken}
        problems.extend(dagster_name_problems(good, runners.values()))
        # Entries no selected stage uses: all of them when the whole config is validated.
        problems.extend(lookups.model_problems)
        if pipelines is None:
            problems.extend(lookups.check_unused_transforms())
        problems = _attributed(problems, config, lookups, None if pipelines is None else selected)
        problems = _shown(problems, None if pipelines is None else selected)

        unique = list(dict.fromkeys(problems))  # one problem may be found via several stages
        if any(p.severity == "error" for p in unique):
            raise ValidationError(unique)
        return cls(
            config=config,
            graphs=MappingProxyType(graphs),
            models=MappingProxyType(dict(lookups.models)),
            runners=MappingProxyType(runners),
            loggers=MappingProxyType(loggers),
            warnings=tuple(unique),
            redactor=Redactor(
                secret_values(
                    {s: {n: e.body for n, e in config.section(s).items()} for s in SECRET_SECTIONS},
                    os.environ,
                )
            ),
        )

    def runner_for(self, pipeline: str, runner: str | None = None) -> Runner | None:
        """The runner that sets a pipeline's defaults: the one named, else the first listing the
        pipeline, else `default`."""
        if runner is not None:
            if runner not in self.runners:
                raise ConfigError(
                    f"unknown runner '{runner}'{did_you_mean(runner, self.runners)}"
                    f" (runners: {', '.join(sorted(self.runners)) or 'none defined'})",
                    Location(section="runner", name=runner),
                )
            return self.runners[runner]
        for candidate in self.runners.values():
            if pipeline in candidate.pipelines:
                return candidate
        return self.runners.get("default")


@dataclass(frozen=True)
class DraftStage:
    """A stage of a pipeline that may have errors, as far as it is understood (`capport graph`
    draws a broken pipeline: that is when a picture helps most)."""

    stage: Stage
    #: Frames it reads and writes, as far as its args parsed.
    reads: tuple[str, ...]
    writes: tuple[str, ...]
    #: Frame -> label of the stage it reads it from (the nearest earlier writer); frames no
    #: earlier stage writes are absent.
    inputs: Mapping[str, str]
    #: The errors of this stage, including those of the transforms and models it uses.
    problems: tuple[Problem, ...]


def draft_pipeline(
    config: CapportConfig, name: str, registry: TaskRegistry = DEFAULT_REGISTRY
) -> tuple[DraftStage, ...]:
    """Every stage of pipeline `name` with what is known of it, errors or not."""
    lookups = ConfigLookups(config)
    bound = [bind(stage, registry, lookups) for stage in config.pipelines[name].stages]
    wired, problems = _wire(bound)
    drafts = []
    for item, inputs, _outputs in wired:
        stage = item.stage
        own = [
            p
            for p in problems
            if p.severity == "error"
            and (p.location.stage, p.location.index) == (stage.label, stage.index)
        ]
        own += lookups.entry_problems([item])
        drafts.append(
            DraftStage(
                stage,
                item.reads,
                item.writes,
                MappingProxyType({frame: version.writer for frame, version in inputs.items()}),
                tuple(dict.fromkeys(own)),
            )
        )
    return tuple(drafts)


def load_project(
    config_dir: str | os.PathLike[str],
    registry: TaskRegistry = DEFAULT_REGISTRY,
    *,
    pipelines: Iterable[str] | None = None,
    snapshot: ConfigSnapshot | None = None,
) -> Project:
    """Read and validate a config directory, or a snapshot of its files (raises
    `ValidationError` with every problem)."""
    from capport_dagster.core.loader import load_config

    return Project.from_config(load_config(config_dir, snapshot), registry, pipelines=pipelines)
