"""Objects of an object store (`s3://bucket/key`) for the file tasks: whether one is there, its
bytes, and writing one whole, with every failure said in the user's terms.

Polars scans objects itself (`pl.scan_csv("s3://...")`); this module does the rest through
fsspec: the checks a load makes before its scan, what Polars cannot read from a store (a JSON
array), and the upload of a file a save wrote locally (`core/sinks.py`). S3 and S3-compatible
stores (s3fs) get conditional writes (`If-None-Match`, `If-Match`); other stores (gcsfs, adlfs)
get plain fsspec calls, without the guarantees those give (`ObjectStore.conditional`).

**Credentials come from the environment only** (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
`AWS_SESSION_TOKEN`, `AWS_PROFILE`, `AWS_ENDPOINT_URL`, `AWS_DEFAULT_REGION`, ...), read by
botocore here and by Polars' object_store in scans: never from the config and never passed as
`storage_options`, so that no plan (a pickled LazyFrame: the multiprocess executor's) and no
message carries them. Each store is made afresh for the task using it, so it sees the
environment of that moment (rotated credentials included).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from capport_dagster.core.uris import PathOrUri, bucket_of, key_of, scheme_of
from capport_dagster.errors import CapportError

__all__ = [
    "CONDITIONAL_SCHEMES",
    "NoSuchBucket",
    "ObjectChanged",
    "ObjectExists",
    "ObjectStat",
    "ObjectStore",
    "ObjectStoreError",
    "Publish",
    "describe",
    "open_input",
    "polars_reason",
    "store_for",
]

#: A file up to this size is uploaded in one PUT; a larger one in parts of `PART_BYTES` (the
#: object appears only when the upload completes, in one request either way).
SINGLE_PUT_BYTES = 64 * 2**20
PART_BYTES = 64 * 2**20
_MAX_PARTS = 10_000  # S3's limit: parts grow beyond PART_BYTES for files above 640 GiB

#: Where each scheme's fsspec implementation comes from, to say what to install.
_PACKAGES = {
    "s3": ("s3fs", "pip install 'capport-dagster[s3]'"),
    "gs": ("gcsfs", "pip install gcsfs"),
    "az": ("adlfs", "pip install adlfs"),
    "abfs": ("adlfs", "pip install adlfs"),
    "adl": ("adlfs", "pip install adlfs"),
}
#: The schemes whose stores take conditional writes (`S3Store`): an append is safe there only.
CONDITIONAL_SCHEMES = frozenset({"s3", "s3a"})

#: Schemes Polars takes that fsspec knows under another name.
_FSSPEC_SCHEME = {"s3a": "s3", "gcs": "gs", "azure": "az", "abfss": "abfs"}

_DENIED = frozenset({"AccessDenied", "403", "Forbidden", "AllAccessDisabled", "AccountProblem"})
_REFUSED = frozenset(
    {
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "ExpiredToken",
        "InvalidToken",
        "TokenRefreshRequired",
        "RequestTimeTooSkewed",
    }
)
_CONFLICT = frozenset({"PreconditionFailed", "412", "ConditionalRequestConflict", "409"})
_CREDENTIALS = (
    "check the credentials in the environment, AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY or "
    "AWS_PROFILE, and the bucket's policy"
)

#: Holds the request that makes an object visible: `core/sinks.py` passes the run's interrupt
#: guard, so that nothing is published once the run is interrupted.
Publish = Callable[[], AbstractContextManager[object]]


class ObjectStoreError(OSError):
    """A failure of the object store in the user's terms: `strerror` says what went wrong
    (`bucket 'b' does not exist`, `access denied (...)`), `filename` is the object's URI."""

    def __init__(self, reason: str, uri: str) -> None:
        super().__init__(0, reason, uri)


class NoSuchBucket(ObjectStoreError):
    """The bucket of the URI does not exist."""

    def __init__(self, uri: str) -> None:
        super().__init__(f"bucket '{bucket_of(uri)}' does not exist", uri)


class ObjectExists(ObjectStoreError):
    """A write that must create its object found one there (`make_next` then tries the next
    name)."""


class ObjectChanged(ObjectStoreError):
    """A write conditional on the object being as it was read found it changed (an append
    racing another writer): nothing was written."""


#: Failures an upload passes on as they are: the store's, already said in the user's terms,
#: and the interrupt guard's refusal (a `RunInterrupted`), which is the run's, not the store's.
_OURS = (ObjectStoreError, CapportError)


@dataclass(frozen=True)
class ObjectStat:
    size: int
    #: The version the store gives the object (an entity tag), for a conditional write.
    etag: str | None


class ObjectStore:
    """The objects of one scheme, through its fsspec filesystem: the plain calls, which every
    store answers. `S3Store` adds conditional writes."""

    #: Whether a write can be made conditional on the object's absence or version (an append's
    #: protection against a concurrent writer, and `make_next`'s against a concurrent one).
    conditional = False

    def __init__(self, fs: Any) -> None:
        self.fs = fs

    def stat(self, uri: str) -> ObjectStat | None:
        """The object's size and version; None when there is no object at `uri`."""
        try:
            info = self.fs.info(uri)
        except FileNotFoundError:
            return None
        except Exception as exc:
            raise _error(exc, uri) from exc
        if info.get("type") == "directory":
            return None
        return ObjectStat(int(info.get("size") or 0), info.get("ETag") or info.get("etag"))

    def is_prefix(self, uri: str) -> bool:
        """Whether objects lie under `uri/` (a "folder" of the store), to explain a missing key."""
        try:
            return bool(self.fs.ls(uri.rstrip("/") + "/", detail=False))
        except Exception:  # only an explanation: a store that cannot list says nothing
            return False

    def check_bucket(self, uri: str) -> None:
        """Raise when `uri`'s bucket is known not to exist (a store that cannot tell says
        nothing: the write then fails with the store's reason)."""

    def open_read(self, uri: str) -> IO[bytes]:
        try:
            return self.fs.open(uri, "rb")
        except Exception as exc:
            raise _error(exc, uri) from exc

    def download(self, uri: str, local: Path) -> None:
        try:
            self.fs.get_file(uri, str(local))
        except Exception as exc:
            raise _error(exc, uri) from exc

    def upload(
        self,
        local: Path,
        uri: str,
        *,
        publish: Publish,
        if_absent: bool = False,
        if_match: str | None = None,
    ) -> None:
        """Make `local`'s bytes the object `uri`. Without conditional writes, `if_absent` is
        checked just before the upload (a writer in between wins) and `if_match` is refused."""
        if if_match is not None:
            raise ObjectStoreError(
                "this object store offers no conditional writes to capport, so an append could "
                "lose a concurrent writer's rows",
                uri,
            )
        if if_absent and self.stat(uri) is not None:
            raise ObjectExists("an object is there", uri)
        try:
            with publish():
                self.fs.put_file(str(local), uri)
        except _OURS:
            raise
        except Exception as exc:
            raise _error(exc, uri) from exc


class S3Store(ObjectStore):
    """S3 and S3-compatible stores through s3fs's client, with conditional writes: an object
    is created only if absent (`If-None-Match: *`) or replaced only if unchanged (`If-Match`),
    in the request that makes it visible (the PUT, or the completion of a multipart upload)."""

    conditional = True

    def stat(self, uri: str) -> ObjectStat | None:
        bucket, key = bucket_of(uri), key_of(uri)
        try:
            head = self.fs.call_s3("head_object", Bucket=bucket, Key=key)
        except Exception as exc:
            if _code(exc) not in ("404", "NoSuchKey", "NotFound"):
                raise _error(exc, uri) from exc
            self.check_bucket(uri)
            return None
        return ObjectStat(int(head.get("ContentLength") or 0), head.get("ETag"))

    def check_bucket(self, uri: str) -> None:
        try:
            self.fs.call_s3("head_bucket", Bucket=bucket_of(uri))
        except Exception as exc:
            if _code(exc) in ("404", "NoSuchBucket", "NotFound"):
                raise NoSuchBucket(uri) from None
            # 403: credentials that may write objects but not look at the bucket; the write
            # itself says what is wrong, if anything is.

    def upload(
        self,
        local: Path,
        uri: str,
        *,
        publish: Publish,
        if_absent: bool = False,
        if_match: str | None = None,
    ) -> None:
        conditions = {"IfNoneMatch": "*"} if if_absent else {}
        if if_match is not None:
            conditions = {"IfMatch": if_match}
        try:
            if local.stat().st_size <= SINGLE_PUT_BYTES:
                body = local.read_bytes()
                with publish():
                    self._call("put_object", uri, Body=body, **conditions)
            else:
                self._multipart(local, uri, conditions, publish)
        except _OURS:
            raise
        except Exception as exc:
            if _code(exc) in _CONFLICT:
                if if_absent:
                    raise ObjectExists("an object is there", uri) from exc
                raise ObjectChanged("another writer changed the object", uri) from exc
            raise _error(exc, uri) from exc

    def _call(self, method: str, uri: str, **kwargs: Any) -> Any:
        return self.fs.call_s3(method, Bucket=bucket_of(uri), Key=key_of(uri), **kwargs)

    def _multipart(
        self, local: Path, uri: str, conditions: dict[str, str], publish: Publish
    ) -> None:
        """Upload `local` in parts; the object appears when the upload completes (under
        `publish`). On any failure, an interrupt included, the upload is aborted: the store
        drops its parts, and the object under `uri` is untouched."""
        upload = self._call("create_multipart_upload", uri)["UploadId"]
        try:
            parts = []
            size = max(PART_BYTES, -(-local.stat().st_size // _MAX_PARTS))
            with open(local, "rb") as handle:
                while chunk := handle.read(size):
                    number = len(parts) + 1
                    done = self._call(
                        "upload_part", uri, UploadId=upload, PartNumber=number, Body=chunk
                    )
                    parts.append({"PartNumber": number, "ETag": done["ETag"]})
            with publish():
                self._call(
                    "complete_multipart_upload",
                    uri,
                    UploadId=upload,
                    MultipartUpload={"Parts": parts},
                    **conditions,
                )
        except BaseException:
            with contextlib.suppress(Exception):
                self._call("abort_multipart_upload", uri, UploadId=upload)
            raise


def store_for(uri: str) -> ObjectStore:
    """A fresh store for `uri`'s scheme, reading the environment as it is now (a cached
    filesystem would keep the credentials and endpoint it was made with)."""
    scheme = scheme_of(uri) or ""
    protocol = _FSSPEC_SCHEME.get(scheme, scheme)
    # Imported when an object is used: `core/sinks.py`, which every stage and the CLI's signal
    # handling import, does not pay for it otherwise.
    import fsspec

    try:
        fs = fsspec.filesystem(protocol, skip_instance_cache=True)
    except ImportError as exc:
        package, command = _PACKAGES.get(protocol, (f"the fsspec package for {scheme}", ""))
        how = f" ({command})" if command else ""
        raise ObjectStoreError(
            f"{scheme}:// objects need the package {package}, which is not installed{how}", uri
        ) from exc
    except Exception as exc:
        raise _error(exc, uri) from exc
    return S3Store(fs) if scheme in CONDITIONAL_SCHEMES else ObjectStore(fs)


@contextlib.contextmanager
def open_input(location: PathOrUri) -> Iterator[IO[bytes]]:
    """A local file or an object, opened for reading bytes."""
    if isinstance(location, Path):
        with open(location, "rb") as handle:
            yield handle
        return
    with store_for(location).open_read(location) as handle:
        yield handle


# --- what went wrong, in the user's terms ---------------------------------------------------


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """`exc` and its causes: s3fs turns botocore's errors into Python's, keeping the original
    as the cause (or the context)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _error_field(exc: BaseException, field: str) -> str | None:
    """A field of the store's error (`Code`: `NoSuchBucket`, `AccessDenied`, `404`; `Message`)
    anywhere in the chain of causes."""
    for current in _chain(exc):
        response = getattr(current, "response", None)
        if isinstance(response, dict) and response.get("Error", {}).get(field):
            return str(response["Error"][field])
    return None


def _code(exc: BaseException) -> str | None:
    return _error_field(exc, "Code")


def _named(exc: BaseException, name: str) -> BaseException | None:
    """The exception of class `name` in the chain (botocore's classes, not imported: s3fs and
    botocore are optional)."""
    return next(
        (c for c in _chain(exc) if any(cls.__name__ == name for cls in type(c).__mro__)), None
    )


def describe(exc: BaseException, uri: str) -> str:
    """What a store's failure on `uri` means for the user."""
    if isinstance(exc, ObjectStoreError):
        return exc.strerror or str(exc)
    code = _code(exc)
    message = _first_line(_error_field(exc, "Message") or str(exc))
    if code == "NoSuchBucket":
        return NoSuchBucket(uri).strerror or ""
    if code in ("NoSuchKey", "404", "NotFound"):
        return "no such object"
    if code in _REFUSED:
        return (
            f"access denied: the store refused the credentials ({code}: {message.rstrip('.')}); "
            f"{_CREDENTIALS}"
        )
    if code in _DENIED or isinstance(exc, PermissionError):
        return f"access denied ({_CREDENTIALS})"
    if _named(exc, "NoCredentialsError") is not None:
        return (
            "no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE) in "
            "the environment"
        )
    connection = _named(exc, "EndpointConnectionError") or _named(exc, "ConnectionRefusedError")
    if connection is not None:
        return (
            f"cannot reach the object store ({_first_line(str(connection))}; check "
            "AWS_ENDPOINT_URL and the network)"
        )
    if isinstance(exc, FileNotFoundError):
        return "no such object"
    return f"{code}: {message}" if code and code not in message else message


def _error(exc: BaseException, uri: str) -> ObjectStoreError:
    if isinstance(exc, ObjectStoreError):
        return exc
    if _code(exc) == "NoSuchBucket":
        return NoSuchBucket(uri)
    return ObjectStoreError(describe(exc, uri), uri)


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else text


def polars_reason(exc: BaseException) -> str | None:
    """Polars' failure to read an object (its object_store's words) in the user's terms; None
    when it is not one."""
    text = str(exc)
    if "object-store error" not in text:
        return None
    if " not found" in text:
        return (
            "the object is gone: it was deleted after this stage, and lazy modes read an object "
            "only when a later stage needs its data (keep it until the run ends)"
        )
    if "necessary privileges" in text or "403" in text:
        return f"access denied ({_CREDENTIALS})"
    return _first_line(text.removeprefix("object-store error: "))
