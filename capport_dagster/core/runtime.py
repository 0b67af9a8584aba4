"""Running one stage: the part of a run that does not depend on the orchestrator.

The translator calls :func:`run_stage` from inside a Dagster op. It gives the task its frames in
the mode's form, converts what the task returns back to it (eager modes collect here, lazy modes
never do), runs blocking Polars work off the event loop in the async modes (Polars releases the
GIL, so threads really overlap) and turns every failure into a located `TaskError`.
"""

from __future__ import annotations

import asyncio
import inspect
import reprlib
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field, replace
from functools import partial

import polars as pl

from capport_dagster.core.constraints import constraint_check
from capport_dagster.core.graph import StageNode
from capport_dagster.core.models import Model, explain_cast_failure
from capport_dagster.core.registry import Frame, RunContext
from capport_dagster.core.secrets import Redactor
from capport_dagster.core.sinkpass import (
    PREVIEW_ROWS,
    FrameSummary,
    SinkPass,
    Source,
    blame_source,
    carry_sources,
    mark_source,
    sources_of,
    summarise,
)
from capport_dagster.errors import CapportError, Location, TaskError

__all__ = ["PREVIEW_ROWS", "FrameSummary", "StageResult", "frame_failure", "run_stage"]

# Models whose casts a lazy frame still carries in its plan: a strict cast in a lazy plan fails
# only when a later stage collects, so the frame remembers which models it went through in order
# to name them in the error. Stored as an attribute: LazyFrames are plain Python objects.
_MODELS_ATTR = "_capport_models"
# The stage that produced a lazy frame, and the run's secret masking, for failures when it is
# executed outside any stage (persisting it between processes: see `frame_failure`).
_LOCATION_ATTR = "_capport_location"
_REDACT_ATTR = "_capport_redact"


@dataclass(frozen=True)
class StageResult:
    """What a stage wrote, summarised; and the inputs it previewed (the result frames it is the
    first sink of: their head and length came from the pass that wrote them)."""

    frames: Mapping[str, Frame]
    summaries: Mapping[str, FrameSummary]
    previews: Mapping[str, FrameSummary] = field(default_factory=dict)
    #: (frame, model name) of the constraint checks the stage ran, all passed.
    checked: frozenset[tuple[str, str]] = frozenset()
    #: What a sink reported about its write (`SinkPass.metadata`).
    metadata: Mapping[str, str | int] = field(default_factory=dict)


async def run_stage(
    node: StageNode,
    frames: Mapping[str, Frame],
    ctx: RunContext,
    *,
    unread: Collection[str] = (),
    preview: bool = False,
    preview_inputs: Collection[str] = (),
) -> StageResult:
    """Run `node`'s task on `frames` (keyed by frame name): the frames it writes, summarised.

    - `unread`: output frames no later stage reads. They are results, part of the run: in lazy
      modes they are executed here (streamed, not kept), so a failure in one fails the run
      whether or not it is printed.
    - `preview`: compute the head and length of the `unread` outputs (in that same pass) and of
      `preview_inputs`, the result frames this stage is the first sink of (in the sink's pass;
      a custom sink that does not use `ctx.sink_pass` gets them computed after it).

    Models applied to the frames it writes (a load's) have their constraints checked here;
    sinks check theirs in their pass, before the rename. Every failure is a located TaskError;
    a Polars failure caused by data a stage read (a bad CSV file) is located at that stage and
    names the file (`sinkpass.blame_source`).
    """
    models = _models_upstream(frames.values(), node)
    upstream = sources_of(frames.values())
    suspects = upstream
    inputs = {name: _as_mode(frame, ctx) for name, frame in frames.items()}
    sink_pass = SinkPass(preview_inputs if preview else ())
    ctx = replace(ctx, sink_pass=sink_pass)
    try:
        result = await _call(node, inputs, ctx)
        missing = [name for name in node.writes if name not in result]
        if missing:
            raise TaskError(
                f"task '{node.stage.task}' did not return frame(s) {', '.join(missing)}"
                f" (it returned {', '.join(result) or 'nothing'})",
                ctx.location,
            )
        outputs = {name: result[name] for name in node.writes}
        for name, frame in outputs.items():
            if not isinstance(frame, pl.DataFrame | pl.LazyFrame):
                raise TaskError(
                    f"task '{node.stage.task}' returned {_shown(frame)} for frame '{name}', not"
                    " a polars DataFrame or LazyFrame (return {'" + name + "': a frame})",
                    ctx.location,
                )
        stays_lazy = ctx.mode.is_lazy and not node.materialize
        if stays_lazy:
            outputs = {name: _as_mode(frame, ctx) for name, frame in outputs.items()}
            _mark_own_plans(outputs, frames, node, ctx.location)
        suspects = sources_of([*frames.values(), *outputs.values()])
        if not stays_lazy:
            # Eager modes; or a lazy stage whose plans read a file a later stage overwrites,
            # so they must be executed now (see `graph._file_order`), then passed on lazily.
            outputs = await _off_loop(ctx, _collect_all, outputs)
        finished = await _off_loop(ctx, _finish, node, outputs, unread, preview, ctx.location)
        summaries, checked = finished
        late = {n: inputs[n] for n in sink_pass.preview if n not in sink_pass.summaries}
        if late:  # a custom sink executed its frames itself: the preview costs a second pass
            sources = {name: (frame, frame.lazy()) for name, frame in late.items()}
            await _off_loop(
                ctx, partial(sink_pass.execute, [], sources=sources, location=ctx.location)
            )
        previews = dict(sink_pass.summaries)
        if ctx.mode.is_lazy:
            outputs = {name: frame.lazy() for name, frame in outputs.items()}
    except CapportError as exc:
        redacted = _redacted(exc, ctx.redact)
        if redacted is not exc:
            raise redacted from None
        raise
    except Exception as exc:
        blamed = await _blame(ctx, exc, suspects)
        error = blamed or _task_error(exc, node, models, ctx)
        error.__cause__ = exc
        redacted = _redacted(error, ctx.redact)
        if redacted is not error:
            raise redacted from None
        raise error from exc
    for frame in outputs.values():
        if isinstance(frame, pl.LazyFrame):
            carry_sources(frame, upstream)
            setattr(frame, _MODELS_ATTR, models)
            setattr(frame, _LOCATION_ATTR, ctx.location)
            setattr(frame, _REDACT_ATTR, ctx.redact)
    return StageResult(
        outputs,
        summaries,
        previews,
        frozenset(checked | sink_pass.checked),
        dict(sink_pass.metadata),
    )


def _mark_own_plans(
    outputs: Mapping[str, Frame], inputs: Mapping[str, Frame], node: StageNode, at: Location
) -> None:
    """Mark the plans a lazy stage built as its own, so that a failure they cause stages later
    (a strict cast in a transform, executed by a sink) is located at this stage, as an eager
    run locates it (`blame_source`, on failures only). A load's plans already name their file;
    an input passed on unchanged stays marked as the stage that built it."""
    passed = {id(frame) for frame in inputs.values()}
    for frame in outputs.values():
        if not isinstance(frame, pl.LazyFrame) or id(frame) in passed:
            continue
        if not any(source.location == at for source in sources_of([frame])):
            mark_source(frame, at, f"task '{node.stage.task}' failed")


def _finish(
    node: StageNode,
    outputs: Mapping[str, Frame],
    unread: Collection[str],
    preview: bool,
    location: Location,
) -> tuple[dict[str, FrameSummary], set[tuple[str, str]]]:
    """Check the constraints of the models the stage applied to what it wrote, execute its
    unread lazy outputs, and summarise every output: one streaming pass for all of it."""
    checks = [
        constraint_check(outputs[frame], model, frame)
        for frame, model in node.spec.model_frames(node.args)
        if frame in outputs and model.checks
    ]
    lazy = {name: outputs[name] for name in unread if isinstance(outputs[name], pl.LazyFrame)}
    executed = SinkPass(lazy if preview else ())
    executed.execute(
        # Every column computed (a strict cast that fails raises), nothing kept.
        [frame.select(pl.all().null_count()) for frame in lazy.values()],  # type: ignore[union-attr]
        sources={name: (frame, frame.lazy()) for name, frame in lazy.items()},
        checks=checks,
        location=location,
    )
    summaries = {name: summarise(frame) for name, frame in outputs.items()}
    return {**summaries, **executed.summaries}, executed.checked


def frame_failure(exc: Exception, frame: object) -> TaskError | None:
    """A located error for a lazy stage output that failed when executed after its stage (the
    multiprocess IO manager sinks it to Parquet); None when the frame did not come from a stage.

    Its `__cause__` is `exc`, to be raised with (`raise error from error.__cause__`), unless a
    secret had to be masked: then the message is masked and the cause dropped, as in a stage.
    """
    location = getattr(frame, _LOCATION_ATTR, None)
    if location is None:
        return None
    blamed = blame_source(sources_of([frame])) if _may_be_data(exc) else None
    explained = blamed or explain_cast_failure(exc, getattr(frame, _MODELS_ATTR, ()), location)
    error = explained or TaskError(f"persisting the frame failed: {_detail(exc)}", location)
    error.__cause__ = exc
    redact = getattr(frame, _REDACT_ATTR, None)
    return error if redact is None else _redacted(error, redact)


async def _call(node: StageNode, inputs: dict[str, Frame], ctx: RunContext) -> dict[str, Frame]:
    run = node.spec.run
    if inspect.iscoroutinefunction(run):
        result = await run(node.args, inputs, ctx)
    else:
        result = await _off_loop(ctx, run, node.args, inputs, ctx)
    if inspect.isawaitable(result):
        result = await result
    if result is None:
        return {}
    if not isinstance(result, Mapping):
        expected = ", ".join(f"'{name}': a frame" for name in node.writes)
        raise TaskError(
            f"task '{node.stage.task}' returned {_shown(result)}, not a mapping of frame name"
            f" to frame (return {{{expected}}})",
            ctx.location,
        )
    return dict(result)


async def _blame(ctx: RunContext, exc: Exception, suspects: tuple[Source, ...]) -> TaskError | None:
    """The source to blame for a failure executing a plan, if one fails on its own (called
    on failures only)."""
    if not suspects or not _may_be_data(exc):
        return None
    return await _off_loop(ctx, blame_source, suspects)


def _may_be_data(exc: BaseException) -> bool:
    """A failure a source's data may have caused: Polars refusing it, or its file unreadable."""
    return isinstance(exc, pl.exceptions.PolarsError | OSError)


def _shown(value: object) -> str:
    """A value a task returned where a frame (or a mapping of frames) belongs, in one line:
    `a list of 2 items (polars.DataFrame)`, `str 'X'`, `pandas.DataFrame`."""
    kind = _type_name(value)
    if isinstance(value, list | tuple | set | frozenset):
        if not value:
            return f"an empty {kind}"
        inner = ", ".join(sorted({_type_name(item) for item in value}))
        return f"a {kind} of {len(value)} item{'s' if len(value) != 1 else ''} ({inner})"
    if value is None:
        return "None"
    if isinstance(value, str | int | float | bool):
        return f"{kind} {reprlib.repr(value)}"
    return kind


def _type_name(value: object) -> str:
    module = type(value).__module__
    name = type(value).__qualname__
    return name if module == "builtins" else f"{module.split('.')[0]}.{name}"


async def _off_loop(ctx: RunContext, fn, *args):  # type: ignore[no-untyped-def]
    """In async modes, blocking work goes to a thread so other stages keep running."""
    if ctx.mode.is_async:
        return await asyncio.to_thread(fn, *args)
    return fn(*args)


def _as_mode(frame: Frame, ctx: RunContext) -> Frame:
    if ctx.mode.is_lazy:
        return frame.lazy() if isinstance(frame, pl.DataFrame) else frame
    # An eager stage can receive a LazyFrame only from a persisted frame being scanned back.
    return frame.collect() if isinstance(frame, pl.LazyFrame) else frame


def _collect_all(outputs: dict[str, Frame]) -> dict[str, Frame]:
    lazy = [name for name, frame in outputs.items() if isinstance(frame, pl.LazyFrame)]
    collected = pl.collect_all([outputs[name] for name in lazy])  # type: ignore[misc]
    return {**outputs, **dict(zip(lazy, collected, strict=True))}


def _models_upstream(frames: Iterable[Frame], node: StageNode) -> tuple[Model, ...]:
    models: dict[str, Model] = {}
    for frame in frames:
        for model in getattr(frame, _MODELS_ATTR, ()):
            models[model.name] = model
    for _, model in node.spec.model_frames(node.args):
        models[model.name] = model
    return tuple(models.values())


def _task_error(
    exc: Exception, node: StageNode, models: tuple[Model, ...], ctx: RunContext
) -> TaskError:
    explained = explain_cast_failure(exc, models, ctx.location)
    if explained is not None:
        return explained
    return TaskError(f"task '{node.stage.task}' failed: {_detail(exc)}", ctx.location)


def _redacted(error: CapportError, redact: Redactor) -> CapportError:
    """The error with secret values masked, cut from its causes when any of them quotes a
    secret (Dagster would store their text too); the same object when nothing is secret."""
    chain: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and len(chain) < 20:
        chain.append(current)
        current = current.__cause__ or current.__context__
    if all(redact(str(e)) == str(e) for e in chain):
        return error
    return type(error)(redact(error.message), error.location)


def _detail(exc: Exception) -> str:
    if isinstance(exc, pl.exceptions.PolarsError):
        return str(exc).split("\n\n")[0].strip()
    if isinstance(exc, OSError):
        return f"{exc.strerror or exc}: {exc.filename}" if exc.filename else str(exc)
    return f"{type(exc).__name__}: {exc}"
