"""What a load gives, for `validate`: the columns of its frames before any data is read.

A load with a model gives exactly the model's columns. Without one, a file already there that no
earlier stage writes gives the columns Polars would give it, read from its header or footer
(never all of it). Anything else is unknown: the run checks it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import polars as pl

from capport_dagster.core.files.common import FileFrame, FileFrames
from capport_dagster.core.registry import SchemaContext, SchemaFn

__all__ = ["FileSchema", "file_schemas"]

#: A format's reading of a file's columns (None: it cannot tell without reading the data).
FileSchema = Callable[[FileFrame, Path], "pl.Schema | None"]


def file_schemas(scan: FileSchema) -> SchemaFn:
    """A load's hook. A file that cannot be read now is unknown, never an error: a run may find
    it mended, or made by then."""

    def output_schemas(
        args: FileFrames, inputs: Mapping[str, pl.Schema], ctx: SchemaContext
    ) -> dict[str, pl.Schema]:
        schemas: dict[str, pl.Schema] = {}
        for file in args.files:
            if file.model is not None:
                schemas[file.df_name] = file.model.schema()
                continue
            path = ctx.existing_file(file.filepath)
            if path is None:
                continue
            key = ("file schema", scan, str(path), repr(file.options))
            # Once per file and options: 100 pipelines loading one file scan it once.
            schema = ctx.cached(key, lambda file=file, path=path: _scanned(scan, file, path))
            if schema is not None:
                schemas[file.df_name] = schema
        return schemas

    return output_schemas


def _scanned(scan: FileSchema, file: FileFrame, path: Path) -> pl.Schema | None:
    try:
        return scan(file, path)
    except (pl.exceptions.PolarsError, OSError, ValueError):
        return None
