"""The task registry: user tasks, isolated copies, unknown names, and the public API."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from typing import Literal

import polars as pl
import pytest
from polars.testing import assert_frame_equal
from pydantic import BaseModel, ConfigDict

import capport_dagster
from capport_dagster.core.builtin_tasks import DEFAULT_REGISTRY
from capport_dagster.core.graph import load_project
from capport_dagster.core.modes import RunMode
from capport_dagster.core.registry import RunContext, TaskRegistry, TaskSpec, import_task_modules
from capport_dagster.core.runtime import run_stage
from capport_dagster.errors import ConfigError, ValidationError
from tests.conftest import REPO, builtin_tasks

BUILTIN = ["load_csv", "noop", "save_csv", "transform"]


class ScaleArgs(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    input: str
    output: str
    factor: int = 2
    unit: Literal["EUR", "USD"] = "EUR"


def scale(args: ScaleArgs, frames, ctx):
    """Multiply the column `v` of a frame by a factor.

    The rest of the docstring is not part of the description.
    """
    frame = frames[args.input]
    return {args.output: frame.with_columns(pl.col("v") * args.factor, unit=pl.lit(args.unit))}


def register_scale(registry: TaskRegistry) -> TaskRegistry:
    registry.task("scale", reads=lambda a: [a.input], writes=lambda a: [a.output], args=ScaleArgs)(
        scale
    )
    return registry


def pipeline(*stages: str) -> str:
    return "pipeline:\n  p:\n" + "".join(f"    - {stage}\n" for stage in stages)


def errors(config, registry: TaskRegistry) -> list[str]:
    with pytest.raises(ValidationError) as info:
        load_project(config, registry)
    return [str(problem) for problem in info.value.errors]


def run_in_order(graph, mode: RunMode = RunMode.SYNC_LAZY) -> dict[str, pl.DataFrame]:
    store: dict = {}

    async def run() -> None:
        for node in graph.nodes:
            frames = {name: store[version] for name, version in node.inputs.items()}
            result = await run_stage(node, frames, RunContext(mode, {}, node.location))
            store.update({version: result.frames[version.name] for version in node.outputs})

    asyncio.run(run())
    return {v.name: store[v].lazy().collect() for v in graph.final_versions.values()}


# --- user tasks -----------------------------------------------------------------------------


def test_the_decorator_registers_a_task_with_an_args_model():
    registry = register_scale(TaskRegistry())
    spec = registry.get("scale")
    assert spec == TaskSpec(
        name="scale",
        run=scale,
        reads=spec.reads,
        writes=spec.writes,
        args_model=ScaleArgs,
        description="Multiply the column `v` of a frame by a factor.",
    )
    assert list(registry) == ["scale"]
    assert "scale" in registry


@pytest.mark.parametrize("mode", [RunMode.SYNC_LAZY, RunMode.SYNC_EAGER])
def test_a_user_task_runs_with_its_validated_args(write_config, tmp_path, mode):
    (tmp_path / "v.csv").write_text("v\n1\n2\n")
    config = write_config(
        {
            "p.yml": pipeline(
                "{ label: load, task: load_csv, args: { filepath: v.csv, df_name: V } }",
                "{ label: x3, task: scale, args: { input: V, output: W, factor: '3', unit: USD } }",
            )
        }
    )
    graph = load_project(config, register_scale(DEFAULT_REGISTRY.copy())).graphs["p"]
    node = graph.by_label["x3"]
    assert node.args == ScaleArgs(input="V", output="W", factor=3, unit="USD")
    assert (node.reads, node.writes, node.upstream) == (("V",), ("W",), ("load",))
    assert_frame_equal(
        run_in_order(graph, mode)["W"], pl.DataFrame({"v": [3, 6], "unit": ["USD", "USD"]})
    )


@pytest.mark.parametrize(
    ("args", "causes"),
    [
        (
            "{ input: V, factor: lots, unit: GBP, extra: 1 }",
            "output: field required; factor: input should be a valid integer, unable to parse "
            "string as an integer; unit: input should be 'EUR' or 'USD'; unknown key 'extra' "
            "(keys: factor, input, output, unit)",
        ),
        ("null", "input: field required; output: field required"),
        ("[V, W]", "args: input should be a valid dictionary or instance of ScaleArgs"),
    ],
)
def test_malformed_args_of_a_user_task(write_config, args, causes):
    config = write_config({"p.yml": pipeline(f"{{ label: s, task: scale, args: {args} }}")})
    assert errors(config, register_scale(DEFAULT_REGISTRY.copy())) == [
        f"error: config/p.yml:3, pipeline 'p', stage 's' (#1): malformed args for task "
        f"'scale': {causes}"
    ]


def test_the_public_decorator_registers_in_the_default_registry(write_config, monkeypatch):
    # Register for this test only: the default registry gets its specs back afterwards.
    monkeypatch.setattr(DEFAULT_REGISTRY, "_specs", dict(DEFAULT_REGISTRY._specs))

    @capport_dagster.task("make", reads=lambda a: [], writes=lambda a: [a["out"]])
    def make(args, frames, ctx):
        return {args["out"]: pl.DataFrame({"v": [args["v"]]})}

    assert DEFAULT_REGISTRY.get("make").run is make
    config = write_config({"p.yml": pipeline("{ label: m, task: make, args: { out: X, v: 7 } }")})
    assert_frame_equal(
        run_in_order(load_project(config).graphs["p"])["X"], pl.DataFrame({"v": [7]})
    )


# --- copies ---------------------------------------------------------------------------------


def test_a_copy_is_isolated_from_the_default_registry(monkeypatch):
    before = {name: DEFAULT_REGISTRY.get(name) for name in DEFAULT_REGISTRY}
    assert set(BUILTIN) <= set(before)

    copy = register_scale(DEFAULT_REGISTRY.copy())
    quiet = TaskSpec("noop", lambda a, f, c: {}, reads=lambda a: (), writes=lambda a: ())
    copy.register(quiet, replace=True)

    assert list(copy) == sorted([*before, "scale"])
    assert copy.get("noop") is quiet
    assert {name: DEFAULT_REGISTRY.get(name) for name in DEFAULT_REGISTRY} == before

    # ... and the other way round: the copy does not see later registrations in the default.
    monkeypatch.setattr(DEFAULT_REGISTRY, "_specs", dict(DEFAULT_REGISTRY._specs))
    DEFAULT_REGISTRY.task("later", reads=lambda a: (), writes=lambda a: ())(lambda a, f, c: {})
    assert "later" in DEFAULT_REGISTRY
    assert "later" not in copy


def test_registering_a_name_twice_needs_replace():
    registry = register_scale(TaskRegistry())
    with pytest.raises(ValueError) as info:
        register_scale(registry)
    assert str(info.value) == "task 'scale' is already registered (pass replace=True)"


# --- unknown tasks --------------------------------------------------------------------------


BUILTIN_LIST = builtin_tasks()
HINT = (
    " - if it is your own task, name the module that registers it: -m MODULE (capport) or "
    "$CAPPORT_TASK_MODULES (Dagster)"
)


def test_an_unknown_task_suggests_the_closest_name(write_config):
    config = write_config({"p.yml": pipeline("{ label: s, task: scael, args: { input: V } }")})
    assert errors(config, register_scale(DEFAULT_REGISTRY.copy())) == [
        "error: config/p.yml:3, pipeline 'p', stage 's' (#1): unknown task 'scael' - did you "
        f"mean 'scale'? (custom tasks: scale; built-in tasks: {BUILTIN_LIST})"
    ]


@pytest.mark.parametrize(
    ("registry", "name", "message"),
    [
        # Custom tasks registered: listed apart from the built-in ones, so a user sees whether
        # theirs arrived.
        (
            lambda: register_scale(TaskRegistry()),
            "zzz",
            "unknown task 'zzz' (custom tasks: scale; built-in tasks: none)",
        ),
        (
            lambda: register_scale(DEFAULT_REGISTRY.copy()),
            "kafka",
            f"unknown task 'kafka' (custom tasks: scale; built-in tasks: {BUILTIN_LIST})",
        ),
        # Built-in tasks only: a close name is the likely fix; else the module may be missing.
        (
            lambda: DEFAULT_REGISTRY.copy(),
            "load_cvs",
            f"unknown task 'load_cvs' - did you mean 'load_csv'? (tasks: {BUILTIN_LIST})",
        ),
        (
            lambda: DEFAULT_REGISTRY.copy(),
            "kafka",
            f"unknown task 'kafka' (tasks: {BUILTIN_LIST}){HINT}",
        ),
    ],
    ids=["custom only", "custom and built-in", "built-in typo", "built-in, not a typo"],
)
def test_an_unknown_task_says_what_may_be_missing(registry, name: str, message: str):
    with pytest.raises(ConfigError) as info:
        registry().get(name)
    assert str(info.value) == message


# --- task modules ---------------------------------------------------------------------------


@pytest.fixture
def modules_dir(tmp_path, monkeypatch):
    """The working directory, with no entry for it on sys.path (what the `capport` script's
    interpreter starts with), and imports of this test forgotten afterwards."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", ".", str(tmp_path))])
    before = set(sys.modules)
    yield tmp_path
    for name in set(sys.modules) - before:
        del sys.modules[name]


def test_a_task_module_in_the_working_directory_is_found(modules_dir):
    (modules_dir / "cwd_tasks_a.py").write_text("LOADED = True\n")
    import_task_modules(["cwd_tasks_a"])
    assert sys.modules["cwd_tasks_a"].LOADED is True
    assert sys.path[0] == str(modules_dir)
    import_task_modules(["cwd_tasks_a"])  # once on sys.path, not twice
    assert sys.path.count(str(modules_dir)) == 1


@pytest.mark.parametrize(
    ("files", "module", "message"),
    [
        (
            {"cwd_tasks_b.py": "import math\n\nX = math.sqrt(-1)\n"},
            "cwd_tasks_b",
            "cwd_tasks_b.py:3: -m cwd_tasks_b: importing the module raised ValueError: math "
            "domain error",
        ),
        (
            {"cwd_tasks_c.py": "def f(:\n    pass\n"},
            "cwd_tasks_c",
            "cwd_tasks_c.py:1: -m cwd_tasks_c: the module does not compile: invalid syntax",
        ),
        (
            {"cwd_tasks_d.py": "import no_such_dependency_of_capport\n"},
            "cwd_tasks_d",
            "cwd_tasks_d.py:1: -m cwd_tasks_d: importing the module raised ModuleNotFoundError: "
            "No module named 'no_such_dependency_of_capport'",
        ),
        (
            {"cwd_tasks_e.py": ""},
            "cwd_taks_e",
            "-m cwd_taks_e: no module named 'cwd_taks_e' in the working directory ({cwd}) or on "
            "the Python path - did you mean 'cwd_tasks_e'?",
        ),
        (
            {"cwd_pkg_f/__init__.py": ""},
            "cwd_pkg_f.tasks",
            "-m cwd_pkg_f.tasks: no module named 'cwd_pkg_f.tasks' in the working directory "
            "({cwd}) or on the Python path",
        ),
        (
            {"cwd_tasks_h.py": ""},
            "./cwd_tasks_h.py",
            "-m ./cwd_tasks_h.py: a module name is expected, not a file path ('cwd_tasks_h' for "
            "the file cwd_tasks_h.py in the working directory)",
        ),
    ],
    ids=[
        "raises",
        "does not compile",
        "imports a missing module",
        "not found",
        "not in package",
        "a file path",
    ],
)
def test_a_task_module_that_cannot_be_imported_is_a_located_error(
    modules_dir, files: dict, module: str, message: str
):
    for name, text in files.items():
        (modules_dir / name).parent.mkdir(exist_ok=True)
        (modules_dir / name).write_text(text)
    with pytest.raises(ConfigError) as info:
        import_task_modules([module])
    assert str(info.value) == message.format(cwd=modules_dir)
    # The module's own traceback is kept for --debug; a module not found has none worth showing.
    assert (info.value.__cause__ is not None) is (
        "importing the module raised" in message or "does not compile" in message
    )


def test_a_task_module_error_names_how_it_was_given(modules_dir):
    with pytest.raises(ConfigError) as info:
        import_task_modules(["cwd_nowhere_g"], given_as="$CAPPORT_TASK_MODULES module '{}'")
    assert str(info.value).startswith(
        "$CAPPORT_TASK_MODULES module 'cwd_nowhere_g': no module named 'cwd_nowhere_g'"
    )


# --- public API -----------------------------------------------------------------------------


def test_the_public_api():
    assert capport_dagster.__all__ == [
        "DEFAULT_REGISTRY",
        "CapportComponent",
        "CapportError",
        "CapportTranslator",
        "ConfigError",
        "ModelCastError",
        "PipelineGraph",
        "Project",
        "RunContext",
        "RunMode",
        "TaskError",
        "TaskRegistry",
        "TaskSpec",
        "ValidationError",
        "build_definitions",
        "load_definitions",
        "load_project",
        "task",
    ]
    for name in capport_dagster.__all__:
        assert getattr(capport_dagster, name) is not None, name
    assert capport_dagster.DEFAULT_REGISTRY is DEFAULT_REGISTRY
    assert capport_dagster.task == DEFAULT_REGISTRY.task
    assert capport_dagster.load_project is load_project
    from capport_dagster.translate.build import build_definitions, load_definitions
    from capport_dagster.translate.translator import CapportTranslator

    assert capport_dagster.build_definitions is build_definitions
    assert capport_dagster.load_definitions is load_definitions
    assert capport_dagster.CapportTranslator is CapportTranslator


def test_an_unknown_public_name_is_an_attribute_error():
    with pytest.raises(AttributeError) as info:
        capport_dagster.load_definition  # noqa: B018
    assert str(info.value) == "module 'capport_dagster' has no attribute 'load_definition'"


def test_the_core_does_not_import_dagster():
    code = (
        "import sys\n"
        "import capport_dagster, capport_dagster.core.graph, capport_dagster.core.runtime\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0].startswith('dagster')))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert result.stdout == "[]\n"
