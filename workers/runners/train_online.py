"""train with ``online``: the model trains while producer jobs generate its data, nothing
stored but checkpoints and the model (``app.jobkinds.online_params`` says what the options
mean; ``models.online_training`` is the loop).

The trainer opens the job's bounded transport (a Redis stream on the broker's Redis, or
the local spool without Redis), makes its producers (``workers.online_producers``), and
trains on what they stream, validating every epoch-equivalent against persistence on the
stored dataset it was given (held out whole). A producer no worker takes is run by the
trainer in a child process (``workers.online_producers``: a single-slot worker, as under a
default ``eddyscope up``, runs online jobs too). Producers that stop are replaced; a trainer
killed mid-run is redelivered and resumes from its checkpoint with the producers it had
(the stream kept what they pushed meanwhile). When it ends the stream is closed and
deleted, so producers still running stop and nothing is left in Redis or on disk; then
the model is scored (rollout skill on the validation trajectories) and registered as an
offline one is.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from sqlalchemy.orm.attributes import flag_modified

from app.db.tables import Dataset, Model
from app.jobkinds.online_params import producer_template
from app.queue.broker import resolve_broker
from models.online_training import OnlineConfig, OnlineStreamEnded, StreamLedger, train_online
from models.registry import get_spec
from models.training import TrainConfig, TrainingStopped
from workers.context import JobCancelled, JobContext, JobError
from workers.online_codec import BadWindow, decode_window
from workers.online_producers import ProducerPool
from workers.online_stream import open_stream, transport_kind
from workers.runners.train import (
    _build,
    _check_fit,
    _domain_length,
    _input_stats,
    _register,
    _rollout_skill,
    load_trajectories,
)

log = logging.getLogger(__name__)

# How often the trainer looks at its producers (job rows and their last events).
SUPERVISE_S = 1.0


class StreamSource:
    """The loop's :class:`models.online_training.WindowSource`: windows from the job's
    transport, producers watched and replaced, a clear failure when none ever runs."""

    def __init__(self, ctx: JobContext, stream, pool: ProducerPool, online: dict, max_bytes: int):
        self.ctx = ctx
        self.stream = stream
        self.pool = pool
        self.online = online
        self.max_bytes = max_bytes
        self.ledger: StreamLedger | None = None
        self.bad_windows = 0
        self.last_activity = time.monotonic()
        self._checked = 0.0
        self._status: dict[str, Any] = {}
        self._done = False
        self._listed: list[tuple] | None = None

    def bind(self, ledger: StreamLedger) -> None:
        self.ledger = ledger

    def pull(self, n: int) -> list:
        messages = self.stream.pull(n)
        if messages:
            self.last_activity = time.monotonic()
        windows = []
        for header, data in messages:
            try:
                windows.append(decode_window(header, data, self.max_bytes))
            except BadWindow as exc:  # not from our producers: dropped and counted
                self.bad_windows += 1
                log.warning("job %s: a streamed message was dropped: %s", self.ctx.job_id, exc)
        return windows

    def finished(self) -> bool:
        self._supervise()
        return self._done and len(self.stream) == 0

    def wait(self, seconds: float) -> None:
        self._supervise()
        idle = time.monotonic() - self.last_activity
        if idle > self.online["start_timeout_s"]:
            raise JobError(
                f"no window arrived and no producer ran for {idle:.0f} s: no worker on the "
                f"{self.online['queue']!r} queue took the producers, and the trainer could "
                "not run them itself (see the worker's log)"
            )
        time.sleep(seconds)

    def status(self) -> dict[str, Any]:
        self._supervise()
        return {
            **{k: v for k, v in self._status.items() if k != "producers"},
            "stream_fill": len(self.stream),
            "stream_size": self.stream.capacity,
            "bad_windows": self.bad_windows,
            "replacements": self.pool.replacements,
        }

    def _supervise(self) -> None:
        if time.monotonic() - self._checked < SUPERVISE_S or self.ledger is None:
            return
        self._checked = time.monotonic()
        for event in self.pool.supervise(self.ledger):
            self.ctx.report(event["type"], event)
        self._status = self.pool.status()
        if self._status["producers_running"]:
            self.last_activity = time.monotonic()
        self._done = self.pool.finished(self.ledger)
        listed = [(p["job_id"], p["status"], p["worker"]) for p in self._status["producers"]]
        if listed != self._listed:  # the Train page's list of producers, when it changes
            self._listed = listed
            self.ctx.report("producers", {"producers": self._status["producers"]})


def run_train_online(ctx: JobContext) -> dict[str, Any]:
    p = ctx.params
    online = p["online"]
    with ctx.db.session() as session:
        dataset = session.get(Dataset, p["dataset_id"])
    if dataset is None:
        raise JobError(f"the validation dataset {p['dataset_id']} no longer exists")
    validation, attrs = load_trajectories(ctx.artifacts.resolve(dataset.path))
    arch, config, model = _build(ctx, None, validation)
    _check_fit(model, validation, p)
    length = _domain_length(dataset.flow)
    try:
        train_config = TrainConfig.from_params(p, length=length)
        loop = OnlineConfig(
            steps_per_epoch=online["steps_per_epoch"],
            buffer_size=online["buffer_size"],
            buffer_policy=online["buffer_policy"],
            min_fill=online["min_fill"],
            max_seen=online["max_seen"],
        )
    except ValueError as exc:
        raise JobError(str(exc)) from None
    contract = model.contract
    window = contract.history + p["unroll"] * contract.out_steps
    kind = transport_kind(resolve_broker(ctx.settings).url)
    template = {
        **producer_template(dataset),
        "window": window,
        "transport": kind,
        "online_seed": online["seed"],
        "solver_batch": online["solver_batch"],
        "stream_size": online["stream_size"],
    }
    stream = open_stream(kind, ctx.job_id, ctx.settings, online["stream_size"], create=True)
    pool = ProducerPool(ctx, template, online)
    max_bytes = window * int(validation[0, 0].numel()) * 4
    source = StreamSource(ctx, stream, pool, online, max_bytes)
    checkpoints = ctx.artifacts.resolve(ctx.artifacts.training_checkpoints(ctx.job_id))
    started = time.perf_counter()

    def on_event(event: dict[str, Any]) -> None:
        progress = event["step"] / event["total_steps"] if event["type"] == "train" else None
        ctx.report(event["type"], event, progress=progress)

    try:
        pool.start()
        outcome = train_online(
            model,
            source,
            validation,
            train_config,
            loop,
            on_event=on_event,
            should_stop=ctx.should_stop,
            device=ctx.device,
            checkpoint_dir=checkpoints,
        )
    except TrainingStopped as exc:
        raise JobCancelled(ctx.job_id) from exc
    except OnlineStreamEnded as exc:
        raise JobError(str(exc)) from None
    finally:
        # A lost attempt leaves the stream, and the producers it runs as child processes,
        # to the attempt that replaced it.
        if not ctx.lost.is_set():
            stream.close()
            pool.cancel_queued()
            pool.stop_local()
            stream.delete()
        stream.release()
    seconds = time.perf_counter() - started

    n_val = validation.shape[0]
    result = {
        "history": outcome.history,
        "val_rel_l2": outcome.val_rel_l2,
        "persistence_rel_l2": outcome.persistence_rel_l2,
        # Nothing stored was trained on; the input statistics and the rollout skill are
        # measured on the held-out trajectories, of the same flow and parameters.
        "train_trajectories": [],
        "val_trajectories": list(range(n_val)),
        "resumed_from_epoch": outcome.resumed_from_epoch,
    }
    result["input_stats"] = _input_stats(validation, result, length)
    result["rollout_skill"] = _rollout_skill(ctx, outcome.model, validation, result, length, attrs)
    summary = {
        **outcome.stream,
        "steps": outcome.steps,
        "total_steps": outcome.total_steps,
        "ended_early": outcome.ended_early,
        "notes": outcome.notes,
        "trajectories": online["trajectories"],
        "producers": online["producers"],
        "validation_dataset_id": dataset.id,
    }
    if not p.get("name"):
        p["name"] = f"{get_spec(arch).label} online on {dataset.flow}"
    registered = _register(ctx, arch, config, outcome.model, dataset, None, attrs, result, seconds)
    with ctx.db.session() as session:
        row = session.get(Model, registered["model_id"])
        row.metrics = {**row.metrics, "online": summary}
        flag_modified(row, "metrics")
        session.commit()
    return {**registered, "online": summary}
