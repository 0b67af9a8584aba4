"""The dependency graph: nearest-earlier-writer rule, versions, and every problem at once."""

from __future__ import annotations

import pytest

from capport_dagster.core.graph import FrameVersion, load_project
from capport_dagster.core.registry import TaskRegistry, TaskSpec
from capport_dagster.errors import ValidationError

LOAD = "{ task: load_csv, args: { filepath: x.csv, df_name: %s } }"


def stage(label: str, task: str, args: str) -> str:
    return f"    - {{ label: {label}, task: {task}, args: {args} }}\n"


def transform(label: str, inp: str, out: str, name: str = "ident") -> str:
    return stage(label, "transform", f"{{ name: {name}, input: {inp}, save_df: {out} }}")


TRANSFORMS = """
transform:
  ident:
    - select: { a: null }
  join_b:
    - join: { right: B, left_on: a, right_on: a, how: left }
"""


def pipeline(*stages: str, name: str = "p") -> str:
    return f"pipeline:\n  {name}:\n" + "".join(stages)


def test_reader_depends_on_nearest_earlier_writer(write_config):
    config = write_config(
        {
            "p.yml": pipeline(
                stage("load", "load_csv", "{ filepath: x.csv, df_name: X }"),
                transform("rewrite", "X", "X"),
                transform("use", "X", "Y"),
                transform("again", "X", "X"),
            ),
            "t.yml": TRANSFORMS,
        }
    )
    graph = load_project(config).graphs["p"]
    by = graph.by_label
    assert by["rewrite"].inputs["X"] == FrameVersion("X", "load", 0, 0)
    assert by["use"].inputs["X"] == FrameVersion("X", "rewrite", 1, 1)
    assert by["again"].inputs["X"] == FrameVersion("X", "rewrite", 1, 1)
    assert by["again"].outputs == (FrameVersion("X", "again", 3, 2),)
    assert graph.final_versions["X"].writer == "again"
    assert by["use"].upstream == ("rewrite",)


def test_join_frames_are_dependencies(write_config):
    config = write_config(
        {
            "p.yml": pipeline(
                stage("a", "load_csv", "{ filepath: a.csv, df_name: A }"),
                stage("b", "load_csv", "{ filepath: b.csv, df_name: B }"),
                transform("j", "A", "C", name="join_b"),
                stage("save", "save_csv", "{ filepath: out.csv, df_name: C }"),
            ),
            "t.yml": TRANSFORMS,
        }
    )
    node = load_project(config).graphs["p"].by_label["j"]
    assert node.reads == ("A", "B")
    assert node.upstream == ("a", "b")


def test_frame_written_and_never_read_is_a_warning(write_config):
    config = write_config(
        {"p.yml": pipeline(stage("a", "load_csv", "{ filepath: a.csv, df_name: A }"))}
    )
    project = load_project(config)
    assert [str(w) for w in project.warnings] == [
        f"warning: {config.name}/p.yml:3, pipeline 'p', stage 'a' (#0): "
        "frame 'A' is written but no later stage reads it"
    ]


def test_every_problem_is_reported_at_once(write_config):
    config = write_config(
        {
            "p.yml": pipeline(
                stage("early", "save_csv", "{ filepath: out.csv, df_name: LATER }"),
                stage("typo", "load_cvs", "{ filepath: a.csv, df_name: A }"),
                stage("bad_args", "load_csv", "{ path: a.csv }"),
                transform("no_transform", "A", "B", name="missing"),
                stage("no_model", "load_csv", "{ filepath: a.csv, df_name: M, model: nope }"),
                stage("noop_args", "noop", "{ x: 1 }"),
                stage("late", "load_csv", "{ filepath: a.csv, df_name: LATER }"),
            ),
            "t.yml": TRANSFORMS,
        }
    )
    with pytest.raises(ValidationError) as info:
        load_project(config)
    where = f"{config.name}/p.yml"
    assert [str(p) for p in info.value.errors] == [
        f"error: {where}:3, pipeline 'p', stage 'early' (#0): reads frame 'LATER' before any "
        "earlier stage writes it; it is written later by stage 'late' - move that stage first",
        f"error: {where}:4, pipeline 'p', stage 'typo' (#1): unknown task 'load_cvs' - did you "
        "mean 'load_csv'? (tasks: http_request, http_single_request, load_csv, noop, save_csv, "
        "transform)",
        f"error: {where}:5, pipeline 'p', stage 'bad_args' (#2): malformed args for task "
        "'load_csv': filepath: field required; df_name: field required; unknown key 'path' - "
        "did you mean 'filepath'? (keys: df_name, filepath, model, save_df)",
        f"error: {where}:6, pipeline 'p', stage 'no_transform' (#3): unknown transform 'missing'",
        f"error: {where}:7, pipeline 'p', stage 'no_model' (#4): unknown model 'nope'",
        f"error: {where}:8, pipeline 'p', stage 'noop_args' (#5): task 'noop' takes no args, "
        "got {'x': 1}",
    ]


def test_custom_task_gets_the_same_wiring(write_config):
    registry = TaskRegistry()

    @registry.task("make", reads=lambda a: [], writes=lambda a: [a["out"]])
    def make(args, frames, ctx):
        return {}

    @registry.task("use", reads=lambda a: [a["in"]], writes=lambda a: [])
    def use(args, frames, ctx):
        return {}

    config = write_config(
        {"p.yml": pipeline(stage("m", "make", "{ out: F }"), stage("u", "use", "{ in: F }"))}
    )
    graph = load_project(config, registry).graphs["p"]
    assert graph.by_label["u"].inputs == {"F": FrameVersion("F", "m", 0, 0)}
    assert isinstance(graph.by_label["m"].spec, TaskSpec)


def test_registering_a_task_twice_is_refused():
    registry = TaskRegistry()
    registry.task("t", reads=lambda a: [], writes=lambda a: [])(lambda a, f, c: {})
    with pytest.raises(ValueError, match="task 't' is already registered"):
        registry.task("t", reads=lambda a: [], writes=lambda a: [])(lambda a, f, c: {})
