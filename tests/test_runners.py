"""Runner entries (SPEC 9): parsed and checked against the pipelines and loggers they name."""

from __future__ import annotations

from pathlib import Path

import pytest

from capport_dagster.core.every import CronTrigger, parse_every
from capport_dagster.core.graph import Project, load_project
from capport_dagster.core.modes import RunMode
from capport_dagster.core.runners import Runner, Schedule
from capport_dagster.errors import ConfigError, Location, ValidationError

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
    runners = project(write_config, "runner:\n  r: { schedule: { every: 1d } }\n").runners
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


KEYS = "keys: executor, logger, max_concurrent, pipelines, run_with, schedule"


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
    assert errors(write_config, "runner:\n  r: { executor: celery }\n") == [
        "error: config/r.yml:2, runner 'r': malformed runner: executor: input should be "
        "'in_process' or 'multiprocess'"
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
    assert errors(write_config, "runner:\n  r: { pipelines: [player, teams, xyz] }\n") == [
        "error: config/r.yml:2, runner 'r': unknown pipeline 'player' - did you mean 'players'?",
        "error: config/r.yml:2, runner 'r': unknown pipeline 'xyz'",
    ]


@pytest.mark.parametrize("zone", ["Asia/Singapur", "asia/singapore", "local", "+08:00", ""])
def test_invalid_timezone(write_config, zone):
    runner = f"runner:\n  r: {{ schedule: {{ every: 1d, timezone: '{zone}' }} }}\n"
    assert errors(write_config, runner) == [
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
    assert errors(write_config, runner) == [
        "error: config/r.yml:2, runner 'r': unknown logger 'nope' (loggers: main)",
        "error: config/r.yml:2, runner 'r': unknown pipeline 'nope2'",
        "error: config/r.yml:2, runner 'r': unknown timezone 'Nowhere' (use an IANA name like "
        "'UTC' or 'Asia/Singapore')",
    ]


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
