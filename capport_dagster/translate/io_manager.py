"""Where frames live between stages: in memory, or as Parquet when stages run in processes.

In-process runs (sync and asyncio executors) pass the very frame objects along, so a LazyFrame
stays a plan and Polars optimises across stages. Under the multiprocess executor each stage is a
process, so frames are persisted by dagster-polars' Parquet IO manager: DataFrames are written,
LazyFrames are *sunk* (streamed, never collected in Python) and inputs are always *scanned*
lazily; the op then gives the task the mode's form.

dagster-polars (with pyarrow and numpy behind it: ~0.4 s) is imported only by runs that persist;
an in-memory run never pays for it.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

import polars as pl
from dagster import (
    Field,
    InitResourceContext,
    InputContext,
    IOManager,
    Noneable,
    OutputContext,
    io_manager,
)

from capport_dagster.core.runtime import frame_failure

if TYPE_CHECKING:
    from dagster_polars import PolarsParquetIOManager

__all__ = ["CapportIOManager", "capport_io_manager"]


class CapportIOManager(IOManager):
    """Frames in memory (`persist: false`, the default) or as Parquet under `base_dir`."""

    def __init__(self, *, persist: bool, base_dir: str | None) -> None:
        self.persist = persist
        self.base_dir = base_dir
        self._frames: dict[tuple[str, ...], Any] = {}
        self._parquet: PolarsParquetIOManager | None = None

    def setup_for_execution(self, context: InitResourceContext) -> None:
        if self.persist:
            parquet = _parquet_frames()(base_dir=self.base_dir)
            parquet.setup_for_execution(context)
            self._parquet = parquet

    def handle_output(self, context: OutputContext, obj: Any) -> None:
        if self._parquet is None:
            self._frames[tuple(context.get_identifier())] = obj
            return
        try:
            self._parquet.handle_output(context, obj)
        except Exception as exc:
            # Sinking a lazy frame runs its plan: a failure here is the stage's failure.
            failure = frame_failure(exc, obj)
            if failure is None:
                raise
            raise failure from failure.__cause__  # None when it quoted a secret

    def load_input(self, context: InputContext) -> Any:
        if self._parquet is not None:
            return self._parquet.load_input(context)
        upstream = context.upstream_output
        assert upstream is not None
        return self._frames[tuple(upstream.get_identifier())]


@io_manager(
    config_schema={
        "persist": Field(bool, default_value=False, is_required=False),
        "base_dir": Field(
            Noneable(str),
            default_value=None,
            is_required=False,
            description="where persisted frames go (default: the instance's storage)",
        ),
    },
    description="capport's frames: in memory, or as Parquet when stages run in processes.",
)
def capport_io_manager(context: InitResourceContext) -> CapportIOManager:
    """A function IO manager, not a `ConfigurableIOManager`, for the reason of
    `capport_run_resource`: no schema inferred again at every run."""
    manager = CapportIOManager(**context.resource_config)
    manager.setup_for_execution(context)
    return manager


@functools.cache
def _parquet_frames() -> type[PolarsParquetIOManager]:
    from dagster_polars import PolarsParquetIOManager

    class ParquetFrames(PolarsParquetIOManager):
        """dagster-polars' Parquet IO manager, sinking lazy frames instead of collecting them."""

        def dump_to_path(self, context: OutputContext, obj: Any, path: Any) -> None:
            if isinstance(obj, pl.LazyFrame):
                self.sink_df_to_path(context, obj, path)
            else:
                self.write_df_to_path(context, obj, path)

        def load_from_path(self, context: InputContext, path: Any) -> pl.LazyFrame:
            if not path.exists():
                raise FileNotFoundError(f"persisted frame {path} does not exist")
            return self.scan_df_from_path(path, context)

        def get_metadata(self, context: OutputContext, obj: Any) -> dict:
            # The op already attaches row count, schema and preview, without collecting.
            return {}

    return ParquetFrames
