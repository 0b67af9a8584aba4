"""Partitions from runners (`partitions:`): the cadence, its refusals, the partitioned jobs and
assets, `$REF_DATETIME` from the partition, the schedule's partition, `capport run -d`."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from dagster import (
    DagsterInstance,
    TimeWindowPartitionsDefinition,
    build_schedule_context,
    instance_for_test,
)

from capport_dagster.cli import main
from capport_dagster.core.every import parse_every, translate
from capport_dagster.core.graph import load_project
from capport_dagster.core.partitions import PartitionsProblem, cadence_for, parse_partitions
from capport_dagster.errors import ValidationError
from capport_dagster.translate.build import build_definitions
from capport_dagster.translate.partitions import partition_for, partitions_between
from tests.conftest import capport

# --- the cadence (core) -----------------------------------------------------------------------


def cadence(phrase: str, timezone: str = "UTC", start: object = True):
    every = parse_every(phrase)
    return cadence_for(every, translate(every), timezone, parse_partitions(start))


@pytest.mark.parametrize(
    ("phrase", "kind", "cron", "key_format"),
    [
        ("1d", "daily", "0 0 * * *", "%Y-%m-%d"),
        ("at 15:00", "daily", "0 15 * * *", "%Y-%m-%d"),
        ("1h", "hourly", "0 * * * *", "%Y-%m-%d-%H:%M"),
        ("6h", "every 6 hours", "0 */6 * * *", "%Y-%m-%d-%H:%M"),
        ("12h", "every 12 hours", "0 0,12 * * *", "%Y-%m-%d-%H:%M"),
        ("Monday at 15:00", "weekly", "0 15 * * 1", "%Y-%m-%d"),
        ("1w", "weekly", "0 0 * * 1", "%Y-%m-%d"),
        ("1M", "monthly", "0 0 1 * *", "%Y-%m-%d"),
        ("3M", "every 3 months", "0 0 1 */3 *", "%Y-%m-%d"),
        ("1Y", "yearly", "0 0 1 1 *", "%Y-%m-%d"),
        ("at 00:00 repeating every 1h times 24", "hourly", "0 * * * *", "%Y-%m-%d-%H:%M"),
    ],
)
def test_regular_phrases_partition(phrase, kind, cron, key_format):
    found = cadence(phrase)
    assert (found.kind, found.cron, found.key_format) == (kind, cron, key_format)
    assert found.start == datetime(2026, 1, 1)  # `partitions: true`


SHORT = (
    "cannot partition `every: {}`: a partition is at least an hour; use `every: 1h` or longer,"
    " or remove `partitions`"
)
NEED = (
    "partitions need hourly, daily, weekly or monthly ticks (1h, 6h, 1d, at 09:30, Monday at"
    " 15:00, 1M), or remove `partitions`"
)


@pytest.mark.parametrize(
    ("phrase", "message"),
    [
        ("15m", SHORT.format("15m")),
        ("10s", SHORT.format("10s")),
        (
            "2d",
            "cannot partition `every: 2d`: it runs as a sensor (every 172800 s from when the"
            f" daemon starts), not on the clock, so its runs have no fixed windows; {NEED}",
        ),
        (
            "weekday at 09:30",
            "cannot partition `every: weekday at 09:30` (cron 30 9 * * 1-5): its windows are not"
            f" all the same length; {NEED}",
        ),
        (
            "90m",
            "cannot partition `every: 90m` (cron [0 */3 * * *; 30 1,4,7,10,13,16,19,22 * * *]):"
            f" its windows are not all the same length; {NEED}",
        ),
        (
            "at 00:00 repeating every 5h times 3",
            "cannot partition `every: at 00:00 repeating every 5h times 3` (cron 0 0,5,10 * * *):"
            f" its windows are not all the same length; {NEED}",
        ),
    ],
)
def test_sub_hourly_and_irregular_phrases_are_refused(phrase, message):
    with pytest.raises(PartitionsProblem) as info:
        cadence(phrase)
    assert str(info.value) == message


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (
            {"start": "2026-13-01"},
            "partitions.start: '2026-13-01' is not a date (YYYY-MM-DD) or a date-time"
            " (YYYY-MM-DDTHH:MM)",
        ),
        (
            {"start": "2026-01-01T00:00+08:00"},
            "partitions.start: '2026-01-01T00:00+08:00' has an offset: give the wall time in the"
            " schedule's timezone, without one (e.g. 2026-01-01)",
        ),
        (
            {"begin": "2026-01-01"},
            "partitions: expected true or {start: YYYY-MM-DD} (unknown key 'begin')",
        ),
        ("daily", "partitions: expected true or {start: YYYY-MM-DD}, got 'daily'"),
    ],
)
def test_bad_partitions_values(value, message):
    with pytest.raises(PartitionsProblem) as info:
        parse_partitions(value)
    assert str(info.value) == message


def test_partitions_off_and_a_start_date_time():
    assert parse_partitions(None) is None
    assert parse_partitions(False) is None
    assert parse_partitions({"start": "2026-11-01T06:00"}) == datetime(2026, 11, 1, 6, 0)


# --- validation (located problems, capport validate) --------------------------------------------

PIPELINE = """
    pipeline:
      daily:
        - { label: load, task: load_csv, args: { filepath: $CONFIG_DIR/a.csv, df_name: A } }
        - label: save
          task: save_csv
          args: { filepath: "$OUTPUT_DIR/$REF_DATE/a.csv", df_name: A }
      other:
        - { label: load, task: load_csv, args: { filepath: $CONFIG_DIR/a.csv, df_name: A } }
        - { label: save, task: save_csv, args: { filepath: $OUTPUT_DIR/b.csv, df_name: A } }
"""


def config_with(write_config, runners: str) -> Path:
    return write_config({"a.csv": "x\n1\n2\n", "p.yml": PIPELINE, "r.yml": runners})


def validate_errors(write_config, runners: str, capsys) -> list[str]:
    config_with(write_config, runners)
    assert main(["validate", "-c", "config"]) == 2
    return capsys.readouterr().err.splitlines()


def test_validate_reports_partition_problems_at_their_runner(write_config, capsys):
    runners = """
        runner:
          a: { pipelines: [daily], partitions: true }
          b: { pipelines: [other], partitions: true, schedule: { every: 15m } }
          c: { pipelines: [other], partitions: { start: someday }, schedule: { every: 1d } }
    """
    assert validate_errors(write_config, runners, capsys) == [
        "error: config/r.yml:2, runner 'a' (used by pipeline 'daily'): has `partitions` but no"
        " schedule: its partitions are"
        " the windows of the schedule's `every:` (one per tick); add `schedule: { every: 1d }`"
        " (or another phrase), or remove `partitions`",
        f"error: config/r.yml:3, runner 'b' (used by pipeline 'other'): {SHORT.format('15m')}",
        "error: config/r.yml:4, runner 'c' (used by pipeline 'other'): partitions.start:"
        " 'someday' is not a date"
        " (YYYY-MM-DD) or a date-time (YYYY-MM-DDTHH:MM)",
        "the configuration has 3 errors",
    ]


def test_a_pipeline_partitioned_differently_by_two_runners_is_refused(write_config, capsys):
    runners = """
        runner:
          a: { pipelines: [daily], partitions: true, schedule: { every: 1d } }
          b: { pipelines: [daily], schedule: { every: 1d } }
          c: { pipelines: [daily], partitions: true, schedule: { every: 1h } }
    """
    assert validate_errors(write_config, runners, capsys) == [
        "error: config/r.yml:3, runner 'b' (used by pipeline 'daily'): pipeline 'daily' is not"
        " partitioned here but"
        " partitioned daily from 2026-01-01 (UTC) by runner 'a': its job has one set of"
        " partitions, so give both runners the same `partitions` and `every:` (and timezone),"
        " or list it in one",
        "error: config/r.yml:4, runner 'c' (used by pipeline 'daily'): pipeline 'daily' is"
        " partitioned hourly from"
        " 2026-01-01 (UTC) here but partitioned daily from 2026-01-01 (UTC) by runner 'a': its"
        " job has one set of partitions, so give both runners the same `partitions` and"
        " `every:` (and timezone), or list it in one",
        "the configuration has 2 errors",
    ]


def test_two_runners_partitioning_a_pipeline_alike_only_warn(write_config):
    runners = """
        runner:
          a: { pipelines: [daily], partitions: true, schedule: { every: 1d } }
          b: { pipelines: [daily], run_with: sync_eager, partitions: true,
               schedule: { every: 1d } }
    """
    project = load_project(config_with(write_config, runners))
    assert [p.severity for p in project.warnings] == ["warning"]
    assert project.runners["a"].partitions == project.runners["b"].partitions


# --- translation ------------------------------------------------------------------------------

RUNNERS = """
    runner:
      nightly:
        run_with: async_eager
        pipelines: [daily]
        partitions: { start: 2026-11-01 }
        schedule: { every: 1d, timezone: Asia/Singapore }
"""


def definitions(write_config):
    return build_definitions(project=load_project(config_with(write_config, RUNNERS)))


def test_the_pipeline_job_and_its_assets_are_partitioned_daily_in_the_runner_timezone(
    write_config,
):
    defs = definitions(write_config)
    job = defs.resolve_job_def("daily")
    partitions = job.partitions_def
    assert isinstance(partitions, TimeWindowPartitionsDefinition)
    assert (partitions.cron_schedule, partitions.timezone, partitions.fmt) == (
        "0 0 * * *",
        "Asia/Singapore",
        "%Y-%m-%d",
    )
    assert partitions.start.isoformat() == "2026-11-01T00:00:00+08:00"
    assert partitions.end_offset == 1  # the window the latest tick started is a partition
    now = datetime(2026, 11, 29, 13, 0, tzinfo=UTC)  # 21:00 in Singapore
    keys = partitions.get_partition_keys(current_time=now)
    assert (keys[0], keys[-1], len(keys)) == ("2026-11-01", "2026-11-29", 29)
    assert defs.resolve_job_def("daily__assets").partitions_def == partitions
    assets = [a for a in defs.resolve_asset_graph().assets_defs if a.keys]
    assert {a.partitions_def for a in assets if a.keys_by_output_name} >= {partitions}
    assert defs.resolve_job_def("other").partitions_def is None  # listed by no partitioned runner


def run_partition(job, key: str, out: Path, instance, **resource_config: object):  # type: ignore[no-untyped-def]
    """Run one partition of `job` with the run config Dagster gives it (what the launchpad
    shows), its output directory `out`, and `resource_config` over the `capport` resource's."""
    config = job.partitioned_config.get_run_config_for_partition_key(key)
    config["resources"]["capport"]["config"].update(output_dir=str(out), **resource_config)
    return job.execute_in_process(run_config=config, partition_key=key, instance=instance)


def test_a_partition_run_has_its_start_as_ref_datetime(write_config, tmp_path):
    job = definitions(write_config).resolve_job_def("daily")
    out = tmp_path / "out"
    with instance_for_test() as instance:
        result = run_partition(job, "2026-11-27", out, instance)
        assert result.success
        assert result.dagster_run.tags["dagster/partition"] == "2026-11-27"
        # The partition wins over a ref_datetime the run config says (a launchpad edit).
        result = run_partition(job, "2026-11-26", out, instance, ref_datetime="2020-01-01")
        assert result.success
    assert sorted(p.parent.name for p in out.glob("*/a.csv")) == ["2026-11-26", "2026-11-27"]


def test_the_asset_job_materialises_a_partition_at_its_date(write_config, tmp_path):
    job = definitions(write_config).resolve_job_def("daily__assets")
    out = tmp_path / "out"
    with instance_for_test() as instance:
        assert run_partition(job, "2026-11-25", out, instance).success
    assert [p.parent.name for p in out.glob("*/a.csv")] == ["2026-11-25"]


def test_the_schedule_launches_the_partition_its_tick_starts(write_config):
    defs = definitions(write_config)
    schedule = defs.resolve_schedule_def("daily__nightly")
    tick = datetime(2026, 11, 27, 16, 0, tzinfo=UTC)  # 2026-11-28 00:00 in Singapore
    context = build_schedule_context(
        scheduled_execution_time=tick, repository_def=defs.get_repository_def()
    )
    [request] = schedule.evaluate_tick(context).run_requests or []
    assert request.partition_key == "2026-11-28"
    assert request.tags["dagster/partition"] == "2026-11-28"
    assert request.tags["capport/runner"] == "nightly"
    resource = request.run_config["resources"]["capport"]["config"]
    assert resource["ref_datetime"] == "2026-11-28T00:00:00+08:00"
    assert request.run_config["execution"]["config"]["mode"] == "async_eager"


def test_an_hourly_schedule_launches_the_hour_of_its_tick(write_config):
    runners = RUNNERS.replace("every: 1d", "every: 1h")
    defs = build_definitions(project=load_project(config_with(write_config, runners)))
    tick = datetime(2026, 11, 27, 7, 0, tzinfo=UTC)
    context = build_schedule_context(
        scheduled_execution_time=tick, repository_def=defs.get_repository_def()
    )
    [request] = defs.resolve_schedule_def("daily__nightly").evaluate_tick(context).run_requests
    assert request.partition_key == "2026-11-27-15:00"


# --- which partition a date names (-d, --from, --to) --------------------------------------------

NOW = datetime(2026, 11, 29, 13, 0, tzinfo=UTC)


def test_a_partition_is_named_by_its_key_or_its_start():
    daily, hourly = cadence("1d"), cadence("1h")
    assert partition_for(daily, "2026-11-27", "-d", NOW) == "2026-11-27"
    assert partition_for(daily, "2026-11-27T00:00", "-d", NOW) == "2026-11-27"
    assert partition_for(daily, None, "-d", NOW) == "2026-11-29"  # the current one
    assert partition_for(hourly, "2026-11-27-15:00", "-d", NOW) == "2026-11-27-15:00"
    assert partition_for(hourly, "2026-11-27T15:00", "-d", NOW) == "2026-11-27-15:00"
    assert partitions_between(daily, "2026-11-26", "2026-11-28", NOW) == [
        "2026-11-26",
        "2026-11-27",
        "2026-11-28",
    ]


@pytest.mark.parametrize(
    ("phrase", "text", "message"),
    [
        (
            "1d",
            "2026-11-27T10:00",
            "-d 2026-11-27T10:00 is inside partition 2026-11-27, which starts at"
            " 2026-11-27T00:00:00+00:00 (daily): give -d 2026-11-27",
        ),
        (
            "Monday at 15:00",
            "2026-11-25",
            "-d 2026-11-25 is inside partition 2026-11-23, which starts at"
            " 2026-11-23T15:00:00+00:00 (weekly): give -d 2026-11-23",
        ),
        (
            "1d",
            "2025-12-31",
            "-d 2025-12-31 is before the first partition, 2026-01-01 (partitions.start"
            " 2026-01-01): give a later date, or an earlier partitions.start",
        ),
        (
            "1d",
            "2026-12-01",
            "-d 2026-12-01 is after the current partition, 2026-11-29: a partition exists once"
            " its window has started",
        ),
        (
            "1d",
            "someday",
            "-d 'someday' is not an ISO 8601 date or date-time (e.g. 2026-01-05 or"
            " 2026-01-05T15:00:00+08:00), or a partition key like 2026-01-01",
        ),
    ],
)
def test_dates_that_name_no_partition_are_refused(phrase, text, message):
    with pytest.raises(Exception) as info:
        partition_for(cadence(phrase), text, "-d", NOW)
    assert str(info.value) == message


# --- capport run -d of a partitioned pipeline ----------------------------------------------------


def test_capport_run_d_records_the_partition(write_config, tmp_path):
    config = config_with(write_config, RUNNERS)
    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    out = tmp_path / "out"
    result = capport(
        *("run", "-c", str(config), "-p", "daily", "-d", "2026-11-27", "-o", str(out)),
        DAGSTER_HOME=str(home),
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines()[0] == (
        "[capport] running pipeline 'daily' (2 stages), mode async_eager, executor in_process,"
        " partition 2026-11-27"
    )
    assert (out / "2026-11-27" / "a.csv").is_file()
    with DagsterInstance.from_ref(_ref(home)) as instance:
        [run] = instance.get_runs()
    assert run.tags["dagster/partition"] == "2026-11-27"
    assert run.tags["dagster/partition_set"] == "daily_partition_set"
    assert run.run_config["resources"]["capport"]["config"]["ref_datetime"] == (
        "2026-11-27T00:00:00+08:00"
    )


def test_capport_run_d_inside_a_partition_exits_2(write_config, tmp_path):
    config = config_with(write_config, RUNNERS)
    result = capport("run", "-c", str(config), "-p", "daily", "-d", "2026-11-27T10:00")
    assert result.returncode == 2
    assert result.stderr == (
        "error: -d 2026-11-27T10:00 is inside partition 2026-11-27, which starts at"
        " 2026-11-27T00:00:00+08:00 (daily): give -d 2026-11-27\n"
    )


def test_schedules_lists_the_partitions(write_config, capsys):
    config_with(write_config, RUNNERS)
    assert main(["schedules", "-c", "config"]) == 0
    assert "  partitions: daily from 2026-11-01 (Asia/Singapore)\n" in capsys.readouterr().out


def test_the_project_refuses_partitions_before_building(write_config):
    runners = "runner:\n  a: { pipelines: [daily], partitions: true, schedule: { every: 2d } }\n"
    with pytest.raises(ValidationError):
        load_project(config_with(write_config, runners))


def _ref(home: Path):
    from dagster._core.instance.ref import InstanceRef

    return InstanceRef.from_dir(str(home))
