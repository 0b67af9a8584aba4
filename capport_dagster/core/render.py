"""Drawing a pipeline's dependency graph as text, Mermaid or Graphviz dot (`capport graph`)."""

from __future__ import annotations

import json
from collections.abc import Callable

from capport_dagster.core.graph import PipelineGraph

__all__ = ["FORMATS", "render_graph"]


def _text(graph: PipelineGraph) -> str:
    lines = [f"pipeline {graph.name}: {len(graph.nodes)} stages"]
    for node in graph.nodes:
        lines.append(f"  [{node.index}] {node.label} ({node.stage.task})")
        for frame, version in node.inputs.items():
            lines.append(f"      reads  {frame} <- {version.writer}")
        for version in node.outputs:
            lines.append(f"      writes {version.name}")
    return "\n".join(lines)


def _mermaid(graph: PipelineGraph) -> str:
    lines = ["flowchart LR"]
    ids = {node.label: f"s{node.index}" for node in graph.nodes}
    for node in graph.nodes:
        lines.append(f'  {ids[node.label]}["{node.label}<br/><i>{node.stage.task}</i>"]')
    for node in graph.nodes:
        for frame, version in node.inputs.items():
            lines.append(f"  {ids[version.writer]} -->|{frame}| {ids[node.label]}")
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
    lines.append("}")
    return "\n".join(lines)


FORMATS: dict[str, Callable[[PipelineGraph], str]] = {
    "text": _text,
    "mermaid": _mermaid,
    "dot": _dot,
}


def render_graph(graph: PipelineGraph, fmt: str = "text") -> str:
    return FORMATS[fmt](graph)
