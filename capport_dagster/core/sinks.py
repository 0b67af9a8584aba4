"""Writing files so that a reader never sees half of one.

Every sink writes to a temporary file beside its destination and renames it into place: the
rename is atomic on POSIX filesystems, so a failed or killed run leaves either the previous
complete file or none. Temporary names start with a dot and end in `.capport-tmp`, so a crash
leftover is easy to spot and is never mistaken for output.

A failure inside the write removes the temporary file; a killed process (SIGKILL, the OOM killer,
a power cut) cannot, so its temporary file stays behind. Each name therefore records its writer,
`.<name>.<host>.<pid>.<random>.capport-tmp`, where `<host>` (8 hex digits hashed from the
hostname and the pid namespace) says where `<pid>` means something. Each successful write to a
destination then removes that destination's temporary files whose writer is gone: same `<host>`,
and no process `<pid>` exists. Everything else is left alone, so a concurrent writer's file is
never touched: a live pid (another run, or this process), another host or container sharing the
directory (its pids mean nothing here), a pid reused since the kill (kept, to be safe), a name in
another format (a leftover of an older version). Those are ignored: never read, never output.

An interrupted run (SIGINT, SIGTERM to `capport run`) publishes nothing after the signal: the
rename, and the creation of a new temporary file, happen under `core/interrupts.py`'s lock and are
refused once the run is interrupted; each temporary file is recorded there before it is created,
so that the interrupted run removes the files of the writes it abandons (also those of stages in
other processes, which it kills).

An object store (`s3://bucket/key`) has no rename, but it makes an object visible in one request
(a PUT, or the completion of a multipart upload), never half of one. So a sink writing an object
writes the same temporary file, locally (in the temporary directory, `$TMPDIR`, under
`capport-objects-<uid>/`), then uploads it (`atomic_object`): a failure before or during the upload
leaves the object as it was, and no other object. The request publishing it is held under the
interrupt guard, as the rename is. `atomic_new_object` creates an object that must not exist yet
(`make_next`), `staged_copy` fetches one to append to.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import secrets
import shutil
import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from capport_dagster.core import interrupts
from capport_dagster.core.object_store import ObjectExists, ObjectStore, store_for
from capport_dagster.core.uris import PathOrUri, basename

__all__ = [
    "HOST_TAG",
    "TEMP_SUFFIX",
    "DestinationError",
    "NewFile",
    "atomic_new_file",
    "atomic_new_object",
    "atomic_object",
    "atomic_path",
    "is_running",
    "remove_stale_temporaries",
    "staged_copy",
    "staging_directory",
]

TEMP_SUFFIX = ".capport-tmp"


def _host_tag() -> str:
    """8 hex digits naming where pids mean the same thing: the hostname and the pid namespace
    (containers sharing the host's network, hence its hostname, still get their own tag)."""
    try:
        namespace = os.readlink("/proc/self/ns/pid")
    except OSError:  # not Linux, or /proc hidden: the hostname alone
        namespace = ""
    return hashlib.blake2s(
        f"{socket.gethostname()} {namespace}".encode(), digest_size=4
    ).hexdigest()


HOST_TAG = _host_tag()
_WRITER = re.compile(r"(?P<host>[0-9a-f]{8})\.(?P<pid>[1-9][0-9]*)\.[0-9a-f]{12}")


class DestinationError(OSError):
    """Raised when `destination` cannot be written as a file: its `strerror` says why in the
    user's terms (never naming the temporary file, which is ours), its `filename` is the
    destination."""


@contextmanager
def atomic_path(destination: Path) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces `destination` in one rename.

    Parent directories are created. On any failure the temporary file is removed and the
    destination is left untouched. After a successful rename, temporary files that killed
    writers left beside `destination` are removed (`remove_stale_temporaries`). A destination
    that cannot be a file (a directory, under a file, in a directory we may not write) raises
    `DestinationError` before anything is written.
    """
    try:
        _check_destination(destination)
        destination.parent.mkdir(parents=True, exist_ok=True)
        temporary = _create_temporary(destination)
    except DestinationError:
        raise
    except OSError as exc:
        raise _destination_error(exc, destination) from exc
    try:
        yield temporary
        if destination.exists():  # an overwrite keeps the file's permissions, as a plain write
            shutil.copymode(destination, temporary)
        with interrupts.guarded(destination):  # never after the run was interrupted
            try:
                os.replace(temporary, destination)
            except OSError as exc:  # e.g. a directory created there meanwhile
                raise _destination_error(exc, destination) from exc
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    finally:
        interrupts.untrack(temporary)
    remove_stale_temporaries(destination)


def _check_destination(destination: Path) -> None:
    """The mistakes the OS would report naming our temporary file, or a parent, or nothing."""
    if destination.is_dir():
        raise DestinationError(errno.EISDIR, "it is a directory", str(destination))
    for parent in destination.parents:
        if parent.exists():
            if not parent.is_dir():
                raise DestinationError(
                    errno.ENOTDIR, f"{parent} is a file, not a directory", str(destination)
                )
            return


def _destination_error(exc: OSError, destination: Path) -> DestinationError:
    """`exc` (from creating the directory or the temporary file, or the rename) in the terms
    of `destination`."""
    if exc.errno == errno.EISDIR or destination.is_dir():
        why = "it is a directory"
    elif exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        directory = _nearest_existing(destination.parent)
        kind = "read-only" if exc.errno == errno.EROFS else "not writable"
        why = f"directory {directory} is {kind}"
    else:
        why = exc.strerror or str(exc)
    return DestinationError(exc.errno or 0, why, str(destination))


def _nearest_existing(directory: Path) -> Path:
    """The directory itself, or the deepest ancestor that exists (where a mkdir failed)."""
    for candidate in (directory, *directory.parents):
        if candidate.exists():
            return candidate
    return directory


def remove_stale_temporaries(destination: Path) -> list[Path]:
    """Remove the temporary files of `destination` whose writer, on this host, is no longer
    running; return them. Best effort: a file that cannot be removed is skipped."""
    prefix = f".{destination.name}."
    removed = []
    try:
        entries = list(os.scandir(destination.parent))
    except OSError:  # a directory we may write but not list: nothing to clean
        return removed
    for entry in entries:
        name = entry.name
        if not (name.startswith(prefix) and name.endswith(TEMP_SUFFIX)):
            continue
        writer = _WRITER.fullmatch(name[len(prefix) : -len(TEMP_SUFFIX)])
        if writer is None or writer["host"] != HOST_TAG or is_running(int(writer["pid"])):
            continue
        try:
            if entry.is_file(follow_symlinks=False):
                os.unlink(entry.path)
                removed.append(Path(entry.path))
        except OSError:  # gone already (another cleaner), or not ours to remove
            pass
    return removed


def is_running(pid: int) -> bool:
    """Whether a process `pid` exists on this host (a zombie counts: not yet reaped)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        return True
    return True


def _create_temporary(destination: Path, shown: PathOrUri | None = None) -> Path:
    """A new empty file beside `destination`, with the permissions a plain write would give.
    `shown` names what it is written for, when that is not `destination` (an object).

    Not `tempfile.mkstemp`: it creates files readable by their owner only (0600), which the
    rename would hand on to the output. `os.open` with 0666 lets the umask decide, as `open` does.
    """
    while True:
        writer = f"{HOST_TAG}.{os.getpid()}.{secrets.token_hex(6)}"
        temporary = destination.with_name(f".{destination.name}.{writer}{TEMP_SUFFIX}")
        # Recorded before it exists, so that an interrupted run finds it (`core/interrupts.py`).
        with interrupts.guarded(destination if shown is None else shown):
            interrupts.track(temporary)
            try:
                fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            except BaseException as exc:
                interrupts.untrack(temporary)
                if isinstance(exc, FileExistsError):
                    continue
                raise
        os.close(fd)
        return temporary


class NewFile:
    """Where `atomic_new_file` writes (`temporary`) and, once published, the file it made."""

    def __init__(self, temporary: Path) -> None:
        self.temporary = temporary
        self.path: PathOrUri | None = None


@contextmanager
def atomic_new_file(names: Iterator[Path]) -> Iterator[NewFile]:
    """Like `atomic_path`, for a file that must not exist yet: the first of `names` that is
    free when the write is done gets the data, by a hard link (which, unlike a rename, refuses
    an existing name, so a concurrent writer's file is never replaced), then the temporary name
    is removed. `NewFile.path` names the file made."""
    first = next(names)
    try:
        _check_destination(first)
        first.parent.mkdir(parents=True, exist_ok=True)
        temporary = _create_temporary(first)
    except DestinationError:
        raise
    except OSError as exc:
        raise _destination_error(exc, first) from exc
    new = NewFile(temporary)
    try:
        yield new
        candidate = first
        while True:
            with interrupts.guarded(candidate):
                try:
                    os.link(temporary, candidate)
                except FileExistsError:
                    candidate = next(names)
                    continue
                except OSError as exc:
                    raise _destination_error(exc, candidate) from exc
            new.path = candidate
            break
    finally:
        temporary.unlink(missing_ok=True)
        interrupts.untrack(temporary)
    remove_stale_temporaries(first)


# --- objects --------------------------------------------------------------------------------


def staging_directory() -> Path:
    """Where local copies of objects are written: `capport-objects-<uid>` in the temporary
    directory (`$TMPDIR`), one per user (another user's would not be writable)."""
    user = os.getuid() if hasattr(os, "getuid") else "user"
    return Path(tempfile.gettempdir()) / f"capport-objects-{user}"


def _staging(uri: str) -> Path:
    """Where the local copy of object `uri` is written, named after the object as a temporary
    file beside a local destination would be (so that killed writers' leftovers are removed
    the same way)."""
    directory = staging_directory()
    directory.mkdir(mode=0o700, exist_ok=True)
    return directory / (basename(uri) or "object")


@contextmanager
def _staged(uri: str) -> Iterator[Path]:
    """A new local temporary file for object `uri`, removed at the end whatever happens."""
    staging = _staging(uri)
    temporary = _create_temporary(staging, uri)
    try:
        yield temporary
    finally:
        temporary.unlink(missing_ok=True)
        interrupts.untrack(temporary)
    remove_stale_temporaries(staging)


@contextmanager
def atomic_object(
    destination: str,
    *,
    store: ObjectStore | None = None,
    if_absent: bool = False,
    if_match: str | None = None,
) -> Iterator[Path]:
    """Yield a local temporary path to write; on success its bytes become object `destination`
    in one write of the store (`ObjectStore.upload`), under the interrupt guard.

    A missing bucket is said before anything is written (`ObjectStoreError`s say every failure
    in the user's terms). On any failure, the upload's included, the object is left as it was.
    `if_absent` (create only) and `if_match` (replace only the version read) make the write
    conditional where the store allows (`ObjectExists`, `ObjectChanged` when refused)."""
    store = store or store_for(destination)
    store.check_bucket(destination)
    with _staged(destination) as temporary:
        yield temporary
        store.upload(
            temporary,
            destination,
            publish=lambda: interrupts.guarded(destination),
            if_absent=if_absent,
            if_match=if_match,
        )


@contextmanager
def atomic_new_object(names: Iterator[str]) -> Iterator[NewFile]:
    """Like `atomic_object`, for an object that must not exist yet: the first of `names` with
    no object gets the data. Each name is looked at first, then written on condition that it is
    still free (`If-None-Match`, on S3), so a concurrent writer's object is never replaced.
    `NewFile.path` names the object made."""
    first = next(names)
    store = store_for(first)
    store.check_bucket(first)
    with _staged(first) as temporary:
        new = NewFile(temporary)
        yield new
        candidate = first
        while new.path is None:
            if store.stat(candidate) is None:
                try:
                    store.upload(
                        temporary,
                        candidate,
                        publish=lambda: interrupts.guarded(candidate),  # noqa: B023 (called at once)
                        if_absent=True,
                    )
                    new.path = candidate
                    continue
                except ObjectExists:  # taken since it was looked at
                    pass
            candidate = next(names)


@contextmanager
def staged_copy(uri: str, store: ObjectStore) -> Iterator[Path]:
    """A local copy of object `uri` (to append to), removed at the end."""
    with _staged(uri) as copy:
        store.download(uri, copy)
        yield copy
