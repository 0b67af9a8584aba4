"""The file tasks: `load_csv`/`save_csv`, `load_json`/`save_json`, `load_parquet`/`save_parquet`.

One module per format; `common.py` holds their shared args and the atomic save in every write
mode (`write_modes.py`). A `filepath` is a local path or an object-store URI (`s3://bucket/key`,
`core/object_store.py`). They are registered in the default registry by `core/tasks.py`.
"""

from __future__ import annotations

from capport_dagster.core.files.common import (
    FileFrame,
    FileFrames,
    LoadEntry,
    SaveEntry,
    file_frames_parser,
    raw_names,
)
from capport_dagster.core.files.csv_files import (
    CsvLoadEntry,
    CsvSaveEntry,
    csv_schema,
    run_load_csv,
    run_save_csv,
)
from capport_dagster.core.files.json_files import (
    JsonLoadEntry,
    JsonSaveEntry,
    ndjson_schema,
    run_load_json,
    run_save_json,
)
from capport_dagster.core.files.parquet_files import (
    ParquetLoadEntry,
    ParquetSaveEntry,
    parquet_schema,
    run_load_parquet,
    run_save_parquet,
)
from capport_dagster.core.files.schemas import file_schemas
from capport_dagster.core.files.write_modes import WriteMode
from capport_dagster.core.registry import TaskRegistry, TaskSpec

__all__ = ["FileFrame", "FileFrames", "WriteMode", "raw_names", "register_file_tasks"]

_FORMATS = (
    ("csv", "CSV", CsvLoadEntry, CsvSaveEntry, run_load_csv, run_save_csv, csv_schema),
    (
        "json",
        "JSON (array or NDJSON)",
        JsonLoadEntry,
        JsonSaveEntry,
        run_load_json,
        run_save_json,
        ndjson_schema,
    ),
    (
        "parquet",
        "Parquet",
        ParquetLoadEntry,
        ParquetSaveEntry,
        run_load_parquet,
        run_save_parquet,
        parquet_schema,
    ),
)


def register_file_tasks(registry: TaskRegistry) -> TaskRegistry:
    """Register `load_<format>` and `save_<format>` for every format in `registry`."""
    for name, label, load_entry, save_entry, load, save, scan in _FORMATS:
        load_entry_t: type[LoadEntry] = load_entry
        save_entry_t: type[SaveEntry] = save_entry
        registry.register(
            TaskSpec(
                f"load_{name}",
                load,
                reads=lambda a: (),
                writes=FileFrames.names,
                parse=file_frames_parser(load_entry_t, f"load_{name}", "save_df"),
                model_frames=FileFrames.model_frames,
                reads_files=FileFrames.paths,
                output_schemas=file_schemas(scan),
                description=f"Read {label} files into frames, optionally reshaped by a model.",
            )
        )
        registry.register(
            TaskSpec(
                f"save_{name}",
                save,
                reads=FileFrames.names,
                writes=lambda a: (),
                parse=file_frames_parser(save_entry_t, f"save_{name}", "from_df"),
                salvage_reads=lambda raw: raw_names(raw, "df_name", "from_df"),
                model_frames=FileFrames.model_frames,
                writes_files=FileFrames.paths,
                description=(
                    f"Write frames to {label} files atomically (replace, append or make_next), "
                    "optionally reshaped by a model."
                ),
            )
        )
    return registry
