"""Drawing a pipeline's dependency graph as text, Mermaid or Graphviz dot (`capport graph`)."""

from __future__ import annotations

import json
from collections.abc import Callable

from capport_dagster.core.graph import PipelineGraph
from capport_dagster.core.names import DagsterNaming

__all__ = ["FORMATS", "dagster_names", "render_graph"]

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


def _text(graph: PipelineGraph) -> str:
    job = _NAMING.job(graph)
    renamed = f" (Dagster job {job})" if job != graph.name else ""
    lines = [f"pipeline {graph.name}{renamed}: {len(graph.nodes)} stages"]
    for node in graph.nodes:
        op = _NAMING.op(node)
        renamed = f" [op {op}]" if op != node.label else ""
        lines.append(f"  [{node.index}] {node.label} ({node.stage.task}){renamed}")
        for frame, version in node.inputs.items():
            lines.append(f"      reads  {frame} <- {version.writer}")
        for edge in node.after:
            lines.append(f"      after  {edge.writer} (file {_files(edge.paths)})")
        for version in node.outputs:
            lines.append(f"      writes {version.name}")
    return "\n".join(lines)


def _files(paths: tuple[str, ...]) -> str:
    """Canonical paths as the user wrote their variables (`$OUTPUT_DIR/x.csv`)."""
    return ", ".join(path.replace("\0", "") for path in paths)


def _mermaid(graph: PipelineGraph) -> str:
    lines = ["flowchart LR"]
    ids = {node.label: f"s{node.index}" for node in graph.nodes}
    for node in graph.nodes:
        label, task = (text.replace('"', "#quot;") for text in (node.label, node.stage.task))
        lines.append(f'  {ids[node.label]}["{label}<br/><i>{task}</i>"]')
    for node in graph.nodes:
        for frame, version in node.inputs.items():
            lines.append(f"  {ids[version.writer]} -->|{frame}| {ids[node.label]}")
        for edge in node.after:
            lines.append(f"  {ids[edge.writer]} -.->|file| {ids[node.label]}")
    return "\n".join(lines)


def _dot(graph: PipelineGraph) -> str:
    quote = json.dumps  # a JSON string is a valid dot ID, with escapes
    lines = [f"digraph {quote(graph.name)} {{", "  rankdir=LR;", "  node [shape=box];"]
    for node in graph.nodes:
        lines.append(
            f"  {quote(node.label)} [label={quote(node.label + chr(10) + node.stage.task)}];"
        )
    for node in graph.nodes:
        for frame, version in node.inputs.items():
            lines.append(
                f"  {quote(version.writer)} -> {quote(node.label)} [label={quote(frame)}];"
            )
        for edge in node.after:
            label = quote(f"file {_files(edge.paths)}")
            lines.append(
                f"  {quote(edge.writer)} -> {quote(node.label)} [label={label}, style=dashed];"
            )
    lines.append("}")
    return "\n".join(lines)


FORMATS: dict[str, Callable[[PipelineGraph], str]] = {
    "text": _text,
    "mermaid": _mermaid,
    "dot": _dot,
}


def render_graph(graph: PipelineGraph, fmt: str = "text") -> str:
    return FORMATS[fmt](graph)
