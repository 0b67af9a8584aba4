"""Object-store URIs (`s3://bucket/key`): where data and persisted frames may live besides
local paths. Polars reads and writes them itself (credentials from the environment: `AWS_*`,
`GOOGLE_*`, `AZURE_*`), dagster-polars persists frames there through universal-pathlib, and the
file tasks reach them through `core/object_store.py`.

A URI is kept as a string everywhere: `pathlib.Path` would fold its `//` (`s3:/bucket/key`)
and resolve it against the working directory, so a path-or-URI is `Path | str` (`PathOrUri`).
"""

from __future__ import annotations

import posixpath
from pathlib import Path
from typing import TypeAlias

__all__ = [
    "OBJECT_STORE_SCHEMES",
    "PathOrUri",
    "basename",
    "bucket_of",
    "is_uri",
    "key_of",
    "normalize_uri",
    "scheme_of",
    "with_basename",
]

#: The object stores Polars and fsspec both know, by the schemes users write.
OBJECT_STORE_SCHEMES = frozenset({"s3", "s3a", "gs", "gcs", "az", "azure", "abfs", "abfss", "adl"})

#: A local file (absolute `Path`) or an object-store URI (`str`, `s3://bucket/key`).
PathOrUri: TypeAlias = Path | str


def scheme_of(location: str) -> str | None:
    """`s3` for `s3://bucket/key`, None for a local path (`C:/x` and `./a:b` included)."""
    scheme, sep, _ = location.partition("://")
    if not sep or not scheme.replace("+", "").replace("-", "").replace(".", "").isalnum():
        return None
    return scheme.lower()


def is_uri(location: str) -> bool:
    """True for an object-store URI (a scheme in OBJECT_STORE_SCHEMES)."""
    return scheme_of(location) in OBJECT_STORE_SCHEMES


def _parts(uri: str) -> tuple[str, str, str]:
    scheme, _, rest = uri.partition("://")
    bucket, _, key = rest.partition("/")
    return scheme, bucket, key


def bucket_of(uri: str) -> str:
    """`bucket` for `s3://bucket/a/b.csv` (the container, for Azure)."""
    return _parts(uri)[1]


def key_of(uri: str) -> str:
    """`a/b.csv` for `s3://bucket/a/b.csv`; empty for a URI naming a bucket only."""
    return _parts(uri)[2]


def basename(uri: str) -> str:
    """`b.csv` for `s3://bucket/a/b.csv`."""
    return key_of(uri).rpartition("/")[2]


def with_basename(uri: str, name: str) -> str:
    """`s3://bucket/a/c.csv` for (`s3://bucket/a/b.csv`, `c.csv`): a sibling object."""
    head, sep, _ = uri.rpartition("/")
    return f"{head}{sep}{name}"


def normalize_uri(uri: str) -> str:
    """The URI as the object store names it: the scheme in lower case, and the key normalized as
    a local path would be (`$OUTPUT_DIR/b.csv` with `OUTPUT_DIR=s3://bucket/out/` is
    `s3://bucket/out/b.csv`, not the distinct key `out//b.csv`; `.` and `..` segments resolved),
    so that two spellings of one object are one object, for the run and for `validate`'s
    ordering of the stages writing and reading it. A trailing `/` is kept: it names a prefix,
    which the file tasks refuse (never read as the object without it)."""
    scheme, bucket, key = _parts(uri)
    if not key:
        return f"{scheme.lower()}://{bucket}"
    normalized = posixpath.normpath("/" + key).lstrip("/")
    if key.endswith("/") and normalized:
        normalized += "/"
    return f"{scheme.lower()}://{bucket}/{normalized}"
