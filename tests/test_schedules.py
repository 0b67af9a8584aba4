"""Runner schedules as Dagster schedules and sensors: names, triggers, run requests."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from dagster import (
    DefaultScheduleStatus,
    build_schedule_context,
    build_sensor_context,
)

from capport_dagster.cli import main
from capport_dagster.core.graph import load_project
from capport_dagster.translate.build import build_definitions

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


def test_a_sensor_evaluation_requests_a_run_now(write_config):
    sensor = next(iter(definitions(write_config).sensors))
    result = sensor.evaluate_tick(build_sensor_context())
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
        r"runner often, pipeline teams: every 10m30s \(UTC\)",
        r"  dagster: teams__often, sensor every 630 s",
        rf"  next: {stamps}, {stamps}, {stamps}",
        r"runner weekly, pipeline players: every Monday at 15:00 \(Asia/Singapore\)",
        r"  dagster: players__weekly, cron 0 15 \* \* 1",
        r"  next: (\d{4}-\d\d-\d\dT15:00:00\+08:00(, )?){3}",
        r"runner weekly, pipeline teams: every Monday at 15:00 \(Asia/Singapore\)",
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
    err = capsys.readouterr().err
    assert err.startswith("error: config/r.yml:2, runner 'r': cannot read every:")
    assert "'Mondy at 15:00'" in err and "did you mean 'Monday'?" in err
