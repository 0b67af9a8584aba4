"""The names capport things get in Dagster, and the check that they are valid and unique.

capport accepts any string as a pipeline name, stage label or frame name (`nhl-daily`,
`load data`, `input`); Dagster accepts names matching `^[A-Za-z0-9_]+$` that are not one of its
reserved words or a Python keyword. So every name is mapped (as dagster-dbt maps dbt names):

    dagster_name(name) := sanitise(name), then + "_" when the result is reserved
    sanitise           := per character, after Unicode NFKD decomposition (é -> e + accent):
                            ASCII letter, digit, "_"   -> itself
                            combining mark (accents)   -> dropped
                            other ASCII (- . space ...) -> "_"
                            other character (日)       -> "u" + 4+ hex digits ("u65e5")
                          and "_" in front when it is empty or starts with a digit

Two different capport names can map to one Dagster name (`a-b` and `a_b`); the mapping does not
hide that by inventing suffixes (the names would then depend on the order of the config), it is
a validation error naming both, found by :func:`dagster_name_problems` *after* mapping, for every
namespace Dagster has: jobs (and asset jobs `<job>__assets`), op definitions across the code
location, ops of a job, inputs and outputs of an op, asset keys, schedules and sensors, and the
asset checks of an asset. `capport validate` runs it, so a config it accepts always builds.

This module knows Dagster's naming rules but does not import Dagster: validating stays fast
(importing Dagster costs about a second). `tests/test_names.py` checks the rules against
Dagster's own. The translator's default names are the ones defined here; a translator subclass
that renames things is checked again, with its own names, when definitions are built.
"""

from __future__ import annotations

import keyword
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from capport_dagster.errors import Location, Problem

if TYPE_CHECKING:
    from capport_dagster.core.graph import FrameVersion, PipelineGraph, StageNode
    from capport_dagster.core.runners import Runner

__all__ = [
    "DAGSTER_RESERVED",
    "FILES_READY",
    "FILES_WRITTEN",
    "DagsterNaming",
    "asset_key_part",
    "dagster_name",
    "dagster_name_problems",
    "is_valid_dagster_name",
]

#: Names Dagster refuses for jobs, ops, inputs and outputs (`dagster._core.definitions.utils.
#: DISALLOWED_NAMES`, which adds every Python keyword).
DAGSTER_RESERVED: frozenset[str] = frozenset(
    {
        "context",
        "conf",
        "config",
        "meta",
        "arg_dict",
        "dict",
        "input_arg_dict",
        "output_arg_dict",
        "int",
        "str",
        "float",
        "bool",
        "input",
        "output",
        "type",
        *keyword.kwlist,
    }
)

_VALID = re.compile(r"^[A-Za-z0-9_]+$")

#: The op input through which a stage waits for the stages that wrote files it reads or
#: overwrites, and the output those stages signal it with (Dagster `Nothing`: order, no value).
FILES_READY = "files_ready"
FILES_WRITTEN = "files_written"


def is_valid_dagster_name(name: str) -> bool:
    return bool(_VALID.match(name)) and name not in DAGSTER_RESERVED


def dagster_name(name: str) -> str:
    """The Dagster name of a capport name (see the module docstring); idempotent."""
    cleaned = _sanitise(name, keep="_")
    if not cleaned or cleaned[0].isdigit():
        cleaned = f"_{cleaned}"
    return f"{cleaned}_" if cleaned in DAGSTER_RESERVED else cleaned


def asset_key_part(name: str) -> str:
    """A capport name as a part of an asset key: as `dagster_name`, but `-` and `.` stay
    (`nhl-daily`), and reserved words too: Dagster accepts them in keys. Not any text: Dagster
    names a key's checks and outputs after the key with only `-` and `.` replaced, so a space or
    a `日` in a key would make names it refuses."""
    return _sanitise(name, keep="_-.") or "_"


def _sanitise(name: str, *, keep: str) -> str:
    characters: list[str] = []
    for character in unicodedata.normalize("NFKD", name):
        if character.isascii():
            characters.append(character if character.isalnum() or character in keep else "_")
        elif not unicodedata.combining(character):
            characters.append(f"u{ord(character):04x}")
    return "".join(characters)


class DagsterNaming:
    """The default name of everything capport puts in Dagster.

    `CapportTranslator`'s default methods return these; the translate layer checks a
    translator's own names with an adapter overriding each method.
    """

    def job(self, graph: PipelineGraph) -> str:
        return dagster_name(graph.name)

    def asset_job(self, graph: PipelineGraph) -> str:
        return f"{self.job(graph)}__assets"

    def op(self, node: StageNode) -> str:
        return dagster_name(node.label)

    def op_definition(self, graph: PipelineGraph, node: StageNode) -> str:
        """Dagster wants op *definition* names unique in a code location, and two pipelines may
        both have a stage `load`: definitions get the job's name in front."""
        return f"{self.job(graph)}__{self.op(node)}"

    def asset_op_definition(self, graph: PipelineGraph, node: StageNode) -> str:
        return f"{self.op_definition(graph, node)}__assets"

    def input(self, frame: str) -> str:
        """The name of the op input carrying this frame."""
        return dagster_name(frame)

    def output(self, version: FrameVersion) -> str:
        """The name of the op output carrying this frame version."""
        return dagster_name(version.name)

    def asset_key(self, graph: PipelineGraph, version: FrameVersion) -> tuple[str, ...]:
        """`[pipeline, FRAME]`, and a rewrite of a frame adds the stage that made it, each part
        as close to capport's name as Dagster allows (`asset_key_part`)."""
        parts = (
            (graph.name, version.name)
            if version.version == 0
            else (graph.name, version.name, version.writer)
        )
        return tuple(asset_key_part(part) for part in parts)

    def sink_asset_key(self, graph: PipelineGraph, node: StageNode) -> tuple[str, ...]:
        """`[pipeline, label]`; a sink whose args name what it writes (`save_sql`'s
        `sink_key()`: `sql`, connection, table) is keyed by that instead."""
        sink_key = getattr(node.args, "sink_key", None)
        parts = sink_key() if callable(sink_key) else (node.label,)
        return tuple(asset_key_part(part) for part in (graph.name, *parts))

    def group(self, graph: PipelineGraph) -> str:
        return dagster_name(graph.name)

    def schedule(self, runner: Runner, pipeline: str) -> str:
        return dagster_name(f"{pipeline}__{runner.name}")

    def asset_check(self, model: str, column: str, constraint: str) -> str:
        return dagster_name(f"{model}__{column}__{constraint}")


_RULE = "Dagster names allow only letters, digits and _"


@dataclass(frozen=True)
class _Owner:
    """Something that gets a Dagster name: how messages call it, and where it is."""

    text: str
    location: Location
    #: What the name was made from: two owners with the same source clash only through
    #: another name already reported (an op definition name from a clashing op name).
    source: tuple[str, ...] = ()
    #: The capport name it was mapped from, when it is one: messages explain the mapping
    #: when it changed a name.
    original: str | None = None


class _Namespace:
    """Names already given in one Dagster namespace, to report invalid names and clashes."""

    def __init__(self, kind: str, scope: str = "") -> None:
        self.kind = kind
        self.scope = scope
        self.taken: dict[str, _Owner] = {}

    def claim(self, name: str, owner: _Owner, problems: list[Problem]) -> None:
        if not is_valid_dagster_name(name):
            problems.append(
                Problem(
                    owner.location,
                    f"{owner.text} gets the Dagster {self.kind} name {name!r}, which Dagster"
                    f" refuses ({_RULE}, and not a reserved word)",
                )
            )
            return
        first = self.taken.setdefault(name, owner)
        if first is owner or (owner.source and owner.source == first.source):
            return
        mapped = any(o.original is not None and o.original != name for o in (owner, first))
        problems.append(
            Problem(
                owner.location,
                f"{owner.text} and {first.text} both become Dagster {self.kind} '{name}'"
                f"{self.scope}{f' ({_RULE})' if mapped else ''}: rename one",
            )
        )


def dagster_name_problems(
    graphs: Mapping[str, PipelineGraph],
    runners: Iterable[Runner],
    naming: DagsterNaming | None = None,
) -> list[Problem]:
    """Every name that Dagster would refuse or that two things would share, as problems."""
    naming = naming or DagsterNaming()
    problems: list[Problem] = []
    jobs, definitions = _Namespace("job"), _Namespace("op definition")
    schedules = _Namespace("schedule")
    asset_keys: dict[tuple[str, ...], _Owner] = {}
    for graph in graphs.values():
        where = graph.pipeline.location
        job = naming.job(graph)
        jobs.claim(job, _Owner(f"pipeline '{graph.name}'", where, original=graph.name), problems)
        jobs.claim(
            naming.asset_job(graph),
            _Owner(f"the asset job of pipeline '{graph.name}'", where, (job,)),
            problems,
        )
        ops = _Namespace("op", f" of job '{job}'")
        for node in graph.nodes:
            op = naming.op(node)
            owner = _Owner(f"stage '{node.label}'", node.location, original=node.label)
            ops.claim(op, owner, problems)
            owner = f"pipeline '{graph.name}' stage '{node.label}'"
            definitions.claim(
                naming.op_definition(graph, node), _Owner(owner, node.location, (job, op)), problems
            )
            definitions.claim(
                naming.asset_op_definition(graph, node),
                _Owner(f"the asset op of {owner}", node.location, (job, op)),
                problems,
            )
            _check_stage(graph, node, naming, asset_keys, problems)
    for runner in runners:
        if runner.schedule is None:
            continue
        for pipeline in runner.pipelines:
            if pipeline in graphs:
                text = f"the schedule of runner '{runner.name}' for pipeline '{pipeline}'"
                source = (naming.job(graphs[pipeline]), runner.name)
                owner = _Owner(text, runner.location, source, f"{pipeline}__{runner.name}")
                schedules.claim(naming.schedule(runner, pipeline), owner, problems)
    return list(dict.fromkeys(problems))


def _check_stage(
    graph: PipelineGraph,
    node: StageNode,
    naming: DagsterNaming,
    asset_keys: dict[tuple[str, ...], _Owner],
    problems: list[Problem],
) -> None:
    scope = f" of op '{naming.op(node)}'"
    inputs, outputs = _Namespace("input", scope), _Namespace("output", scope)
    for frame in node.reads:
        owner = _Owner(f"frame '{frame}'", node.location, original=frame)
        inputs.claim(naming.input(frame), owner, problems)
    if node.after:
        inputs.claim(FILES_READY, _Owner("the input waiting for files", node.location), problems)
    for version in node.outputs:
        owner = _Owner(f"frame '{version.name}'", node.location, original=version.name)
        outputs.claim(naming.output(version), owner, problems)
    if node.signals_files:
        outputs.claim(FILES_WRITTEN, _Owner("the output signalling files", node.location), problems)

    keys = (
        [(naming.asset_key(graph, v), f"frame '{v.name}'") for v in node.outputs]
        if node.outputs
        else [(naming.sink_asset_key(graph, node), "its output")]
    )
    for key, what in keys:
        owner = _Owner(f"{what} of stage '{node.label}' (#{node.index})", node.location)
        first = asset_keys.setdefault(tuple(key), owner)
        if first is not owner:
            where = "" if first.location.name == graph.name else f" of pipeline '{graph.name}'"
            problems.append(
                Problem(
                    node.location,
                    f"the asset key {'/'.join(key)} of {what} is also the asset key of"
                    f" {first.text}{where}: rename the stage or the frame",
                )
            )
    # Checks are named per asset: each frame's own, or the one asset of a sink (all its files).
    # Dagster also names an output of the stage's op after each check and its asset's key.
    frame_keys = dict(zip(node.writes, (key for key, _ in keys), strict=False))
    sink_checks = _Namespace("asset check")
    check_outputs = _Namespace("asset check output", scope)
    output_names = [naming.output(version) for version in node.outputs]
    clashing = {
        v.name for v, o in zip(node.outputs, output_names, strict=True) if output_names.count(o) > 1
    }
    for frame, model in node.spec.model_frames(node.args):
        checks = _Namespace("asset check") if node.outputs else sink_checks
        key = frame_keys.get(frame, keys[0][0])
        for column, constraint in model.checks:
            text = f"the {constraint} check of model '{model.name}' column '{column}'"
            name = naming.asset_check(model.name, column, constraint)
            original = f"{model.name}__{column}__{constraint}"
            checks.claim(name, _Owner(text, node.location, original=original), problems)
            if frame in clashing:
                continue  # its output clashes already: that is the problem to fix
            output = f"{_python_identifier(key)}_{name}".replace(".", "_")
            source = (*key, name)  # a clash of the check names themselves is reported above
            owner = _Owner(f"{text} on frame '{frame}'", node.location, source, output)
            check_outputs.claim(output, owner, problems)


def _python_identifier(key: tuple[str, ...]) -> str:
    """`AssetKey.to_python_identifier`, which names an asset check's output."""
    return "__".join(key).replace("-", "_").replace(".", "_")
