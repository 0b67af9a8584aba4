"""Hostile and broken configs: property-based tests of the loader and the validator.

Every generated config directory must end in one of two ways: a valid `Project`, or the project's
own `ConfigError` (a `ValidationError` listing problems) whose every location names a file of that
directory. Never another exception, never a hang, never unbounded memory, and never code run from
a YAML tag.

The documents come from five generators:

- random structure: nested mappings, lists and scalars under real and random section names;
- plausible configs: real section, task, step, dtype and runner words (and `every:` phrases from
  the schedule grammar's tokens) with random values, so the validator's deeper checks are reached;
- sizes: hundreds of stages, thousands of frames, long names, a template used by many stages
  (where validation could grow faster than the config);
- mutations of the example configs in `config/`: deleted keys, wrong types, renamed sections and
  keys, duplicated stages (labels), entries copied into another file (clashes), shared values
  (YAML anchors and aliases), self-references, huge and deeply nested values, unicode, raw
  fragments (alias bombs, `!!python/...` tags, broken syntax);
- hostile fragments alone and in combination.

Most texts are then written as they are; some are edited (lines deleted, duplicated, swapped,
re-indented, truncated, hostile text inserted) or written in another encoding or with bad bytes.

The default profile runs 100 examples per test (20 for the expensive sizes: about 420 in all,
about 15 s); `pytest tests/test_fuzz.py --hypothesis-profile=long` runs the long profile
registered in `tests/conftest.py` (see docs/reliability.md).
"""

from __future__ import annotations

import copy
import gc
import os
import resource
import signal
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml
from dagster import Definitions
from hypothesis import HealthCheck, event, given, note, settings
from hypothesis import strategies as st

from capport_dagster.core.builtin_tasks import DEFAULT_REGISTRY
from capport_dagster.core.config import SECTIONS
from capport_dagster.core.graph import Project, load_project
from capport_dagster.core.loader import RUNNER_KEYS, STAGE_KEYS
from capport_dagster.core.models import DTYPES
from capport_dagster.core.transforms import ACTIONS, JOIN_HOWS, PLANNED_STEPS, STEPS
from capport_dagster.errors import ConfigError, Problem, ValidationError
from capport_dagster.translate.build import build_definitions
from tests.conftest import EXAMPLE_CONFIG, SUMMARY_LINES

# --- limits -------------------------------------------------------------------------------------

#: Hypothesis' deadline for one example (writing the files, loading and validating them). Real
#: configs take milliseconds; the slack is for slow CI machines and the largest inputs.
DEADLINE_MS = 5_000
#: A hard stop for one example: a hang fails the test instead of blocking the run.
HANG_SECONDS = 60
#: Bytes written per example, all files together: inputs stay bounded.
MAX_INPUT_BYTES = 4_000_000
#: How much one example may raise the process' peak memory (RSS) above what it was using when the
#: example began: a fixed allowance plus so many bytes per input byte. Loading costs up to about 75
#: times the input's size (PyYAML's pure-Python parser builds tokens, events and nodes; measured:
#: 5.9 MB of Python objects for an 84 KB input), so the largest input (4 MB) stays within its
#: bound, while a path that grows faster than its input (an alias expanding, a message quoting
#: every value, a quadratic search) goes past it already for a small one.
#:
#: The bound is per example, not for the whole module: Hypothesis keeps records of the examples of
#: a test until the test ends (statistics, a cache of the last 10,000 examples' choices, the tree
#: of the choices tried), about 70 KB per example here (RSS +104 MB over 1,500 plausible configs,
#: while no example raised the peak by more than 0.6 MB), so the module's peak grows with the
#: number of examples whatever the loader does. A module-wide bound measured Hypothesis; a leak in
#: the loader, which it was also meant to catch, is checked without Hypothesis by
#: `test_loading_retains_no_memory`.
EXAMPLE_RSS_ALLOWANCE = 64_000_000
EXAMPLE_RSS_PER_INPUT_BYTE = 100

FUZZ_SETTINGS = settings(
    deadline=DEADLINE_MS,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
)

# --- vocabulary ---------------------------------------------------------------------------------

EXAMPLE_TEXTS: dict[str, str] = {
    path.name: path.read_text() for path in sorted(EXAMPLE_CONFIG.glob("*.yml"))
}
EXAMPLE_DOCS: dict[str, Any] = {name: yaml.safe_load(text) for name, text in EXAMPLE_TEXTS.items()}

TASKS = tuple(DEFAULT_REGISTRY)
STAGE_ARG_KEYS = (
    "filepath",
    "df_name",
    "save_df",
    "from_df",
    "model",
    "name",
    "input",
    "kwargs",
    "df_from",
    "df_to",
    "url_column",
    "template",
    "url_params",
    "param_column",
    "method",
    "format",
    "timeout",
    "retries",
    "backoff",
    "max_concurrent",
)
TRANSFORM_KEYS = ("action", "args", "cols", "template", "separator", *STEPS, *PLANNED_STEPS)
JOIN_KEYS = ("join", "right", "right_select", "left_on", "right_on", "how")
LOGGER_KEYS = ("level", "output", "file_prefix", "file_timestamp")
SCHEDULE_KEYS = ("every", "timezone", "grace")
COLUMN_KEYS = ("dtype", "constraints", "format")
FRAMES = ("EVENTS", "TEAMS", "PLAYERS", "EVENTS_SHAPED", "A", "B", "A-B", "a.b")
MODEL_NAMES = tuple(EXAMPLE_DOCS["model.yml"]["model"])
TRANSFORM_NAMES = tuple(EXAMPLE_DOCS["transform.yml"]["transform"])
PIPELINE_NAMES = tuple(EXAMPLE_DOCS["pipeline.yml"]["pipeline"])

WORDS: tuple[str, ...] = (
    *SECTIONS,
    *STAGE_KEYS,
    *TASKS,
    *STAGE_ARG_KEYS,
    *TRANSFORM_KEYS,
    *JOIN_KEYS,
    *JOIN_HOWS,
    *ACTIONS,
    *DTYPES,
    *RUNNER_KEYS,
    *LOGGER_KEYS,
    *SCHEDULE_KEYS,
    *COLUMN_KEYS,
    *FRAMES,
    *MODEL_NAMES,
    *TRANSFORM_NAMES,
    *PIPELINE_NAMES,
    "default",
    "primary",
    "unique",
    "not_null",
    "foreign",
    "sync_lazy",
    "sync_eager",
    "async_lazy",
    "async_eager",
    "in_process",
    "multiprocess",
    "trace",
    "info",
    "warn",
    "off",
    "GET",
    "POST",
    "json",
    "csv",
)

#: Strings that mean something to YAML, to variables, to the `every` grammar or to a terminal.
TRICKY_STRINGS: tuple[str, ...] = (
    "",
    " ",
    "~",
    "null",
    "off",
    "yes",
    "No",
    "15:00",
    "2024-01-02",
    "2024-01-02T03:04:05Z",
    "1_000",
    "007",
    "0x1F",
    "0o17",
    "1e3",
    ".inf",
    "-.inf",
    ".nan",
    "<<",
    "=",
    "$",
    "$$",
    "${",
    "${}",
    "${1x}",
    "$OUTPUT_DIR/x.csv",
    "$CONFIG_DIR/data/events.csv",
    "${REF_DATE}",
    "$UNDEFINED_CAPPORT_FUZZ_VARIABLE",
    "$$k",
    "$${k}",
    "$$right",
    "$$key",
    "$$select",
    "a.b.c",
    "a..b",
    ".a",
    "a.",
    "a,b, c",
    ",",
    "{} ({})",
    "{}{}{}",
    "x/{}/y",
    "ids={}",
    "http://127.0.0.1:8765/v1/teams",
    "http://[::1",
    "file:///etc/passwd",
    "../../../../etc/passwd",
    "/dev/zero",
    "Monday at 15:00",
    "weekday at 09:30",
    "Mondy",
    "10m30s",
    "10S",
    "0m",
    "101Y",
    "1d",
    "at 25:00",
    "Monday at 15:00 repeating every 1m times 99999999999999",
    "Monday at 15:00 repeating every 1M times 2",
    "9" * 30 + "s",
    "1" * 5000 + "m",
    "at " + "0" * 5000 + "1:00",
    "Monday at 15:00 repeating every 1m times " + "9" * 5000,
    "Asia/Singapore",
    "Not/A_Zone",
    "../../etc/localtime",
    "UTC\x00",
    "%Y-%m-%d",
    "%",
    "%Q",
    "log/",
    "ünïcödé",
    "日本語",
    "😀" * 3,
    "\u202eevil",
    "a\u200bb",
    "e\u0301",
    "\t",
    "\r\n",
    "\x00",
    "\x1b[31mred",
    "\ufeff",
    "\u2028",
    "x" * 300,
)


def _typos(word: str) -> list[str]:
    """Near misses of a word: did-you-mean suggestions and renamed keys."""
    return [word[:-1], word + "s", word.upper(), word.capitalize(), word[1:] + word[:1]]


TYPOS = tuple(
    typo for word in (*SECTIONS, *STAGE_KEYS, *TASKS, *RUNNER_KEYS) for typo in _typos(word)
)

#: A marker file that a `!!python/...` tag would create if the loader ran code. `{marker}` is
#: replaced with a path in the example's temporary directory.
PYTHON_TAGS: tuple[str, ...] = (
    '!!python/object/apply:os.system ["touch {marker}"]',
    '!!python/object/apply:builtins.open ["{marker}", "w"]',
    '!!python/object/apply:subprocess.call [["touch", "{marker}"]]',
    '!!python/object/new:builtins.open ["{marker}", "w"]',
    "!!python/object:builtins.object {{}}",
    "!!python/name:os.system",
    "!!python/module:os",
    "!!python/tuple [1, 2]",
    "!!python/str x",
    '!<tag:yaml.org,2002:python/object/apply:os.system> ["touch {marker}"]',
)


def _billion_laughs(levels: int = 9, width: int = 10) -> str:
    """The classic alias bomb as one flow sequence: `width ** levels` strings once expanded."""
    parts = [f"&l0 [{', '.join(['lol'] * width)}]"]
    for level in range(1, levels):
        parts.append(f"&l{level} [{', '.join([f'*l{level - 1}'] * width)}]")
    return "[" + ", ".join(parts) + "]"


HOSTILE_FRAGMENTS: tuple[str, ...] = (
    *PYTHON_TAGS,
    _billion_laughs(),
    _billion_laughs(5, 10),  # exactly at the limit's order of magnitude
    "[&a [x, y], *a, *a, *a]",
    "&a [*a]",
    "&a {x: *a}",
    "*undefined_anchor",
    "{<<: *undefined_anchor}",
    "{<<: 5}",
    "{<<: [1, 2]}",
    "{<<: {label: x}, label: y}",
    "{a: 1, a: 2}",
    "{? [a, b] : c}",
    "{? {a: 1} : c}",
    "{[a]: b}",
    "!!binary aGVsbG8=",
    "!!set {a, b}",
    "!!timestamp 2024-01-01",
    "!!omap [a: 1]",
    "!!pairs [a: 1]",
    "!custom x",
    "!<tag:example.com,2000:x> y",
    "!!str 12",
    "!!int 12",
    '!!int "x"',
    "!!float abc",
    "!!bool yes",
    '!!null ""',
    "!!map [1]",
    "!!seq {a: 1}",
    "!!merge x",
    "!!value x",
    "[" * 1000 + "]" * 1000,
    "{a: " * 400 + "1" + "}" * 400,
    "[",
    "{",
    '"unterminated',
    "'unterminated",
    "@reserved",
    "`backtick",
    "%YAML 1.1",
    "---",
    "...",
    "- a\n- b",
    "a: b: c",
    '"\\ud800"',
    '"\\x00"',
    '"\\N\\_\\L\\P"',
    '"\\U0010FFFF"',
    "1" * 5000,
    "0x" + "f" * 5000,
    "1" * 5000 + ".5",
    "1e99999",
    "\t- tab",
    "\x00",
    "\x07",
    "\x85",
    "\ufeff",
    "\u2028",
    "\ud800",
)

# --- values -------------------------------------------------------------------------------------


class Raw:
    """A YAML fragment spliced verbatim where a value would be (see `dump`)."""

    def __init__(self, text: str) -> None:
        self.text = text


class Tagged:
    """A scalar with an explicit tag, emitted by the dumper as `!tag value`."""

    def __init__(self, tag: str, value: str) -> None:
        self.tag = tag
        self.value = value


def vocabulary(name: str, items: tuple[Any, ...]) -> st.SearchStrategy[Any]:
    """`st.sampled_from(items)` whose repr names the vocabulary instead of spelling it out.

    Hypothesis records an event each time a `st.recursive` draw exceeds `max_leaves` ("Draw for
    <the strategy's repr> exceeded max_leaves"), keeps every example's events until the test ends
    (for `--hypothesis-show-statistics`), and builds a new string each time. With the items spelt
    out (5,000-character strings, alias bombs), `values` had a repr of 276,000 characters, 1.1 MB
    per event (non-ASCII: 4 bytes a character): 1,500 plausible configs held 230 MB of copies of
    one repr (RSS +334 MB instead of +104 MB), 0.15 MB per example for as long as the test runs.
    That, not the loader, broke the memory bound of the first long run (docs/reliability.md). Now
    the repr is 9,000 characters. An index drawn as an integer shrinks to the first item like
    `sampled_from` does.
    """

    def pick(index: int) -> Any:
        return items[index]

    pick.__name__ = pick.__qualname__ = name
    return st.integers(0, len(items) - 1).map(pick)


words = vocabulary("WORDS", WORDS)
tricky = vocabulary("TRICKY_STRINGS", TRICKY_STRINGS)
typos = vocabulary("TYPOS", TYPOS)
short_text = st.text(max_size=12)
names = st.one_of(words, typos, short_text, tricky)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, 1, -1, 2**63, 2**64, 10**300]),
    st.floats(allow_nan=True, allow_infinity=True),
    names,
)
keys = st.one_of(names, st.none(), st.booleans(), st.integers(-5, 5), st.floats(-1, 1))
hostile_texts = vocabulary("HOSTILE_FRAGMENTS", HOSTILE_FRAGMENTS)
fragments = hostile_texts.map(Raw)
tagged = st.builds(
    Tagged,
    st.sampled_from(
        [
            "tag:yaml.org,2002:str",
            "tag:yaml.org,2002:int",
            "tag:yaml.org,2002:float",
            "tag:yaml.org,2002:bool",
            "tag:yaml.org,2002:null",
            "tag:yaml.org,2002:binary",
            "tag:yaml.org,2002:timestamp",
            "tag:yaml.org,2002:python/none",
            "!local",
        ]
    ),
    st.one_of(short_text, tricky),
)


def nested(leaves: st.SearchStrategy[Any], max_leaves: int = 12) -> st.SearchStrategy[Any]:
    return st.recursive(
        leaves,
        lambda children: st.one_of(
            st.lists(children, max_size=4),
            st.dictionaries(keys, children, max_size=4),
        ),
        max_leaves=max_leaves,
    )


#: Plain values, with now and then a tagged scalar or a raw fragment (most of which do not parse:
#: too many of them and the validator is never reached).
values = nested(st.one_of(*[scalars] * 12, tagged, fragments))
wild_values = nested(st.one_of(scalars, tagged, fragments))


def mapping_of(
    key_words: tuple[str, ...], value: st.SearchStrategy[Any], max_size: int = 5
) -> st.SearchStrategy[dict]:
    """Mostly the keys a reader expects, sometimes others."""
    key = st.one_of(st.sampled_from(key_words), st.sampled_from(key_words), keys)
    return st.dictionaries(key, value, max_size=max_size)


# --- plausible configs --------------------------------------------------------------------------

label_values = st.one_of(st.sampled_from(("load", "save", "t1", "t2", "x")), names, scalars)
frame_values = st.one_of(st.sampled_from(FRAMES), names, values)
column_source = st.one_of(
    st.none(),
    names,
    mapping_of(
        ("action", "args"),
        st.one_of(
            st.sampled_from(ACTIONS),
            mapping_of(
                ("cols", "template", "separator"), st.one_of(names, st.lists(names, max_size=3))
            ),
        ),
    ),
)
select_body = mapping_of(("a", "b", "team_id", "name"), column_source)
join_body = mapping_of(
    JOIN_KEYS,
    st.one_of(st.sampled_from(FRAMES), st.sampled_from(JOIN_HOWS), names, select_body),
)
drop_body = mapping_of(("team_id", "a"), st.one_of(st.booleans(), st.none(), names))
step = st.one_of(
    st.fixed_dictionaries({"select": select_body}),
    st.fixed_dictionaries({"join": join_body}),
    st.fixed_dictionaries({"drop": drop_body}),
    mapping_of((*STEPS, *PLANNED_STEPS), values, max_size=2),
    values,
)
transform_body = st.one_of(st.lists(step, max_size=4), values)
column_spec = st.one_of(
    st.sampled_from(tuple(DTYPES)),
    mapping_of(
        COLUMN_KEYS,
        st.one_of(
            st.sampled_from(tuple(DTYPES)),
            st.lists(names, max_size=3),
            st.sampled_from(("%Y-%m-%d", "%d/%m/%Y %H:%M", "%M:%S", "%Q", "%")),
            names,
            values,
        ),
    ),
    values,
)
model_body = st.one_of(mapping_of(("id", "id?", "name", "?", "a.b"), column_spec), values)
stage_args = st.one_of(
    mapping_of(
        STAGE_ARG_KEYS,
        st.one_of(
            frame_values,
            st.sampled_from(MODEL_NAMES + TRANSFORM_NAMES),
            tricky,
            mapping_of(("k", "right", "key", "select"), values),
            st.lists(mapping_of(("df_from", "param_column", "template"), names), max_size=2),
        ),
    ),
    st.lists(mapping_of(("filepath", "df_name", "model"), frame_values), max_size=3),
    values,
)
stage = st.one_of(
    st.fixed_dictionaries(
        {"label": label_values, "task": st.one_of(st.sampled_from(TASKS), names)},
        optional={"args": stage_args, "extra": values},
    ),
    values,
)
#: `every:` phrases from the grammar's own tokens: numbers of any length (past Python's
#: 4,300-digit int() limit too), units, day words, times, keywords, glued or spaced.
every_tokens = st.one_of(
    st.sampled_from([1, 2, 19, 4300, 4301, 6000]).map(lambda n: "1" * n),
    st.from_regex(r"[0-9]{1,3}", fullmatch=True),
    st.sampled_from(["s", "m", "h", "d", "w", "M", "Y", "S", "min", "Mon", "Monday", "Mondy"]),
    st.sampled_from(["weekday", "at", "repeating", "every", "times", ":", "am", "15:00", "9:5"]),
    st.sampled_from(["", "-", "1.5", "\t", "\u00a0", "\u0661"]),  # odd characters and digits
)
every_phrases = st.one_of(
    st.lists(st.tuples(every_tokens, st.sampled_from(["", " ", "  "])), min_size=1, max_size=8).map(
        lambda parts: "".join(token + space for token, space in parts)
    ),
    st.sampled_from([t for t in TRICKY_STRINGS if any(c.isdigit() for c in t)]),
)
schedule = st.one_of(
    st.fixed_dictionaries(
        {"every": every_phrases}, optional={"timezone": st.one_of(tricky, names)}
    ),
    mapping_of(SCHEDULE_KEYS, st.one_of(every_phrases, tricky, names, values)),
)


def mostly(valid: st.SearchStrategy[Any], other: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Four valid values for one other: an entry is checked further when its fields are valid."""
    return st.one_of(valid, valid, valid, valid, other)


runner_body = st.one_of(
    st.fixed_dictionaries(
        {},
        optional={
            "run_with": mostly(st.sampled_from(("sync_lazy", "async_eager")), names),
            "executor": mostly(st.sampled_from(("in_process", "multiprocess")), names),
            "max_concurrent": mostly(st.integers(1, 64), st.one_of(st.integers(-2, 0), values)),
            "logger": mostly(st.just("default"), names),
            "pipelines": mostly(st.lists(st.sampled_from(("p", "x"))), values),
            "schedule": st.fixed_dictionaries(
                {"every": every_phrases},
                optional={"timezone": mostly(st.sampled_from(("UTC", "Asia/Singapore")), names)},
            ),
        },
    ),
    mapping_of(
        RUNNER_KEYS,
        st.one_of(
            st.sampled_from(("sync_lazy", "async_eager", "in_process", "default")),
            st.integers(-2, 64),
            st.lists(st.sampled_from((*PIPELINE_NAMES, "p", "nope")), max_size=3),
            schedule,
            values,
        ),
    ),
    values,
)
logger_body = st.one_of(mapping_of(LOGGER_KEYS, st.one_of(tricky, names, values)), values)
entry_names = st.one_of(st.sampled_from(("default", "p", "t", "m", "x")), names)


@st.composite
def plausible_document(draw: st.DrawFn) -> dict:
    document: dict = {}
    if draw(st.booleans()):
        document["pipeline"] = draw(
            st.dictionaries(entry_names, st.one_of(st.lists(stage, max_size=6), values), max_size=3)
        )
    if draw(st.booleans()):
        document["transform"] = draw(st.dictionaries(entry_names, transform_body, max_size=3))
    if draw(st.booleans()):
        document["model"] = draw(st.dictionaries(entry_names, model_body, max_size=2))
    if draw(st.booleans()):
        document["runner"] = draw(
            st.one_of(st.dictionaries(entry_names, runner_body, max_size=2), runner_body)
        )
    if draw(st.booleans()):
        document["logger"] = draw(st.dictionaries(entry_names, logger_body, max_size=2))
    if draw(st.integers(0, 4)) == 0:
        document[draw(keys)] = draw(values)
    return document


# --- sizes: many stages, frames, long names, templates used by many stages ---------------------


@st.composite
def scaled_document(draw: st.DrawFn) -> dict:
    """Counts and lengths where the validator's cost could grow faster than the config."""
    prefix = "F" * draw(st.sampled_from([0, 10, 1000, 10_000]))
    long_names = len(prefix) > 10
    stages_count = draw(st.integers(1, 10 if long_names else 300))  # at most ~300 KB in all
    columns = draw(st.integers(1, 300))
    kinds = ["load", "save", "unknown", "transform"] + ([] if long_names else ["load_many"])
    stages: list[Any] = []
    for index in range(stages_count):
        kind = draw(st.sampled_from(kinds))
        frame = f"{prefix}{draw(st.integers(0, index))}"
        if kind == "load":
            args: Any = {"filepath": "a.csv", "df_name": f"{prefix}{index}"}
        elif kind == "load_many":
            args = [{"filepath": "a.csv", "df_name": f"{prefix}{index}_{i}"} for i in range(20)]
        elif kind == "save":
            args = {"filepath": "b.csv", "df_name": frame}
        elif kind == "unknown":
            args = {"filepath": "b.csv", "df_name": f"G{prefix}{index}"}
        else:
            kwargs = {"flag": draw(st.sampled_from([True, False, None, 5, index]))}
            args = {"name": "t", "input": frame, "save_df": frame, "kwargs": kwargs}
        task = {"load": "load_csv", "load_many": "load_csv", "transform": "transform"}
        stages.append({"label": f"s{index}", "task": task.get(kind, "save_csv"), "args": args})
    drop = {f"c{i}": "$$flag" for i in range(columns)}
    return {"pipeline": {"p": stages}, "transform": {"t": [{"drop": drop}]}}


# --- random structure ---------------------------------------------------------------------------

section_names = st.one_of(st.sampled_from(SECTIONS), typos, keys)
random_document = st.one_of(
    st.dictionaries(section_names, nested(st.one_of(scalars, tagged, fragments), 25), max_size=6),
    values,
)

# --- mutations of the example configs -----------------------------------------------------------


def _slots(root: Any) -> list[tuple[Any, Any]]:
    """Every (container, key or index) of a tree, parents before children, each container once."""
    found: list[tuple[Any, Any]] = []
    seen: set[int] = set()
    stack = [root]
    while stack:
        container = stack.pop()
        if id(container) in seen:
            continue
        seen.add(id(container))
        items = container.items() if isinstance(container, dict) else enumerate(container)
        for key, value in list(items):
            found.append((container, key))
            if isinstance(value, dict | list):
                stack.append(value)
    return found


def _deep(depth: int, leaf: Any, as_list: bool) -> Any:
    value = leaf
    for _ in range(depth):
        value = [value] if as_list else {"x": value}
    return value


huge_values = st.one_of(
    st.integers(1, 1_000_000).map(lambda n: "x" * n),
    st.integers(1, 20_000).map(lambda n: ["a"] * n),
    st.integers(1, 5_000).map(lambda n: {f"k{i}": i for i in range(n)}),
    st.builds(_deep, st.integers(1, 600), values, st.booleans()),
    st.integers(1, 6000).map(lambda n: int("9" * n) if n < 4000 else "9" * n),
)
unicode_values = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=30
)
MUTATIONS = (
    "delete",
    "replace",
    "wrong_type",
    "rename",
    "duplicate",
    "share",
    "self_reference",
    "huge",
    "unicode",
    "fragment",
    "swap",
)


def _wrong_type(value: Any) -> list[Any]:
    return [[value], {"x": value}, str(value)[:100], None, 0, True, 1.5, "", [], {}]


@st.composite
def mutated_examples(draw: st.DrawFn) -> dict[str, Any]:
    """The example files (some of them), each a tree mutated a few times; file name -> tree."""
    chosen = draw(
        st.lists(st.sampled_from(sorted(EXAMPLE_DOCS)), min_size=1, max_size=5, unique=True)
    )
    documents = {name: copy.deepcopy(EXAMPLE_DOCS[name]) for name in chosen}
    for _ in range(draw(st.integers(0, 6))):
        name = draw(st.sampled_from(chosen))
        root = {"__root__": documents[name]}
        slots = _slots(root)
        container, key = slots[draw(st.integers(0, len(slots) - 1))]
        operation = draw(st.sampled_from(MUTATIONS))
        event(f"mutation: {operation}")
        value = container[key]
        if operation == "delete" and container is not root:
            del container[key]
        elif operation == "replace":
            container[key] = draw(st.one_of(values, wild_values))
        elif operation == "wrong_type":
            container[key] = draw(st.sampled_from(_wrong_type(value)))
        elif operation == "rename" and isinstance(container, dict) and container is not root:
            new_key = draw(st.one_of(st.sampled_from(_typos(str(key))), keys, unicode_values))
            container[new_key] = container.pop(key)
        elif operation == "duplicate" and isinstance(container, list):
            container.insert(key, copy.deepcopy(value))  # a stage twice: duplicate labels
        elif operation == "share":
            other_container, other_key = draw(st.sampled_from(slots))
            container[key] = other_container[other_key]  # the dumper writes &anchor / *alias
        elif operation == "self_reference" and container is not root:
            container[key] = container
        elif operation == "huge":
            container[key] = draw(huge_values)
        elif operation == "unicode":
            container[key] = draw(unicode_values)
        elif operation == "fragment":
            container[key] = draw(fragments)
        elif operation == "swap":
            other_container, other_key = draw(st.sampled_from(slots))
            container[key], other_container[other_key] = other_container[other_key], value
        documents[name] = root["__root__"]
    if len(chosen) > 1 and draw(st.booleans()):
        # The same entry in two files: a clash naming both.
        source, target = draw(st.permutations(chosen))[:2]
        if isinstance(documents[source], dict) and isinstance(documents[target], dict):
            for section, body in list(documents[source].items())[:1]:
                if isinstance(body, dict) and body:
                    entry = next(iter(body))
                    copied = documents[target].setdefault(section, {})
                    if isinstance(copied, dict):
                        copied[entry] = copy.deepcopy(body[entry])
                        event("mutation: clash across files")
    return documents


# --- from trees to bytes on disk ----------------------------------------------------------------


class _Dumper(getattr(yaml, "CSafeDumper", yaml.SafeDumper)):  # libyaml's emitter is faster
    """A safe dumper that also writes `Raw` placeholders and `Tagged` scalars."""


def _represent_tagged(dumper: _Dumper, data: Tagged) -> yaml.Node:
    return dumper.represent_scalar(data.tag, data.value)


_Dumper.add_representer(Tagged, _represent_tagged)


def dump(document: Any, flow: bool | None) -> str:
    """YAML text for a tree; `Raw` fragments are spliced in verbatim after dumping."""
    raws: list[Raw] = []

    def represent_raw(dumper: _Dumper, data: Raw) -> yaml.Node:
        raws.append(data)
        return dumper.represent_scalar("tag:yaml.org,2002:str", f"RAWFRAGMENT{len(raws) - 1}X")

    class Dumper(_Dumper):
        pass

    Dumper.add_representer(Raw, represent_raw)
    text = yaml.dump(
        document,
        Dumper=Dumper,
        default_flow_style=flow,
        sort_keys=False,
        allow_unicode=True,
        width=120,
    )
    for index, raw in reversed(list(enumerate(raws))):
        fragment = raw.text.replace("{marker}", MARKER)
        text = text.replace(f"RAWFRAGMENT{index}X", fragment)
    return text


TEXT_EDITS = ("none", "delete_line", "duplicate_line", "swap_lines", "truncate", "insert", "indent")


@st.composite
def edited_text(draw: st.DrawFn, text: str) -> str:
    """A few line and character edits of a YAML text (duplicate keys, broken indentation, ...)."""
    # Mostly none: a text that no longer parses never reaches the validator.
    for _ in range(draw(st.sampled_from([0] * 7 + [1, 2, 3]))):
        edit = draw(st.sampled_from(TEXT_EDITS))
        lines = text.split("\n")
        where = draw(st.integers(0, max(len(lines) - 1, 0)))
        if edit == "delete_line":
            del lines[where]
        elif edit == "duplicate_line":
            lines.insert(where, lines[where])
        elif edit == "swap_lines":
            other = draw(st.integers(0, len(lines) - 1))
            lines[where], lines[other] = lines[other], lines[where]
        elif edit == "truncate":
            return text[: draw(st.integers(0, len(text)))]
        elif edit == "insert":
            column = draw(st.integers(0, len(lines[where])))
            inserted = draw(st.one_of(hostile_texts, st.text(max_size=5)))
            lines[where] = lines[where][:column] + inserted + lines[where][column:]
        elif edit == "indent":
            lines[where] = draw(st.sampled_from(["\t", " ", "   "])) + lines[where]
        if edit != "none":
            event(f"text edit: {edit}")
        text = "\n".join(lines)
    return text


ENCODINGS = ("utf-8",) * 20 + ("utf-8-sig", "utf-16", "latin-1", "corrupt")


def encode(text: str, encoding: str, corrupt_at: int) -> bytes:
    if encoding == "corrupt":
        data = text.encode("utf-8", "surrogatepass")
        return data[:corrupt_at] + b"\xff\xfe\xc0" + data[corrupt_at:]
    return text.encode(encoding, "surrogatepass" if encoding.startswith("utf") else "replace")


MARKER = "@@MARKER@@"


@st.composite
def config_files(
    draw: st.DrawFn, trees: st.SearchStrategy[dict[str, Any]], edits: bool = True
) -> Callable[[Path], dict[str, bytes]]:
    """File name -> bytes, given where a `!!python` tag would leave its marker file."""
    documents = draw(trees)
    texts: dict[str, tuple[str, str, int]] = {}
    for name, document in documents.items():
        text = dump(document, draw(st.sampled_from([None, False, True])))
        text = draw(edited_text(text)) if edits else text
        encoding = draw(st.sampled_from(ENCODINGS)) if edits else "utf-8"
        texts[name] = (text, encoding, draw(st.integers(0, len(text))))

    def render(marker: Path) -> dict[str, bytes]:
        return {
            name: encode(text.replace(MARKER, str(marker)), encoding, at)
            for name, (text, encoding, at) in texts.items()
        }

    return render


file_names = st.sampled_from(
    ["a.yml", "b.yaml", "pipeline.yml", "z.yml", ".hidden.yml", "UPPER.YML", "notes.txt"]
)


def _named(documents: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    """One to three files: `config.yml`, or (now and then) only files that are not read."""
    main = st.sampled_from(["config.yml"] * 15 + [".hidden.yml"])
    return st.builds(
        lambda first, document, others: {**others, first: document},
        main,
        documents,
        st.dictionaries(file_names, documents, max_size=2),
    )


# --- running one example ------------------------------------------------------------------------


class Hang(Exception):
    """Raised when one example runs longer than HANG_SECONDS."""


@contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    def expire(signum: int, frame: Any) -> None:
        raise Hang(f"loading and validating took more than {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def peak_rss() -> int:
    """The process' peak resident memory in bytes (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def current_rss() -> int | None:
    """The process' resident memory now, in bytes; None without /proc (not Linux)."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def reset_peak_rss() -> bool:
    """Lower the process' recorded peak RSS to its current RSS (Linux 4.0+); False if impossible."""
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")  # 5: reset the peak only (1-4 would clear page-table bits)
    except OSError:
        return False
    return True


class MemoryMeter:
    """Measures how much each example raises the process' peak RSS, and keeps the worst per test.

    Before an example the recorded peak is reset to the current RSS, so the peak after it is the
    example's own (files rendered and written, loading, validation, messages). Where the peak
    cannot be reset (not Linux), the growth of the process' peak is measured instead: an example
    is then only caught when it goes past every earlier peak by more than its bound.
    """

    def __init__(self) -> None:
        self.can_reset = current_rss() is not None and reset_peak_rss()
        self.start = current_rss() or peak_rss()
        self.process_peak = peak_rss()  # across the resets
        self.worst: dict[str, tuple[int, int]] = {}  # test -> (growth, input bytes)
        self.examples: dict[str, int] = {}

    def begin(self) -> int:
        self.process_peak = max(self.process_peak, peak_rss())  # includes generating the example
        if self.can_reset and reset_peak_rss():
            return current_rss() or peak_rss()
        return peak_rss()

    def end(self, test: str, before: int, input_bytes: int) -> int:
        peak = peak_rss()
        self.process_peak = max(self.process_peak, peak)
        growth = max(peak - before, 0)
        self.examples[test] = self.examples.get(test, 0) + 1
        if growth > self.worst.get(test, (-1, 0))[0]:
            self.worst[test] = (growth, input_bytes)
        return growth

    def report(self) -> list[str]:
        lines = [
            f"test_fuzz memory: process peak {self.process_peak / 1e6:.0f} MB "
            f"({(self.process_peak - self.start) / 1e6:+.0f} MB over the module, Hypothesis' "
            "records included); worst example per test"
            + ("" if self.can_reset else " (growth of the process peak: cannot reset it here)")
            + ":"
        ]
        for test, (growth, size) in self.worst.items():
            lines.append(
                f"  {test}: {self.examples[test]} examples, peak RSS +{growth / 1e6:.1f} MB "
                f"(input {size / 1e3:.0f} KB)"
            )
        return lines


def _growth_bucket(growth: int) -> str:
    for limit, label in ((1e6, "< 1 MB"), (10e6, "1-10 MB"), (100e6, "10-100 MB")):
        if growth < limit:
            return label
    return ">= 100 MB"


#: How the problems of a file that is not plain YAML begin (for the statistics only).
YAML_PROBLEMS = (
    "invalid YAML",
    "tag ",
    "aliases ",
    "an alias ",
    "duplicate key",
    "a mapping key",
    "the file is not valid UTF-8",
    "the top level must be",
    "the config directory has no YAML file",
    "expected a ",
)


def check_directory(config_dir: Path, *, build: bool = True) -> str:
    """Load and validate a directory; assert the outcome is a Project or a located ConfigError,
    and (`build`) that Dagster loads the definitions of a Project."""
    try:
        with time_limit(HANG_SECONDS):
            project = load_project(config_dir)
    except ConfigError as exc:
        problems = (
            exc.problems
            if isinstance(exc, ValidationError)
            else (Problem(exc.location, exc.message),)
        )
        assert problems, "a ConfigError must say what is wrong"
        for problem in problems:
            assert_located(problem, config_dir)
        assert str(exc)
        yaml_level = any(p.message.startswith(YAML_PROBLEMS) for p in problems)
        return "outcome: ConfigError" + (" (YAML)" if yaml_level else " (validation)")
    assert isinstance(project, Project)
    for warning in project.warnings:
        assert warning.severity == "warning"
        assert_located(warning, config_dir)
    # What validate accepts, Dagster loads: the definitions build and a code location serves
    # them (a schedule of seconds once made a freshness policy Dagster refuses).
    if build:
        with time_limit(HANG_SECONDS):
            Definitions.validate_loadable(build_definitions(project=project))
    return "outcome: Project"


def assert_located(problem: Problem, config_dir: Path) -> None:
    file = problem.location.file
    assert file, f"no file in the location of: {problem}"
    path = Path(file)
    assert path == config_dir or path.parent == config_dir, f"{file} is outside {config_dir}"
    assert str(problem)  # prints without failing (odd characters, huge values)


def run_example(render: Callable[[Path], dict[str, bytes]], meter: MemoryMeter, test: str) -> None:
    before = meter.begin()
    with tempfile.TemporaryDirectory(prefix="capport-fuzz-") as temporary:
        root = Path(temporary)
        marker = root / "pwned"
        config_dir = root / "config"
        config_dir.mkdir()
        files = render(marker)
        input_bytes = sum(map(len, files.values()))
        assert input_bytes <= MAX_INPUT_BYTES, "keep the inputs bounded"
        for name, data in files.items():
            (config_dir / name).write_bytes(data)
            shown = data[:3000].decode("utf-8", "backslashreplace")
            note(f"--- {name} ({len(data)} bytes) ---\n{shown}")  # printed if the example fails
        if not any(name.endswith((".yml", ".yaml")) and not name.startswith(".") for name in files):
            (config_dir / "sub.yml").mkdir()  # a directory is not a config file
        event(check_directory(config_dir))
        assert not marker.exists(), "a YAML tag ran code"
    growth = meter.end(test, before, input_bytes)
    event(f"peak RSS growth: {_growth_bucket(growth)}")
    limit = EXAMPLE_RSS_ALLOWANCE + EXAMPLE_RSS_PER_INPUT_BYTE * input_bytes
    assert growth <= limit, (
        f"one example raised peak memory by {growth / 1e6:.0f} MB, more than the "
        f"{limit / 1e6:.0f} MB allowed for {input_bytes} input bytes"
    )


@pytest.fixture(scope="module")
def memory(request: pytest.FixtureRequest) -> Iterator[MemoryMeter]:
    """Each example's memory is bounded (see EXAMPLE_RSS_ALLOWANCE); the worst example of each
    test is printed in the run's summary."""
    assert "UNDEFINED_CAPPORT_FUZZ_VARIABLE" not in os.environ
    meter = MemoryMeter()
    yield meter
    if meter.worst:
        request.config.stash.setdefault(SUMMARY_LINES, []).extend(meter.report())


# --- the properties -----------------------------------------------------------------------------


@FUZZ_SETTINGS
@given(config_files(_named(random_document)))
def test_random_structure(memory: MemoryMeter, render: Callable) -> None:
    run_example(render, memory, "random structure")


@FUZZ_SETTINGS
@given(config_files(_named(plausible_document())))
def test_plausible_configs(memory: MemoryMeter, render: Callable) -> None:
    run_example(render, memory, "plausible configs")


# Big inputs cost seconds each (PyYAML parses about 200 KB/s): a twentieth of the profile's
# examples, at least 20 (the profile is loaded before this module is imported).
SIZES_SETTINGS = settings(FUZZ_SETTINGS, max_examples=max(20, settings().max_examples // 20))


@SIZES_SETTINGS
@given(config_files(_named(scaled_document()), edits=False))
def test_sizes(memory: MemoryMeter, render: Callable) -> None:
    run_example(render, memory, "sizes")


@FUZZ_SETTINGS
@given(config_files(mutated_examples()))
def test_mutated_examples(memory: MemoryMeter, render: Callable) -> None:
    run_example(render, memory, "mutated examples")


@FUZZ_SETTINGS
@given(
    config_files(
        _named(
            st.one_of(
                fragments,
                st.lists(fragments, min_size=1, max_size=4),
                st.dictionaries(section_names, st.one_of(fragments, values), max_size=4),
            )
        )
    )
)
def test_hostile_fragments(memory: MemoryMeter, render: Callable) -> None:
    run_example(render, memory, "hostile fragments")


# --- fixed hostile cases ------------------------------------------------------------------------


def test_examples_are_valid(tmp_path: Path) -> None:
    """The unmutated examples load: the mutations start from a valid config."""
    config_dir = tmp_path / "config"
    config_dir.mkdir()
    for name, text in EXAMPLE_TEXTS.items():
        (config_dir / name).write_text(text)
    assert check_directory(config_dir) == "outcome: Project"


@pytest.mark.parametrize("payload", [tag for tag in PYTHON_TAGS if "{marker}" in tag])
@pytest.mark.parametrize("place", ["top", "section", "stage_args"])
def test_python_tags_run_no_code(tmp_path: Path, payload: str, place: str) -> None:
    """`!!python/object/apply` and friends are refused before anything is constructed.

    Control: PyYAML's unsafe loader does run the same payload (it creates the marker file), so
    the payload is real and its absence after capport's loader proves no code ran.
    """
    control = tmp_path / "control"
    yaml.unsafe_load(payload.replace("{marker}", str(control)))
    assert control.exists(), "the payload should create its file under an unsafe loader"

    marker = tmp_path / "pwned"
    value = payload.replace("{marker}", str(marker))
    text = {
        "top": f"{value}\n",
        "section": f"pipeline: {value}\n",
        "stage_args": f"pipeline:\n  p:\n    - label: l\n      task: noop\n      args: {value}\n",
    }[place]
    config_dir = tmp_path / "config"
    config_dir.mkdir()
    (config_dir / "a.yml").write_text(text)
    with pytest.raises(ValidationError) as caught:
        load_project(config_dir)
    assert not marker.exists()
    (problem,) = caught.value.problems
    assert "is not allowed: capport reads plain YAML only" in problem.message
    assert problem.location.file == str(config_dir / "a.yml")
    assert problem.location.line == text.count("\n")
    assert problem.location.column is not None


def test_billion_laughs_fails_fast(tmp_path: Path) -> None:
    config_dir = tmp_path / "config"
    config_dir.mkdir()
    (config_dir / "a.yml").write_text(f"pipeline:\n  p: {_billion_laughs()}\n")
    started = time.perf_counter()
    before = peak_rss()
    with pytest.raises(ValidationError) as caught:
        load_project(config_dir)
    assert time.perf_counter() - started < 2
    assert peak_rss() - before < 50_000_000
    (problem,) = caught.value.problems
    assert "alias bomb" in problem.message
    assert problem.location.file == str(config_dir / "a.yml")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs and symlinks")
def test_special_files_are_not_read(tmp_path: Path) -> None:
    """A FIFO, a symlink to a device and a symlink loop named *.yml would block or fail a read:
    they are not read, and each is an error at its name (a config file silently missing would
    change what runs), as is a dangling symlink."""
    config_dir = tmp_path / "config"
    config_dir.mkdir()
    os.mkfifo(config_dir / "fifo.yml")
    (config_dir / "zero.yml").symlink_to("/dev/zero")
    (config_dir / "loop.yml").symlink_to(config_dir / "loop.yml")
    (config_dir / "dangling.yml").symlink_to(config_dir / "missing")
    (config_dir / "ok.yml").write_text("pipeline:\n  p:\n    - {label: l, task: noop}\n")
    with time_limit(HANG_SECONDS):
        assert check_directory(config_dir) == "outcome: ConfigError (validation)"
    with pytest.raises(ValidationError) as caught:
        load_project(config_dir)
    assert [
        (Path(p.location.file).name, p.message.split(":")[0]) for p in caught.value.problems
    ] == [
        ("dangling.yml", f"the symbolic link points to {config_dir}/missing, which does not exist"),
        ("fifo.yml", "the entry is a FIFO, not a YAML file"),
        ("loop.yml", f"the symbolic link loops (loop.yml -> {config_dir}/loop.yml -> ...)"),
        ("zero.yml", "the entry is a device, not a YAML file"),
    ]


def test_loading_retains_no_memory(tmp_path: Path) -> None:
    """What loading allocates is freed afterwards, for valid configs and for each kind of failure.

    The per-example memory bound cannot see a slow leak (a cache that never forgets, errors kept
    alive with their tracebacks), and the module's peak also holds Hypothesis' records of every
    example; so the same configs are loaded many times here, without Hypothesis, and the Python
    memory still allocated afterwards is measured.
    """
    hostile = dict(EXAMPLE_TEXTS)
    hostile["pipeline.yml"] += "  bad name:\n    - {label: x, task: nope, extra: 1}\n"
    hostile["z.yml"] = "pipline: {}\ntransform:\n  " + "\n  ".join(
        f"t{i}: [{{drop: {{c{i}: $$flag}}}}, {{action: nope}}]" for i in range(30)
    )
    cases = {
        "valid": EXAMPLE_TEXTS,
        "many problems": hostile,
        "alias bomb": {"a.yml": f"pipeline:\n  p: {_billion_laughs()}\n"},
        "python tag": {"a.yml": "pipeline: !!python/name:os.system\n"},
        "nested": {"a.yml": "[" * 1000 + "]" * 1000},
        "broken": {"a.yml": "pipeline:\n  p: [\n", "b.yml": "\x00"},
        "huge value": {"a.yml": f"pipeline:\n  p:\n    - {{label: l, task: {'x' * 200_000}}}\n"},
    }
    directories = []
    for index, (name, files) in enumerate(cases.items()):
        config_dir = tmp_path / f"config{index}"
        config_dir.mkdir()
        for file, text in files.items():
            (config_dir / file).write_text(text)
        directories.append(config_dir)
        assert check_directory(config_dir, build=False).startswith("outcome: "), name

    def load_all(times: int) -> None:
        for _ in range(times):
            for config_dir in directories:
                check_directory(config_dir, build=False)

    load_all(2)  # warm up: imports, regex and path caches
    tracemalloc.start()
    try:
        gc.collect()
        before = tracemalloc.get_traced_memory()[0]
        load_all(10)
        gc.collect()
        retained = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    # 70 loads: a leak of 1 KB per load would retain 70 KB (measured without one: about 5 KB).
    assert retained < 50_000, f"{retained} bytes retained after 10 loads of each config"
