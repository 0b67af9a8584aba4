"""Column paths: dots into struct fields, `\\.` for a dot in a name, checked against a schema."""

from __future__ import annotations

import polars as pl
import pytest

from capport_dagster.core.paths import check_path, escape_name, path_error, split_path

SCHEMA = pl.Schema(
    {
        "team": pl.String,
        "stats.goals": pl.Int64,
        "name": pl.Struct({"first": pl.String, "full.name": pl.String}),
        "info": pl.Struct({"bio": pl.Struct({"age": pl.Int64})}),
    }
)


@pytest.mark.parametrize(
    ("path", "segments"),
    [
        ("team", ("team",)),
        ("info.bio.age", ("info", "bio", "age")),
        ("stats\\.goals", ("stats.goals",)),
        ("name.full\\.name", ("name", "full.name")),
        ("a\\\\b", ("a\\b",)),
        ("a\\\\.b", ("a\\", "b")),
    ],
)
def test_split_path_resolves_escapes(path: str, segments: tuple[str, ...]) -> None:
    assert path_error(path) is None
    assert split_path(path) == segments
    assert ".".join(escape_name(s) for s in segments) == path


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("", "column path '' is empty"),
        ("a..b", "column path 'a..b' has an empty part"),
        (".a", "column path '.a' has an empty part"),
        ("a.", "column path 'a.' has an empty part"),
        (
            "a\\b",
            "column path 'a\\b': '\\b' at character 2: a backslash escapes a dot (\\.) or a"
            " backslash (\\\\) in a column name",
        ),
        (
            "a\\",
            "column path 'a\\' ends with a lone backslash: a backslash escapes a dot (\\.) or a"
            " backslash (\\\\) in a column name",
        ),
    ],
)
def test_path_errors(path: str, message: str) -> None:
    assert path_error(path) == message


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("team", None),
        ("stats\\.goals", None),
        ("name.full\\.name", None),
        ("info.bio.age", None),
        (
            "team.name",
            "column path 'team.name': 'team' is String, not a struct, so it has no field 'name'",
        ),
        (
            "info.bio.age.x",
            "column path 'info.bio.age.x': 'info.bio.age' is Int64, not a struct, so it has no"
            " field 'x'",
        ),
        (
            "name.frist",
            "column path 'name.frist': struct 'name' has no field 'frist' - did you mean"
            " 'first'? (fields: first, full\\.name)",
        ),
        (
            "info.job",
            "column path 'info.job': struct 'info' has no field 'job' (fields: bio)",
        ),
        (
            "teem",
            "column 'teem' not found - did you mean 'team'? (columns: team, stats\\.goals, name,"
            " info)",
        ),
        # The header `stats.goals` typed as it reads: the escape is the hint, not a
        # did-you-mean repeating the text typed.
        (
            "stats.goals",
            "column 'stats' not found (columns: team, stats\\.goals, name, info); to read the"
            " column 'stats.goals', escape its dot: stats\\.goals (a dot goes into a struct"
            " field)",
        ),
    ],
)
def test_check_path_against_a_schema(path: str, message: str | None) -> None:
    assert check_path(path, SCHEMA) == message


def test_an_unknown_type_is_checked_as_far_as_the_column() -> None:
    assert check_path("a.b.c", {"a": None}) is None
    assert check_path("b.c", {"a": None}) == "column 'b' not found (columns: a)"
