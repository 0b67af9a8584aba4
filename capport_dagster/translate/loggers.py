"""The file logger of SPEC 10: a capport logger entry becomes a Dagster logger for the run.

One generic Dagster logger, `capport_file`, writes to the path the run config mapping computed
from the chosen logger entry (`<output>/<file_prefix><timestamp>.log`, variables expanded for the
run). The file is opened for appending: every process of a run (the multiprocess executor starts
one per stage) and every run of the same period write to the same file without clobbering it.
"""

from __future__ import annotations

import logging
from pathlib import Path

from dagster import Field, logger

__all__ = ["FORMAT", "file_logger"]

FORMAT = "%(asctime)s %(levelname)s %(message)s"


@logger(
    config_schema={"path": Field(str), "level": Field(int)},
    description="capport logger: appends to the file its logger entry names.",
)
def file_logger(init_context):  # type: ignore[no-untyped-def]
    path = Path(init_context.logger_config["path"])
    level = init_context.logger_config["level"]
    log = logging.getLogger(f"capport.file.{path}")
    log.setLevel(level)
    log.propagate = False
    if not any(getattr(h, "baseFilename", None) == str(path) for h in log.handlers):
        path.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(path, mode="a", encoding="utf-8")
        handler.setFormatter(logging.Formatter(FORMAT))
        log.addHandler(handler)
    return log
