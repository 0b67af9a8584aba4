"""`load_parquet` and `save_parquet`: lazy (`pl.scan_parquet`) and streaming (`sink_parquet`).

A Parquet file cannot be appended to in place (its footer describes every row group), so
`mode: append` writes the old file's rows then the frame's to the temporary file in one streaming
pass and renames it into place: the old file is read whole, never loaded into memory at once.
The frame must have the file's columns, in order, with the file's types.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import polars as pl

from capport_dagster.core.files.common import (
    Existing,
    FileFrame,
    FileFrames,
    LoadEntry,
    RunPass,
    SaveEntry,
    WriteRefused,
    file_gone,
    loadable_path,
    save_files,
)
from capport_dagster.core.files.write_modes import column_mismatch
from capport_dagster.core.models import reshape
from capport_dagster.core.object_store import ObjectStoreError, open_input
from capport_dagster.core.registry import Frame, RunContext
from capport_dagster.core.sinkpass import mark_source
from capport_dagster.core.uris import PathOrUri
from capport_dagster.errors import TaskError

__all__ = [
    "ParquetLoadEntry",
    "ParquetSaveEntry",
    "parquet_schema",
    "run_load_parquet",
    "run_save_parquet",
]

_MAGIC = b"PAR1"


class ParquetLoadEntry(LoadEntry):
    pass


class ParquetSaveEntry(SaveEntry):
    pass


def parquet_schema(file: FileFrame, path: Path) -> pl.Schema | None:
    """The columns of a Parquet file, from its footer (no row is read), for `validate`; None
    for a file that is not Parquet (the load says so when it runs)."""
    if not _is_parquet(path):
        return None
    return pl.scan_parquet(path).collect_schema()


def run_load_parquet(args: FileFrames, frames: Mapping[str, Frame], ctx: RunContext) -> dict:
    loaded: dict[str, Frame] = {}
    for file in args.files:
        path = loadable_path("load_parquet", "a Parquet file", file.filepath, ctx)
        try:
            parquet = _is_parquet(path)
        except ObjectStoreError as exc:
            raise TaskError(
                f"load_parquet: cannot read {path}: {exc.strerror}", ctx.location
            ) from exc
        if not parquet:
            # Said at the load in every mode: Polars' own words ("parquet: File out of
            # specification: ...") would come only from a sink, stages later in lazy modes.
            raise TaskError(
                f"load_parquet: {path} is not a Parquet file (it does not start and end with "
                "'PAR1'; give a Parquet file, or load it with the task of its format)",
                ctx.location,
            )
        frame = pl.scan_parquet(path)
        if file.model is not None:
            frame = reshape(frame, file.model, location=ctx.location)
        loaded[file.df_name] = mark_source(
            frame,
            ctx.location,
            f"load_parquet: {path}",
            models=() if file.model is None else (file.model,),
            reason=file_gone,
        )
    return loaded


def _is_parquet(path: PathOrUri) -> bool:
    """Whether the file (or object: two ranged reads) starts and ends with `PAR1`."""
    with open_input(path) as handle:
        head = handle.read(4)
        if head != _MAGIC:
            return False
        handle.seek(-4, 2)
        return handle.read(4) == _MAGIC


def run_save_parquet(args: FileFrames, frames: Mapping[str, Frame], ctx: RunContext) -> dict:
    return save_files("save_parquet", args, frames, ctx, _write_parquet)


def _write_parquet(
    file: FileFrame, frame: pl.LazyFrame, temporary: Path, existing: Existing | None, run: RunPass
) -> None:
    if existing is None or existing.path.stat().st_size == 0:
        run([frame.sink_parquet(temporary, lazy=True)])
        return
    shown = existing.shown
    if not _is_parquet(existing.path):
        raise WriteRefused(
            f"save_parquet: cannot append frame '{file.df_name}' to {shown}: it is not a "
            "Parquet file (save with mode: replace or make_next)"
        )
    try:
        old = pl.read_parquet_schema(existing.path)
    except pl.exceptions.PolarsError as exc:
        raise WriteRefused(
            f"save_parquet: cannot append frame '{file.df_name}' to {shown}: its schema "
            f"cannot be read ({str(exc).splitlines()[0]}; save with mode: replace or make_next)"
        ) from exc
    new = frame.collect_schema()
    problem = column_mismatch("save_parquet", file.df_name, shown, new.names(), list(old))
    if problem:
        raise WriteRefused(problem)
    for name, dtype in new.items():
        if old[name] != dtype:
            raise WriteRefused(
                f"save_parquet: cannot append frame '{file.df_name}' to {shown}: column "
                f"'{name}' is {dtype} in the frame but {old[name]} in the file (cast it, e.g. "
                "with a model, or save with mode: replace or make_next)"
            )
    run([pl.concat([pl.scan_parquet(existing.path), frame]).sink_parquet(temporary, lazy=True)])
