"""capport as a Dagster Component: a `defs.yaml` that points at a config directory.

    # src/my_project/defs/pipelines/defs.yaml
    type: capport_dagster.CapportComponent
    attributes:
      config_dir: ../../../../config      # relative to this defs.yaml's directory, or
                                          # "{{ project_root }}/config"
      translation:                        # optional
        group_name: capport
        key_prefix: [warehouse]
      task_modules: [my_project.tasks]    # optional: modules that register custom tasks

The component only wraps `load_definitions`: the definitions (jobs, assets, schedules, ...) are
exactly those `load_definitions(config_dir)` builds. `dg scaffold defs
capport_dagster.CapportComponent NAME` writes such a `defs.yaml`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import dagster as dg
from dagster.components.scaffold.scaffold import Scaffolder, ScaffoldRequest, scaffold_with
from pydantic import BaseModel, Field

from capport_dagster.core.graph import FrameVersion, PipelineGraph, StageNode
from capport_dagster.core.registry import import_task_modules
from capport_dagster.errors import CapportError
from capport_dagster.translate.build import load_definitions
from capport_dagster.translate.translator import CapportTranslator

__all__ = [
    "CapportComponent",
    "CapportComponentError",
    "CapportTranslation",
    "OverridingTranslator",
]


class CapportComponentError(Exception):
    """The component's capport config could not be loaded.

    Its text is capport's own message (every problem, each with its file, line, pipeline and
    stage) after one line naming the component; `error` is the original `CapportError`.
    """

    def __init__(self, message: str, component: str | None = None) -> None:
        self.capport_message = message
        self.component = component
        self.error: CapportError | None = None
        where = f" (component {component})" if component is not None else ""
        super().__init__(f"the capport config is invalid{where}:\n{message}")

    def __reduce__(self):
        return (self.__class__, (self.capport_message, self.component))


class OverridingTranslator(CapportTranslator):
    """A `CapportTranslator` that puts every asset in one group and prefixes every asset key."""

    def __init__(self, *, group_name: str | None = None, key_prefix: Sequence[str] = ()) -> None:
        self.group_name = group_name
        self.key_prefix = list(key_prefix)

    def get_asset_key(self, graph: PipelineGraph, version: FrameVersion) -> dg.AssetKey:
        return self._prefixed(super().get_asset_key(graph, version))

    def get_sink_asset_key(self, graph: PipelineGraph, node: StageNode) -> dg.AssetKey:
        return self._prefixed(super().get_sink_asset_key(graph, node))

    def get_group_name(self, graph: PipelineGraph) -> str:
        return self.group_name if self.group_name is not None else super().get_group_name(graph)

    def _prefixed(self, key: dg.AssetKey) -> dg.AssetKey:
        return key.with_prefix(self.key_prefix) if self.key_prefix else key


class CapportTranslation(dg.Model, dg.Resolvable):
    """How the component's definitions are named, on top of `CapportTranslator`'s defaults."""

    group_name: str | None = Field(
        default=None, description="One asset group for every asset (default: one per pipeline)."
    )
    key_prefix: list[str] = Field(
        default_factory=list, description="Prepended to every asset key, e.g. [warehouse]."
    )


class CapportScaffoldParams(BaseModel):
    config_dir: str = Field(
        default="config", description="The capport config directory, relative to the defs.yaml."
    )


class CapportScaffolder(Scaffolder[CapportScaffoldParams]):
    """Writes a `defs.yaml` whose `config_dir` is the `--config-dir` given (default `config`)."""

    @classmethod
    def get_scaffold_params(cls) -> type[CapportScaffoldParams]:
        return CapportScaffoldParams

    def scaffold(self, request: ScaffoldRequest[CapportScaffoldParams]) -> None:
        from dagster.components.component_scaffolding import scaffold_component

        params = request.params or CapportScaffoldParams()
        scaffold_component(request, {"config_dir": params.config_dir})


@scaffold_with(CapportScaffolder)
class CapportComponent(dg.Component, dg.Resolvable, dg.Model):
    """capport pipelines from a config directory, as Dagster jobs, assets and schedules.

    `config_dir` is resolved against the directory of the `defs.yaml`; the definitions are
    those of `capport_dagster.load_definitions(config_dir)`, named by a `CapportTranslator` that
    applies the optional `translation` overrides. An invalid config fails the load with
    capport's message, every problem with its file and stage.
    """

    config_dir: str = Field(
        description="The capport config directory, relative to the directory of this defs.yaml."
    )
    translation: CapportTranslation | None = Field(
        default=None, description="Optional overrides of asset group and key names."
    )
    task_modules: list[str] = Field(
        default_factory=list,
        description="Modules to import first: the custom tasks they register can be used.",
    )

    def translator(self) -> CapportTranslator:
        """The translator the overrides ask for (the default one when there are none)."""
        if self.translation is None:
            return CapportTranslator()
        return OverridingTranslator(
            group_name=self.translation.group_name, key_prefix=self.translation.key_prefix
        )

    def resolved_config_dir(self, context: dg.ComponentLoadContext) -> Path:
        """`config_dir` resolved against the directory holding this component's defs.yaml."""
        base = context.path if context.path.is_dir() else context.path.parent
        return (base / Path(self.config_dir).expanduser()).resolve()

    def build_defs(self, context: dg.ComponentLoadContext) -> dg.Definitions:
        import_task_modules(self.task_modules)
        try:
            return load_definitions(self.resolved_config_dir(context), translator=self.translator())
        except CapportError as error:
            # Dagster prints the chain of causes under its own "Error while building definitions"
            # line: this error's text is capport's message, with every file and stage location.
            # `from None` keeps the same message from being printed twice (as the cause).
            wrapped = CapportComponentError(str(error), _display_path(context.path))
            wrapped.error = error
            raise wrapped from None


def _display_path(path: Path) -> str:
    """The component's path relative to the working directory (the project root under `dg`)."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)
