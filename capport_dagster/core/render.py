"""Drawing a pipeline's dependency graph as text, Mermaid or Graphviz dot (`capport graph`).

Two things can be drawn: a valid pipeline (a `PipelineGraph`) and, when the pipeline has errors,
its draft (`draft_pipeline` in `core/graph.py`: each stage with what of its args parsed, and its
errors). A broken stage is marked (`!` in text, a red dashed box in Mermaid and dot) with its
errors, since a picture helps most while something is wrong.

Names are the user's and may hold anything: Mermaid text gets entity codes for every character
that its grammar or HTML labels give a meaning (`"`, `|`, brackets, `<`, `#`, ...); dot gets
quoted strings with `"` and `\\` escaped, in UTF-8 (Graphviz reads UTF-8, not `\\u00f6`). Nodes
are named by position (`s0`, `s1`, ...) in both, never by label: a draft may have two stages
with one label.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from capport_dagster.core.graph import PipelineGraph
from capport_dagster.core.names import DagsterNaming, dagster_name
from capport_dagster.errors import count

if TYPE_CHECKING:
    from capport_dagster.core.config import Stage
    from capport_dagster.errors import Problem

__all__ = ["FORMATS", "dagster_names", "render_draft", "render_graph"]

_NAMING = DagsterNaming()


def dagster_names(graph: PipelineGraph) -> list[str]:
    """What the pipeline is called in Dagster wherever that differs from its capport names
    (`capport validate` and `capport graph` show it: the UI and `dagster job execute` use it)."""
    lines = []
    job = _NAMING.job(graph)
    if job != graph.name:
        lines.append(f"pipeline '{graph.name}' is Dagster job '{job}'")
    frames: dict[str, str] = {}
    for node in graph.nodes:
        op = _NAMING.op(node)
        if op != node.label:
            lines.append(f"  stage '{node.label}' (#{node.index}) is op '{op}'")
        for frame in (*node.reads, *node.writes):
            frames.setdefault(frame, _NAMING.input(frame))
    lines += [
        f"  frame '{frame}' is op input/output '{name}'"
        for frame, name in frames.items()
        if name != frame
    ]
    if lines and job == graph.name:
        lines.insert(0, f"pipeline '{graph.name}':")
    return lines


# --- what is drawn --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Edge:
    """An arrow into a stage: from the stage at `source` (an index into the drawing's nodes)."""

    source: int
    text: str
    file: bool = False  # a file edge (dashed): the stage waits for files, not a frame


@dataclass(frozen=True)
class _Node:
    label: str
    task: str
    index: int  # the stage's index in the pipeline, as locations print it
    op: str
    inputs: tuple[tuple[str, str], ...]  # (frame, writer label), in read order
    after: tuple[tuple[str, str], ...]  # (writer label, files), in list order
    writes: tuple[str, ...]
    errors: tuple[str, ...]


@dataclass(frozen=True)
class _Drawing:
    """One pipeline, valid or draft, as every format draws it."""

    name: str
    job: str
    nodes: tuple[_Node, ...]

    def edges(self, position: int) -> list[_Edge]:
        """The arrows into the node at `position`: each from the nearest earlier node with the
        writer's label (in a draft two stages may share a label)."""
        node = self.nodes[position]
        found = [
            _Edge(source, frame)
            for frame, writer in node.inputs
            if (source := self._before(position, writer)) is not None
        ]
        found += [
            _Edge(source, files, file=True)
            for writer, files in node.after
            if (source := self._before(position, writer)) is not None
        ]
        return found

    def _before(self, position: int, label: str) -> int | None:
        for earlier in range(position - 1, -1, -1):
            if self.nodes[earlier].label == label:
                return earlier
        return None

    @property
    def broken(self) -> int:
        return sum(1 for node in self.nodes if node.errors)


def _from_graph(graph: PipelineGraph) -> _Drawing:
    return _Drawing(
        graph.name,
        _NAMING.job(graph),
        tuple(
            _Node(
                label=node.label,
                task=node.stage.task,
                index=node.index,
                op=_NAMING.op(node),
                inputs=tuple((frame, version.writer) for frame, version in node.inputs.items()),
                after=tuple((edge.writer, _files(edge.paths)) for edge in node.after),
                writes=tuple(version.name for version in node.outputs),
                errors=(),
            )
            for node in graph.nodes
        ),
    )


class DraftLike(Protocol):
    """What the drawing needs of a draft stage (`core.graph.DraftStage`)."""

    stage: Stage
    reads: tuple[str, ...]
    writes: tuple[str, ...]
    inputs: Mapping[str, str]
    problems: tuple[Problem, ...]


def _from_draft(name: str, stages: Iterable[DraftLike]) -> _Drawing:
    return _Drawing(
        name,
        dagster_name(name),
        tuple(
            _Node(
                label=draft.stage.label,
                task=draft.stage.task,
                index=draft.stage.index,
                op=dagster_name(draft.stage.label),
                inputs=tuple(draft.inputs.items()),
                after=(),
                writes=draft.writes,
                errors=tuple(
                    dict.fromkeys(p.message for p in draft.problems if p.severity == "error")
                ),
            )
            for draft in stages
        ),
    )


def _files(paths: tuple[str, ...]) -> str:
    """What orders two stages, as the user wrote it: `file $OUTPUT_DIR/x.csv` (canonical paths
    with their variables), `table local/roster`, `tables of connection local` (a query may read
    any table of its connection, see `core/sql.py`)."""
    shown = []
    for path in paths:
        text = path.replace("\0", "")
        if text.startswith("sql:"):
            connection, _, table = text.removeprefix("sql:").partition("/")
            table = table.replace("$$", "$")
            shown.append(
                f"tables of connection {connection}"
                if table == "*"
                else f"table {connection}/{table}"
            )
        else:
            shown.append(f"file {text}")
    return ", ".join(shown)


# --- text -----------------------------------------------------------------------------------


def _text(drawing: _Drawing) -> str:
    about = [count(len(drawing.nodes), "stage")]
    if drawing.broken:
        about.append(f"{drawing.broken} with errors, marked !")
    if drawing.job != drawing.name:
        about.append(f"Dagster job {drawing.job}")
    lines = [f"pipeline {drawing.name} ({', '.join(about)})"]
    for node in drawing.nodes:
        renamed = f" [op {node.op}]" if node.op != node.label else ""
        mark = "!" if node.errors else " "
        lines.append(f"{mark} [{node.index}] {node.label} ({node.task}){renamed}")
        lines += [f"      ! {error}" for error in node.errors]
        lines += [f"      reads  {frame} <- {writer}" for frame, writer in node.inputs]
        lines += [f"      after  {writer} ({files})" for writer, files in node.after]
        lines += [f"      writes {frame}" for frame in node.writes]
    return "\n".join(lines)


# --- Mermaid --------------------------------------------------------------------------------

#: Characters Mermaid text keeps as they are; every other one becomes an entity code (`#124;`),
#: which Mermaid decodes after parsing, so no name can end a label, open a shape or inject HTML.
#: `:` too: Mermaid drops the last `;` of a line holding `style`, `:` and `#` (its own style
#: syntax), which would break an entity code in a label such as `style: a|b`.
_MERMAID_PLAIN = frozenset(" _-.,/$")


def _mermaid_text(text: str) -> str:
    return "".join(
        char if char.isalnum() or char in _MERMAID_PLAIN else f"#{ord(char)};" for char in text
    )


_BROKEN_STYLE = "stroke:#c00,stroke-width:2px,stroke-dasharray:5 5,color:#c00"


def _mermaid(drawing: _Drawing) -> str:
    lines = ["flowchart LR"]
    for position, node in enumerate(drawing.nodes):
        text = f"{_mermaid_text(node.label)}<br/><i>{_mermaid_text(node.task)}</i>"
        text += "".join(f"<br/>! {_mermaid_text(error)}" for error in node.errors)
        lines.append(f'  s{position}["{text}"]')
    for position in range(len(drawing.nodes)):
        for edge in drawing.edges(position):
            arrow = "-.->" if edge.file else "-->"
            # A short label: what kind of thing orders them (file, table, tables).
            label = edge.text.split(" ")[0] if edge.file else _mermaid_text(edge.text)
            lines.append(f"  s{edge.source} {arrow}|{label}| s{position}")
    broken = [f"s{position}" for position, node in enumerate(drawing.nodes) if node.errors]
    if broken:
        lines.append(f"  classDef broken {_BROKEN_STYLE}")
        lines.append(f"  class {','.join(broken)} broken")
    return "\n".join(lines)


# --- dot ------------------------------------------------------------------------------------


def _dot_string(text: str) -> str:
    """A dot quoted string, as an escString label reads it: `\\` and `"` escaped, a newline as
    `\\n` (a centred line break); anything else, non-ASCII included, as it is (UTF-8)."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\r", "").replace("\n", "\\n")
    return f'"{escaped}"'


def _dot(drawing: _Drawing) -> str:
    lines = [
        f"digraph {_dot_string(drawing.name)} {{",
        "  rankdir=LR;",
        "  node [shape=box];",
    ]
    for position, node in enumerate(drawing.nodes):
        text = "\n".join((node.label, node.task, *(f"! {error}" for error in node.errors)))
        marks = ", color=red, fontcolor=red, style=dashed" if node.errors else ""
        lines.append(f"  s{position} [label={_dot_string(text)}{marks}];")
    for position in range(len(drawing.nodes)):
        for edge in drawing.edges(position):
            style = ", style=dashed" if edge.file else ""
            lines.append(
                f"  s{edge.source} -> s{position} [label={_dot_string(edge.text)}{style}];"
            )
    lines.append("}")
    return "\n".join(lines)


FORMATS: dict[str, Callable[[_Drawing], str]] = {
    "text": _text,
    "mermaid": _mermaid,
    "dot": _dot,
}


def render_graph(graph: PipelineGraph, fmt: str = "text") -> str:
    """A valid pipeline's graph in `fmt` (one of `FORMATS`)."""
    return FORMATS[fmt](_from_graph(graph))


def render_draft(name: str, stages: Sequence[DraftLike], fmt: str = "text") -> str:
    """The draft of a pipeline with errors (`core.graph.draft_pipeline`), its broken stages
    marked with their errors."""
    return FORMATS[fmt](_from_draft(name, stages))
