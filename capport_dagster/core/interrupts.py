"""Stopping a run on SIGINT or SIGTERM: promptly, and publishing nothing after the signal.

A Python signal handler runs in the main thread, and only between two bytecodes: while Polars
computes (a Rust call of seconds or minutes) it waits. So `capport run` executes the Dagster run
in a worker thread (`run_in_worker`) and keeps the main thread free to answer a signal at once.
On the first signal it stops: the run is marked *interrupted* (`stop`), from then on no sink
publishes its file and no new temporary file is made (`atomic_path` in `core/sinks.py` asks
`guarded()`, under the same lock as `stop`: a rename either happened before the
signal was handled, or never happens); child processes are killed, the run's own clean-up runs
(the CLI marks the Dagster run canceled), the temporary files of unfinished writes are removed,
and the process exits with 128 + the signal number (130 for SIGINT, 143 for SIGTERM) without
waiting for the computation it abandons. Later signals are absorbed: the shutdown is bounded
(`SHUTDOWN_SECONDS`), and a second Ctrl-C only makes it skip what it still waits for.

Stages of the multiprocess executor run in other processes (forked by a forkserver, so not even
children of this one), which neither see this process's flag nor can be trusted to stop in time.
The run's *stop directory* (`$CAPPORT_STOP_DIR`, inherited by every process of the run) is their
link: `stop` creates a `stop` file in it, which their sinks check before publishing; and every
temporary file a sink creates is recorded there first (a symlink to it), so that once their
processes are killed the files they were writing can be removed too.

This module imports neither Dagster nor Polars: sinks use it in every process, and the CLI's
signal handling must not pay for more than it needs.
"""

from __future__ import annotations

import collections
import contextlib
import os
import re
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from capport_dagster.errors import Location, RunInterrupted

__all__ = [
    "SHUTDOWN_SECONDS",
    "STOP_DIR_VARIABLE",
    "Interrupted",
    "exit_code",
    "guarded",
    "handlers",
    "interrupted",
    "kill_descendants",
    "remove_before_exit",
    "run_in_worker",
    "say",
    "say_interrupted",
    "shutdown_deadline",
    "stop",
    "stop_directory",
    "track",
    "untrack",
    "wait_for",
]

T = TypeVar("T")

#: The environment variable naming the run's stop directory (see the module docstring).
STOP_DIR_VARIABLE = "CAPPORT_STOP_DIR"
#: At most this long between the signal and the exit (killing children, marking the run).
SHUTDOWN_SECONDS = 5.0
_STOP_FILE = "stop"
_POLL = 0.01  # how late the main thread may notice the end of the run (it waits in steps)

_lock = threading.RLock()
_state: dict[str, Any] = {"signal": None, "count": 0, "worker": None, "said": False}
_temporaries: set[str] = set()


class Interrupted(BaseException):
    """Raised in the main thread by the first signal when no run is executing (the config is
    loading, or results are printing). A BaseException, as KeyboardInterrupt: `except Exception`
    clean-up code must not swallow it."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def exit_code(signum: int) -> int:
    """The shell's convention for a process ended by a signal: 130 for SIGINT, 143 for SIGTERM."""
    return 128 + signum


def interrupted() -> int | None:
    """The signal that interrupted this run, in this process or (through the stop directory) in
    the `capport run` process that started it; None while the run goes on."""
    if _state["signal"] is None:
        directory = os.environ.get(STOP_DIR_VARIABLE)
        if directory:
            try:
                text = (Path(directory) / _STOP_FILE).read_text()
            except OSError:
                return None
            with _lock:
                if _state["signal"] is None:
                    _state["signal"] = int(text) if text.isdigit() else signal.SIGTERM
    return _state["signal"]


def stop(signum: int) -> bool:
    """Mark the run interrupted by `signum`; True the first time. From now on nothing publishes."""
    with _lock:
        _state["count"] += 1
        if _state["signal"] is not None:
            return False
        _state["signal"] = signum
        directory = os.environ.get(STOP_DIR_VARIABLE)
        if directory:
            with contextlib.suppress(OSError):
                (Path(directory) / _STOP_FILE).write_text(str(signum))
        return True


def _refuse(path: Path | str) -> None:
    signum = interrupted()
    if signum is not None:
        name = signal.Signals(signum).name
        raise RunInterrupted(f"the run was interrupted ({name}): {path} is not written", Location())


@contextlib.contextmanager
def guarded(path: Path | str) -> Iterator[None]:
    """Hold this around what may not happen once the run is interrupted: the rename publishing a
    file, the creation of a temporary one. It raises instead when the run is interrupted, and
    `stop` waits for the block to end: a rename happens before the signal is handled, or never."""
    with _lock:
        _refuse(path)
        yield


def track(temporary: Path) -> None:
    """Record a temporary file about to be created, so that an interrupted run removes it. Call
    it under `guarded`, before creating the file: a process killed in between leaves a record of
    a file that does not exist, never a file without a record."""
    _temporaries.add(str(temporary))
    directory = os.environ.get(STOP_DIR_VARIABLE)
    if directory:
        with contextlib.suppress(OSError):  # a missing stop directory: nobody to tell
            os.symlink(temporary, Path(directory) / _ledger_name(temporary))


def untrack(temporary: Path) -> None:
    """Forget a temporary file that was renamed into place or removed."""
    _temporaries.discard(str(temporary))
    directory = os.environ.get(STOP_DIR_VARIABLE)
    if directory:
        with contextlib.suppress(OSError):
            os.unlink(Path(directory) / _ledger_name(temporary))


def _ledger_name(temporary: Path) -> str:
    # Temporary names are unique (writer pid and random part); the ledger only needs the name.
    return f"tmp-{temporary.name}"


def _remove_temporaries(*, stop_directory_too: bool) -> None:
    """Remove the temporary files of unfinished writes: this process's, and those recorded in the
    stop directory by the run's other processes (killed by now); then the stop directory, if
    asked: its `stop` file tells the run's other processes not to publish, so it stays (a few
    bytes in the temporary directory) if one of them could not be killed."""
    with _lock:
        paths = set(_temporaries)
        directory = os.environ.get(STOP_DIR_VARIABLE)
        if directory:
            with contextlib.suppress(OSError):
                for entry in os.scandir(directory):
                    if entry.name.startswith("tmp-") and entry.is_symlink():
                        with contextlib.suppress(OSError):
                            paths.add(os.readlink(entry.path))
        for path in paths:
            with contextlib.suppress(OSError):
                os.unlink(path)
        if directory and stop_directory_too:
            shutil.rmtree(directory, ignore_errors=True)


@contextlib.contextmanager
def stop_directory() -> Iterator[Path]:
    """Create the run's stop directory and export it to the processes the run will start.

    Its name records its owner as the names of temporary files do (`core/sinks.py`): a
    `capport run` killed by SIGKILL cannot remove it, so each run removes those of dead owners
    on this host (with their records, which point at files the owners' killed stages left).
    """
    from capport_dagster.core.sinks import HOST_TAG

    prefix = f"capport-run-{HOST_TAG}.{os.getpid()}-"
    directory = Path(tempfile.mkdtemp(prefix=prefix))
    _remove_stale_stop_directories(directory.parent)
    previous = os.environ.get(STOP_DIR_VARIABLE)
    os.environ[STOP_DIR_VARIABLE] = str(directory)
    try:
        yield directory
    finally:
        if previous is None:
            os.environ.pop(STOP_DIR_VARIABLE, None)
        else:
            os.environ[STOP_DIR_VARIABLE] = previous
        shutil.rmtree(directory, ignore_errors=True)


def _remove_stale_stop_directories(parent: Path) -> list[Path]:
    """Remove the stop directories in `parent` whose `capport run`, on this host, is gone."""
    from capport_dagster.core.sinks import HOST_TAG, is_running

    removed = []
    pattern = re.compile(rf"capport-run-{HOST_TAG}\.(?P<pid>[1-9][0-9]*)-\w+")
    with contextlib.suppress(OSError):
        for entry in os.scandir(parent):
            owner = pattern.fullmatch(entry.name)
            if owner and not is_running(int(owner["pid"])) and entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path, ignore_errors=True)
                removed.append(Path(entry.path))
    return removed


# --- the CLI's side: signal handlers and the worker thread --------------------------------------


@contextlib.contextmanager
def handlers() -> Iterator[None]:
    """SIGINT and SIGTERM handled as described above while `capport` runs (in the main thread;
    elsewhere Python allows no handlers), the previous handlers restored after; an ignored
    signal stays ignored."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _reset()
    # A signal the caller ignores stays ignored (`trap '' INT`, a shell's background job), as
    # Python itself leaves an inherited SIG_IGN for SIGINT alone.
    previous = {
        signum: signal.signal(signum, _handle)
        for signum in (signal.SIGINT, signal.SIGTERM)
        if signal.getsignal(signum) != signal.SIG_IGN
    }
    with contextlib.suppress(OSError):
        _state["stderr"] = os.dup(2)  # see `say`
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if _state.get("stderr") is not None:
            os.close(_state["stderr"])
        _reset()  # `capport` called in a process that goes on (tests): its next run starts afresh


def _reset() -> None:
    with _lock:
        _state.clear()
        _state.update(signal=None, count=0, worker=None, said=False)
        _temporaries.clear()


def _handle(signum: int, frame: object) -> None:
    first = stop(signum)
    # While a run executes the main thread waits in `run_in_worker`, which sees the flag; raising
    # there could unwind context managers the worker still uses. Later signals are only counted.
    if first and _state["worker"] is None:
        raise Interrupted(signum)


def run_in_worker(
    work: Callable[[], T], on_stop: Callable[[int], None], *, processes: bool = False
) -> T:
    """Run `work` in a worker thread while the main thread waits for it or for a signal.

    On a signal: "interrupted by SIG..." is said, the processes the run started are killed,
    `on_stop(signum)` does the run's own clean-up (bounding its waits with `wait_for`), the
    temporary files of unfinished writes are removed, and the process exits at once: the worker
    may be deep in a Polars computation it cannot leave. (Should the worker have ended meanwhile,
    `Interrupted` is raised instead, and the CLI returns as usual.)

    `processes`: the run will start processes through multiprocessing (see `target`).
    """
    box: dict[str, Any] = {}

    def target() -> None:
        # SIGINT blocked in this thread, hence in every process the run starts from it (the
        # forkserver, the stages, Dagster's compute-log helpers `tail` and `watch_orphans.py`
        # inherit the mask): a terminal's Ctrl-C, sent to the whole process group, then reaches
        # capport alone, which stops them; Dagster's helpers printed KeyboardInterrupt tracebacks.
        # (SIGTERM is left alone: Dagster stops its helpers with it.) Multiprocessing's resource
        # tracker is started first: starting it unblocks SIGINT in the thread that does.
        try:
            if processes:
                from multiprocessing import resource_tracker

                resource_tracker.ensure_running()
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
            box["result"] = work()
        except BaseException as exc:  # handed to the main thread, raised there
            box["error"] = exc

    worker = threading.Thread(target=target, name="capport-run", daemon=True)
    with _lock:
        _state["worker"] = worker
    try:
        worker.start()
        while worker.is_alive() and interrupted() is None:
            worker.join(_POLL)
    finally:
        with _lock:
            _state["worker"] = None
    signum = interrupted()
    if signum is not None:
        _shut_down(signum, on_stop, worker, wait=processes)
    if "error" in box:
        raise box["error"]
    return box["result"]


def _shut_down(
    signum: int, on_stop: Callable[[int], None], worker: threading.Thread, *, wait: bool
) -> None:
    """Stop the run; exit the process unless the worker ended (then raise Interrupted, which
    the CLI reports as any other interrupt, and the run's context managers clean up as usual).

    `wait`: the worker runs no Polars itself (its stages are processes, killed by now), so it
    ends soon, once the executor has seen them die: it is waited for, within the deadline.
    """
    _state["deadline"] = time.monotonic() + SHUTDOWN_SECONDS
    say_interrupted(signum)
    with contextlib.suppress(Exception):
        kill_descendants()
    with contextlib.suppress(Exception):
        on_stop(signum)
    alone = False
    with contextlib.suppress(Exception):
        alone = kill_descendants()  # what the executor started meanwhile
    _remove_temporaries(stop_directory_too=alone)
    if wait:
        wait_for(lambda: not worker.is_alive())
    if worker.is_alive():
        _release_multiprocessing()
        for directory in _state.get("remove", ()):  # last: the worker may write there until now
            shutil.rmtree(directory, ignore_errors=True)
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(exit_code(signum))
    raise Interrupted(signum)


def remove_before_exit(directory: str) -> None:
    """Have the shutdown remove `directory` just before the process exits (a temporary Dagster
    instance, which the abandoned worker thread may still write to until then; if the worker
    ended, the code that made the directory removes it as usual)."""
    _state.setdefault("remove", []).append(directory)


def _release_multiprocessing() -> None:
    """What multiprocessing does at a normal exit, which `os._exit` skips: unlink the named
    semaphores of the executor's queues and events (else the resource tracker, seeing this
    process gone, removes them itself and warns of "leaked semaphore objects" on stderr), and
    remove its temporary directory (the forkserver's socket). Not the rest of its exit: it joins
    queue threads that may wait for processes killed by now."""
    if "multiprocessing.util" in sys.modules:
        import multiprocessing
        from multiprocessing import util

        with contextlib.suppress(Exception):
            util._run_finalizers(0)
        directory = multiprocessing.current_process()._config.get("tempdir")  # type: ignore[attr-defined]
        if directory:
            shutil.rmtree(directory, ignore_errors=True)


def shutdown_deadline() -> float:
    """When the shutdown gives up waiting (`time.monotonic()`); now, after a second signal."""
    if _state["count"] > 1:
        return 0.0
    return float(_state.get("deadline", 0.0))


def wait_for(done: Callable[[], bool]) -> bool:
    """Poll `done` until it holds or the shutdown deadline passes (a second signal ends it)."""
    while not done():
        if time.monotonic() >= shutdown_deadline():
            return False
        time.sleep(_POLL)
    return True


def say_interrupted(signum: int) -> None:
    """`interrupted by SIGINT` on stderr, once."""
    if not _state["said"]:
        _state["said"] = True
        say(f"interrupted by {signal.Signals(signum).name}")


def say(line: str) -> None:
    """A line on the stderr `capport` started with. While a stage runs, Dagster's compute-log
    capture (with DAGSTER_HOME) points descriptor 2 at the stage's log file, which a `tail`
    process mirrors to the terminal; the shutdown kills that process, and a line written after
    would reach only the file."""
    with contextlib.suppress(Exception):
        sys.stderr.flush()
    saved = _state.get("stderr")
    with contextlib.suppress(Exception):  # a closed pipe: nobody to tell
        if saved is None:
            print(line, file=sys.stderr, flush=True)
        else:
            os.write(saved, f"{line}\n".encode(errors="replace"))


def kill_descendants() -> bool:
    """SIGKILL every process this one started, directly or not (the forkserver and the stages it
    forked); True once none is left. Until the shutdown deadline it sweeps again, as the executor
    may start one more; a killed process takes a moment to die, so it waits up to a second for
    that even after a second signal.

    Multiprocessing's resource tracker is spared: killed, it is started again by the next process
    that releases a semaphore, and the new one prints a KeyError traceback for each semaphore it
    never saw. Left alone, it exits quietly when this process does.
    """
    grace = time.monotonic() + 1.0
    while True:
        pids = _descendants(os.getpid(), spare_tracker=True)
        if not pids:
            return True
        for pid in pids:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        if time.monotonic() >= max(shutdown_deadline(), grace):
            return False
        time.sleep(_POLL / 2)


def _descendants(root: int, *, spare_tracker: bool = False) -> list[int]:
    """Living (not zombie) descendants of `root`, from /proc (only its direct multiprocessing
    children where there is no /proc); without multiprocessing's resource tracker if asked."""
    if spare_tracker:
        from multiprocessing import resource_tracker

        spared = getattr(resource_tracker._resource_tracker, "_pid", None)
        return [pid for pid in _descendants(root) if pid != spared]
    children: dict[int, list[int]] = {}
    try:
        entries = [e for e in os.listdir("/proc") if e.isdigit()]
    except OSError:
        import multiprocessing

        return [p.pid for p in multiprocessing.active_children() if p.pid is not None]
    for entry in entries:
        try:
            with open(f"/proc/{entry}/stat", "rb") as stat:
                fields = stat.read().rsplit(b")", 1)[1].split()
        except (OSError, IndexError):
            continue  # gone meanwhile
        if fields and fields[0] != b"Z":
            children.setdefault(int(fields[1]), []).append(int(entry))
    found: list[int] = []  # parents before their children: a forkserver dies before it forks more
    todo = collections.deque(children.get(root, []))
    while todo:
        pid = todo.popleft()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found
