"""Tasks of capport this project refuses on purpose (core/unsupported.py): validate says so at
the stage, why, and what to use instead, whatever the args."""

from __future__ import annotations

import pytest

from capport_dagster.core.graph import load_project
from capport_dagster.errors import ValidationError


@pytest.mark.parametrize(
    ("task", "args", "message"),
    [
        (
            "mongo",
            "{ database: db, table: t, save_df: T }",
            "MongoDB is not supported (no MongoDB server is available to test it against, so it"
            " could not be kept working); export the collection to JSON or CSV and read it with"
            " load_json or load_csv, or copy it into PostgreSQL and read it with load_sql or"
            " postgres",
        ),
        (
            "save_clickhouse",
            "{ url: 'http://127.0.0.1:8123', table: t, df_name: T }",
            "ClickHouse is not supported (no ClickHouse server is available to test it against:"
            " the only packaged one, Debian's 18.16 of 2018, is years older than the servers"
            " capport writes to); write the frame with save_parquet and import the file with"
            " ClickHouse's own INSERT ... FORMAT Parquet",
        ),
    ],
)
def test_an_unsupported_task_is_refused_with_a_reason_and_what_to_use(
    write_config, task, args, message
):
    stage = f"{{ label: here, task: {task}, args: {args} }}"
    config = write_config({"p.yml": f"pipeline:\n  p:\n    - {stage}\n"})
    with pytest.raises(ValidationError) as info:
        load_project(config)
    assert [str(problem) for problem in info.value.errors] == [
        f"error: config/p.yml:3, pipeline 'p', stage 'here' (#1): task '{task}': {message}"
    ]
