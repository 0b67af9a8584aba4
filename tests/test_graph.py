"""The dependency graph: nearest-earlier-writer rule, versions, and every problem at once."""

from __future__ import annotations

import time

import pytest

from capport_dagster import errors
from capport_dagster.core import binding
from capport_dagster.core import graph as graph_module
from capport_dagster.core.graph import FrameVersion, load_project
from capport_dagster.core.loader import load_config
from capport_dagster.core.registry import TaskRegistry, TaskSpec
from capport_dagster.errors import ValidationError
from tests.conftest import builtin_tasks

LOAD = "{ task: load_csv, args: { filepath: x.csv, df_name: %s } }"


def stage(label: str, task: str, args: str) -> str:
    return f"    - {{ label: {label}, task: {task}, args: {args} }}\n"


def transform(label: str, inp: str, out: str, name: str = "ident", kwargs: str = "") -> str:
    more = f", kwargs: {kwargs}" if kwargs else ""
    return stage(label, "transform", f"{{ name: {name}, input: {inp}, save_df: {out}{more} }}")


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
    assert by["rewrite"].inputs["X"] == FrameVersion("X", "load", 1, 0)
    assert by["use"].inputs["X"] == FrameVersion("X", "rewrite", 2, 1)
    assert by["again"].inputs["X"] == FrameVersion("X", "rewrite", 2, 1)
    assert by["again"].outputs == (FrameVersion("X", "again", 4, 2),)
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
        f"warning: {config.name}/p.yml:3, pipeline 'p', stage 'a' (#1): "
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
        f"error: {where}:3, pipeline 'p', stage 'early' (#1): reads frame 'LATER' before any "
        "earlier stage writes it; it is written later by stage 'late' - move that stage first",
        f"error: {where}:4, pipeline 'p', stage 'typo' (#2): unknown task 'load_cvs' - did you "
        f"mean 'load_csv'? (tasks: {builtin_tasks()})",
        f"error: {where}:5, pipeline 'p', stage 'bad_args' (#3): malformed args for task "
        "'load_csv': filepath: field required; df_name: field required; unknown key 'path' - "
        "did you mean 'filepath'? (keys: df_name, encoding, filepath, has_header, model, "
        "null_values, quote_char, save_df, separator)",
        f"error: {where}:6, pipeline 'p', stage 'no_transform' (#4): unknown transform 'missing'",
        f"error: {where}:7, pipeline 'p', stage 'no_model' (#5): unknown model 'nope'",
        f"error: {where}:8, pipeline 'p', stage 'noop_args' (#6): task 'noop' takes no args, "
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
    assert graph.by_label["u"].inputs == {"F": FrameVersion("F", "m", 1, 0)}
    assert isinstance(graph.by_label["m"].spec, TaskSpec)


def test_registering_a_task_twice_is_refused():
    registry = TaskRegistry()
    registry.task("t", reads=lambda a: [], writes=lambda a: [])(lambda a, f, c: {})
    with pytest.raises(ValueError, match="task 't' is already registered"):
        registry.task("t", reads=lambda a: [], writes=lambda a: [])(lambda a, f, c: {})


# --- regressions (issue 7, fuzzing): validation stays linear on hostile configs -------------


def test_long_names_get_no_suggestion_and_no_quadratic_diff(write_config):
    # difflib is quadratic in the length of the names: two 100,000-character frame names took
    # 7 s to compare for a did-you-mean, 3 minutes at a million characters.
    alphabet = [chr(0x4E00 + i) for i in range(1000)]  # no character common enough to be junk
    first = "".join(alphabet[(i * 7919) % 1000] for i in range(100_000))
    second = "".join(alphabet[(i * 104_729) % 1000] for i in range(100_000))
    config = write_config(
        {
            "p.yml": pipeline(
                stage("a", "load_csv", f"{{ filepath: a.csv, df_name: '{first}' }}"),
                stage("b", "save_csv", f"{{ filepath: b.csv, df_name: '{second}' }}"),
            )
        }
    )
    started = time.perf_counter()
    with pytest.raises(ValidationError) as info:
        load_project(config)
    assert time.perf_counter() - started < 2
    (error,) = info.value.errors
    assert error.message.endswith("before any earlier stage writes it")  # no suggestion


def test_did_you_mean_looks_at_a_bounded_number_of_choices(write_config, monkeypatch):
    # Thousands of stages reading unknown frames each compared their name with every frame
    # written so far: 2,000 such stages took 11 s, 8,000 took 3 minutes.
    compared: list[int] = []
    real = errors.difflib.get_close_matches

    def counting(word, possibilities, *args, **kwargs):
        compared.append(len(possibilities))
        return real(word, possibilities, *args, **kwargs)

    monkeypatch.setattr(errors.difflib, "get_close_matches", counting)
    n = errors.SUGGEST_MAX_CHOICES + 50
    stages = []
    for i in range(n):  # frames written so far grow past the bound
        stages.append(stage(f"w{i}", "load_csv", f"{{ filepath: a.csv, df_name: G{i} }}"))
        stages.append(stage(f"r{i}", "save_csv", f"{{ filepath: a.csv, df_name: F{i} }}"))
    config = write_config({"p.yml": pipeline(*stages)})
    with pytest.raises(ValidationError) as info:
        load_project(config)
    assert len(info.value.errors) == n
    assert len(compared) == errors.SUGGEST_MAX_CHOICES  # then no suggestion: too many frames
    assert max(compared) == errors.SUGGEST_MAX_CHOICES
    assert errors.did_you_mean("G1", [f"G{i}" for i in range(n)]) == ""
    assert errors.did_you_mean("G1x", ["G1", "H"]) == " - did you mean 'G1'?"
    assert errors.did_you_mean("x" * 101, ["x" * 101]) == ""


def test_a_frame_written_twice_by_one_stage_is_one_problem_and_not_a_cascade(write_config):
    registry = TaskRegistry()
    registry.task("many", reads=lambda a: [], writes=lambda a: a["frames"])(lambda a, f, c: {})
    registry.task("use", reads=lambda a: [a["input"]], writes=lambda a: [])(lambda a, f, c: {})
    frames = [f"F{i}" for i in range(20_000)] + ["F1"]
    config = write_config(
        {
            "p.yml": pipeline(
                stage("make", "many", f"{{ frames: [{', '.join(frames)}] }}"),
                stage("read", "use", "{ input: F1 }"),
            )
        }
    )
    with pytest.raises(ValidationError) as info:
        load_project(config, registry)
    assert [str(p) for p in info.value.problems] == [
        "error: config/p.yml:3, pipeline 'p', stage 'make' (#1): writes frame 'F1' twice"
    ]


BROKEN_TEMPLATE = """
transform:
  t:
    - drop: { a: $$flag, b: $$flag }
"""


def test_a_broken_template_lists_its_problems_once(write_config):
    # Each stage with other kwargs used to repeat every problem of the transform: a 70 KB
    # config (a 2,000-column template used by 500 stages) made a million problems and 500 MB.
    config = write_config(
        {
            "p.yml": pipeline(
                stage("l", "load_csv", "{ filepath: a.csv, df_name: A }"),
                transform("t1", "A", "A", name="t", kwargs="{ flag: 5 }"),
                transform("t2", "A", "A", name="t", kwargs="{ flag: 6 }"),
                transform("t3", "A", "A", name="t", kwargs="{ flag: 5 }"),
                stage("s", "save_csv", "{ filepath: b.csv, df_name: A }"),
            ),
            "t.yml": BROKEN_TEMPLATE,
        }
    )
    with pytest.raises(ValidationError) as info:
        load_project(config)
    p, t = f"{config.name}/p.yml", f"{config.name}/t.yml"
    flag = "is not a drop flag (true or null drops the column, false keeps it)"
    users = "; ".join(f"pipeline 'p', stage 't{i}' (#{i + 1})" for i in (1, 2, 3))
    assert [str(problem) for problem in info.value.errors] == [
        f"error: {p}:5, pipeline 'p', stage 't2' (#3): transform 't' is also invalid with these "
        f"kwargs: step 1 (drop): column 'a': 6 {flag} (and 1 more)",
        f"error: {t}:3:7, transform 't' (used by {users}): step 1 (drop): column 'a': 5 {flag}",
        f"error: {t}:3:7, transform 't' (used by {users}): step 1 (drop): column 'b': 5 {flag}",
    ]


def test_template_expansion_is_bounded(write_config, monkeypatch):
    # Every distinct (transform, kwargs) pair is substituted and checked: a big template used by
    # thousands of stages was quadratic in the size of the config, like an alias bomb.
    monkeypatch.setattr(binding, "MAX_TEMPLATE_EXPANSION", 20)
    template = "transform:\n  t:\n    - drop: { a: $$flag, b: false }\n"  # 8 values
    stages = [stage("l", "load_csv", "{ filepath: a.csv, df_name: A }")]
    for i, flag in enumerate(["true", "false", "true", "null", "false"]):
        stages.append(transform(f"t{i}", "A", "A", name="t", kwargs=f"{{ flag: {flag} }}"))
    stages.append(stage("s", "save_csv", "{ filepath: b.csv, df_name: A }"))
    config = write_config({"p.yml": pipeline(*stages), "t.yml": template})
    with pytest.raises(ValidationError) as info:
        load_project(config)
    # true: 8 values, false: 16, true again: already checked, free; null: 24, over the bound.
    (error,) = info.value.errors
    assert error.location.stage == "t3"
    assert error.message == (
        "transform templates expand to more than 20 values in all: too many stages use "
        "transform 't' with different kwargs"
    )


# --- files: a stage reading or overwriting a file waits for the stage that wrote it ---------------


def save(label: str, frame: str, path: str) -> str:
    return stage(label, "save_csv", f"{{ filepath: '{path}', df_name: {frame} }}")


def load(label: str, frame: str, path: str) -> str:
    return stage(label, "load_csv", f"{{ filepath: '{path}', df_name: {frame} }}")


def test_files_order_stages_like_frames(write_config, tmp_path):
    config = write_config(
        {
            "p.yml": pipeline(
                load("load_a", "A", "$CONFIG_DIR/a.csv"),
                save("save_a", "A", "$OUTPUT_DIR/a.csv"),
                load("reload", "B", "${OUTPUT_DIR}/sub/../a.csv"),  # the same file
                load("other", "C", "$OUTPUT_DIR/c.csv"),
                save("save_b", "B", "$OUTPUT_DIR/a.csv"),  # overwrites it
                save("save_c", "C", "$OUTPUT_DIR/c.csv"),  # overwrites what `other` read
            ),
        }
    )
    by = load_project(config).graphs["p"].by_label
    out_a, out_c = "\0${OUTPUT_DIR}\0/a.csv", "\0${OUTPUT_DIR}\0/c.csv"
    edge = graph_module.FileEdge
    assert by["load_a"].after == () and by["save_a"].after == ()
    assert by["reload"].after == (edge("save_a", 2, (out_a,)),)  # read after write
    assert by["other"].after == ()  # nobody wrote c.csv before: it is an input
    # write after write (save_a) and write after read (reload, which also gives the frame)
    assert by["save_b"].after == (edge("save_a", 2, (out_a,)), edge("reload", 3, (out_a,)))
    assert by["save_b"].upstream == ("save_a", "reload")
    assert by["save_c"].after == (edge("other", 4, (out_c,)),)  # write after read
    assert [n.label for n in by.values() if n.signals_files] == ["save_a", "reload", "other"]
    # A lazy scan reads its file when executed: a frame read from a file that a later stage
    # overwrites is collected at once.
    assert [n.label for n in by.values() if n.materialize] == ["reload", "other"]


def test_file_edges_are_drawn(write_config):
    config = write_config(
        {
            "p.yml": pipeline(
                load("load_a", "A", "$CONFIG_DIR/a.csv"),
                save("save_a", "A", "$OUTPUT_DIR/a.csv"),
                load("reload", "B", "$OUTPUT_DIR/a.csv"),
                save("save_b", "B", "$OUTPUT_DIR/b.csv"),
            ),
        }
    )
    from capport_dagster.core.render import render_graph

    graph = load_project(config).graphs["p"]
    assert render_graph(graph, "text").splitlines()[5:8] == [
        "  [3] reload (load_csv)",
        "      after  save_a (file ${OUTPUT_DIR}/a.csv)",
        "      writes B",
    ]
    assert "  s1 -.->|file| s2" in render_graph(graph, "mermaid").splitlines()
    assert (
        '  s1 -> s2 [label="file ${OUTPUT_DIR}/a.csv", style=dashed];'
        in render_graph(graph, "dot").splitlines()
    )


def test_custom_tasks_declare_their_files(write_config):
    registry = TaskRegistry()
    registry.task(
        "export",
        reads=lambda a: [a["df"]],
        writes=lambda a: [],
        writes_files=lambda a: [a["to"]],
    )(lambda args, frames, ctx: {})
    registry.task(
        "import",
        reads=lambda a: [],
        writes=lambda a: [a["df"]],
        reads_files=lambda a: [a["from"]],
    )(lambda args, frames, ctx: {})
    config = write_config(
        {
            "p.yml": pipeline(
                stage("make", "import", "{ df: A, from: /in/a.bin }"),
                stage("out", "export", "{ df: A, to: /tmp/x.bin }"),
                stage("back", "import", "{ df: B, from: /tmp/x.bin }"),
            ),
        }
    )
    by = load_project(config, registry).graphs["p"].by_label
    assert by["back"].after == (graph_module.FileEdge("out", 2, ("/tmp/x.bin",)),)


def test_a_draft_of_a_broken_pipeline_knows_what_each_stage_reads_and_writes(write_config):
    config = write_config(
        {
            "p.yml": pipeline(
                stage("load", "load_csv", "{ filepath: a.csv, df_name: A }"),
                transform("t", "A", "B", name="nope"),
                stage("bad", "lod_csv", "{ filepath: c.csv, df_name: C }"),
                stage("save", "save_csv", "{ filepath: b.csv, df_name: B }"),
            ),
            "t.yml": TRANSFORMS,
        }
    )
    drafts = graph_module.draft_pipeline(load_config(config), "p")
    assert [(d.stage.label, d.reads, d.writes, dict(d.inputs)) for d in drafts] == [
        ("load", (), ("A",), {}),
        ("t", ("A",), ("B",), {"A": "load"}),
        ("bad", (), (), {}),
        ("save", ("B",), (), {"B": "t"}),
    ]
    assert [[p.message[:40] for p in d.problems] for d in drafts] == [
        [],
        ["unknown transform 'nope'"],
        ["unknown task 'lod_csv' - did you mean 'l"],
        [],
    ]


def _line_of(function) -> str:
    return f"test_graph.py:{function.__code__.co_firstlineno}"


def test_a_custom_tasks_mistakes_are_located_and_the_rest_is_still_checked(write_config):
    registry = TaskRegistry()

    def needs_input(args):
        return [args["input"]]

    def returns_a_string(args):
        return args["save_df"]

    registry.task("dedupe", reads=needs_input, writes=returns_a_string)(lambda a, f, c: {})
    registry.task("make", reads=lambda a: [], writes=lambda a: ["A"])(lambda a, f, c: {})
    config = write_config(
        {
            "p.yml": pipeline(
                stage("make", "make", "{}"),
                stage("dedupe", "dedupe", "{ inptu: A, save_df: CUST }"),
                stage("again", "dedupe", "{ input: A, save_df: CUST }"),
                stage("broken", "mkae", "{}"),
            )
        }
    )
    with pytest.raises(ValidationError) as info:
        load_project(config, registry)
    where = "config/p.yml:{}, pipeline 'p', stage '{}' (#{})".format
    returned = (
        f"task 'dedupe' is registered with a writes function ({_line_of(returns_a_string)})"
        " that returned the string 'CUST': it must return a list of frame names, e.g. ['CUST']"
    )
    assert [str(p) for p in info.value.problems[:3]] == [
        f"error: {where(4, 'dedupe', 2)}: args for task 'dedupe' have no key 'input' (its reads"
        f" function ({_line_of(needs_input)}) needs it)",
        f"error: {where(4, 'dedupe', 2)}: {returned}",
        f"error: {where(5, 'again', 3)}: {returned}",
    ]
    assert str(info.value.problems[3]).startswith(
        f"error: {where(6, 'broken', 4)}: unknown task 'mkae' - did you mean 'make'?"
    )


def test_every_problem_of_one_stage_is_reported(write_config):
    config = write_config(
        {
            "p.yml": pipeline(
                stage("load", "load_csv", "{ filepath: $NOPE/a.csv, df_name: A, model: m }")
            )
        }
    )
    with pytest.raises(ValidationError) as info:
        load_project(config)
    assert [p.message for p in info.value.problems] == [
        "undefined variable $NOPE in '$NOPE/a.csv' (define it in the environment; built-ins:"
        " CONFIG_DIR, OUTPUT_DIR, REF_DATE, REF_DATETIME)",
        "unknown model 'm'",
    ]


def test_an_unknown_pipeline_lists_the_pipelines(write_config):
    config = write_config({"p.yml": pipeline(stage("a", "noop", "{}"))})
    with pytest.raises(ValidationError) as info:
        load_project(config, pipelines=["q"])
    assert [p.message for p in info.value.problems] == ["unknown pipeline 'q' (pipelines: p)"]
