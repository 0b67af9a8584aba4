"""Read a config directory into a :class:`CapportConfig`, collecting every problem on the way.

Only a directory that cannot be listed raises: anything else becomes a
:class:`Problem` and reading goes on, so `capport validate` can list all problems at once. A
broken entry is still recorded as far as it could be read (a pipeline keeps the stages that were
well formed), so that references to it do not cause follow-up errors.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

from capport_dagster.core.config import (
    SECTIONS,
    CapportConfig,
    ConfigSnapshot,
    Entry,
    Pipeline,
    Stage,
)
from capport_dagster.core.yaml_source import line_of, load_yaml_file, parse_yaml, read_yaml_text
from capport_dagster.errors import ConfigError, Location, Problem, did_you_mean

__all__ = [
    "NO_PIPELINES",
    "NO_YAML_FILES",
    "RUNNER_KEYS",
    "STAGE_KEYS",
    "config_files",
    "config_snapshot",
    "config_stamp",
    "load_config",
]

#: Keys a stage may have.
STAGE_KEYS: tuple[str, ...] = ("label", "task", "args")

#: Keys of a runner definition: a `runner` section that has one of them at its top is a single
#: unnamed runner, read as the runner named `default`.
RUNNER_KEYS: tuple[str, ...] = (
    "logger",
    "run_with",
    "executor",
    "max_concurrent",
    "frames_dir",
    "pipelines",
    "schedule",
    "partitions",
)


#: The warnings of a config that defines nothing to run (`capport run` makes them an error).
NO_YAML_FILES = "the config directory has no YAML file (*.yml, *.yaml): nothing to run"
NO_PIPELINES = "no file in the config directory has a `pipeline:` section: nothing to run"


def config_files(directory: Path) -> tuple[Path, ...]:
    """The entries `load_config` reads, in reading order: every `*.yml` / `*.yaml` name directly
    in the directory that is not hidden and not a directory. A dangling or looping symbolic link,
    a FIFO or a device is listed too: `load_config` reports it at its name, rather than a config
    file silently missing (or a read blocking on a FIFO)."""
    _check_directory(directory)
    try:
        entries = sorted(directory.iterdir(), key=lambda p: p.name)
    except OSError as exc:
        raise ConfigError(
            f"cannot read the config directory: {_reason(exc)}", Location(file=str(directory))
        ) from None
    return tuple(
        path
        for path in entries
        if path.suffix in (".yml", ".yaml") and not path.name.startswith(".") and not path.is_dir()
    )


def _check_directory(directory: Path) -> None:
    where = Location(file=str(directory))
    try:
        status = directory.stat()
    except FileNotFoundError:
        raise ConfigError("the config directory does not exist", where) from None
    except NotADirectoryError:
        parent = next((p for p in directory.parents if p.is_file()), None)
        raise ConfigError(
            f"the config directory does not exist ({parent} is a file)", where
        ) from None
    except OSError as exc:
        raise ConfigError(f"cannot read the config directory: {_reason(exc)}", where) from None
    if not stat.S_ISDIR(status.st_mode):
        raise ConfigError("the config directory is not a directory", where)


def _reason(exc: OSError) -> str:
    """'permission denied' from an OSError, as the rest of a message reads."""
    text = exc.strerror or str(exc)
    return text[:1].lower() + text[1:]


def _unreadable(path: Path) -> str | None:
    """Why a listed config entry cannot be read as a YAML file, or None when it can."""
    try:
        status = path.stat()
    except OSError as exc:
        if not path.is_symlink():
            return f"cannot read the file: {_reason(exc)}"
        target = os.readlink(path)
        if exc.errno == errno.ELOOP:
            return (
                f"the symbolic link loops ({path.name} -> {target} -> ...): point it at a YAML "
                "file or remove it"
            )
        return (
            f"the symbolic link points to {target}, which {_missing(exc)}: fix the link or "
            "remove it"
        )
    if stat.S_ISREG(status.st_mode):
        return None
    kind = "a FIFO" if stat.S_ISFIFO(status.st_mode) else "not a regular file"
    if stat.S_ISSOCK(status.st_mode):
        kind = "a socket"
    elif stat.S_ISCHR(status.st_mode) or stat.S_ISBLK(status.st_mode):
        kind = "a device"
    return f"the entry is {kind}, not a YAML file: rename or remove it"


def _missing(exc: OSError) -> str:
    return "does not exist" if exc.errno == errno.ENOENT else f"cannot be read ({_reason(exc)})"


def config_stamp(config_dir: str | os.PathLike[str]) -> tuple[tuple[str, int, int], ...]:
    """Name, modification time and size of every file `load_config` would read: equal stamps
    mean a config loaded earlier is still the config on disk (for caches of loaded projects).
    An entry that cannot be read stamps as (name, -1, -1): loading reports it."""
    stamp = []
    for path in config_files(Path(os.path.abspath(config_dir))):
        try:
            status = path.stat()
        except OSError:
            stamp.append((path.name, -1, -1))
        else:
            stamp.append((path.name, status.st_mtime_ns, status.st_size))
    return tuple(stamp)


def config_snapshot(config_dir: str | os.PathLike[str]) -> ConfigSnapshot:
    """The files `load_config` would read, as (name, text) pairs. A file that cannot be read
    as UTF-8 text raises its located ConfigError: load the directory itself to see every
    problem at once (`capport run` validates it before it takes a snapshot)."""
    directory = Path(os.path.abspath(config_dir))
    snapshot = []
    for path in config_files(directory):
        unreadable = _unreadable(path)
        if unreadable is not None:
            raise ConfigError(unreadable, Location(file=str(path)))
        snapshot.append((path.name, read_yaml_text(path)))
    return tuple(snapshot)


def load_config(
    config_dir: str | os.PathLike[str], snapshot: ConfigSnapshot | None = None
) -> CapportConfig:
    """Read every ``*.yml`` / ``*.yaml`` file directly in ``config_dir``, in name order, or the
    files of a `snapshot` taken from it (the directory is then not read at all; locations and
    `$CONFIG_DIR` still name it).

    Raises :class:`ConfigError` only when the directory cannot be listed; every other problem
    is returned in ``CapportConfig.problems``. A directory with no YAML file, or none with a
    pipeline, is valid but has nothing to run: a warning says so.
    """
    directory = Path(os.path.abspath(config_dir))
    reader = _Reader()
    if snapshot is None:
        files = config_files(directory)
        for path in files:
            reader.read_file(path)
    else:
        files = tuple(directory / name for name, _ in snapshot)
        for name, text in snapshot:
            reader.read_document(str(directory / name), _parsed(text, str(directory / name)))
    if not files:
        reader.problem(Location(file=str(directory)), NO_YAML_FILES, "warning")
    elif not reader.pipelines and not reader.problems:
        # With errors, a pipeline may be what did not read: no claim is made.
        reader.problem(Location(file=str(directory)), NO_PIPELINES, "warning")
    return CapportConfig(
        config_dir=directory,
        files=files,
        pipelines=MappingProxyType(reader.pipelines),
        entries=MappingProxyType(
            {section: MappingProxyType(entries) for section, entries in reader.entries.items()}
        ),
        problems=tuple(reader.problems),
    )


def _kind(value: object) -> str:
    """A YAML user's word for a value's type, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


class _Reader:
    """Accumulates entries, pipelines and problems over the files of one directory."""

    def __init__(self) -> None:
        self.pipelines: dict[str, Pipeline] = {}
        self.entries: dict[str, dict[str, Entry]] = {s: {} for s in SECTIONS if s != "pipeline"}
        self.problems: list[Problem] = []
        self._defined: dict[tuple[str, str], Location] = {}

    def problem(
        self, location: Location, message: str, severity: Literal["error", "warning"] = "error"
    ) -> None:
        self.problems.append(Problem(location, message, severity))

    def read_file(self, path: Path) -> None:
        file = str(path)
        unreadable = _unreadable(path)
        if unreadable is not None:
            self.problem(Location(file=file), unreadable)
            return
        try:
            document = load_yaml_file(path)
        except ConfigError as exc:
            self.problem(exc.location, exc.message)
            return
        self.read_document(file, document)

    def read_document(self, file: str, document: Any) -> None:
        if isinstance(document, ConfigError):
            self.problem(document.location, document.message)
            return
        if document is None:
            return
        if not isinstance(document, dict):
            self.problem(
                Location(file=file, line=line_of(document)),
                f"the top level must be a mapping of sections ({', '.join(SECTIONS)}), "
                f"not {_kind(document)}",
            )
            return
        for section, body in document.items():
            location = Location(file=file, line=line_of(document, section), section=str(section))
            if section not in SECTIONS:
                self.problem(
                    location,
                    f"unknown section {str(section)!r}{did_you_mean(section, SECTIONS)} "
                    f"(sections: {', '.join(SECTIONS)})",
                )
            elif body is not None:
                self.read_section(section, body, location)

    def read_section(self, section: str, body: Any, location: Location) -> None:
        if section == "runner" and isinstance(body, dict) and any(k in body for k in RUNNER_KEYS):
            body = {"default": body}
            names_at = {"default": location.line}
        elif isinstance(body, dict):
            names_at = {name: line_of(body, name) for name in body}
        else:
            self.problem(
                location, f"a section must be a mapping of name -> definition, not {_kind(body)}"
            )
            return
        for name, definition in body.items():
            where = location.with_(line=names_at[name] or location.line, name=str(name))
            if not isinstance(name, str):
                self.problem(where, f"{section} names must be strings, not {_kind(name)}")
            elif self.is_new(section, name, where):
                if section == "pipeline":
                    self.pipelines[name] = self.read_pipeline(name, definition, where)
                else:
                    self.entries[section][name] = Entry(section, name, definition, where)

    def is_new(self, section: str, name: str, where: Location) -> bool:
        """Record a definition; False (and a clash problem) when another file already has it."""
        first = self._defined.setdefault((section, name), where)
        if first is where:
            return True
        self.problem(
            where,
            f"{section} '{name}' is defined in both {_file_line(first)} and {_file_line(where)}",
        )
        return False

    def read_pipeline(self, name: str, body: Any, where: Location) -> Pipeline:
        if not isinstance(body, list):
            self.problem(where, f"a pipeline must be a list of stages, not {_kind(body)}")
            return Pipeline(name, (), where)
        if not body:
            self.problem(where, "a pipeline must have at least one stage")
        stages: list[Stage] = []
        first_index: dict[str, int] = {}
        # Stages are numbered from 1 in every message, as transform steps are.
        for index, raw in enumerate(body, 1):
            where_stage = where.with_(line=line_of(body, index - 1), index=index)
            stage = self.read_stage(raw, where_stage)
            if stage is None:
                continue
            if stage.label in first_index:
                self.problem(
                    stage.location,
                    f"duplicate label {stage.label!r}: stages #{first_index[stage.label]} "
                    f"and #{index} share it (labels must be unique within a pipeline)",
                )
            else:
                first_index[stage.label] = index
            # Kept, duplicate or not: its task and args are still checked (a duplicate label
            # must not hide the stage's other mistakes) and its frames are still known.
            stages.append(stage)
        return Pipeline(name, tuple(stages), where)

    def read_stage(self, raw: Any, where: Location) -> Stage | None:
        """One stage, or None (with problems) when it has no usable label and task."""
        if not isinstance(raw, dict):
            self.problem(
                where, f"a stage must be a mapping with 'label' and 'task', not {_kind(raw)}"
            )
            return None
        label = raw.get("label")
        if isinstance(label, str):
            where = where.with_(stage=label)
        usable = True
        for key in ("label", "task"):
            value = raw.get(key)
            at = where.with_(line=line_of(raw, key) or where.line)
            if key not in raw:
                self.problem(at, f"the stage has no {key!r}")
                usable = False
            elif not isinstance(value, str):
                self.problem(at, f"{key!r} must be a string, not {_kind(value)}")
                usable = False
            elif not value:
                self.problem(at, f"{key!r} must not be empty")
                usable = False
        for key in raw:
            if key not in STAGE_KEYS:
                self.problem(
                    where.with_(line=line_of(raw, key) or where.line),
                    f"unknown stage key {str(key)!r}{did_you_mean(key, STAGE_KEYS)} "
                    f"(stage keys: {', '.join(STAGE_KEYS)})",
                )
        if not usable:
            return None
        return Stage(label=raw["label"], task=raw["task"], args=raw.get("args"), location=where)


def _parsed(text: str, file: str) -> Any:
    try:
        return parse_yaml(text, file)
    except ConfigError as exc:
        return exc


def _file_line(location: Location) -> str:
    name = Path(location.file).name if location.file else "?"
    return f"{name}:{location.line}" if location.line is not None else name
