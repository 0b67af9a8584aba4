"""The Dagster Component: `type: capport_dagster.CapportComponent` in a dg project's defs.yaml.

The `dg` tests run the `dg` of this test's own environment (installed by the `test` extra) on a
small dg project written into a temporary directory; nothing is fetched from the network.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

import capport_dagster
from capport_dagster.component import CapportComponent, CapportComponentError
from capport_dagster.errors import ValidationError

pytestmark = pytest.mark.filterwarnings("ignore::dagster.BetaWarning")

DG = Path(sys.executable).parent / "dg"
TIMEOUT = 120  # seconds, per dg command; each takes a few seconds

PIPELINE = """
pipeline:
  copy_rows:
    - label: load
      task: load_csv
      args: { filepath: $CONFIG_DIR/data/rows.csv, df_name: ROWS }
    - label: double
      task: demo_double
      args: { input: ROWS, save_df: DOUBLED }
    - label: save
      task: save_csv
      args: { filepath: $OUTPUT_DIR/doubled.csv, df_name: DOUBLED }
"""

# Stage 'x' (#1, line 6) names a task nobody registered.
BROKEN_PIPELINE = """
pipeline:
  copy_rows:
    - label: load
      task: load_csv
      args: { filepath: $CONFIG_DIR/data/rows.csv, df_name: ROWS }
    - label: x
      task: no_such_task
      args: { input: ROWS, save_df: OUT }
"""

# A custom task, registered by a module the component imports (`task_modules`); it only ever
# runs in the `dg` subprocess, so this test process's default registry stays as it is.
TASKS_MODULE = """
import polars as pl

from capport_dagster import task


@task("demo_double", reads=lambda a: [a["input"]], writes=lambda a: [a["save_df"]])
def demo_double(args, frames, ctx):
    return {args["save_df"]: frames[args["input"]].with_columns(pl.col("a") * 2)}
"""

DEFINITIONS_MODULE = """
from pathlib import Path

import dagster as dg


@dg.definitions
def defs():
    return dg.load_from_defs_folder(path_within_project=Path(__file__).parent)
"""

PYPROJECT = """
[project]
name = "demo"
version = "0.1.0"
requires-python = ">=3.11"
dependencies = ["capport-dagster"]

[tool.dg]
directory_type = "project"

[tool.dg.project]
root_module = "demo"
"""


def write_config(directory: Path, pipeline: str) -> Path:
    (directory / "data").mkdir(parents=True)
    (directory / "data" / "rows.csv").write_text("a,b\n1,x\n2,y\n")
    (directory / "pipeline.yml").write_text(textwrap.dedent(pipeline).lstrip("\n"))
    return directory


def write_project(root: Path) -> Path:
    """A minimal dg project (what `create-dagster project` makes, without its .venv): the
    pyproject with `[tool.dg]`, `src/demo/definitions.py` loading the `defs` folder."""
    (root / "src" / "demo" / "defs").mkdir(parents=True)
    (root / "pyproject.toml").write_text(PYPROJECT.lstrip("\n"))
    (root / "src" / "demo" / "__init__.py").write_text("")
    (root / "src" / "demo" / "defs" / "__init__.py").write_text("")
    (root / "src" / "demo" / "definitions.py").write_text(DEFINITIONS_MODULE.lstrip("\n"))
    (root / "src" / "demo" / "tasks.py").write_text(TASKS_MODULE.lstrip("\n"))
    return root


def write_defs_yaml(project: Path, name: str, attributes: dict) -> Path:
    path = project / "src" / "demo" / "defs" / name / "defs.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {"type": "capport_dagster.CapportComponent", "attributes": attributes}
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def dg(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run this environment's `dg` in `project`; stdout and stderr without colour codes."""
    if not DG.exists():
        pytest.fail(f"{DG} is missing: install the test extra (pip install -e '.[test]')")
    env = {**os.environ, "NO_COLOR": "1"}
    # `dg list defs` imports the project's module; the project is not installed, so put its
    # source directory on the path (`dg check defs` does the same through its workspace).
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(project / "src"), env.get("PYTHONPATH")) if p
    )
    env.pop("DAGSTER_HOME", None)  # a temporary instance: write nothing outside tmp_path
    out = subprocess.run(
        [str(DG), *args],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    out.stdout = _ANSI.sub("", out.stdout)
    out.stderr = _ANSI.sub("", out.stderr)
    return out


def test_capport_component_is_a_lazy_public_name():
    assert capport_dagster.CapportComponent is CapportComponent
    # `dg list components` finds components through `dir()` of the registry module.
    assert "CapportComponent" in dir(capport_dagster)


def test_dg_lists_the_component(tmp_path):
    project = write_project(tmp_path / "demo")
    out = dg(project, "list", "components", "--json")
    assert out.returncode == 0, out.stderr
    items = {item["key"]: item["summary"] for item in json.loads(out.stdout)["items"]}
    assert "capport_dagster.CapportComponent" in items, items
    assert items["capport_dagster.CapportComponent"].startswith("capport pipelines")


def test_dg_scaffolds_the_component_and_loads_its_config_dir(tmp_path):
    project = write_project(tmp_path / "demo")
    write_config(project / "config", PIPELINE)

    out = dg(
        project,
        "scaffold",
        "defs",
        "capport_dagster.CapportComponent",
        "pipelines",
        "--config-dir",
        "../../../../config",
    )
    assert out.returncode == 0, out.stdout + out.stderr
    defs_yaml = project / "src" / "demo" / "defs" / "pipelines" / "defs.yaml"
    document = yaml.safe_load(defs_yaml.read_text())
    assert document == {
        "type": "capport_dagster.CapportComponent",
        "attributes": {"config_dir": "../../../../config"},
    }
    # The config uses a custom task: the component imports the module registering it.
    document["attributes"]["task_modules"] = ["demo.tasks"]
    defs_yaml.write_text(yaml.safe_dump(document, sort_keys=False))

    out = dg(project, "check", "defs")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "All definitions loaded successfully." in out.stdout

    out = dg(project, "list", "defs", "--json")
    assert out.returncode == 0, out.stdout + out.stderr
    listed = json.loads(out.stdout)
    assert "copy_rows" in [job["name"] for job in listed["jobs"]]
    assets = {asset["asset_key"]: asset for asset in listed["assets"]}
    # Default names without `translation`: keys under the pipeline, a group per pipeline.
    assert "copy_rows/DOUBLED" in assets, sorted(assets)
    assert {asset["group_name"] for asset in assets.values()} == {"copy_rows"}


def test_an_invalid_config_fails_dg_check_defs_with_capport_locations(tmp_path):
    project = write_project(tmp_path / "demo")
    write_config(project / "broken", BROKEN_PIPELINE)
    write_defs_yaml(project, "pipelines", {"config_dir": "../../../../broken"})

    out = dg(project, "check", "defs")
    output = out.stdout + out.stderr
    assert out.returncode == 1, output
    # capport's own message, located: file and line, pipeline, stage label and index.
    assert (
        "broken/pipeline.yml:6, pipeline 'copy_rows', stage 'x' (#2): "
        "unknown task 'no_such_task'" in output
    ), output
    assert "the capport config is invalid (component src/demo/defs/pipelines)" in output


# In process, through Dagster's own component sandbox: faster than `dg`, and the definitions
# can be inspected directly.


def build_in_sandbox(attributes: dict, pipeline: str):
    from dagster.components.testing import create_defs_folder_sandbox

    with create_defs_folder_sandbox() as sandbox:
        write_config(sandbox.project_root / "config", pipeline)
        defs_path = sandbox.scaffold_component(
            component_cls=CapportComponent,
            defs_path="pipelines",
            defs_yaml_contents={
                "type": "capport_dagster.CapportComponent",
                "attributes": {"config_dir": "../../../../config", **attributes},
            },
        )
        with sandbox.load_component_and_build_defs(defs_path=defs_path) as (component, defs):
            return component, defs


# Built-in tasks only: the in-process tests never register a task.
BUILTIN_PIPELINE = """
pipeline:
  copy_rows:
    - label: load
      task: load_csv
      args: { filepath: $CONFIG_DIR/data/rows.csv, df_name: ROWS }
    - label: save
      task: save_csv
      args: { filepath: $OUTPUT_DIR/rows.csv, df_name: ROWS }
"""


def asset_specs(defs) -> dict[str, str | None]:
    """Asset key (user string) -> group name, for every asset of `defs`."""
    return {
        spec.key.to_user_string(): spec.group_name
        for assets in defs.assets or []
        for spec in assets.specs
    }


def test_translation_overrides_group_and_key_prefix():
    _, plain = build_in_sandbox({}, BUILTIN_PIPELINE)
    component, translated = build_in_sandbox(
        {"translation": {"group_name": "capport", "key_prefix": ["warehouse", "raw"]}},
        BUILTIN_PIPELINE,
    )
    assert isinstance(component, CapportComponent)
    assert component.translation is not None
    assert component.translation.key_prefix == ["warehouse", "raw"]

    default, overridden = asset_specs(plain), asset_specs(translated)
    assert default, "the asset view should give the pipeline's frames as assets"
    assert "copy_rows/ROWS" in default, default
    assert set(overridden) == {f"warehouse/raw/{key}" for key in default}
    assert set(default.values()) == {"copy_rows"}  # one group per pipeline by default
    assert set(overridden.values()) == {"capport"}
    # Jobs keep their names: the overrides are about assets only.
    assert translated.get_job_def("copy_rows") is not None


def test_key_prefix_alone_keeps_the_default_groups():
    _, defs = build_in_sandbox({"translation": {"key_prefix": ["warehouse"]}}, BUILTIN_PIPELINE)
    specs = asset_specs(defs)
    assert specs
    assert all(key.startswith("warehouse/copy_rows/") for key in specs), specs
    assert set(specs.values()) == {"copy_rows"}


def test_an_invalid_config_raises_the_capport_message_in_process():
    with pytest.raises(Exception) as info:
        build_in_sandbox({}, BROKEN_PIPELINE)
    error = info.value
    while error is not None and not isinstance(error, CapportComponentError):
        error = error.__cause__
    assert isinstance(error, CapportComponentError), info.value
    assert isinstance(error.error, ValidationError)
    assert "pipeline 'copy_rows', stage 'x' (#2): unknown task 'no_such_task'" in str(error)
    assert "pipeline.yml:6" in str(error)
