"""Runner entries (SPEC 9): parsed and checked against the pipelines and loggers they name."""

from __future__ import annotations

from pathlib import Path

import pytest

from capport_dagster.cli import main
from capport_dagster.core.every import CronTrigger, parse_every
from capport_dagster.core.graph import Project, load_project
from capport_dagster.core.loader import load_config
from capport_dagster.core.modes import RunMode
from capport_dagster.core.runners import (
    Runner,
    Schedule,
    parse_runner,
    pipeline_overdue_after,
    runner_problems,
)
from capport_dagster.errors import ConfigError, Location, Problem, ValidationError

BASE = {
    "p.yml": """
        pipeline:
          players:
            - { label: a, task: noop }
          teams:
            - { label: a, task: noop }
        logger:
          main: { level: info, output: logs }
    """
}


def project(write_config, runners: str) -> Project:
    return load_project(write_config({**BASE, "r.yml": runners}))


def errors(write_config, runners: str) -> list[str]:
    with pytest.raises(ValidationError) as info:
        project(write_config, runners)
    return [str(problem) for problem in info.value.errors]


def parse_errors(write_config, runners: str) -> list[str]:
    """The problems of each runner as `parse_runner` finds them (without the pipelines using
    the runner, which `Project.from_config` adds to the location)."""
    config = load_config(write_config({**BASE, "r.yml": runners}))
    found: list[str] = []
    for entry in config.runners.values():
        with pytest.raises(ValidationError) as info:
            parse_runner(entry, config.pipelines, config.loggers)
        found += [str(problem) for problem in info.value.problems]
    return found


def where(config: Path, line: int, name: str) -> Location:
    return Location(file=str(config / "r.yml"), line=line, section="runner", name=name)


def test_a_named_runner_with_every_key(write_config):
    runners = project(
        write_config,
        """
        runner:
          nightly:
            logger: main
            run_with: async_eager
            executor: multiprocess
            max_concurrent: 4
            pipelines: [players, teams]
            schedule:
              timezone: Asia/Singapore
              every: Monday at 15:00
          minimal: {}
          one_pipeline: { pipelines: teams }
        """,
    ).runners
    config = Path("config").absolute()
    assert runners == {
        "nightly": Runner(
            name="nightly",
            mode=RunMode.ASYNC_EAGER,
            executor="multiprocess",
            max_concurrent=4,
            logger="main",
            pipelines=("players", "teams"),
            schedule=Schedule(
                every=parse_every("Monday at 15:00"),
                timezone="Asia/Singapore",
                trigger=CronTrigger(("0 15 * * 1",)),
            ),
            location=where(config, 2, "nightly"),
        ),
        "minimal": Runner(
            name="minimal",
            mode=RunMode.SYNC_LAZY,
            executor="in_process",
            max_concurrent=None,
            logger=None,
            pipelines=(),
            schedule=None,
            location=where(config, 11, "minimal"),
        ),
        "one_pipeline": Runner(
            name="one_pipeline",
            mode=RunMode.SYNC_LAZY,
            executor="in_process",
            max_concurrent=None,
            logger=None,
            pipelines=("teams",),
            schedule=None,
            location=where(config, 12, "one_pipeline"),
        ),
    }


def test_a_schedule_timezone_defaults_to_utc(write_config):
    runner = "runner:\n  r: { pipelines: teams, schedule: { every: 1d } }\n"
    runners = project(write_config, runner).runners
    assert runners["r"].schedule == Schedule(
        every=parse_every("1d"), timezone="UTC", trigger=CronTrigger(("0 0 * * *",))
    )


def test_a_single_unnamed_runner_is_the_default_one(write_config):
    runners = project(
        write_config,
        """
        runner:
          run_with: sync_eager
          pipelines: players
        """,
    ).runners
    assert list(runners) == ["default"]
    assert runners["default"] == Runner(
        name="default",
        mode=RunMode.SYNC_EAGER,
        executor="in_process",
        max_concurrent=None,
        logger=None,
        pipelines=("players",),
        schedule=None,
        location=where(Path("config").absolute(), 1, "default"),
    )


KEYS = (
    "keys: executor, frames_dir, logger, max_concurrent, partitions, pipelines, run_with, schedule"
)


def test_unknown_keys(write_config):
    assert errors(
        write_config, "runner:\n  r: { run_width: sync_lazy, pipeline: [players] }\n"
    ) == [
        "error: config/r.yml:2, runner 'r': malformed runner: unknown key 'run_width' - did you "
        f"mean 'run_with'? ({KEYS}); unknown key 'pipeline' - did you mean 'pipelines'? ({KEYS})"
    ]


def test_unknown_keys_of_a_single_unnamed_runner(write_config):
    assert errors(write_config, "runner:\n  run_with: sync_lazy\n  shedule: { every: 1d }\n") == [
        "error: config/r.yml:1, runner 'default': malformed runner: unknown key 'shedule' - did "
        f"you mean 'schedule'? ({KEYS})"
    ]


def test_unknown_schedule_keys(write_config):
    assert errors(write_config, "runner:\n  r: { schedule: { evrey: 1d } }\n") == [
        "error: config/r.yml:2, runner 'r': malformed runner: schedule.every: field required; "
        "schedule.evrey: extra inputs are not permitted"
    ]


def test_unknown_run_with_mode(write_config):
    assert errors(write_config, "runner:\n  r: { run_with: async }\n") == [
        "error: config/r.yml:2, runner 'r': malformed runner: run_with: input should be "
        "'sync_lazy', 'sync_eager', 'async_lazy' or 'async_eager'"
    ]


def test_unknown_executor(write_config):
    assert errors(write_config, "runner:\n  r: { executor: dask }\n") == [
        "error: config/r.yml:2, runner 'r': malformed runner: executor: input should be "
        "'in_process', 'multiprocess', 'celery' or 'k8s'"
    ]


def test_unknown_logger(write_config):
    assert errors(write_config, "runner:\n  r: { logger: mian }\n  s: { logger: other }\n") == [
        "error: config/r.yml:2, runner 'r': unknown logger 'mian' - did you mean 'main'? "
        "(loggers: main)",
        "error: config/r.yml:3, runner 's': unknown logger 'other' (loggers: main)",
    ]


def test_unknown_logger_when_none_is_defined(write_config):
    config = write_config(
        {
            "p.yml": "pipeline:\n  players:\n    - { label: a, task: noop }\n",
            "r.yml": "runner:\n  r: { logger: main }\n",
        }
    )
    with pytest.raises(ValidationError) as info:
        load_project(config)
    assert [str(p) for p in info.value.errors] == [
        "error: config/r.yml:2, runner 'r': unknown logger 'main' (loggers: none defined)"
    ]


def test_unknown_pipeline(write_config):
    assert parse_errors(write_config, "runner:\n  r: { pipelines: [player, teams, xyz] }\n") == [
        "error: config/r.yml:2, runner 'r': unknown pipeline 'player' - did you mean 'players'?",
        "error: config/r.yml:2, runner 'r': unknown pipeline 'xyz'",
    ]


@pytest.mark.parametrize("zone", ["Asia/Singapur", "asia/singapore", "local", "+08:00", ""])
def test_invalid_timezone(write_config, zone):
    runner = (
        f"runner:\n  r: {{ pipelines: teams, schedule: {{ every: 1d, timezone: '{zone}' }} }}\n"
    )
    assert parse_errors(write_config, runner) == [
        f"error: config/r.yml:2, runner 'r': unknown timezone '{zone}' (use an IANA name like "
        "'UTC' or 'Asia/Singapore')"
    ]


@pytest.mark.parametrize("value", ["0", "-2"])
def test_max_concurrent_below_one(write_config, value):
    assert errors(write_config, f"runner:\n  r: {{ max_concurrent: {value} }}\n") == [
        "error: config/r.yml:2, runner 'r': malformed runner: max_concurrent: input should be "
        "greater than or equal to 1"
    ]


def test_a_runner_must_be_a_mapping(write_config):
    assert errors(write_config, "runner:\n  r: [sync_lazy]\n") == [
        "error: config/r.yml:2, runner 'r': a runner is a mapping, got ['sync_lazy']"
    ]


def test_every_problem_of_a_runner_is_reported(write_config):
    runner = (
        "runner:\n  r: { logger: nope, pipelines: nope2, "
        "schedule: { every: 1d, timezone: Nowhere } }\n"
    )
    assert parse_errors(write_config, runner) == [
        "error: config/r.yml:2, runner 'r': unknown logger 'nope' (loggers: main)",
        "error: config/r.yml:2, runner 'r': unknown pipeline 'nope2'",
        "error: config/r.yml:2, runner 'r': unknown timezone 'Nowhere' (use an IANA name like "
        "'UTC' or 'Asia/Singapore')",
    ]


EVERY_10S = (
    "error: config/r.yml:2, runner 'r': cannot read every: unknown unit 'S': expected s, m"
    " (minute), h, d, w, M (month) or Y (year) - units are case-sensitive: did you mean 's'?\n"
    "  '10S'\n"
    "     ^\n"
    "valid examples: 10s, 1d, 10m30s, 2M, Monday at 15:00, at 09:30, weekday at 09:30, Monday at"
    " 15:00 repeating every 30m times 6"
)


def test_a_malformed_key_does_not_hide_the_other_problems(write_config):
    runner = (
        "runner:\n  r: { max_concurrent: 0, logger: nolog, pipelines: [teams, nope],"
        " schedule: { every: 10S } }\n"
    )
    assert parse_errors(write_config, runner) == [
        EVERY_10S,
        "error: config/r.yml:2, runner 'r': malformed runner: max_concurrent: input should be "
        "greater than or equal to 1",
        "error: config/r.yml:2, runner 'r': unknown logger 'nolog' (loggers: main)",
        "error: config/r.yml:2, runner 'r': unknown pipeline 'nope'",
    ]


def test_validate_reports_every_problem_of_a_runner(write_config, capsys):
    runner = "runner:\n  r: { max_concurrent: 0, logger: nolog, schedule: { every: 10S } }\n"
    write_config({**BASE, "r.yml": runner})
    assert main(["validate", "-c", "config"]) == 2
    assert capsys.readouterr().err.splitlines() == [
        *EVERY_10S.splitlines(),
        "error: config/r.yml:2, runner 'r': has a schedule but no pipelines, so it would run"
        " nothing: list them in `pipelines:` (pipelines: players, teams), or remove `schedule:`",
        "error: config/r.yml:2, runner 'r': malformed runner: max_concurrent: input should be "
        "greater than or equal to 1",
        "error: config/r.yml:2, runner 'r': unknown logger 'nolog' (loggers: main)",
        "the configuration has 4 errors",
    ]


def test_a_schedule_without_pipelines_is_an_error(write_config):
    assert parse_errors(write_config, "runner:\n  r: { schedule: { every: 1d } }\n") == [
        "error: config/r.yml:2, runner 'r': has a schedule but no pipelines, so it would run"
        " nothing: list them in `pipelines:` (pipelines: players, teams), or remove `schedule:`"
    ]


def test_a_runner_without_schedule_or_pipelines_is_fine(write_config):
    # It sets defaults for `capport run -r r`; it schedules nothing, so it runs nothing by itself.
    assert list(project(write_config, "runner:\n  r: { run_with: sync_eager }\n").runners) == ["r"]


@pytest.mark.parametrize(
    "body",
    [
        "{ pipeline: [players], schedule: { every: 1d } }",  # the typo is the problem
        "{ pipelines: { players: 1 }, schedule: { every: 1d } }",
    ],
)
def test_a_malformed_pipelines_list_is_not_also_missing(write_config, body):
    found = parse_errors(write_config, f"runner:\n  r: {body}\n")
    assert len(found) == 1
    assert found[0].startswith("error: config/r.yml:2, runner 'r': malformed runner: ")


def test_a_pipeline_listed_twice_by_one_runner(write_config):
    runner = "runner:\n  r: { pipelines: [teams, players, teams], schedule: { every: 1d } }\n"
    assert parse_errors(write_config, runner) == [
        "error: config/r.yml:2, runner 'r': lists pipeline 'teams' twice (list each pipeline once)"
    ]


def test_a_pipeline_listed_by_two_runners_is_a_warning(write_config):
    validated = project(write_config, RUNNERS.replace("[players]", "[players, teams]", 1))
    runners = validated.runners
    assert [str(w) for w in validated.warnings if w.location.section == "runner"] == [
        "warning: config/r.yml:4, runner 'weekly' (used by pipeline 'players'): pipeline"
        " 'players' is also listed by runner 'nightly', which `capport run -p players` uses: pass"
        " `-r weekly` to run it with this one (its schedule runs as written)"
    ]
    config = Path("config").absolute()
    assert runner_problems(runners) == [
        Problem(
            where(config, 4, "weekly"),
            "pipeline 'players' is also listed by runner 'nightly', which `capport run -p"
            " players` uses: pass `-r weekly` to run it with this one (its schedule runs as"
            " written)",
            severity="warning",
        )
    ]
    assert str(runner_problems(runners)[0]) == (
        "warning: config/r.yml:4, runner 'weekly': pipeline 'players' is also listed by runner"
        " 'nightly', which `capport run -p players` uses: pass `-r weekly` to run it with this"
        " one (its schedule runs as written)"
    )


def test_runners_listing_different_pipelines_have_no_problem(write_config):
    runners = project(
        write_config, "runner:\n  a: { pipelines: players }\n  b: { pipelines: teams }\n"
    ).runners
    assert runner_problems(runners) == []


# --- Project.runner_for ---------------------------------------------------------------------

RUNNERS = """
runner:
  default: { run_with: sync_eager }
  nightly: { run_with: async_lazy, pipelines: [players] }
  weekly: { run_with: async_eager, pipelines: [players] }
"""


def test_runner_for_an_explicit_name(write_config):
    found = project(write_config, RUNNERS).runner_for("teams", "weekly")
    assert found is not None
    assert (found.name, found.mode) == ("weekly", RunMode.ASYNC_EAGER)


def test_runner_for_a_pipeline_is_the_first_runner_listing_it(write_config):
    found = project(write_config, RUNNERS).runner_for("players")
    assert found is not None
    assert found.name == "nightly"


def test_runner_for_falls_back_to_default(write_config):
    found = project(write_config, RUNNERS).runner_for("teams")
    assert found is not None
    assert found.name == "default"


def test_runner_for_without_default_is_none(write_config):
    loaded = project(write_config, "runner:\n  nightly: { pipelines: [players] }\n")
    assert loaded.runner_for("teams") is None


def test_runner_for_an_unknown_name(write_config):
    loaded = project(write_config, RUNNERS)
    with pytest.raises(ConfigError) as info:
        loaded.runner_for("players", "nihgtly")
    assert str(info.value) == (
        "runner 'nihgtly': unknown runner 'nihgtly' - did you mean 'nightly'? "
        "(runners: default, nightly, weekly)"
    )


def test_runner_for_an_unknown_name_without_runners(write_config):
    loaded = load_project(write_config(BASE))
    with pytest.raises(ConfigError) as info:
        loaded.runner_for("players", "x")
    assert str(info.value) == "runner 'x': unknown runner 'x' (runners: none defined)"


# --- freshness: how long a scheduled pipeline may go without a run ----------------------------


@pytest.mark.parametrize(
    ("schedule", "overdue_after"),
    [
        ("{ every: 1d }", 24 * 3600 + 8640),  # a day and a tenth of a day
        ("{ every: Monday at 15:00 }", 7 * 24 * 3600 + 60480),
        ("{ every: weekday at 09:30 }", 3 * 24 * 3600 + 25920),  # Friday to Monday
        ("{ every: 1d, grace: 2h }", 26 * 3600),
        ("{ every: 15m, grace: 0s }", 15 * 60),
    ],
)
def test_a_schedules_overdue_time_is_its_longest_gap_plus_the_grace(
    write_config, schedule, overdue_after
):
    runner = f"runner:\n  r: {{ pipelines: teams, schedule: {schedule} }}\n"
    [scheduled] = project(write_config, runner).runners.values()
    assert scheduled.schedule is not None
    assert scheduled.schedule.overdue_after == overdue_after


@pytest.mark.parametrize(
    ("grace", "message"),
    [
        ("Monday", "schedule `grace` is a length of time like 30m, 2h or 1d, not 'Monday'"),
        ("2 hours", "schedule `grace`: "),
    ],
)
def test_a_grace_that_is_not_a_length_of_time(write_config, grace, message):
    runner = f"runner:\n  r: {{ pipelines: teams, schedule: {{ every: 1d, grace: '{grace}' }} }}\n"
    [error] = parse_errors(write_config, runner)
    assert error.startswith(f"error: config/r.yml:2, runner 'r': {message}"), error


def test_the_soonest_schedule_listing_a_pipeline_sets_its_freshness(write_config):
    runners = project(
        write_config,
        """
        runner:
          weekly: { pipelines: [teams, players], schedule: { every: 1w, grace: 1h } }
          daily: { pipelines: teams, schedule: { every: 1d, grace: 1h } }
        """,
    ).runners
    assert pipeline_overdue_after(runners, "teams") == 25 * 3600
    assert pipeline_overdue_after(runners, "players") == 7 * 24 * 3600 + 3600
    unscheduled = project(write_config, "runner:\n  r: { pipelines: teams }\n").runners
    assert pipeline_overdue_after(unscheduled, "teams") is None
