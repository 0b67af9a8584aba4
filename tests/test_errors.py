"""errors.py: the wording helpers every message shares (did-you-mean, counts)."""

from __future__ import annotations

import pytest

from capport_dagster.errors import count, did_you_mean


@pytest.mark.parametrize(
    ("typed", "choices", "suffix"),
    [
        ("selct", ["select", "join", "drop"], " - did you mean 'select'?"),
        ("LEFT", ["left", "right"], " - did you mean 'left'?"),
        ("Team", ["team", "id"], " - did you mean 'team'?"),
        ("rename", ["select", "join", "drop"], ""),
    ],
)
def test_did_you_mean_suggests_a_close_name_whatever_its_case(
    typed: str, choices: list[str], suffix: str
) -> None:
    assert did_you_mean(typed, choices) == suffix


@pytest.mark.parametrize(
    ("typed", "choices", "suffix"),
    [
        # The text typed is among the choices (a name valid elsewhere, a path whose head is
        # missing): suggesting it back says nothing, the next closest is suggested instead.
        ("stats.goals", ["stats.goals"], ""),
        ("team", ["team", "teams"], " - did you mean 'teams'?"),
        ("a", ["a"], ""),
    ],
)
def test_did_you_mean_never_suggests_the_text_typed(
    typed: str, choices: list[str], suffix: str
) -> None:
    assert did_you_mean(typed, choices) == suffix


@pytest.mark.parametrize(
    ("number", "text"), [(0, "0 stages"), (1, "1 stage"), (2, "2 stages"), (11, "11 stages")]
)
def test_count(number, text):
    assert count(number, "stage") == text
