"""Safe YAML loading that remembers where every value came from.

Config errors must point at a file, line and column, so mappings and lists are loaded as
:class:`LocatedDict` / :class:`LocatedList`: plain ``dict`` / ``list`` subclasses that also carry
the 1-based position of the node and of each key or item. The loader is a ``yaml.SafeLoader``
subclass that is stricter than PyYAML where PyYAML is surprising for a config language:

- duplicate keys in one mapping are an error (PyYAML silently keeps the last one);
- only plain data is allowed: mappings, lists, strings, numbers, booleans and null. Every other
  tag (``!!python/...``, ``!!binary``, ``!!set``, ``!!timestamp``, ``!custom``) is an error;
- scalars are resolved as in YAML 1.2 (core schema), not 1.1: ``off``/``yes`` stay strings
  (``level: off``), ``15:00`` stays a string instead of the sexagesimal 900 (``every: 15:00``),
  dates stay strings, ``1e3`` is a float;
- aliases may not expand the document by more than :data:`MAX_ALIAS_EXPANSION` nodes, and may not
  refer to themselves, so a hostile file (billion laughs) fails fast instead of exhausting memory
  in whatever code later walks the values;
- brackets (``[ ]``, ``{ }``) may not nest more than :data:`MAX_FLOW_NESTING` levels deep.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import yaml
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.error import Mark
from yaml.nodes import MappingNode, Node, SequenceNode

from capport_dagster.errors import ConfigError, Location

__all__ = [
    "MAX_ALIAS_EXPANSION",
    "MAX_FLOW_NESTING",
    "LocatedDict",
    "LocatedList",
    "column_of",
    "describe",
    "line_of",
    "load_yaml_file",
    "location_at",
    "parse_yaml",
    "read_yaml_text",
]

#: How many nodes aliases may add to a document in total (each use of ``*name`` adds the size of
#: the anchored value). Real configs stay far below; an alias bomb passes it at once.
MAX_ALIAS_EXPANSION = 100_000

#: How deeply brackets (flow collections: ``[ ]`` and ``{ }``) may nest. Real configs use a few
#: levels. Deeper ones cost PyYAML's pure-Python scanner time quadratic in the depth: while a
#: bracket may still start a key it looks up to 1,024 characters ahead, going over every open level
#: at each token, so 1,000 nested brackets took 1.5 s per file (found by tests/test_fuzz.py).
MAX_FLOW_NESTING = 100
_TOO_DEEP = f"values are nested too deeply (more than {MAX_FLOW_NESTING} levels of [ ] and {{ }})"

Position = tuple[int, int]  # 1-based (line, column)


class LocatedDict(dict):
    """A mapping read from YAML: a real ``dict``, plus the position of itself and of each key."""

    line: int | None = None
    column: int | None = None
    key_positions: dict[Any, Position] | None = None


class LocatedList(list):
    """A sequence read from YAML: a real ``list``, plus the position of itself and of each item."""

    line: int | None = None
    column: int | None = None
    item_positions: list[Position] | None = None


_SELF = object()


def _position(container: object, key_or_index: object = _SELF) -> Position | None:
    if not isinstance(container, LocatedDict | LocatedList):
        return None
    if key_or_index is _SELF:
        return None if container.line is None else (container.line, container.column or 1)
    if isinstance(container, LocatedDict):
        try:
            return (container.key_positions or {}).get(key_or_index)
        except TypeError:  # an unhashable key cannot be in a mapping
            return None
    items = container.item_positions or []
    is_index = isinstance(key_or_index, int) and not isinstance(key_or_index, bool)
    return items[key_or_index] if is_index and 0 <= key_or_index < len(items) else None


def line_of(container: object, key_or_index: object = None) -> int | None:
    """The 1-based line of a YAML container, or of one of its keys / items; None when unknown.

    Works on any value, so callers need not check where a value came from.
    """
    position = _position(container, _SELF if key_or_index is None else key_or_index)
    return None if position is None else position[0]


def column_of(container: object, key_or_index: object = None) -> int | None:
    """The 1-based column matching :func:`line_of`; None when unknown."""
    position = _position(container, _SELF if key_or_index is None else key_or_index)
    return None if position is None else position[1]


# --- the loader ------------------------------------------------------------------------------

_TAG = "tag:yaml.org,2002:"
_REPLACED = {f"{_TAG}{name}" for name in ("bool", "int", "float", "timestamp")}


def _mark(mark: Mark) -> Position:
    return (mark.line + 1, mark.column + 1)


class _Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 scalars, located containers, no duplicate keys, no other tags."""

    yaml_implicit_resolvers: ClassVar[dict] = {
        first: [(tag, rx) for tag, rx in resolvers if tag not in _REPLACED]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    yaml_constructors: ClassVar[dict] = dict(yaml.SafeLoader.yaml_constructors)

    def fetch_flow_collection_start(self, TokenClass: type) -> None:
        # Stop before the scanner's look-ahead over thousands of open brackets gets slow; the
        # same limit, at the same bracket, as `_check_aliases` for documents libyaml parsed.
        if self.flow_level >= MAX_FLOW_NESTING:
            raise yaml.scanner.ScannerError(None, None, _TOO_DEEP, self.get_mark())
        super().fetch_flow_collection_start(TokenClass)


# YAML 1.2 core schema (https://yaml.org/spec/1.2.2/#1032-tag-resolution); ints before floats.
_Loader.add_implicit_resolver(
    f"{_TAG}bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
_Loader.add_implicit_resolver(
    f"{_TAG}int",
    re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$"),
    list("-+0123456789"),
)
_Loader.add_implicit_resolver(
    f"{_TAG}float",
    re.compile(
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
    list("-+0123456789."),
)


def _bad_scalar(node: Node, kind: str) -> ConstructorError:
    return ConstructorError(None, None, f"{node.value!r} is not {kind}", node.start_mark)


def _construct_bool(loader: _Loader, node: Node) -> bool:
    text = str(loader.construct_scalar(node)).lower()
    if text not in ("true", "false"):
        raise _bad_scalar(node, "a boolean (true or false)")
    return text == "true"


_INT = re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$")


def _construct_int(loader: _Loader, node: Node) -> int:
    text = str(loader.construct_scalar(node))
    try:
        value = int(text, 0) if text[:2].lower() in ("0x", "0o") else int(text, 10)
        # Python refuses to write an integer of more than sys.get_int_max_str_digits() (4,300)
        # decimal digits, but reads hexadecimal and octal ones of any size: every message that
        # quoted such a value would fail with a ValueError. Decimal ones fail in int() above.
        str(value)
    except ValueError:
        if _INT.match(text):
            shown = text if len(text) <= 40 else f"{text[:20]}...{text[-10:]}"
            raise ConstructorError(
                None,
                None,
                f"the integer {shown} ({len(text)} characters) is too large: at most "
                f"{sys.get_int_max_str_digits()} decimal digits",
                node.start_mark,
            ) from None
        raise _bad_scalar(node, "an integer") from None
    return value


def _construct_float(loader: _Loader, node: Node) -> float:
    try:
        return SafeConstructor.construct_yaml_float(loader, node)
    except (ValueError, IndexError):  # PyYAML indexes the text: `!!float ""` is an IndexError
        raise _bad_scalar(node, "a number") from None


def _construct_list(loader: _Loader, node: Node) -> LocatedList:
    if not isinstance(node, SequenceNode):
        raise ConstructorError(None, None, f"expected a sequence, found {node.id}", node.start_mark)
    items = LocatedList(loader.construct_object(child, deep=True) for child in node.value)
    items.line, items.column = _mark(node.start_mark)
    items.item_positions = [_mark(child.start_mark) for child in node.value]
    return items


def _construct_dict(loader: _Loader, node: Node) -> LocatedDict:
    if not isinstance(node, MappingNode):
        raise ConstructorError(None, None, f"expected a mapping, found {node.id}", node.start_mark)
    # Merged (`<<: *base`) keys may be overridden; a key written twice in the mapping may not.
    own = {id(key) for key, _ in node.value if key.tag != f"{_TAG}merge"}
    loader.flatten_mapping(node)
    data = LocatedDict()
    positions: dict[Any, Position] = {}
    key_nodes: dict[Any, Node] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            hash(key)
        except TypeError:
            raise ConstructorError(
                None,
                None,
                "a mapping key must be a plain value, not a mapping or a list",
                key_node.start_mark,
            ) from None
        previous = key_nodes.get(key)
        if previous is not None and id(previous) in own and id(key_node) in own:
            raise ConstructorError(
                None,
                None,
                f"duplicate key {key!r} (first at line {previous.start_mark.line + 1})",
                key_node.start_mark,
            )
        data[key] = loader.construct_object(value_node, deep=True)
        positions[key] = _mark(key_node.start_mark)
        key_nodes[key] = key_node
    data.line, data.column = _mark(node.start_mark)
    data.key_positions = positions
    return data


def _reject_tag(loader: _Loader, node: Node) -> Any:
    tag = node.tag.replace(_TAG, "!!", 1) if node.tag.startswith(_TAG) else node.tag
    raise ConstructorError(
        None,
        None,
        f"tag {tag!r} is not allowed: capport reads plain YAML only "
        "(mappings, lists, strings, numbers, booleans, null)",
        node.start_mark,
    )


_Loader.add_constructor(f"{_TAG}bool", _construct_bool)
_Loader.add_constructor(f"{_TAG}int", _construct_int)
_Loader.add_constructor(f"{_TAG}float", _construct_float)
_Loader.add_constructor(f"{_TAG}seq", _construct_list)
_Loader.add_constructor(f"{_TAG}map", _construct_dict)
for _name in ("binary", "timestamp", "omap", "pairs", "set"):
    _Loader.add_constructor(f"{_TAG}{_name}", _reject_tag)
_Loader.add_constructor(None, _reject_tag)


if getattr(yaml, "__with_libyaml__", False):

    class _CLoader(yaml.cyaml.CParser, SafeConstructor, yaml.resolver.Resolver):
        """libyaml's parser with `_Loader`'s resolvers and constructors."""

        yaml_implicit_resolvers: ClassVar[dict] = _Loader.yaml_implicit_resolvers
        yaml_constructors: ClassVar[dict] = _Loader.yaml_constructors

        def __init__(self, stream: str) -> None:  # as yaml.CSafeLoader
            yaml.cyaml.CParser.__init__(self, stream)
            SafeConstructor.__init__(self)
            yaml.resolver.Resolver.__init__(self)

else:  # PyYAML built without libyaml: the pure-Python parser does everything
    _CLoader = None  # type: ignore[assignment, misc]


def _check_aliases(root: Node) -> None:
    """Refuse self-referencing aliases and alias expansion past :data:`MAX_ALIAS_EXPANSION`, and
    brackets nested past :data:`MAX_FLOW_NESTING` (libyaml's parser allows 1,000 levels).

    PyYAML shares one object per anchor, so loading itself is cheap; but anything that later walks
    the values (substitution, validation, printing) pays for the full expansion. Each distinct node
    is sized once, so this check is linear in the size of the file.
    """
    sizes: dict[int, int] = {}
    on_path: set[int] = set()
    extra = 0

    def size(node: Node, brackets: int = 0) -> int:
        nonlocal extra
        known = sizes.get(id(node))
        if known is not None:  # reached again: through an alias
            extra += known
            if extra > MAX_ALIAS_EXPANSION:
                raise ConstructorError(
                    None,
                    None,
                    f"aliases expand this document by more than {MAX_ALIAS_EXPANSION} values "
                    "(an alias bomb?)",
                    node.start_mark,
                )
            return known
        if id(node) in on_path:
            raise ConstructorError(
                None, None, "an alias refers to the value that contains it", node.start_mark
            )
        if isinstance(node, SequenceNode | MappingNode) and node.flow_style:
            brackets += 1  # as the pure-Python scanner counts them: brackets written in the file
            if brackets > MAX_FLOW_NESTING:
                raise ConstructorError(None, None, f"invalid YAML: {_TOO_DEEP}", node.start_mark)
        on_path.add(id(node))
        total = 1
        if isinstance(node, SequenceNode):
            total += sum(size(child, brackets) for child in node.value)
        elif isinstance(node, MappingNode):
            total += sum(size(key, brackets) + size(value, brackets) for key, value in node.value)
        on_path.discard(id(node))
        sizes[id(node)] = total
        return total

    size(root)


def parse_yaml(text: str, file: str) -> Any:
    """Load one YAML document from text; ``file`` is only used in error locations."""
    composed = _composed_by_libyaml(text)
    if composed is None:
        try:
            loader = _Loader(text)  # the reader rejects control characters right here
        except yaml.reader.ReaderError as exc:
            line = text.count("\n", 0, exc.position) + 1
            column = exc.position - text.rfind("\n", 0, exc.position)
            message = f"invalid YAML: control character U+{exc.character:04X} is not allowed"
            raise ConfigError(message, Location(file=file, line=line, column=column)) from None
    else:
        loader, node = composed
    try:
        if composed is None:
            node = loader.get_single_node()
        if node is None:
            return None
        _check_aliases(node)
        return loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        raise _config_error(exc, file) from None
    except RecursionError:
        raise ConfigError(
            "invalid YAML: values are nested too deeply", Location(file=file)
        ) from None
    finally:
        loader.dispose()


def _composed_by_libyaml(text: str) -> tuple[SafeConstructor, Node | None] | None:
    """The document's node tree parsed by libyaml, with the loader that constructs it; None when
    libyaml is not there or rejects the text: errors are then reported by the pure-Python
    parser, whose messages users see (libyaml words them differently). Nodes, tags, marks and
    constructors are the same either way; libyaml also stops nesting at 1,000 levels.

    (A 5,000-stage, 560 KB file loads in 1.0 s instead of 3.7 s: the pure-Python scanner was
    most of `capport validate`'s time.)
    """
    if _CLoader is None or yaml.reader.Reader.NON_PRINTABLE.search(text):
        return None
    loader = _CLoader(text)
    try:
        return loader, loader.get_single_node()
    except yaml.YAMLError:
        loader.dispose()
        return None


#: PyYAML's phrases that say less than they could.
_PLAIN_WORDS = {
    "found unexpected end of stream": "the file ends before this value is closed",
}


def _config_error(exc: yaml.MarkedYAMLError, file: str) -> ConfigError:
    mark = exc.problem_mark or exc.context_mark
    position = _mark(mark) if mark is not None else (None, None)
    if isinstance(exc, ConstructorError) and exc.context is None:
        message = exc.problem or "invalid YAML"  # raised above, already phrased for users
    else:
        # PyYAML says "<context>, but <problem>"; lead with the problem, where it was found.
        problem = (exc.problem or exc.context or "").removeprefix("but ")
        message = f"invalid YAML: {_PLAIN_WORDS.get(problem, problem)}"
        if exc.context and exc.problem:
            context = exc.context
            if exc.context_mark is not None and _mark(exc.context_mark) != position:
                context += " at line {}, column {}".format(*_mark(exc.context_mark))
            message += f" ({context})"
    return ConfigError(message, Location(file=file, line=position[0], column=position[1]))


def load_yaml_file(path: Path) -> Any:
    """Load one YAML file safely: plain data in located containers, or a located ConfigError."""
    return parse_yaml(read_yaml_text(path), str(path))


def read_yaml_text(path: Path) -> str:
    """A YAML file's text (UTF-8, a byte-order mark dropped), or a located ConfigError."""
    file = str(path)
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(
            f"cannot read the file: {exc.strerror or exc}", Location(file=file)
        ) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise ConfigError("the file is not valid UTF-8", Location(file=file, line=line)) from None
    return text


def location_at(location: Location, container: object, key: object) -> Location:
    """The location of one key of a YAML mapping or item of a list, when the loader kept it."""
    line = line_of(container, key)
    if line is None:
        return location
    return location.with_(line=line, column=column_of(container, key))


def describe(value: object) -> str:
    """A YAML value as an error message names it: "a mapping", "a list", "int 3", "null"."""
    if value is None:
        return "null"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"{type(value).__name__} {value!r}"
