"""Reading a config directory: merging, clashes, stages, and every problem with its location."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from types import MappingProxyType

import pytest

from capport_dagster.core import loader
from capport_dagster.core.config import SECTIONS, CapportConfig, Entry, Stage
from capport_dagster.core.loader import load_config
from capport_dagster.core.yaml_source import LocatedDict, line_of
from capport_dagster.errors import ConfigError, Location

PIPELINE = """\
pipeline:
  players:
    - label: load_ids
      task: load_csv
      args: { filepath: ids.csv, df_name: PLAYER_IDS }
    - label: done
      task: noop
"""


def make(tmp_path: Path, **files: str) -> Path:
    """A config dir with the given files; `a_yml="..."` writes `a.yml`."""
    for name, text in files.items():
        stem, _, ext = name.rpartition("_")
        (tmp_path / f"{stem}.{ext}").write_text(text, encoding="utf-8")
    return tmp_path


def problems(config: CapportConfig) -> list[tuple[Location, str]]:
    return [(p.location, p.message) for p in config.problems]


def test_public_api() -> None:
    assert set(loader.__all__) == {
        "NO_PIPELINES",
        "NO_YAML_FILES",
        "RUNNER_KEYS",
        "STAGE_KEYS",
        "config_files",
        "config_snapshot",
        "config_stamp",
        "load_config",
    }


def test_the_stamp_changes_with_what_the_loader_reads(tmp_path: Path) -> None:
    (tmp_path / "a.yml").write_text("model: {}\n")
    (tmp_path / "notes.txt").write_text("not read")
    first = loader.config_stamp(tmp_path)
    assert [name for name, _, _ in first] == ["a.yml"]
    (tmp_path / "notes.txt").write_text("still not read")
    (tmp_path / ".hidden.yml").write_text("model: {}\n")
    assert loader.config_stamp(tmp_path) == first
    os.utime(tmp_path / "a.yml", ns=(1, 1))
    assert loader.config_stamp(tmp_path) != first
    (tmp_path / "b.yaml").write_text("")
    assert [name for name, _, _ in loader.config_stamp(tmp_path)] == ["a.yml", "b.yaml"]


# --- valid ---------------------------------------------------------------------------------


def test_pipeline_and_stages(tmp_path: Path) -> None:
    config = load_config(make(tmp_path, a_yml=PIPELINE))
    file = str(tmp_path / "a.yml")
    assert config.problems == ()
    assert config.config_dir == tmp_path
    assert config.files == (tmp_path / "a.yml",)
    players = config.pipelines["players"]
    assert players.location == Location(file=file, line=2, section="pipeline", name="players")
    load_ids, done = players.stages
    assert load_ids == Stage(
        label="load_ids",
        task="load_csv",
        args={"filepath": "ids.csv", "df_name": "PLAYER_IDS"},
        location=Location(
            file=file, line=3, section="pipeline", name="players", stage="load_ids", index=1
        ),
    )
    assert isinstance(load_ids.args, LocatedDict) and line_of(load_ids.args, "filepath") == 5
    assert (done.args, done.index, done.location.line) == (None, 2, 6)


def test_sections_merge_across_files_in_name_order(tmp_path: Path) -> None:
    config = load_config(
        make(
            tmp_path,
            b_yaml="transform:\n  t2: []\nmodel:\n  m: {id: int}\n",
            a_yml=PIPELINE + "transform:\n  t1: [{drop: {x: true}}]\n",
            c_yml="",  # an empty file is fine
            d_yml="service:\n",  # and so is an empty section
        )
    )
    assert config.problems == ()
    assert [p.name for p in config.files] == ["a.yml", "b.yaml", "c.yml", "d.yml"]
    assert list(config.transforms) == ["t1", "t2"]
    assert config.transforms["t2"] == Entry(
        section="transform",
        name="t2",
        body=[],
        location=Location(file=str(tmp_path / "b.yaml"), line=2, section="transform", name="t2"),
    )
    assert config.models["m"].body == {"id": "int"}
    assert list(config.pipelines) == ["players"]


def test_mappings_are_read_only(tmp_path: Path) -> None:
    config = load_config(make(tmp_path, a_yml=PIPELINE))
    assert isinstance(config.pipelines, MappingProxyType)
    assert isinstance(config.entries, MappingProxyType)
    assert set(config.entries) == set(SECTIONS) - {"pipeline"}
    assert all(isinstance(entries, MappingProxyType) for entries in config.entries.values())


def test_only_yaml_files_directly_in_the_directory(tmp_path: Path) -> None:
    make(tmp_path, a_yml=PIPELINE, notes_txt="pipelines: oops", x_YML="nope: 1")
    (tmp_path / ".hidden.yml").write_text("bad: [", encoding="utf-8")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.yml").write_text("nope: 1\n", encoding="utf-8")
    config = load_config(tmp_path)
    assert config.problems == ()
    assert config.files == (tmp_path / "a.yml",)


def test_entries_that_cannot_be_read_are_errors_at_their_name(tmp_path: Path) -> None:
    """Not skipped: a config file that silently goes missing changes what runs. A FIFO is not
    read either (reading it would block until some writer opens it)."""
    make(tmp_path, a_yml=PIPELINE, real_yml="model: {}\n")
    (tmp_path / "dangling.yml").symlink_to(tmp_path / "gone.yml")
    (tmp_path / "loop.yaml").symlink_to(tmp_path / "loop.yaml")
    (tmp_path / "ping.yml").symlink_to(tmp_path / "pong.yml")
    (tmp_path / "pong.yml").symlink_to(tmp_path / "ping.yml")
    os.mkfifo(tmp_path / "fifo.yml")
    (tmp_path / "linked.yml").symlink_to(tmp_path / "real.yml")  # a link to a file is read
    (tmp_path / "dir.yml").mkdir()  # directories are never read (the reading is not recursive)
    config = load_config(tmp_path)
    assert [str(p) for p in config.problems] == [
        f"error: {tmp_path}/dangling.yml: the symbolic link points to {tmp_path}/gone.yml, which "
        "does not exist: fix the link or remove it",
        f"error: {tmp_path}/fifo.yml: the entry is a FIFO, not a YAML file: rename or remove it",
        f"error: {tmp_path}/loop.yaml: the symbolic link loops (loop.yaml -> {tmp_path}/loop.yaml"
        " -> ...): point it at a YAML file or remove it",
        f"error: {tmp_path}/ping.yml: the symbolic link loops (ping.yml -> {tmp_path}/pong.yml ->"
        " ...): point it at a YAML file or remove it",
        f"error: {tmp_path}/pong.yml: the symbolic link loops (pong.yml -> {tmp_path}/ping.yml ->"
        " ...): point it at a YAML file or remove it",
    ]
    assert [p.name for p in config.files] == [
        "a.yml",
        "dangling.yml",
        "fifo.yml",
        "linked.yml",
        "loop.yaml",
        "ping.yml",
        "pong.yml",
        "real.yml",
    ]
    stamp = loader.config_stamp(tmp_path)
    assert [s for s in stamp if s[1] == -1] == [
        ("dangling.yml", -1, -1),
        ("loop.yaml", -1, -1),
        ("ping.yml", -1, -1),
        ("pong.yml", -1, -1),
    ]


def test_unnamed_runner_is_default(tmp_path: Path) -> None:
    config = load_config(make(tmp_path, a_yml="runner:\n  run_with: async_eager\n"))
    assert [p.message for p in config.problems] == [loader.NO_PIPELINES]
    assert config.runners["default"] == Entry(
        section="runner",
        name="default",
        body={"run_with": "async_eager"},
        location=Location(file=str(tmp_path / "a.yml"), line=1, section="runner", name="default"),
    )


def test_named_runners(tmp_path: Path) -> None:
    text = "runner:\n  nightly: {run_with: sync_lazy}\n  hourly: {run_with: async_lazy}\n"
    config = load_config(make(tmp_path, a_yml=text))
    assert list(config.runners) == ["nightly", "hourly"]
    assert config.runners["hourly"].location.line == 3


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda d: d / "missing", "the config directory does not exist"),
        (lambda d: make(d, a_yml=PIPELINE) / "a.yml", "the config directory is not a directory"),
        (
            lambda d: make(d, a_yml=PIPELINE) / "a.yml" / "config",
            "the config directory does not exist ({d}/a.yml is a file)",
        ),
        (
            lambda d: _symlink(d / "loop", d / "loop"),
            "cannot read the config directory: too many levels of symbolic links",
        ),
    ],
)
def test_a_directory_that_cannot_be_listed_raises(tmp_path: Path, setup, message: str) -> None:
    path = setup(tmp_path)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.message == message.format(d=tmp_path)
    assert caught.value.location == Location(file=str(path))


def _symlink(link: Path, target: Path) -> Path:
    link.symlink_to(target)
    return link


def test_a_directory_without_permission_is_a_located_error(tmp_path, monkeypatch) -> None:
    """What EACCES says (root reads any directory, so the error is raised by hand here; the CLI
    test with a real unreadable directory runs when the tests do not run as root)."""

    def denied(self: Path):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "iterdir", denied)
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path)
    assert str(caught.value) == f"{tmp_path}: cannot read the config directory: permission denied"


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"a_txt": "x: 1"}, loader.NO_YAML_FILES),
        ({}, loader.NO_YAML_FILES),
        ({"a_yml": "model: {}\n"}, loader.NO_PIPELINES),
        ({"a_yml": ""}, loader.NO_PIPELINES),
    ],
)
def test_nothing_to_run_is_a_warning(tmp_path: Path, files: dict, message: str) -> None:
    config = load_config(make(tmp_path, **files))
    assert [str(p) for p in config.problems] == [f"warning: {tmp_path}: {message}"]
    assert config.pipelines == {}


def test_no_pipeline_warning_is_not_given_beside_an_error(tmp_path: Path) -> None:
    """The pipelines may be in what did not read: the error alone is reported."""
    config = load_config(make(tmp_path, a_yml="pipeline: [\n"))
    assert [p.severity for p in config.problems] == ["error"]


# --- problems ------------------------------------------------------------------------------

SECTION_LIST = "pipeline, transform, model, runner, logger, service, connection"


def test_unknown_section(tmp_path: Path) -> None:
    config = load_config(make(tmp_path, a_yml="transform: {}\npipelines:\n  p: []\nzzz: 1\n"))
    file = str(tmp_path / "a.yml")
    assert problems(config) == [
        (
            Location(file=file, line=2, section="pipelines"),
            f"unknown section 'pipelines' - did you mean 'pipeline'? (sections: {SECTION_LIST})",
        ),
        (
            Location(file=file, line=4, section="zzz"),
            f"unknown section 'zzz' (sections: {SECTION_LIST})",
        ),
    ]


def test_clash_names_both_files(tmp_path: Path) -> None:
    config = load_config(
        make(
            tmp_path,
            a_yml="model:\n  m: {}\ntransform:\n  x: []\n",
            b_yml="# b\n\n\n\n\n\ntransform:\n  x: [{drop: {y: true}}]\n",
        )
    )
    assert problems(config) == [
        (
            Location(file=str(tmp_path / "b.yml"), line=8, section="transform", name="x"),
            "transform 'x' is defined in both a.yml:4 and b.yml:8",
        )
    ]
    assert config.transforms["x"].body == []  # the first definition is kept


def test_unnamed_runner_clashes_with_named_default(tmp_path: Path) -> None:
    config = load_config(
        make(tmp_path, a_yml="runner:\n  default: {}\n", b_yml="runner:\n  pipelines: [p]\n")
    )
    assert problems(config) == [
        (
            Location(file=str(tmp_path / "b.yml"), line=1, section="runner", name="default"),
            "runner 'default' is defined in both a.yml:2 and b.yml:1",
        )
    ]


def test_file_problems_do_not_stop_the_others(tmp_path: Path) -> None:
    config = load_config(
        make(
            tmp_path,
            a_yml="pipeline:\n  p: [\n",
            b_yml="- just\n- a list\n",
            c_yml="model: {m: {id: int}}\nmodel: {n: {}}\n",
            d_yml="'plain text'\n",
            e_yml=PIPELINE,
        )
    )
    assert problems(config) == [
        (
            Location(file=str(tmp_path / "a.yml"), line=3, column=1),
            "invalid YAML: expected the node content, but found '<stream end>' "
            "(while parsing a flow node)",
        ),
        (
            Location(file=str(tmp_path / "b.yml"), line=1),
            f"the top level must be a mapping of sections ({SECTION_LIST}), not a list",
        ),
        (
            Location(file=str(tmp_path / "c.yml"), line=2, column=1),
            "duplicate key 'model' (first at line 1)",
        ),
        (
            Location(file=str(tmp_path / "d.yml")),
            f"the top level must be a mapping of sections ({SECTION_LIST}), not a string",
        ),
    ]
    assert list(config.pipelines) == ["players"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            "transform: [a, b]\n",
            [({"line": 1}, "a section must be a mapping of name -> definition, not a list")],
            id="section not a mapping",
        ),
        pytest.param(
            "model:\n  1: {}\n",
            [({"line": 2, "name": "1"}, "model names must be strings, not a number")],
            id="entry name not a string",
        ),
        pytest.param(
            "pipeline:\n  p: {label: a, task: noop}\n",
            [({"line": 2, "name": "p"}, "a pipeline must be a list of stages, not a mapping")],
            id="pipeline not a list",
        ),
        pytest.param(
            "pipeline:\n  p:\n",
            [({"line": 2, "name": "p"}, "a pipeline must be a list of stages, not null")],
            id="pipeline null",
        ),
        pytest.param(
            "pipeline:\n  p: []\n",
            [({"line": 2, "name": "p"}, "a pipeline must have at least one stage")],
            id="empty pipeline",
        ),
    ],
)
def test_section_and_pipeline_problems(tmp_path: Path, text: str, expected: list) -> None:
    config = load_config(make(tmp_path, a_yml=text))
    section = text.split(":", 1)[0]
    assert problems(config) == [
        (Location(file=str(tmp_path / "a.yml"), section=section, **where), message)
        for where, message in expected
    ]


def stage_problems(tmp_path: Path, stages: str) -> tuple[list[tuple[dict, str]], list[str]]:
    """Problems of pipeline `p` as (location fields beyond file/section/name, message)."""
    config = load_config(make(tmp_path, a_yml=f"pipeline:\n  p:\n{stages}"))
    found = []
    for location, message in problems(config):
        assert (location.file, location.section, location.name) == (
            str(tmp_path / "a.yml"),
            "pipeline",
            "p",
        )
        found.append(
            ({"line": location.line, "stage": location.stage, "index": location.index}, message)
        )
    return found, [stage.label for stage in config.pipelines["p"].stages]


@pytest.mark.parametrize(
    ("stages", "expected", "kept"),
    [
        pytest.param(
            "    - task: noop\n    - label: b\n      task: noop\n",
            [({"line": 3, "stage": None, "index": 1}, "the stage has no 'label'")],
            ["b"],
            id="missing label",
        ),
        pytest.param(
            "    - label: a\n",
            [({"line": 3, "stage": "a", "index": 1}, "the stage has no 'task'")],
            [],
            id="missing task",
        ),
        pytest.param(
            "    - label: [a]\n      task: 3\n",
            [
                ({"line": 3, "stage": None, "index": 1}, "'label' must be a string, not a list"),
                ({"line": 4, "stage": None, "index": 1}, "'task' must be a string, not a number"),
            ],
            [],
            id="not strings",
        ),
        pytest.param(
            "    - label: ''\n      task: noop\n",
            [({"line": 3, "stage": "", "index": 1}, "'label' must not be empty")],
            [],
            id="empty label",
        ),
        pytest.param(
            "    - label: load ids\n      task: noop\n",
            [],
            ["load ids"],
            id="any string is a label (mapped to a Dagster name when built)",
        ),
        pytest.param(
            "    - label: a\n      task: noop\n      arg: {x: 1}\n",
            [
                (
                    {"line": 5, "stage": "a", "index": 1},
                    "unknown stage key 'arg' - did you mean 'args'? "
                    "(stage keys: label, task, args)",
                )
            ],
            ["a"],
            id="unknown key",
        ),
        pytest.param(
            "    - label: a\n      task: noop\n    - noop\n    - label: a\n      task: noop\n",
            [
                (
                    {"line": 5, "stage": None, "index": 2},
                    "a stage must be a mapping with 'label' and 'task', not a string",
                ),
                (
                    {"line": 6, "stage": "a", "index": 3},
                    "duplicate label 'a': stages #1 and #3 share it "
                    "(labels must be unique within a pipeline)",
                ),
            ],
            # The duplicate is kept: its task and args are still checked (core/graph.py).
            ["a", "a"],
            id="duplicate label and not a mapping",
        ),
    ],
)
def test_stage_problems(
    tmp_path: Path, stages: str, expected: list[tuple[dict, str]], kept: list[str]
) -> None:
    assert stage_problems(tmp_path, stages) == (expected, kept)


def test_problem_prints_with_its_location(tmp_path: Path) -> None:
    config = load_config(make(tmp_path, a_yml="pipeline:\n  p:\n    - label: a\n"))
    (problem,) = config.problems
    assert str(problem).endswith("a.yml:3, pipeline 'p', stage 'a' (#1): the stage has no 'task'")


def test_a_snapshot_loads_as_the_directory_did_without_reading_it(tmp_path: Path) -> None:
    """A run carries the snapshot: its workers load the same config, even once the directory
    is edited or gone, and problems are located at the directory's file names as before."""
    config = tmp_path / "config"
    config.mkdir()
    (config / "a.yml").write_text("pipeline:\n  p:\n    - { label: x, task: nope }\n")
    (config / "b.yaml").write_text("\ufeffrunner:\n  r: { run_with: sync_eager }\n")
    (config / "notes.txt").write_text("not read")
    snapshot = loader.config_snapshot(config)
    assert snapshot == (
        ("a.yml", "pipeline:\n  p:\n    - { label: x, task: nope }\n"),
        ("b.yaml", "runner:\n  r: { run_with: sync_eager }\n"),
    )
    expected = loader.load_config(config)
    shutil.rmtree(config)
    loaded = loader.load_config(config, snapshot)
    assert loaded.files == expected.files == (config / "a.yml", config / "b.yaml")
    assert loaded.pipelines == expected.pipelines
    assert loaded.entries == expected.entries
    assert loaded.problems == expected.problems


def test_a_snapshot_keeps_a_files_parse_error_located(tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.mkdir()
    (config / "a.yml").write_text("pipeline: [\n")
    from_disk = loader.load_config(config).problems
    from_snapshot = loader.load_config(config, loader.config_snapshot(config)).problems
    assert from_snapshot == from_disk
    assert [p.location.file for p in from_snapshot] == [str(config / "a.yml")]


def test_a_file_that_is_not_utf8_cannot_be_snapshotted_and_says_where(tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.mkdir()
    (config / "a.yml").write_bytes(b"pipeline:\n  p: []\n# \xff\n")
    with pytest.raises(ConfigError) as raised:
        loader.config_snapshot(config)
    assert (raised.value.message, raised.value.location) == (
        "the file is not valid UTF-8",
        Location(file=str(config / "a.yml"), line=3),
    )
