"""Safe YAML loading: located containers, strict errors with file, line and column."""

from __future__ import annotations

import copy
import itertools
import pickle
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from capport_dagster.core import yaml_source
from capport_dagster.core.yaml_source import (
    MAX_ALIAS_EXPANSION,
    LocatedDict,
    LocatedList,
    column_of,
    line_of,
    load_yaml_file,
    parse_yaml,
)
from capport_dagster.errors import ConfigError, Location
from tests.conftest import REPO


def write(tmp_path: Path, text: str | bytes, name: str = "c.yml") -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def test_public_api() -> None:
    assert set(yaml_source.__all__) == {
        "MAX_ALIAS_EXPANSION",
        "MAX_FLOW_NESTING",
        "LocatedDict",
        "LocatedList",
        "column_of",
        "describe",
        "line_of",
        "location_at",
        "load_yaml_file",
        "parse_yaml",
        "read_yaml_text",
    }


def test_location_at_points_at_the_key_when_known() -> None:
    body = parse_yaml("a:\n  b: 1\n", "x.yml")
    base = Location(file="x.yml", section="model", name="m")
    assert yaml_source.location_at(base, body["a"], "b") == base.with_(line=2, column=3)
    assert yaml_source.location_at(base, {"b": 1}, "b") == base


@pytest.mark.parametrize(
    ("value", "text"), [(None, "null"), ({}, "a mapping"), ([1], "a list"), (3, "int 3")]
)
def test_describe_names_yaml_values(value: object, text: str) -> None:
    assert yaml_source.describe(value) == text


# --- valid ---------------------------------------------------------------------------------


def test_containers_are_located_dicts_and_lists(tmp_path: Path) -> None:
    data = load_yaml_file(write(tmp_path, "a: 1\nb:\n  c: [x,\n    y]\n  d:\n    - 1\n"))
    assert data == {"a": 1, "b": {"c": ["x", "y"], "d": [1]}}
    assert isinstance(data, LocatedDict) and isinstance(data, dict)
    assert isinstance(data["b"]["c"], LocatedList) and isinstance(data["b"]["c"], list)
    assert (line_of(data), column_of(data)) == (1, 1)
    assert (line_of(data, "b"), line_of(data["b"], "d")) == (2, 5)
    assert (line_of(data["b"]["c"]), column_of(data["b"]["c"])) == (3, 6)
    assert (line_of(data["b"]["c"], 1), column_of(data["b"]["c"], 1)) == (4, 5)


@pytest.mark.parametrize(
    ("container", "key"),
    [
        ({"a": 1}, "a"),  # plain dict
        ([1], 0),  # plain list
        ("text", None),
        (None, None),
        (parse_yaml("a: 1", "f"), "missing"),
        (parse_yaml("a: 1", "f"), ["unhashable"]),
        (parse_yaml("[1]", "f"), 5),
        (parse_yaml("[1]", "f"), True),
        (parse_yaml("[1]", "f"), "0"),
    ],
)
def test_line_of_unknown_is_none(container: Any, key: Any) -> None:
    assert line_of(container, key) is None
    assert column_of(container, key) is None


@pytest.mark.parametrize(
    ("text", "value"),
    [
        # YAML 1.2 core schema, not 1.1: what a config author means.
        ("off", "off"),
        ("yes", "yes"),
        ("15:00", "15:00"),
        ("2024-01-01", "2024-01-01"),
        ("1_000", "1_000"),
        ("true", True),
        ("False", False),
        ("007", 7),
        ("-12", -12),
        ("0x1F", 31),
        ("0o17", 15),
        ("1e3", 1000.0),
        ("-1.5", -1.5),
        (".5", 0.5),
        (".inf", float("inf")),
        ("~", None),
        ("null", None),
        ("", None),
        ("!!int '12'", 12),
        ("!!str 12", "12"),
        ("!!bool TRUE", True),
        ("!!float '2'", 2.0),
    ],
)
def test_scalars(text: str, value: Any) -> None:
    assert parse_yaml(f"v: {text}\n", "f.yml") == {"v": value}


def test_merge_keys_may_be_overridden() -> None:
    data = parse_yaml("base: &b {x: 1, y: 2}\nd:\n  <<: *b\n  x: 3\n", "f.yml")
    assert data["d"] == {"x": 3, "y": 2}
    assert line_of(data["d"], "x") == 4


def test_small_aliases_are_fine() -> None:
    data = parse_yaml("a: &a [1, 2]\nb: [*a, *a]\n", "f.yml")
    assert data["b"] == [[1, 2], [1, 2]]


@pytest.mark.parametrize("text", ["", "# only a comment\n", "---\n"])
def test_empty_document_is_none(tmp_path: Path, text: str) -> None:
    assert load_yaml_file(write(tmp_path, text)) is None


def test_utf8_bom_is_accepted(tmp_path: Path) -> None:
    assert load_yaml_file(write(tmp_path, "\ufeffa: é\n".encode())) == {"a": "é"}


def test_positions_survive_pickle_and_copy() -> None:
    data = parse_yaml("a:\n  b: [1, 2]\n", "f.yml")
    for clone in (pickle.loads(pickle.dumps(data)), copy.deepcopy(data)):
        assert clone == data
        assert line_of(clone["a"], "b") == 2
        assert column_of(clone["a"]["b"], 1) == 10


# --- invalid -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "line", "column", "message"),
    [
        pytest.param(
            "a: 1\nb: 2\na: 3\n", 3, 1, "duplicate key 'a' (first at line 1)", id="duplicate key"
        ),
        pytest.param(
            "m:\n  - {x: 1, x: 2}\n", 2, 12, "duplicate key 'x' (first at line 2)", id="dup flow"
        ),
        pytest.param(
            "x: !!python/object/apply:os.system ['echo hacked']\n",
            1,
            4,
            "tag '!!python/object/apply:os.system' is not allowed: capport reads plain YAML only "
            "(mappings, lists, strings, numbers, booleans, null)",
            id="python tag",
        ),
        pytest.param(
            "x: !!python/name:os.system\n",
            1,
            4,
            "tag '!!python/name:os.system' is not allowed: capport reads plain YAML only "
            "(mappings, lists, strings, numbers, booleans, null)",
            id="python name",
        ),
        pytest.param(
            "x: !!binary aGk=\n",
            1,
            4,
            "tag '!!binary' is not allowed: capport reads plain YAML only "
            "(mappings, lists, strings, numbers, booleans, null)",
            id="binary",
        ),
        pytest.param(
            "x: !custom 1\n",
            1,
            4,
            "tag '!custom' is not allowed: capport reads plain YAML only "
            "(mappings, lists, strings, numbers, booleans, null)",
            id="custom tag",
        ),
        pytest.param(
            "a: b: c\n", 1, 5, "invalid YAML: mapping values are not allowed here", id="colon"
        ),
        pytest.param(
            "a: [1, 2\nb: 3\n",
            2,
            2,
            "invalid YAML: expected ',' or ']', but got ':' "
            "(while parsing a flow sequence at line 1, column 4)",
            id="unclosed flow",
        ),
        pytest.param(
            "a: 'abc\n",
            2,
            1,
            "invalid YAML: the file ends before this value is closed "
            "(while scanning a quoted scalar at line 1, column 4)",
            id="unclosed quote",
        ),
        pytest.param(
            "a: 1\n\tb: 2\n",
            2,
            1,
            "invalid YAML: found character '\\t' that cannot start any token "
            "(while scanning for the next token)",
            id="tab",
        ),
        pytest.param(
            "a: 1\n---\nb: 2\n",
            2,
            1,
            "invalid YAML: found another document "
            "(expected a single document in the stream at line 1, column 1)",
            id="two documents",
        ),
        pytest.param(
            "a: x\x07\n", 1, 5, "invalid YAML: control character U+0007 is not allowed", id="ctrl"
        ),
        pytest.param(
            "a: &a [1, *a]\n",
            1,
            4,
            "an alias refers to the value that contains it",
            id="recursive alias",
        ),
        pytest.param(
            "? [1]\n: 2\n",
            1,
            3,
            "a mapping key must be a plain value, not a mapping or a list",
            id="unhashable key",
        ),
        pytest.param("x: !!int abc\n", 1, 4, "'abc' is not an integer", id="bad int"),
        pytest.param("x: !!float abc\n", 1, 4, "'abc' is not a number", id="bad float"),
        pytest.param(
            "x: !!bool maybe\n", 1, 4, "'maybe' is not a boolean (true or false)", id="bad bool"
        ),
    ],
)
def test_invalid_yaml(tmp_path: Path, text: str, line: int, column: int, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_yaml_file(path)
    assert caught.value.message == message
    assert caught.value.location == Location(file=str(path), line=line, column=column)


def test_alias_bomb_is_refused_quickly(tmp_path: Path) -> None:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    names = "abcdefghij"
    for previous, name in itertools.pairwise(names):
        lines.append(f"{name}: &{name} [{', '.join([f'*{previous}'] * 9)}]")
    path = write(tmp_path, "\n".join(lines) + "\n")
    started = time.perf_counter()
    with pytest.raises(ConfigError) as caught:
        load_yaml_file(path)
    assert time.perf_counter() - started < 2
    assert caught.value.message == (
        f"aliases expand this document by more than {MAX_ALIAS_EXPANSION} values (an alias bomb?)"
    )
    assert caught.value.location.file == str(path)
    assert caught.value.location.line == 5  # the first anchor whose reuse passed the limit


PARSERS = [
    pytest.param(
        True,
        id="libyaml",
        marks=pytest.mark.skipif(yaml_source._CLoader is None, reason="no libyaml"),
    ),
    pytest.param(False, id="pure-python"),
]


@pytest.mark.parametrize("libyaml", PARSERS)
@pytest.mark.parametrize("depth", [101, 600, 1000, 20_000])
def test_deep_brackets_are_a_located_error_found_fast(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, libyaml: bool, depth: int
) -> None:
    # Past 1,000 levels libyaml refuses the file and the pure-Python parser reads it; its scanner
    # took 1.5 s for each such file (time quadratic in the depth) before the limit.
    if not libyaml:
        monkeypatch.setattr(yaml_source, "_CLoader", None)
    path = write(tmp_path, "a: " + "[" * depth + "]" * depth + "\n")
    started = time.perf_counter()
    with pytest.raises(ConfigError) as caught:
        load_yaml_file(path)
    assert time.perf_counter() - started < 0.5
    assert caught.value.message == (
        "invalid YAML: values are nested too deeply (more than 100 levels of [ ] and { })"
    )
    # At the 101st bracket, whichever parser read the file.
    assert caught.value.location == Location(file=str(path), line=1, column=104)


@pytest.mark.parametrize("libyaml", PARSERS)
def test_brackets_nest_up_to_the_limit(monkeypatch: pytest.MonkeyPatch, libyaml: bool) -> None:
    if not libyaml:
        monkeypatch.setattr(yaml_source, "_CLoader", None)
    depth = yaml_source.MAX_FLOW_NESTING
    value = parse_yaml("a: " + "[{b: " * (depth // 2) + "1" + "}]" * (depth // 2) + "\n", "f")
    for _ in range(depth // 2):
        value = value["a" if "a" in value else "b"]
        (value,) = value
    assert value == {"b": 1}


def test_deep_block_nesting_is_an_error_not_a_crash(tmp_path: Path) -> None:
    text = "".join(" " * i + "k:\n" for i in range(1000)) + " " * 1000 + "v\n"
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_yaml_file(path)
    assert caught.value.message == "invalid YAML: values are nested too deeply"
    assert caught.value.location == Location(file=str(path))


def test_not_utf8(tmp_path: Path) -> None:
    path = write(tmp_path, b"a: 1\nb: \xff\n")
    with pytest.raises(ConfigError) as caught:
        load_yaml_file(path)
    assert caught.value.message == "the file is not valid UTF-8"
    assert caught.value.location == Location(file=str(path), line=2)


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.yml"
    with pytest.raises(ConfigError) as caught:
        load_yaml_file(path)
    assert caught.value.message == "cannot read the file: No such file or directory"
    assert caught.value.location == Location(file=str(path))


def test_an_empty_explicit_float_is_a_located_error(tmp_path: Path) -> None:
    # Found by tests/test_fuzz.py: PyYAML raised IndexError for `!!float ""`.
    path = write(tmp_path, 'a: !!float ""\n')
    with pytest.raises(ConfigError, match=r"'' is not a number"):
        load_yaml_file(path)


# --- regression (issue 7, fuzzing): integers too large to print ---------------------------


@pytest.mark.parametrize(
    ("literal", "shown"),
    [
        ("0x" + "f" * 5000, "0xffffffffffffffffff...ffffffffff (5002 characters)"),
        ("0o" + "7" * 6000, "0o777777777777777777...7777777777 (6002 characters)"),
        ("9" * 5000, "99999999999999999999...9999999999 (5000 characters)"),
    ],
)
def test_integers_too_large_to_print_are_refused(tmp_path: Path, literal: str, shown: str) -> None:
    # Hexadecimal and octal integers are read past Python's 4,300-digit limit, and then any
    # message quoting them (`got int 0xfff...`) raised a bare ValueError.
    path = write(tmp_path, f"model:\n  m: {literal}\n")
    with pytest.raises(ConfigError) as caught:
        load_yaml_file(path)
    assert caught.value.message == (
        f"the integer {shown} is too large: at most {sys.get_int_max_str_digits()} decimal digits"
    )
    assert caught.value.location == Location(file=str(path), line=2, column=6)
    assert parse_yaml("a: 0x" + "f" * 3000, "f")["a"] == 16**3000 - 1  # 3,613 digits: fine


# --- libyaml and the pure-Python parser agree -----------------------------------------------


def _located(value: Any) -> Any:
    """A value with every position it carries, for comparing two loads exactly."""
    if isinstance(value, LocatedDict):
        return (
            "map",
            value.line,
            value.column,
            [(k, (value.key_positions or {}).get(k), _located(v)) for k, v in value.items()],
        )
    if isinstance(value, LocatedList):
        return ("seq", value.line, value.column, value.item_positions, [_located(v) for v in value])
    return (type(value).__name__, value)


AGREEMENT = [
    *sorted((REPO / "config").glob("*.yml")),
    *sorted((REPO / "tests" / "fixtures").rglob("*.yml")),
]


@pytest.mark.skipif(yaml_source._CLoader is None, reason="PyYAML without libyaml")
@pytest.mark.parametrize("path", AGREEMENT, ids=lambda p: str(p.relative_to(REPO)))
def test_libyaml_and_pure_python_load_the_same_values_and_positions(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = path.read_text(encoding="utf-8")
    fast = yaml_source.parse_yaml(text, str(path))
    monkeypatch.setattr(yaml_source, "_CLoader", None)
    assert _located(fast) == _located(yaml_source.parse_yaml(text, str(path)))


@pytest.mark.skipif(yaml_source._CLoader is None, reason="PyYAML without libyaml")
def test_documents_libyaml_parses_do_not_go_through_the_pure_python_parser(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # And those it rejects do, so that the errors keep PyYAML's wording.
    parsed: list[str] = []
    original = yaml_source._Loader.get_single_node

    def counting(self: Any) -> Any:
        parsed.append("python")
        return original(self)

    monkeypatch.setattr(yaml_source._Loader, "get_single_node", counting)
    text = "a: { b: [1, 2.5, true, null, 0x1f], c: &x { d: e } }\nf: *x\n"
    assert yaml_source.parse_yaml(text, "f") == {
        "a": {"b": [1, 2.5, True, None, 31], "c": {"d": "e"}},
        "f": {"d": "e"},
    }
    assert parsed == []
    with pytest.raises(ConfigError, match=r"invalid YAML: .*"):
        yaml_source.parse_yaml("a: [1, 2\nb: 3\n", "f")
    assert parsed == ["python"]
