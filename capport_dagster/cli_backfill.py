"""`capport backfill`: run a partitioned pipeline once per partition of a range, in order.

`capport backfill -c DIR -p PIPELINE --from DATE --to DATE` runs the partitions from `--from` to
`--to` (both included; each a partition key or a partition's start, as `capport run -d` takes
them) one after the other, each exactly as `capport run -d KEY` would (`cli_run.prepare_run` and
`cli_run.execute`), so one run of a pipeline at a time holds. The runs go to the instance in
`$DAGSTER_HOME` (required: a backfill is a record there), tagged `dagster/backfill=<id>` and
`dagster/partition=<key>` like the runs the daemon launches for a backfill, and the backfill is
recorded as a `PartitionBackfill`, so the UI's *Backfills* page lists it with its runs.

**Decisions.**

* A failed partition does not stop the backfill: partitions are independent windows, and the
  others' runs are still worth having. The command exits 1 and lists the failed partitions with
  the `capport run -d KEY` line that re-runs each.
* The record is written when the backfill starts with status `COMPLETED` ("its runs are handed
  over", what Dagster's own `dagster job backfill` records when it submits the runs itself), then
  `COMPLETED_SUCCESS` or `COMPLETED_FAILED` at the end, `CANCELED` on SIGINT/SIGTERM. Not
  `REQUESTED`: the daemon launches the partitions of a requested backfill itself, so a running
  daemon would have run every partition a second time (or, not finding the code location, marked
  the backfill failing and canceled this command's runs).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import replace

import pendulum
from dagster import DagsterInstance
from dagster._core.execution.backfill import BulkActionStatus, PartitionBackfill
from dagster._core.remote_origin import (
    ManagedGrpcPythonEnvCodeLocationOrigin,
    RemotePartitionSetOrigin,
    RemoteRepositoryOrigin,
)
from dagster._core.storage.tags import BACKFILL_ID_TAG
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
from dagster._core.utils import make_new_backfill_id

from capport_dagster.cli_common import EXIT_OK, EXIT_RUN_FAILED
from capport_dagster.cli_run import (
    check_dagster_home,
    execute,
    instance_for,
    prepare_run,
    report_failure,
)
from capport_dagster.core import interrupts
from capport_dagster.errors import ConfigError, Location
from capport_dagster.translate.partitions import (
    partition_for,
    partition_set_name,
    partitions_between,
)

__all__ = ["DEFAULT_LOCATION", "backfill_pipeline", "backfill_record"]

#: The code location the repository's `workspace.yaml` loads (`python_module:
#: capport_dagster.definitions`): the UI finds a backfill's job through it.
DEFAULT_LOCATION = "capport_dagster.definitions"
#: The repository a `Definitions` object becomes.
_REPOSITORY = "__repository__"


def backfill_pipeline(args: argparse.Namespace) -> int:
    # The stop directory first, as `capport run` does (see cli_run.run_pipeline).
    with interrupts.stop_directory():
        return _backfill(args)


def backfill_record(
    job_name: str,
    keys: Sequence[str],
    *,
    status: BulkActionStatus,
    location: str = DEFAULT_LOCATION,
    title: str | None = None,
    tags: dict[str, str] | None = None,
) -> PartitionBackfill:
    """A job backfill of `keys` as the UI and the daemon read it: its partition set is the job's
    in code location `location` (`REQUESTED` ones are launched by the daemon from there)."""
    origin = ManagedGrpcPythonEnvCodeLocationOrigin(
        LoadableTargetOrigin(
            executable_path=sys.executable,
            module_name=DEFAULT_LOCATION,
            working_directory=os.getcwd(),
        ),
        location_name=location,
    )
    return PartitionBackfill(
        backfill_id=make_new_backfill_id(),
        status=status,
        from_failure=False,
        tags=tags or {},
        backfill_timestamp=time.time(),
        title=title,
        partition_set_origin=RemotePartitionSetOrigin(
            repository_origin=RemoteRepositoryOrigin(origin, _REPOSITORY),
            partition_set_name=partition_set_name(job_name),
        ),
        partition_names=list(keys),
    )


def _backfill(args: argparse.Namespace) -> int:
    check_dagster_home()
    if not os.environ.get("DAGSTER_HOME"):
        raise ConfigError(
            "capport backfill needs DAGSTER_HOME: the backfill and its runs are recorded in that"
            " instance (export DAGSTER_HOME=$PWD/.dagster_home, a directory holding the repo's"
            " dagster.yaml)",
            Location(),
        )
    run = prepare_run(args, partition_date=False)
    cadence = run.partitions
    if cadence is None:
        raise ConfigError(
            f"pipeline '{args.pipeline}' is not partitioned, so it has no partitions to"
            " backfill: give the runner that lists it `partitions: true` (docs/reference.md,"
            f" Partitions and backfills), or run one date with capport run -p {args.pipeline}"
            " -d DATE",
            Location(),
        )
    now = pendulum.now(cadence.timezone)
    first = partition_for(cadence, args.start, "--from", now)
    last = partition_for(cadence, args.end, "--to", now)
    keys = partitions_between(cadence, first, last, now)
    if not keys:
        raise ConfigError(
            f"--from {args.start} (partition {first}) is after --to {args.end} (partition"
            f" {last}): nothing to backfill",
            Location(),
        )
    # Per run: no stage lines and no preview (a line per partition says how it went).
    run = replace(run, run_config={**run.run_config, "progress": False, "preview": False})
    executor = run.executor
    tags = {"capport/pipeline": args.pipeline}
    command = f"capport backfill -p {args.pipeline} --from {first} --to {last}"
    with instance_for(executor, args.debug) as instance:
        record = backfill_record(
            run.job_name,
            keys,
            status=BulkActionStatus.COMPLETED,
            location=args.location,
            title=command,
            tags=tags,
        )
        instance.add_backfill(record)
        backfill_id = record.backfill_id
        print(
            f"[capport] backfill {backfill_id}: pipeline '{run.graph.name}', {len(keys)}"
            f" {cadence.kind} partitions from {first} to {last}, mode {run.run_config['mode']},"
            f" executor {executor}",
            file=sys.stderr,
        )
        failed: list[str] = []
        for index, key in enumerate(keys, start=1):
            part = run.for_partition(key)
            started = time.monotonic()
            result = execute(
                part,
                instance,
                part.run_config,
                tags={BACKFILL_ID_TAG: backfill_id},
                stopping=lambda: _finish(instance, backfill_id, BulkActionStatus.CANCELED),
            )
            took = time.monotonic() - started
            if not result.success:
                report_failure(part, instance, result.run_id, result.all_events, executor)
                failed.append(key)
            outcome = "success" if result.success else "failed"
            print(
                f"partition {key} ({index}/{len(keys)}): {outcome} in {took:.1f} s",
                file=sys.stderr,
            )
        status = BulkActionStatus.COMPLETED_FAILED if failed else BulkActionStatus.COMPLETED_SUCCESS
        _finish(instance, backfill_id, status)
    done = len(keys) - len(failed)
    print(f"backfill {backfill_id}: {done} of {len(keys)} partitions succeeded")
    if failed:
        print(f"failed partitions: {', '.join(failed)}; re-run each with:", file=sys.stderr)
        for key in failed:
            print(f"  capport run -c {args.config} -p {args.pipeline} -d {key}", file=sys.stderr)
        return EXIT_RUN_FAILED
    return EXIT_OK


def _finish(instance: DagsterInstance, backfill_id: str, status: BulkActionStatus) -> None:
    """The backfill's final status, and when it ended."""
    record = instance.get_backfill(backfill_id)
    if record is not None:
        instance.update_backfill(record.with_status(status).with_end_timestamp(time.time()))
