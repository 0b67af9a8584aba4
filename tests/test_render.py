"""`capport graph`: text, Mermaid and dot, with any name escaped, and drafts of broken pipelines."""

from __future__ import annotations

from capport_dagster.cli import main
from capport_dagster.core.config import Stage
from capport_dagster.core.graph import DraftStage, load_project
from capport_dagster.core.names import dagster_name
from capport_dagster.core.render import render_draft, render_graph
from capport_dagster.errors import Location, Problem

#: Names holding every character the formats give a meaning: quotes, `|`, brackets, a
#: backslash, `#` and an entity-like text, HTML, and non-ASCII letters.
ODD = """
pipeline:
  'q"p\\':
    - { label: 'load "a"', task: load_csv, args: { filepath: a.csv, df_name: 'A|B' } }
    - label: 'größe [x] <b>#quot;'
      task: transform
      args: { name: t, input: 'A|B', save_df: 'C\\D' }
    - { label: 'back\\slash', task: save_csv, args: { filepath: b.csv, df_name: 'C\\D' } }
transform:
  t:
    - select: { x: }
"""


def odd_graph(write_config):
    return load_project(write_config({"p.yml": ODD})).graphs['q"p\\']


def test_dot_escapes_quotes_and_backslashes_and_keeps_utf8(write_config):
    assert render_graph(odd_graph(write_config), "dot") == (
        'digraph "q\\"p\\\\" {\n'
        "  rankdir=LR;\n"
        "  node [shape=box];\n"
        '  s0 [label="load \\"a\\"\\nload_csv"];\n'
        '  s1 [label="größe [x] <b>#quot;\\ntransform"];\n'
        '  s2 [label="back\\\\slash\\nsave_csv"];\n'
        '  s0 -> s1 [label="A|B"];\n'
        '  s1 -> s2 [label="C\\\\D"];\n'
        "}"
    )


def test_mermaid_writes_every_special_character_as_an_entity_code(write_config):
    assert render_graph(odd_graph(write_config), "mermaid") == (
        "flowchart LR\n"
        '  s0["load #34;a#34;<br/><i>load_csv</i>"]\n'
        '  s1["größe #91;x#93; #60;b#62;#35;quot#59;<br/><i>transform</i>"]\n'
        '  s2["back#92;slash<br/><i>save_csv</i>"]\n'
        "  s0 -->|A#124;B| s1\n"
        "  s1 -->|C#92;D| s2"
    )


def test_text_names_as_written(write_config):
    # The Dagster names are tested in tests/test_names.py; here, that they are shown.
    job, load, size, back = map(
        dagster_name, ('q"p\\', 'load "a"', "größe [x] <b>#quot;", "back\\slash")
    )
    assert render_graph(odd_graph(write_config), "text") == (
        f'pipeline q"p\\ (3 stages, Dagster job {job})\n'
        f'  [1] load "a" (load_csv) [op {load}]\n'
        "      writes A|B\n"
        f"  [2] größe [x] <b>#quot; (transform) [op {size}]\n"
        '      reads  A|B <- load "a"\n'
        "      writes C\\D\n"
        f"  [3] back\\slash (save_csv) [op {back}]\n"
        "      reads  C\\D <- größe [x] <b>#quot;"
    )


def test_one_stage_is_singular(write_config):
    config = write_config({"p.yml": "pipeline:\n  p:\n    - { label: a, task: noop }\n"})
    assert render_graph(load_project(config).graphs["p"], "text") == (
        "pipeline p (1 stage)\n  [1] a (noop)"
    )


# --- drafts of broken pipelines -------------------------------------------------------------

BROKEN = """
pipeline:
  p:
    - { label: load, task: load_csv, args: { filepath: a.csv, df_name: A } }
    - { label: join, task: transform, args: { name: bogus, input: A, save_df: B } }
    - { label: save, task: save_csv, args: { filepath: b.csv, df_name: B } }
  other:
    - { label: a, task: noop }
"""

BROKEN_ERRORS = (
    "error: config/p.yml:4, pipeline 'p', stage 'join' (#2): unknown transform 'bogus'\n"
    "the configuration has 1 error\n"
)


def test_graph_of_a_broken_pipeline_draws_its_draft_and_exits_2(write_config, capsys):
    write_config({"p.yml": BROKEN})
    assert main(["graph", "-c", "config", "-p", "p"]) == 2
    out, err = capsys.readouterr()
    assert err == BROKEN_ERRORS
    assert out == (
        "pipeline p (3 stages, 1 with errors, marked !)\n"
        "  [1] load (load_csv)\n"
        "      writes A\n"
        "! [2] join (transform)\n"
        "      ! unknown transform 'bogus'\n"
        "      reads  A <- load\n"
        "      writes B\n"
        "  [3] save (save_csv)\n"
        "      reads  B <- join\n"
    )


def test_graph_of_a_broken_pipeline_in_mermaid_and_dot(write_config, capsys):
    write_config({"p.yml": BROKEN})
    assert main(["graph", "-c", "config", "-p", "p", "--format", "mermaid"]) == 2
    out, err = capsys.readouterr()
    assert err == BROKEN_ERRORS
    assert out == (
        "flowchart LR\n"
        '  s0["load<br/><i>load_csv</i>"]\n'
        '  s1["join<br/><i>transform</i><br/>! unknown transform #39;bogus#39;"]\n'
        '  s2["save<br/><i>save_csv</i>"]\n'
        "  s0 -->|A| s1\n"
        "  s1 -->|B| s2\n"
        "  classDef broken stroke:#c00,stroke-width:2px,stroke-dasharray:5 5,color:#c00\n"
        "  class s1 broken\n"
    )
    assert main(["graph", "-c", "config", "-p", "p", "--format", "dot"]) == 2
    out, err = capsys.readouterr()
    assert err == BROKEN_ERRORS
    assert out == (
        'digraph "p" {\n'
        "  rankdir=LR;\n"
        "  node [shape=box];\n"
        '  s0 [label="load\\nload_csv"];\n'
        "  s1 [label=\"join\\ntransform\\n! unknown transform 'bogus'\","
        " color=red, fontcolor=red, style=dashed];\n"
        '  s2 [label="save\\nsave_csv"];\n'
        '  s0 -> s1 [label="A"];\n'
        '  s1 -> s2 [label="B"];\n'
        "}\n"
    )


def test_graph_of_a_valid_pipeline_beside_a_broken_one_draws_it(write_config, capsys):
    write_config({"p.yml": BROKEN})
    assert main(["graph", "-c", "config", "-p", "other"]) == 0
    assert capsys.readouterr() == ("pipeline other (1 stage)\n  [1] a (noop)\n", "")


def test_graph_of_an_unknown_pipeline_draws_nothing(write_config, capsys):
    write_config({"p.yml": BROKEN})
    assert main(["graph", "-c", "config", "-p", "nope"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("error: ")
    assert "unknown pipeline 'nope'" in err


def draft(label: str, index: int, writes=(), inputs=None, errors=()) -> DraftStage:
    location = Location(file="p.yml", section="pipeline", name="p", stage=label, index=index)
    return DraftStage(
        stage=Stage(label, "noop", None, location),
        reads=tuple(inputs or {}),
        writes=tuple(writes),
        inputs=dict(inputs or {}),
        problems=tuple(Problem(location, message) for message in errors),
    )


def test_a_draft_with_two_stages_of_one_label_reads_from_the_nearest_earlier():
    stages = [
        draft("a", 1, writes=["X"]),
        draft("a", 2, writes=["X"], errors=["duplicate label 'a'"]),
        draft("b", 3, inputs={"X": "a"}),
    ]
    lines = render_draft("p", stages, "dot").splitlines()
    # From the second 'a' (s1), not the first (s0).
    assert [line for line in lines if "->" in line] == ['  s1 -> s2 [label="X"];']
    assert render_draft("p", stages, "text") == (
        "pipeline p (3 stages, 1 with errors, marked !)\n"
        "  [1] a (noop)\n"
        "      writes X\n"
        "! [2] a (noop)\n"
        "      ! duplicate label 'a'\n"
        "      writes X\n"
        "  [3] b (noop)\n"
        "      reads  X <- a"
    )


def test_a_draft_shows_each_error_once_and_no_warning():
    location = Location(stage="a", index=1)
    stage = DraftStage(
        stage=Stage("a", "noop", None, location),
        reads=(),
        writes=(),
        inputs={},
        problems=(
            Problem(location, "first"),
            Problem(location, "first"),
            Problem(location, "just a warning", severity="warning"),
        ),
    )
    assert render_draft("p", [stage], "text") == (
        "pipeline p (1 stage, 1 with errors, marked !)\n! [1] a (noop)\n      ! first"
    )


def test_validate_counts_in_the_singular_and_plural(write_config, capsys):
    write_config({"p.yml": "pipeline:\n  p:\n    - { label: a, task: noop }\n"})
    assert main(["validate", "-c", "config"]) == 0
    assert capsys.readouterr() == ("valid: 1 pipeline, 1 stage in config\n", "")
    write_config({"q.yml": "pipeline:\n  q:\n    - { label: a, task: noop }\n"})
    assert main(["validate", "-c", "config"]) == 0
    assert capsys.readouterr() == ("valid: 2 pipelines, 2 stages in config\n", "")


def test_a_table_edge_says_table_not_file():
    from capport_dagster.core.graph import load_project
    from tests.conftest import EXAMPLE_CONFIG

    graph = load_project(EXAMPLE_CONFIG).graphs["formats"]
    assert (
        "      after  store_roster (tables of connection local)"
        in render_graph(graph, "text").splitlines()
    )
    assert "  s4 -.->|tables| s5" in render_graph(graph, "mermaid").splitlines()
    assert (
        '  s4 -> s5 [label="tables of connection local", style=dashed];'
        in render_graph(graph, "dot").splitlines()
    )
