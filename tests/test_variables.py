"""$NAME templates in paths and URLs, and $$name kwargs in transform templates."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from capport_dagster.core import variables
from capport_dagster.core.variables import (
    BUILTIN_VARIABLES,
    canonical_path,
    check_template,
    expand,
    run_variables,
    substitute_kwargs,
    variable_names,
)
from capport_dagster.core.yaml_source import LocatedDict, LocatedList, line_of, parse_yaml
from capport_dagster.errors import ConfigError, Location

HERE = Location(file="a.yml", line=4, section="pipeline", name="p", stage="load", index=0)
VALUES = {"OUTPUT_DIR": "/out", "REF_DATE": "2024-01-02", "TEAM": "lions", "EMPTY": ""}
RULE = "(write $NAME or ${NAME}, or $$ for a literal $)"
BUILTINS = "built-ins: CONFIG_DIR, OUTPUT_DIR, REF_DATE, REF_DATETIME"


def test_public_api() -> None:
    assert set(variables.__all__) == {
        "BUILTIN_VARIABLES",
        "RUN_VARIABLES",
        "canonical_path",
        "check_template",
        "expand",
        "placeholders",
        "run_variables",
        "substitute_kwargs",
        "variable_names",
    }
    assert BUILTIN_VARIABLES == ("CONFIG_DIR", "OUTPUT_DIR", "REF_DATE", "REF_DATETIME")


# --- templates: valid ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "names", "expanded"),
    [
        ("data/ids.csv", (), "data/ids.csv"),
        ("$OUTPUT_DIR/ids.csv", ("OUTPUT_DIR",), "/out/ids.csv"),
        (
            "${OUTPUT_DIR}/ids_${REF_DATE}.csv",
            ("OUTPUT_DIR", "REF_DATE"),
            "/out/ids_2024-01-02.csv",
        ),
        ("${TEAM}s_$TEAM", ("TEAM",), "lionss_lions"),
        ("$TEAM.csv", ("TEAM",), "lions.csv"),
        ("price$$5/$$TEAM", (), "price$5/$TEAM"),
        ("$$$TEAM", ("TEAM",), "$lions"),
        ("a${EMPTY}b", ("EMPTY",), "ab"),  # defined but empty is still defined
        ("https://x.org/?q={}&d=$REF_DATE", ("REF_DATE",), "https://x.org/?q={}&d=2024-01-02"),
    ],
)
def test_expand(template: str, names: tuple[str, ...], expanded: str) -> None:
    assert variable_names(template) == names
    assert expand(template, VALUES, HERE) == expanded
    check_template(template, VALUES.keys(), HERE)


def test_values_are_not_expanded_again() -> None:
    assert expand("$A", {"A": "$B", "B": "x"}, HERE) == "$B"


# --- templates: invalid --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("data/$", f"'$' not followed by a variable name at character 6 of 'data/$' {RULE}"),
        ("a $ b", f"'$' not followed by a variable name at character 3 of 'a $ b' {RULE}"),
        ("$1.csv", f"'$' not followed by a variable name at character 1 of '$1.csv' {RULE}"),
        ("x/${TEAM.csv", f"unclosed '${{' at character 3 of 'x/${{TEAM.csv' {RULE}"),
        ("${}", f"invalid variable name '' at character 1 of '${{}}' {RULE}"),
        ("${A-B}", f"invalid variable name 'A-B' at character 1 of '${{A-B}}' {RULE}"),
    ],
)
def test_malformed(template: str, message: str) -> None:
    for call in (
        lambda: variable_names(template, HERE),
        lambda: expand(template, VALUES, HERE),
        lambda: check_template(template, VALUES, HERE),
    ):
        with pytest.raises(ConfigError) as caught:
            call()
        assert (caught.value.message, caught.value.location) == (message, HERE)


@pytest.mark.parametrize(
    ("template", "message"),
    [
        (
            "data/$FOO.csv",
            "undefined variable $FOO in 'data/$FOO.csv' "
            f"(define it in the environment; {BUILTINS})",
        ),
        (
            "${FOO}/$BAR/$FOO",
            "undefined variables $FOO, $BAR in '${FOO}/$BAR/$FOO' "
            f"(define them in the environment; {BUILTINS})",
        ),
    ],
)
def test_undefined(template: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        expand(template, VALUES, HERE)
    assert (caught.value.message, caught.value.location) == (message, HERE)
    with pytest.raises(ConfigError) as caught:
        check_template(template, set(VALUES), HERE)
    assert (caught.value.message, caught.value.location) == (message, HERE)


def test_str_of_error_shows_location() -> None:
    with pytest.raises(ConfigError, match=r"^a\.yml:4, pipeline 'p', stage 'load' \(#0\): undef"):
        expand("$NOPE", {}, HERE)


# --- run variables -------------------------------------------------------------------------


def test_run_variables_builtins_win_over_environment(tmp_path: Path) -> None:
    values = run_variables(
        config_dir=tmp_path / "config" / ".." / "cfg",
        output_dir=tmp_path / "out",
        ref_datetime=datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=8))),
        environ={"OUTPUT_DIR": "/elsewhere", "REF_DATE": "1999-01-01", "TEAM": "lions"},
    )
    assert values == {
        "CONFIG_DIR": str(tmp_path / "cfg"),
        "OUTPUT_DIR": str(tmp_path / "out"),
        "REF_DATE": "2024-01-02",
        "REF_DATETIME": "2024-01-02T03:04:05+08:00",
        "TEAM": "lions",
    }


@pytest.mark.parametrize(
    ("ref", "date", "iso"),
    [
        (datetime(2024, 2, 29, 23, 30), "2024-02-29", "2024-02-29T23:30:00"),  # naive: no offset
        (datetime(2024, 2, 29, 23, 30, tzinfo=UTC), "2024-02-29", "2024-02-29T23:30:00+00:00"),
    ],
)
def test_run_variables_dates(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, ref, date, iso
) -> None:
    monkeypatch.chdir(tmp_path)
    values = run_variables(
        config_dir=Path("config"), output_dir=Path("output"), ref_datetime=ref, environ={}
    )
    assert values["CONFIG_DIR"] == str(tmp_path / "config")  # relative -> absolute, from cwd
    assert values["OUTPUT_DIR"] == str(tmp_path / "output")
    assert (values["REF_DATE"], values["REF_DATETIME"]) == (date, iso)


# --- kwargs: valid -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "kwargs", "result"),
    [
        ("$$cols", {"cols": ["a", "b"]}, ["a", "b"]),  # whole string: the kwarg, typed
        ("$$n", {"n": 3}, 3),
        ("$$flag", {"flag": None}, None),
        ("$${n}", {"n": True}, True),
        ("col_$$n", {"n": 3}, "col_3"),  # embedded: str(value)
        ("$${a}x$$b", {"a": 1, "b": "y"}, "1xy"),
        ("$1 and $$ and $", {}, "$1 and $$ and $"),  # not placeholders
        (
            {"select": {"$$new": {"action": "concat", "args": {"cols": "$$cols"}}}},
            {"new": "full", "cols": ["a", "b"]},
            {"select": {"full": {"action": "concat", "args": {"cols": ["a", "b"]}}}},
        ),
        (
            [{"join": {"right": "$$frame", "how": "left"}}],
            {"frame": "T"},
            [{"join": {"right": "T", "how": "left"}}],
        ),
        ({"x": 1, "y": [1.5, True, None]}, {}, {"x": 1, "y": [1.5, True, None]}),
        ("$$v", {"v": "$$w"}, "$$w"),  # substituted values are not searched again
    ],
)
def test_substitute_kwargs(body: Any, kwargs: dict[str, Any], result: Any) -> None:
    assert substitute_kwargs(body, kwargs, HERE) == result


def test_substitute_kwargs_never_mutates_and_keeps_positions() -> None:
    body = parse_yaml("- select:\n    $$col: $$src\n    other: [$$n, x]\n", "t.yml")
    before = copy.deepcopy(body)
    result = substitute_kwargs(body, {"col": "c", "src": "s", "n": 1}, HERE)
    assert result == [{"select": {"c": "s", "other": [1, "x"]}}]
    assert body == before
    select = result[0]["select"]
    assert isinstance(result, LocatedList) and isinstance(select, LocatedDict)
    assert (line_of(select, "c"), line_of(select, "other"), line_of(select["other"], 1)) == (
        2,
        3,
        3,
    )
    assert result[0] is not body[0] and select["other"] is not body[0]["select"]["other"]


# --- kwargs: invalid -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "kwargs", "message"),
    [
        ("$$x", {}, "no kwarg for placeholder $$x (kwargs given: none)"),
        (
            {"a": ["$$x_1 $$y"], "$$x_1": 1},
            {"z": 1, "b": 2},
            "no kwarg for placeholders $$x_1, $$y (kwargs given: b, z)",
        ),
        (
            {"$$k": 1},
            {"k": ["a"]},
            "the key '$$k' becomes a list or a mapping, which cannot be a mapping key",
        ),
        ({"$$k": 1, "a": 2}, {"k": "a"}, "substituting kwargs makes the key 'a' appear twice"),
    ],
)
def test_substitute_kwargs_errors(body: Any, kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        substitute_kwargs(body, kwargs, HERE)
    assert (caught.value.message, caught.value.location) == (message, HERE)


@pytest.mark.parametrize(
    "template",
    ["$(touch {marker})", "`touch {marker}`", "x; touch {marker}", "${{HOME}}; touch {marker}"],
)
def test_expansion_never_runs_a_shell(template: str, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    text = template.format(marker=marker)
    try:
        expanded = expand(text, {"HOME": "/home/u"}, Location(file="p.yml"))
    except ConfigError:
        expanded = None  # `$(` is not a variable reference: refused, not run
    assert not marker.exists()
    if expanded is not None:
        assert str(marker) in expanded  # the text stays text


# --- canonical paths (which stages touch the same file) -----------------------------------------

KNOWN = {"CONFIG_DIR": "/etc/cfg", "TEAM": "lions"}


@pytest.mark.parametrize(
    ("template", "canonical"),
    [
        ("$CONFIG_DIR/a.csv", "/etc/cfg/a.csv"),
        ("${CONFIG_DIR}/x/../a.csv", "/etc/cfg/a.csv"),
        ("/data/$TEAM.csv", "/data/lions.csv"),
        ("$OUTPUT_DIR/a.csv", "\0${OUTPUT_DIR}\0/a.csv"),
        ("${OUTPUT_DIR}//sub/./a.csv", "\0${OUTPUT_DIR}\0/sub/a.csv"),
        ("/d/$REF_DATE.csv", "/d/\0${REF_DATE}\0.csv"),
        ("/d/$UNDEFINED_ONE.csv", "/d/\0${UNDEFINED_ONE}\0.csv"),
        ("/d/$$x.csv", "/d/$x.csv"),
    ],
)
def test_canonical_path(template: str, canonical: str) -> None:
    assert canonical_path(template, KNOWN, HERE) == canonical


def test_canonical_path_of_a_relative_path_is_under_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert canonical_path("out/../a.csv", KNOWN, HERE) == str(tmp_path / "a.csv")
    assert canonical_path("~/a.csv", KNOWN, HERE) == str(Path.home() / "a.csv")
