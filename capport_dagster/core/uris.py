"""Object-store URIs (`s3://bucket/key`): where data and persisted frames may live besides
local paths. Polars reads and writes them itself (credentials from the environment: `AWS_*`,
`GOOGLE_*`, `AZURE_*`), dagster-polars persists frames there through universal-pathlib."""

from __future__ import annotations

__all__ = ["OBJECT_STORE_SCHEMES", "is_uri", "scheme_of"]

#: The object stores Polars and fsspec both know, by the schemes users write.
OBJECT_STORE_SCHEMES = frozenset({"s3", "s3a", "gs", "gcs", "az", "azure", "abfs", "abfss", "adl"})


def scheme_of(location: str) -> str | None:
    """`s3` for `s3://bucket/key`, None for a local path (`C:/x` and `./a:b` included)."""
    scheme, sep, _ = location.partition("://")
    if not sep or not scheme.replace("+", "").replace("-", "").replace(".", "").isalnum():
        return None
    return scheme.lower()


def is_uri(location: str) -> bool:
    """True for an object-store URI (a scheme in OBJECT_STORE_SCHEMES)."""
    return scheme_of(location) in OBJECT_STORE_SCHEMES
