"""The ``eddyscope`` command: ``up`` (everything on one machine), ``api``, ``worker``, and
``generate`` / ``train`` / ``finetune`` / ``rollout`` / ``compare`` for scripting, each with a
progress bar."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from typing import Any

from pydantic import BaseModel

log = logging.getLogger("eddyscope")


def _settings():
    from app.settings import get_settings

    return get_settings()


def _pin_broker() -> Any:
    """Resolve the broker once and export it, so every child process uses the same one."""
    from app.queue.broker import resolve_broker

    settings = _settings()
    broker = resolve_broker(settings)
    os.environ["EDDYSCOPE_BROKER_URL"] = broker.url
    if broker.backend:
        os.environ["EDDYSCOPE_RESULT_BACKEND"] = broker.backend
    from app.settings import get_settings

    get_settings.cache_clear()  # later reads see the pinned broker
    return broker


def _database():
    from app.db.session import get_database

    return get_database(_settings().resolved_database_url)


def _prepare() -> None:
    from app.artifacts import ArtifactStore
    from app.db.session import get_database
    from app.examples import register_demo_model, register_examples

    settings = _settings()
    db = get_database(settings.resolved_database_url)
    artifacts = ArtifactStore(settings.resolved_artifact_root)
    register_examples(db, artifacts)
    register_demo_model(db, artifacts)


def worker_command(queues: str, concurrency: int, name: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "workers.worker_app",
        "worker",
        "--queues",
        queues,
        "--concurrency",
        str(concurrency),
        "--loglevel",
        "INFO",
        "--hostname",
        name,
        "--without-gossip",
        "--without-mingle",
    ]


def cmd_up(args: argparse.Namespace) -> int:
    broker = _pin_broker()
    print(f"eddyscope: broker: {broker.describe()}", flush=True)
    if broker.kind == "embedded":
        print(
            "eddyscope: no broker configured and no Redis on localhost; using the embedded "
            "SQLite broker (fine for one machine)",
            flush=True,
        )
    _prepare()
    settings = _settings()
    print(f"eddyscope: database: {settings.resolved_database_url.split('@')[-1]}", flush=True)
    worker = WorkerSupervisor(worker_command("gpu,cpu", args.concurrency, "eddyscope-local@%h"))
    worker.start()
    try:
        import uvicorn

        from app.main import create_app

        print(
            f"eddyscope: open http://{args.host}:{args.port}/ (Ctrl-C stops everything)", flush=True
        )
        uvicorn.run(create_app(), host=args.host, port=args.port, log_level="info")
    finally:
        worker.stop()
    return 0


class WorkerSupervisor:
    """``eddyscope up``'s worker: started in its own session, and started again when it dies
    (killed, out of memory), with a log line each time. A worker that keeps dying soon after
    it started is restarted after a delay that doubles each time (1 s, 2 s, … up to
    ``max_delay_s``), so a broken setup does not spin; one that ran ``stable_after_s`` or
    longer is restarted after 1 s. A job the dead worker was running is re-run by the API's
    sweep once its heartbeat is older than ``lost_after_s``."""

    def __init__(self, command: list[str], stable_after_s: float = 30.0, max_delay_s: float = 60.0):
        self.command = command
        self.stable_after_s = stable_after_s
        self.max_delay_s = max_delay_s
        self.restarts = 0
        self.process: subprocess.Popen | None = None
        self._started = 0.0
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._watch, name="worker-supervisor", daemon=True)

    def _spawn(self) -> None:
        self.process = subprocess.Popen(self.command, start_new_session=True)
        self._started = time.monotonic()
        print(f"eddyscope: worker started (pid {self.process.pid})", flush=True)

    def start(self) -> None:
        self._spawn()
        self._thread.start()

    def _watch(self) -> None:
        delay = 0.0
        while True:
            process = self.process
            code = process.wait()
            if self._stopping.is_set():
                return
            # Pool processes of the dead worker share its group: none may go on alone.
            _kill_group(process.pid)
            ran = time.monotonic() - self._started
            quick = ran < self.stable_after_s
            delay = min(max(2 * delay, 1.0), self.max_delay_s) if quick else 1.0
            print(
                f"eddyscope: the worker (pid {process.pid}) exited with status {code} after "
                f"{ran:.0f} s; restarting it in {delay:.0f} s",
                flush=True,
            )
            if self._stopping.wait(delay):
                return
            with self._lock:
                if self._stopping.is_set():
                    return
                self._spawn()
                self.restarts += 1

    def stop(self) -> None:
        self._stopping.set()
        with self._lock:
            if self.process is not None:
                _stop(self.process)


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def _stop(process: subprocess.Popen, grace_s: float = 10.0) -> None:
    if process.poll() is not None:
        return
    # The worker runs in its own session: signal the whole group, so pool children go too.
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(grace_s)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    print("eddyscope: worker stopped", flush=True)


def cmd_api(args: argparse.Namespace) -> int:
    import uvicorn

    from app.main import create_app

    _prepare()
    uvicorn.run(create_app(), host=args.host, port=args.port, log_level="info")
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    os.execv(sys.executable, worker_command(args.queues, args.concurrency, args.name))


def _add_params(parser: argparse.ArgumentParser, schema: type[BaseModel]) -> None:
    """One --option per job parameter, taken from the job's pydantic schema."""
    for name, field in schema.model_fields.items():
        if name == "queue":
            continue
        flag = "--" + name.replace("_", "-")
        annotation = str(field.annotation)
        extra: dict[str, Any] = {}
        if "list[int]" in annotation or "list[float]" in annotation:
            # A grid: --channel-grid 32 49 32.
            extra = {"nargs": "+", "type": int if "list[int]" in annotation else float}
        elif "dict" in annotation or "list" in annotation:
            # A model's config, a comparison's model list: given as JSON.
            extra = {"type": json.loads}
        parser.add_argument(
            flag,
            dest=f"param_{name}",
            default=None,
            # argparse formats help with %: a literal percent sign must be doubled.
            help=(field.description or ("JSON" if extra.get("type") is json.loads else "")).replace(
                "%", "%%"
            )
            or None,
            **extra,
        )
    parser.add_argument(
        "--wait",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="follow the job with a progress bar until it ends",
    )
    parser.add_argument(
        "--inline",
        action="store_true",
        help="run the job here now, not on a worker",
    )


def _collect(args: argparse.Namespace) -> dict[str, Any]:
    return {
        key.removeprefix("param_"): value
        for key, value in vars(args).items()
        if key.startswith("param_") and value is not None
    }


def cmd_job(args: argparse.Namespace) -> int:
    from app import jobs
    from app.jobkinds import InvalidParams, validate_params
    from app.state import AppState

    _prepare()
    state = AppState.from_settings(_settings())
    with state.db.session() as session:
        try:
            params, queue = validate_params(
                session, args.kind, _collect(args), settings=state.settings
            )
        except InvalidParams as exc:
            print(f"eddyscope: {exc}", file=sys.stderr)
            return 2
    inline = None
    if args.inline:
        job = jobs.submit(state.db, _NoQueue(), args.kind, params, queue)
        inline = _run_inline(job.id)
    else:
        job = jobs.submit(state.db, state.dispatcher, args.kind, params, queue)
        print(f"eddyscope: {args.kind} job {job.id} queued on '{queue}'", flush=True)
        if not args.wait:
            return 0
    return _follow(state, job.id, inline)


class _NoQueue:
    def send(self, job) -> None:  # the job runs in this process
        pass

    def revoke(self, job) -> None:
        pass


def _run_inline(job_id: str) -> subprocess.Popen:
    """Run the job in a child process (``workers.inline``, the worker's own code path) while
    this one draws the progress bar; the app itself never imports the workers."""
    return subprocess.Popen([sys.executable, "-m", "workers.inline", job_id])


def _follow(state, job_id: str, inline: subprocess.Popen | None = None) -> int:
    from tqdm import tqdm

    from app import jobs

    with tqdm(total=100, unit="%", bar_format="{l_bar}{bar}| {postfix}") as bar:
        while True:
            # Looked at before the row, so a child that finished the job and exited is
            # seen with the job final.
            child_ended = inline is not None and inline.poll() is not None
            with state.db.session() as session:
                job = jobs.get_job(session, job_id)
            bar.n = round(job.progress * 100)
            bar.set_postfix_str(f"{job.status} {job.message or ''}".strip())
            if job.status in jobs.FINAL:
                bar.refresh()
                break
            if child_ended:
                # The child ended without finishing the job: it could not start or was killed.
                bar.refresh()
                print(
                    f"eddyscope: the inline run of job {job.id} ended (exit status "
                    f"{inline.returncode}) with the job {job.status}",
                    file=sys.stderr,
                )
                return 1
            time.sleep(0.5)
    if inline is not None:
        inline.wait()
    if job.status != "succeeded":
        print(
            f"eddyscope: job {job.id} {job.status}: {job.error or job.message or ''}",
            file=sys.stderr,
        )
        return 1
    print(f"eddyscope: job {job.id} succeeded: {job.result}", flush=True)
    return 0


def build_parser() -> argparse.ArgumentParser:
    from app.jobkinds import get_kind, submittable

    parser = argparse.ArgumentParser(prog="eddyscope", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    up = sub.add_parser("up", help="API, UI and one worker on this machine")
    up.add_argument("--host", default="127.0.0.1")
    up.add_argument("--port", type=int, default=8050)
    up.add_argument("--concurrency", type=int, default=1)
    up.set_defaults(func=cmd_up)

    api = sub.add_parser("api", help="the API and UI server only")
    api.add_argument("--host", default="127.0.0.1")
    api.add_argument("--port", type=int, default=8050)
    api.set_defaults(func=cmd_api)

    worker = sub.add_parser("worker", help="a Celery worker")
    worker.add_argument("--queues", default="gpu,cpu")
    worker.add_argument("--concurrency", type=int, default=1)
    worker.add_argument("--name", default="eddyscope@%h")
    worker.set_defaults(func=cmd_worker)

    for kind in submittable():
        spec = get_kind(kind)
        job = sub.add_parser(kind, help=f"{spec.description} Queue the job and follow it.")
        _add_params(job, spec.params)
        job.set_defaults(func=cmd_job, kind=kind)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    args = build_parser().parse_args(argv)
    return args.func(args) or 0


if __name__ == "__main__":
    sys.exit(main())
