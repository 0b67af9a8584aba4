"""Runner schedules as Dagster schedules and sensors: names, triggers, run requests."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from dagster import (
    DagsterInstance,
    DagsterRun,
    DagsterRunStatus,
    DefaultScheduleStatus,
    build_schedule_context,
    build_sensor_context,
    instance_for_test,
)

from capport_dagster.cli import main
from capport_dagster.core.graph import load_project
from capport_dagster.translate.build import build_definitions
from capport_dagster.translate.schedules import UNFINISHED

CONFIG = {
    "a.csv": "x\n1\n",
    "p.yml": """
        pipeline:
          players:
            - { label: load, task: load_csv, args: { filepath: $CONFIG_DIR/a.csv, df_name: A } }
            - { label: save, task: save_csv, args: { filepath: $OUTPUT_DIR/a.csv, df_name: A } }
          teams:
            - { label: load, task: load_csv, args: { filepath: $CONFIG_DIR/a.csv, df_name: A } }
            - { label: save, task: save_csv, args: { filepath: $OUTPUT_DIR/b.csv, df_name: A } }
    """,
    "l.yml": "logger:\n  quiet: { level: error, output: logs }\n",
    "r.yml": """
        runner:
          weekly:
            run_with: async_eager
            logger: quiet
            max_concurrent: 3
            pipelines: [players, teams]
            schedule: { every: Monday at 15:00, timezone: Asia/Singapore }
          often:
            pipelines: [teams]
            schedule: { every: 10m30s }
          manual:
            run_with: sync_eager
    """,
}


def definitions(write_config):
    write_config(CONFIG)
    return build_definitions(project=load_project("config"))


def test_each_runner_and_pipeline_gets_a_named_schedule_or_sensor(write_config):
    defs = definitions(write_config)
    schedules = {s.name: s for s in defs.schedules}
    sensors = {s.name: s for s in defs.sensors}
    assert sorted(schedules) == ["players__weekly", "teams__weekly"]
    assert sorted(sensors) == ["teams__often"]
    weekly = schedules["players__weekly"]
    assert (weekly.cron_schedule, weekly.execution_timezone) == ("0 15 * * 1", "Asia/Singapore")
    assert weekly.job_name == "players"
    assert weekly.default_status == DefaultScheduleStatus.RUNNING
    assert sensors["teams__often"].minimum_interval_seconds == 630


def test_a_schedule_tick_requests_a_run_in_the_runner_mode_at_that_tick(write_config):
    schedule = next(s for s in definitions(write_config).schedules if s.name == "players__weekly")
    tick = datetime(2026, 11, 30, 7, 0, tzinfo=UTC)  # 15:00 in Singapore
    requests = schedule.evaluate_tick(build_schedule_context(scheduled_execution_time=tick))
    [request] = requests.run_requests or []
    assert request.run_config == {
        "mode": "async_eager",
        "executor": "in_process",
        "max_concurrent": 3,
        "logger": "quiet",
        "ref_datetime": "2026-11-30T15:00:00+08:00",
    }
    assert request.tags == {
        "capport/runner": "weekly",
        "capport/pipeline": "players",
        "dagster/schedule_name": "players__weekly",
    }


@pytest.fixture
def instance(tmp_path) -> Iterator[DagsterInstance]:
    """A Dagster instance of the test's own (sensors ask it for the runs of their job)."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    with instance_for_test(temp_dir=str(home)) as instance:
        yield instance


def test_a_sensor_evaluation_requests_a_run_now(write_config, instance):
    sensor = next(iter(definitions(write_config).sensors))
    result = sensor.evaluate_tick(build_sensor_context(instance=instance))
    [request] = result.run_requests or []
    assert request.run_config["mode"] == "sync_lazy"
    assert request.run_config["logger"] is None
    stamp = datetime.fromisoformat(request.run_config["ref_datetime"])
    assert abs((stamp - datetime.now(UTC)).total_seconds()) < 60
    assert request.tags == {
        "capport/runner": "often",
        "capport/pipeline": "teams",
        "dagster/sensor_name": "teams__often",
    }


def test_schedule_run_config_is_accepted_by_the_job(write_config, tmp_path):
    defs = definitions(write_config)
    job = defs.resolve_job_def("players")
    schedule = next(s for s in defs.schedules if s.name == "players__weekly")
    tick = datetime(2026, 11, 30, 7, 0, tzinfo=UTC)
    [request] = (
        schedule.evaluate_tick(build_schedule_context(scheduled_execution_time=tick)).run_requests
        or []
    )
    result = job.execute_in_process(run_config={**request.run_config, "output_dir": "out"})
    assert result.success
    assert (tmp_path / "out" / "a.csv").read_text() == "x\n1\n"
    assert (tmp_path / "logs").is_dir()  # the quiet logger: relative to the working directory


def test_capport_schedules_prints_translation_and_next_ticks(write_config, capsys):
    write_config(CONFIG)
    assert main(["schedules", "-c", "config"]) == 0
    lines = capsys.readouterr().out.splitlines()
    stamps = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d"
    patterns = [
        r"runner often, pipeline teams \(2 stages\): every 10m30s \(UTC\)",
        r"  dagster: teams__often, sensor every 630 s",
        rf"  next: {stamps}, {stamps}, {stamps}",
        r"runner weekly, pipeline players \(2 stages\): every Monday at 15:00 \(Asia/Singapore\)",
        r"  dagster: players__weekly, cron 0 15 \* \* 1",
        r"  next: (\d{4}-\d\d-\d\dT15:00:00\+08:00(, )?){3}",
        r"runner weekly, pipeline teams \(2 stages\): every Monday at 15:00 \(Asia/Singapore\)",
        r"  dagster: teams__weekly, cron 0 15 \* \* 1",
        r"  next: (\d{4}-\d\d-\d\dT15:00:00\+08:00(, )?){3}",
    ]
    assert len(lines) == len(patterns)
    for line, pattern in zip(lines, patterns, strict=True):
        assert re.fullmatch(pattern, line), (line, pattern)
    ticks = [datetime.fromisoformat(t) for t in lines[5].removeprefix("  next: ").split(", ")]
    assert all(t.weekday() == 0 for t in ticks) and ticks == sorted(ticks)


def test_a_bad_every_phrase_is_a_located_error(write_config, capsys):
    write_config({**CONFIG, "r.yml": "runner:\n  r: { schedule: { every: Mondy at 15:00 } }\n"})
    assert main(["validate", "-c", "config"]) == 2
    lines = capsys.readouterr().err.splitlines()
    # Sorted by message: the missing pipelines are reported beside the phrase, not instead.
    assert lines[0].startswith("error: config/r.yml:2, runner 'r': cannot read every:")
    assert lines[0].endswith("did you mean 'Monday'?")
    assert lines[1:3] == ["  'Mondy at 15:00'", "   ^^^^^"]
    assert lines[4:] == [
        "error: config/r.yml:2, runner 'r': has a schedule but no pipelines, so it would run"
        " nothing: list them in `pipelines:` (pipelines: players, teams), or remove `schedule:`",
        "the configuration has 2 errors",
    ]


# --- sensors do not pile up runs ------------------------------------------------------------


def stored_run(job: str, run_id: str, status: DagsterRunStatus) -> DagsterRun:
    """A run record as the daemon would find it. Dagster wants the code location of a queued
    run (whence the daemon launches it): one that is never contacted here."""
    from dagster._core.remote_origin import (
        GrpcServerCodeLocationOrigin,
        RemoteJobOrigin,
        RemoteRepositoryOrigin,
    )

    location = GrpcServerCodeLocationOrigin(host="localhost", port=1)
    origin = RemoteJobOrigin(RemoteRepositoryOrigin(location, "__repository__"), job)
    return DagsterRun(job_name=job, run_id=run_id, status=status, remote_job_origin=origin)


@pytest.mark.parametrize("status", UNFINISHED, ids=lambda s: s.value)
def test_a_sensor_skips_while_a_run_of_its_job_has_not_finished(write_config, instance, status):
    sensor = next(s for s in definitions(write_config).sensors if s.name == "teams__often")
    instance.add_run(stored_run("teams", "run-1", status))
    result = sensor.evaluate_tick(build_sensor_context(instance=instance))
    assert result.run_requests == []
    assert result.skip_message == (
        f"run run-1 of job 'teams' is still {status.value.lower()}: this sensor starts no run"
        " before it finishes (runs of a pipeline slower than its interval do not pile up)"
    )


def test_the_skip_reason_names_the_unfinished_run_whoever_started_it(write_config, instance):
    # A run started by hand (no sensor tag) counts too: the pipeline is busy all the same.
    sensor = next(s for s in definitions(write_config).sensors if s.name == "teams__often")
    instance.add_run(stored_run("teams", "done", DagsterRunStatus.SUCCESS))
    instance.add_run(stored_run("teams", "by-hand", DagsterRunStatus.QUEUED))
    result = sensor.evaluate_tick(build_sensor_context(instance=instance))
    assert isinstance(result.skip_message, str)
    assert result.skip_message.startswith("run by-hand of job 'teams' is still queued: ")


@pytest.mark.parametrize(
    "status",
    [
        DagsterRunStatus.SUCCESS,
        DagsterRunStatus.FAILURE,
        DagsterRunStatus.CANCELED,
        DagsterRunStatus.MANAGED,  # managed outside Dagster: it never finishes in its records
    ],
    ids=lambda s: s.value,
)
def test_a_sensor_requests_a_run_once_its_job_has_finished(write_config, instance, status):
    sensor = next(s for s in definitions(write_config).sensors if s.name == "teams__often")
    instance.add_run(stored_run("teams", "run-1", status))
    result = sensor.evaluate_tick(build_sensor_context(instance=instance))
    assert result.skip_message is None
    assert [r.tags["capport/pipeline"] for r in result.run_requests or []] == ["teams"]


def test_a_run_of_another_job_does_not_hold_a_sensor_back(write_config, instance):
    sensor = next(s for s in definitions(write_config).sensors if s.name == "teams__often")
    instance.add_run(stored_run("players", "run-1", DagsterRunStatus.STARTED))
    result = sensor.evaluate_tick(build_sensor_context(instance=instance))
    assert len(result.run_requests or []) == 1


def test_the_sensor_sees_a_real_run_that_finished(write_config, instance):
    defs = definitions(write_config)
    run = defs.resolve_job_def("teams").execute_in_process(
        run_config={"output_dir": "out"}, instance=instance
    )
    assert run.success
    sensor = next(s for s in defs.sensors if s.name == "teams__often")
    assert len(sensor.evaluate_tick(build_sensor_context(instance=instance)).run_requests) == 1


def test_a_schedule_tick_is_not_skipped_while_a_run_goes_on(write_config, instance):
    """Each cron tick is its own $REF_DATETIME (a day's data): skipping it would lose it."""
    schedule = next(s for s in definitions(write_config).schedules if s.name == "players__weekly")
    instance.add_run(stored_run("players", "run-1", DagsterRunStatus.STARTED))
    tick = datetime(2026, 11, 30, 7, 0, tzinfo=UTC)
    context = build_schedule_context(instance=instance, scheduled_execution_time=tick)
    assert len(schedule.evaluate_tick(context).run_requests or []) == 1


def test_capport_schedules_counts_one_stage_in_the_singular(write_config, capsys):
    write_config(
        {
            "p.yml": "pipeline:\n  p:\n    - { label: a, task: noop }\n",
            "r.yml": "runner:\n  r: { pipelines: p, schedule: { every: 1d } }\n",
        }
    )
    assert main(["schedules", "-c", "config"]) == 0
    assert capsys.readouterr().out.splitlines()[:2] == [
        "runner r, pipeline p (1 stage): every 1d (UTC)",
        "  dagster: p__r, cron 0 0 * * *",
    ]


def test_capport_schedules_refuses_a_schedule_that_runs_nothing(write_config, capsys):
    write_config({**CONFIG, "r.yml": "runner:\n  r: { schedule: { every: 1d } }\n"})
    assert main(["schedules", "-c", "config"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err == (
        "error: config/r.yml:2, runner 'r': has a schedule but no pipelines, so it would run"
        " nothing: list them in `pipelines:` (pipelines: players, teams), or remove `schedule:`\n"
        "the configuration has 1 error\n"
    )
