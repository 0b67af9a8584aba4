"""capport names in Dagster: mapped to valid names, clashes found by `validate`, not by Dagster."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from dagster._core.definitions.utils import DISALLOWED_NAMES, VALID_NAME_REGEX_STR
from hypothesis import given
from hypothesis import strategies as st

from capport_dagster import load_definitions
from capport_dagster.core import names
from capport_dagster.core.graph import load_project
from capport_dagster.core.names import (
    DAGSTER_RESERVED,
    asset_key_part,
    dagster_name,
    is_valid_dagster_name,
)
from capport_dagster.errors import ValidationError
from tests.conftest import REPO


def test_public_api() -> None:
    assert set(names.__all__) == {
        "DAGSTER_RESERVED",
        "FILES_READY",
        "FILES_WRITTEN",
        "DagsterNaming",
        "asset_key_part",
        "dagster_name",
        "dagster_name_problems",
        "is_valid_dagster_name",
    }


def test_the_rules_are_dagsters_own() -> None:
    assert DAGSTER_RESERVED == DISALLOWED_NAMES
    assert names._VALID.pattern == VALID_NAME_REGEX_STR


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("enrich_events", "enrich_events"),
        ("nhl-daily", "nhl_daily"),
        ("fetch.players", "fetch_players"),
        ("load data", "load_data"),
        ("meta", "meta_"),
        ("input", "input_"),
        ("context", "context_"),
        ("class", "class_"),
        ("None", "None_"),
        ("données", "donnees"),
        ("日本", "u65e5u672c"),
        ("2024_report", "_2024_report"),
        ("", "_"),
        ("a/b\\c", "a_b_c"),
    ],
)
def test_dagster_name(name: str, expected: str) -> None:
    assert dagster_name(name) == expected


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("nhl-daily", "nhl-daily"),
        ("v1.2", "v1.2"),
        ("meta", "meta"),
        ("load data", "load_data"),
        ("日本", "u65e5u672c"),
        ("", "_"),
    ],
)
def test_asset_key_part(name: str, expected: str) -> None:
    assert asset_key_part(name) == expected


@given(st.text(max_size=30))
def test_every_name_maps_to_a_valid_name_and_mapping_twice_changes_nothing(name: str) -> None:
    mapped = dagster_name(name)
    assert is_valid_dagster_name(mapped)
    assert dagster_name(mapped) == mapped


def problems(config_dir: Path) -> list[str]:
    with pytest.raises(ValidationError) as caught:
        load_project(config_dir)
    return [str(problem) for problem in caught.value.problems]


RULE = "(Dagster names allow only letters, digits and _)"


def test_pipelines_becoming_the_same_job_are_reported(write_config) -> None:
    config = write_config(
        {
            "p.yml": """
            pipeline:
              a-b: [{label: s, task: noop}]
              a_b: [{label: s, task: noop}]
              x: [{label: s, task: noop}]
              x__assets: [{label: s, task: noop}]
            """
        }
    )
    assert problems(config) == [
        "error: config/p.yml:3, pipeline 'a_b': pipeline 'a_b' and pipeline 'a-b' both become"
        f" Dagster job 'a_b' {RULE}: rename one",
        "error: config/p.yml:5, pipeline 'x__assets': pipeline 'x__assets' and the asset job of"
        " pipeline 'x' both become Dagster job 'x__assets': rename one",
    ]


def test_stages_and_frames_becoming_the_same_name_are_reported(write_config) -> None:
    config = write_config(
        {
            "p.yml": """
            pipeline:
              p:
                - label: both
                  task: load_csv
                  args:
                    - { filepath: x.csv, df_name: f-1 }
                    - { filepath: y.csv, df_name: f_1 }
                - { label: save-it, task: save_csv, args: { filepath: o.csv, df_name: f-1 } }
                - { label: save_it, task: save_csv, args: { filepath: p.csv, df_name: f_1 } }
            """
        }
    )
    assert problems(config) == [
        "error: config/p.yml:3, pipeline 'p', stage 'both' (#1): frame 'f_1' and frame 'f-1'"
        f" both become Dagster output 'f_1' of op 'both' {RULE}: rename one",
        "error: config/p.yml:9, pipeline 'p', stage 'save_it' (#3): stage 'save_it' and stage"
        f" 'save-it' both become Dagster op 'save_it' of job 'p' {RULE}: rename one",
    ]


def test_op_definitions_of_two_pipelines_must_differ(write_config) -> None:
    # Op definitions are named `<job>__<op>` across the code location.
    config = write_config(
        {
            "p.yml": """
            pipeline:
              a__b: [{label: c, task: noop}]
              a: [{label: b__c, task: noop}]
            """
        }
    )
    assert problems(config) == [
        "error: config/p.yml:3, pipeline 'a', stage 'b__c' (#1): pipeline 'a' stage 'b__c' and"
        " pipeline 'a__b' stage 'c' both become Dagster op definition 'a__b__c': rename one",
        "error: config/p.yml:3, pipeline 'a', stage 'b__c' (#1): the asset op of pipeline 'a'"
        " stage 'b__c' and the asset op of pipeline 'a__b' stage 'c' both become Dagster op"
        " definition 'a__b__c__assets': rename one",
    ]


def test_asset_keys_and_checks_must_differ(write_config) -> None:
    config = write_config(
        {
            "p.yml": """
            pipeline:
              p:
                - { label: load, task: load_csv, args: { filepath: x.csv, df_name: report } }
                - label: report
                  task: save_csv
                  args: { filepath: o.csv, df_name: report, model: m }
            model:
              m:
                a-b: { dtype: int, constraints: [unique] }
                a_b: { dtype: int, constraints: [unique] }
            """
        }
    )
    assert problems(config) == [
        "error: config/p.yml:4, pipeline 'p', stage 'report' (#2): the asset key p/report of its"
        " output is also the asset key of frame 'report' of stage 'load' (#1): rename the stage"
        " or the frame",
        "error: config/p.yml:4, pipeline 'p', stage 'report' (#2): the unique check of model 'm'"
        " column 'a_b' and the unique check of model 'm' column 'a-b' both become Dagster asset"
        f" check 'm__a_b__unique' {RULE}: rename one",
    ]


def test_schedules_must_differ(write_config) -> None:
    config = write_config(
        {
            "p.yml": """
            pipeline:
              a: [{label: s, task: noop}]
              a__r: [{label: s, task: noop}]
            runner:
              r: { pipelines: [a__r], schedule: { every: 1d } }
              r__r: { pipelines: [a], schedule: { every: 1d } }
            """
        }
    )
    assert problems(config) == [
        "error: config/p.yml:6, runner 'r__r' (used by pipeline 'a'): the schedule of runner"
        " 'r__r' for pipeline 'a' and the schedule of runner 'r' for pipeline 'a__r' both"
        " become Dagster schedule 'a__r__r': rename one",
    ]


ODD_NAMES = """
pipeline:
  meta:
    - { label: load data, task: load_csv, args: { filepath: in.csv, df_name: input } }
    - { label: fetch-players, task: transform, args: { name: t, input: input, save_df: class } }
    - { label: données, task: save_csv, args: { filepath: $OUTPUT_DIR/o.csv, df_name: class } }
  nhl-daily:
    - { label: load.data, task: load_csv, args: { filepath: in.csv, df_name: 日本 } }
    - { label: context, task: save_csv, args: { filepath: $OUTPUT_DIR/n.csv, df_name: 日本 } }
transform:
  t:
    - select: { id: null, context: name }
runner:
  daily: { pipelines: [nhl-daily], schedule: { every: 1d } }
"""


def test_odd_names_build_definitions_with_the_originals_in_tags(write_config) -> None:
    defs = load_definitions(write_config({"p.yml": ODD_NAMES}))
    job = defs.resolve_job_def("meta_")
    assert job.tags["capport/pipeline"] == "meta"
    assert sorted(n.name for n in job.graph.nodes) == ["donnees", "fetch_players", "load_data"]
    fetch = job.graph.node_named("fetch_players")
    assert fetch.definition.tags["capport/stage"] == "fetch-players"
    assert list(fetch.definition.input_dict) == ["input_"]
    assert list(fetch.definition.output_dict) == ["class_"]
    assert defs.resolve_job_def("nhl_daily__assets") is not None
    assert defs.resolve_schedule_def("nhl_daily__daily") is not None
    keys = {key.to_user_string() for key in defs.resolve_all_asset_keys()}
    assert keys == {
        "meta/input",
        "meta/class",
        "meta/donnees",
        "nhl-daily/u65e5u672c",
        "nhl-daily/context",
    }


def test_odd_names_load_in_dagster_definitions_validate(write_config, tmp_path) -> None:
    config = write_config({"p.yml": ODD_NAMES})
    env = {**os.environ, "CAPPORT_CONFIG_DIR": str(config), "DAGSTER_HOME": str(tmp_path)}
    done = subprocess.run(
        [
            str(Path(sys.executable).parent / "dagster"),
            "definitions",
            "validate",
            "-m",
            "capport_dagster.definitions",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "Validation successful" in done.stdout + done.stderr


def test_checks_of_two_frames_must_not_clash_in_their_op(write_config) -> None:
    # Dagster names a check's output after its asset key with `-` and `.` replaced by `_`:
    # frames `a-b` and `a.b` of one stage clash there, besides as op outputs (reported once).
    config = write_config(
        {
            "p.yml": """
            pipeline:
              p:
                - label: load
                  task: load_csv
                  args:
                    - { filepath: x.csv, df_name: a-b, model: m }
                    - { filepath: y.csv, df_name: a.b, model: m }
                - { label: save, task: save_csv, args: { filepath: o.csv, df_name: a-b } }
                - { label: save2, task: save_csv, args: { filepath: o2.csv, df_name: a.b } }
            model:
              m:
                c: { dtype: int, constraints: [unique] }
            """
        }
    )
    assert problems(config) == [
        "error: config/p.yml:3, pipeline 'p', stage 'load' (#1): frame 'a.b' and frame 'a-b'"
        f" both become Dagster output 'a_b' of op 'load' {RULE}: rename one",
    ]


@pytest.mark.parametrize("executor", ["in_process", "multiprocess"])
def test_odd_names_run_in_every_mode_and_executor(write_config, tmp_path, executor) -> None:
    from dagster import DagsterInstance

    from tests.test_jobs import MODES, run_job

    config = write_config({"p.yml": ODD_NAMES})
    (tmp_path / "in.csv").write_text("id,name\n1,Ann\n2,Bob\n")  # relative: the run's directory
    (tmp_path / "home").mkdir()
    with DagsterInstance.local_temp(str(tmp_path / "home")) as instance:
        for mode in MODES:
            for pipeline, output in (("meta", "o.csv"), ("nhl-daily", "n.csv")):
                out = tmp_path / executor / mode
                result = run_job(
                    config, pipeline, instance, mode=mode, executor=executor, output_dir=str(out)
                )
                assert result.success, (pipeline, mode)
                header = "id,context" if pipeline == "meta" else "id,name"
                assert (out / output).read_text() == f"{header}\n1,Ann\n2,Bob\n"


def test_a_translator_subclasss_names_are_checked_when_definitions_are_built(write_config):
    from capport_dagster import CapportTranslator

    class OneName(CapportTranslator):
        def get_op_name(self, node):
            return "step"

    config = write_config(
        {"p.yml": "pipeline:\n  p: [{label: a, task: noop}, {label: b, task: noop}]\n"}
    )
    with pytest.raises(ValidationError) as caught:
        load_definitions(config, translator=OneName())
    assert [str(p) for p in caught.value.problems] == [
        "error: config/p.yml:2, pipeline 'p', stage 'b' (#2): stage 'b' and stage 'a' both become"
        f" Dagster op 'step' of job 'p' {RULE}: rename one",
    ]
