"""One pass per sink: what a stage writes, the checks of what it writes, and the previews.

In lazy modes nothing is computed before a sink; a sink then executes the whole plan upstream of
it. Everything else the run wants from that data is computed in the *same* pass, by handing
Polars every query at once (`pl.collect_all` on the streaming engine, which shares the plan's
common part between them):

- the file (or files) the sink writes;
- the constraint checks of the model shaping what it writes (`core/constraints.py`): they run
  before the file is renamed into place, so data breaking them never lands;
- the head and length of an input frame the run previews (`capport run` prints result frames):
  a second computation of the frame for its preview cost 1.3x the time and 2.3x the memory of
  the run on a 5M-row pipeline; in the same pass it is nearly free.

A sink task calls :meth:`SinkPass.execute` (through `RunContext.sink_pass`) inside its
`atomic_path` block. DataFrames (eager modes) take the same path: their head and length are known
without a query.

A pass that fails may fail because of its data rather than its own work: a CSV file with a
ragged row, invalid UTF-8 or a value its column's type refuses fails wherever the plan reading it
first executes, in lazy modes a sink stages later. So a stage that reads outside data marks the
plan it builds as a :class:`Source` (`mark_source`), the marks travel with the frames, and on a
failure :func:`blame_source` executes the sources feeding it one by one: the first that fails on
its own is the culprit, and the error is located at the stage that read it, naming the file.
Nothing of this runs unless a pass has failed.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass

import polars as pl

from capport_dagster.core.constraints import ConstraintCheck
from capport_dagster.core.models import Model, explain_cast_failure
from capport_dagster.errors import Location, ModelCastError, TaskError

__all__ = [
    "PREVIEW_ROWS",
    "FrameSummary",
    "SinkPass",
    "Source",
    "blame_source",
    "carry_sources",
    "mark_source",
    "sources_of",
    "summarise",
]

PREVIEW_ROWS = 5


@dataclass(frozen=True)
class FrameSummary:
    """What a run can say about a frame without extra work (plus a preview if asked).

    A DataFrame is in memory: its row count and head are free. A LazyFrame is a plan: it gets its
    schema (planning only) and, when a pass computed them, its head and length.
    """

    schema: Mapping[str, pl.DataType]
    rows: int | None
    head: pl.DataFrame | None
    lazy: bool


def summarise(frame: pl.DataFrame | pl.LazyFrame) -> FrameSummary:
    """The free summary: schema, and for a DataFrame its length and head."""
    if isinstance(frame, pl.DataFrame):
        return FrameSummary(frame.schema, frame.height, frame.head(PREVIEW_ROWS), False)
    return FrameSummary(frame.collect_schema(), None, None, True)


class SinkPass:
    """The passes of one stage: the inputs to preview, and the summaries the passes gave.

    `preview` names the input frames whose head and length the run wants from this stage (the
    first sink reading a result frame); each is computed by the first pass that reads it.
    """

    def __init__(self, preview: Collection[str] = ()) -> None:
        self.preview = frozenset(preview)
        self.summaries: dict[str, FrameSummary] = {}
        #: (frame, model name) of every constraint check a pass of this stage ran and passed.
        self.checked: set[tuple[str, str]] = set()
        #: What a sink reports about its write (save_sql: rows, table, mode): the metadata of
        #: the sink asset's materialization. No secrets: it is stored in Dagster's event log.
        self.metadata: dict[str, str | int] = {}

    def execute(
        self,
        writes: Sequence[pl.LazyFrame],
        *,
        sources: Mapping[str, tuple[pl.DataFrame | pl.LazyFrame, pl.LazyFrame]],
        checks: Sequence[ConstraintCheck] = (),
        location: Location,
    ) -> None:
        """Run `writes` (lazy sinks: `frame.sink_csv(path, lazy=True)`, or any query run for its
        effect) with the checks and the previews of `sources` in one streaming pass; raise
        `ConstraintError` after the pass if a check fails, before the caller renames.

        `sources` maps each input frame the writes write to `(frame, written)`: the frame as the
        stage got it, and the frame the sink writes from it, with the same rows (a model's
        reshape, not a filter). The head is the frame's; the row count is taken from `written`:
        asking Polars for both the head and the length of a plan that the sink only shares a part
        of made it cache that part whole (5M rows: 1.4 GB instead of 0.43 GB, and slower).
        """
        queries = list(writes)
        watched: list[tuple[str, pl.LazyFrame]] = []
        for name, (frame, written) in sources.items():
            if name not in self.preview or name in self.summaries:
                continue
            if isinstance(frame, pl.DataFrame):
                self.summaries[name] = summarise(frame)
            else:
                watched.append((name, frame))
                queries += [frame.head(PREVIEW_ROWS), written.select(pl.len())]
        start = len(queries)
        for check in checks:
            queries += check.queries
        results = pl.collect_all(queries, engine="streaming") if queries else []
        for i, (name, frame) in enumerate(watched):
            head, length = results[len(writes) + 2 * i], results[len(writes) + 2 * i + 1]
            self.summaries[name] = FrameSummary(frame.collect_schema(), length.item(), head, True)
        for check in checks:
            done = results[start : start + len(check.queries)]
            start += len(check.queries)
            check.raise_if_broken(done, location)
            self.checked.add((check.frame, check.model.name))


# --- sources: where the data of a failed pass came from ---------------------------------------

_SOURCES_ATTR = "_capport_sources"


@dataclass(frozen=True, eq=False)
class Source:
    """A plan that reads outside data (a file), as the stage reading it built it.

    `what` names the read for the user (`load_csv: /data/raw.csv`); `models` are the models the
    plan casts to, to explain a failed cast; `reason` turns the plan's own failure into the
    words after `what` (a task knows its format: the line of a ragged CSV row), or None to fall
    back on Polars' first paragraph.
    """

    frame: pl.LazyFrame
    location: Location
    what: str
    models: tuple[Model, ...] = ()
    reason: Callable[[Exception], str | None] | None = None


def mark_source(
    frame: pl.LazyFrame,
    location: Location,
    what: str,
    *,
    models: Iterable[Model] = (),
    reason: Callable[[Exception], str | None] | None = None,
) -> pl.LazyFrame:
    """Mark `frame` as read from outside data by the stage at `location`; returns `frame`.

    An attribute of the LazyFrame object, like the runtime's other marks: free on success.
    """
    source = Source(frame, location, what, tuple(models), reason)
    setattr(frame, _SOURCES_ATTR, (*getattr(frame, _SOURCES_ATTR, ()), source))
    return frame


def sources_of(frames: Iterable[object]) -> tuple[Source, ...]:
    """The sources feeding `frames`, in order, each once."""
    return _unique(source for frame in frames for source in getattr(frame, _SOURCES_ATTR, ()))


def _unique(sources: Iterable[Source]) -> tuple[Source, ...]:
    return tuple({id(source): source for source in sources}.values())


def carry_sources(frame: object, sources: Iterable[Source]) -> None:
    """Record on a stage's output the sources feeding it (a DataFrame holds no plan: skipped)."""
    if isinstance(frame, pl.LazyFrame):
        setattr(frame, _SOURCES_ATTR, _unique((*sources, *sources_of([frame]))))


def blame_source(sources: Iterable[Source]) -> TaskError | None:
    """After a pass failed: the error of the first source that fails when executed alone,
    located at the stage that read it; None when every source reads fine (the failure is the
    failing stage's own). Costs one pass per source tried, and is only called on a failure."""
    for source in sources:
        try:
            # Every column computed, nothing kept: a bad field anywhere in the file fails.
            source.frame.select(pl.all().null_count()).collect(engine="streaming")
        except (pl.exceptions.PolarsError, OSError) as exc:  # unreadable data, or file gone
            error = _source_error(source, exc)
            error.__cause__ = exc
            return error
        except Exception:  # not a reading failure: not this source's fault
            continue
    return None


def _source_error(source: Source, exc: Exception) -> TaskError:
    explained = explain_cast_failure(exc, source.models, source.location)
    if explained is not None:
        return ModelCastError(f"{source.what}: {explained.message}", source.location)
    try:
        reason = source.reason(exc) if source.reason is not None else None
    except Exception:  # e.g. the file went away: Polars' own words still say what failed
        reason = None
    if reason is None and isinstance(exc, OSError) and exc.strerror:
        reason = f"{exc.strerror}: {exc.filename}" if exc.filename else exc.strerror
    if reason is None:
        reason = str(exc).split("\n\n")[0].strip()
    return TaskError(f"{source.what}: {reason}", source.location)
