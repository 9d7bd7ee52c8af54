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


def _bind(host: str) -> None:
    """Export the bind host: it decides whether auth is on by default (off only on a
    loopback address) and is a trusted Host."""
    os.environ["EDDYSCOPE_HOST"] = host
    from app.settings import get_settings

    get_settings.cache_clear()
    settings = get_settings()
    if not settings.auth_enabled:
        print("eddyscope: auth is off (loopback only; no accounts needed)", flush=True)
        return
    from sqlalchemy import func, select

    from app.db.tables import User

    with _database().session() as session:
        users = session.scalar(select(func.count()).select_from(User))
    print("eddyscope: auth is on: log in at /login; scripts use API tokens", flush=True)
    if not users:
        print(
            "eddyscope: there are no accounts yet: create one with "
            "`eddyscope user add NAME --role admin`",
            flush=True,
        )


def cmd_up(args: argparse.Namespace) -> int:
    _bind(args.host)
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

    _bind(args.host)
    _prepare()
    uvicorn.run(create_app(), host=args.host, port=args.port, log_level="info")
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    os.execv(sys.executable, worker_command(args.queues, args.concurrency, args.name))


def _read_password(args: argparse.Namespace) -> str:
    import getpass

    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Again: ") != first:
        raise SystemExit("eddyscope: the passwords differ")
    return first


def cmd_user_add(args: argparse.Namespace) -> int:
    from app.services import auth

    password = _read_password(args)
    with _database().session() as session:
        try:
            user = auth.add_user(session, args.name, password, args.role)
        except auth.AuthError as exc:
            print(f"eddyscope: {exc}", file=sys.stderr)
            return 2
        print(f"eddyscope: user {user.name} ({user.role}) added", flush=True)
    return 0


def cmd_user_role(args: argparse.Namespace) -> int:
    from app.services import auth

    with _database().session() as session:
        try:
            user = auth.set_role(session, args.name, args.role)
        except auth.AuthError as exc:
            print(f"eddyscope: {exc}", file=sys.stderr)
            return 2
        print(f"eddyscope: {user.name} is now {user.role}", flush=True)
    return 0


def cmd_user_list(_args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from app.db.tables import User

    with _database().session() as session:
        for user in session.scalars(select(User).order_by(User.name)):
            print(f"{user.name}\t{user.role}")
    return 0


def cmd_token_create(args: argparse.Namespace) -> int:
    from app.services import auth

    with _database().session() as session:
        try:
            row, token = auth.create_token(session, args.user, args.label)
        except auth.AuthError as exc:
            print(f"eddyscope: {exc}", file=sys.stderr)
            return 2
        print(
            f"eddyscope: token {row.id} for {args.user} (shown once; send it as "
            "Authorization: Bearer, or give it to the CLI with --token or EDDYSCOPE_TOKEN):",
            file=sys.stderr,
        )
    print(token, flush=True)
    return 0


def cmd_token_revoke(args: argparse.Namespace) -> int:
    from app.services import auth

    with _database().session() as session:
        if not auth.revoke_token(session, args.token_id):
            print(f"eddyscope: there is no token {args.token_id!r}", file=sys.stderr)
            return 2
    print(f"eddyscope: token {args.token_id} revoked", flush=True)
    return 0


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
    parser.add_argument(
        "--server",
        default=os.environ.get("EDDYSCOPE_SERVER"),
        help="submit through this running server's API (e.g. https://gpu-box:8050) instead "
        "of its database; default $EDDYSCOPE_SERVER",
    )
    parser.add_argument(
        "--token",
        default=os.environ.get("EDDYSCOPE_TOKEN"),
        help="API token for --server (`eddyscope token create`); default $EDDYSCOPE_TOKEN",
    )


def _collect(args: argparse.Namespace) -> dict[str, Any]:
    return {
        key.removeprefix("param_"): value
        for key, value in vars(args).items()
        if key.startswith("param_") and value is not None
    }


def _api(server: str, token: str | None, method: str, path: str, body: Any = None) -> Any:
    """One JSON call to a running server's REST API, with the token as a bearer token."""
    import urllib.error
    import urllib.request

    headers = {"Accept": "application/json"}
    data = None
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(
        server.rstrip("/") + path, data=data, headers=headers, method=method
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        try:
            detail = json.loads(exc.read()).get("detail", exc.reason)
        except (ValueError, AttributeError):
            detail = exc.reason
        raise ApiError(exc.code, str(detail)) from None


class ApiError(Exception):
    def __init__(self, status: int, detail: str):
        super().__init__(f"{status}: {detail}")
        self.status = status


def cmd_remote_job(args: argparse.Namespace) -> int:
    """Submit through a running server's API (``--server``), as the token's user."""
    from tqdm import tqdm

    try:
        job = _api(
            args.server,
            args.token,
            "POST",
            "/api/jobs",
            {"kind": args.kind, "params": _collect(args)},
        )
    except ApiError as exc:
        print(f"eddyscope: the server refused the job: {exc}", file=sys.stderr)
        return 2
    print(f"eddyscope: {args.kind} job {job['id']} queued on {args.server}", flush=True)
    if not args.wait:
        return 0
    final = {"succeeded", "failed", "cancelled"}
    with tqdm(total=100, unit="%", bar_format="{l_bar}{bar}| {postfix}") as bar:
        while True:
            job = _api(args.server, args.token, "GET", f"/api/jobs/{job['id']}")
            bar.n = round(job["progress"] * 100)
            bar.set_postfix_str(f"{job['status']} {job.get('message') or ''}".strip())
            bar.refresh()
            if job["status"] in final:
                break
            time.sleep(0.5)
    if job["status"] != "succeeded":
        print(
            f"eddyscope: job {job['id']} {job['status']}: {job.get('error') or ''}", file=sys.stderr
        )
        return 1
    print(f"eddyscope: job {job['id']} succeeded: {job['result']}", flush=True)
    return 0


def cmd_job(args: argparse.Namespace) -> int:
    if args.server:
        if args.inline:
            print("eddyscope: --inline runs here; it does not go with --server", file=sys.stderr)
            return 2
        return cmd_remote_job(args)
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

    from app.services.auth import ROLES

    user = sub.add_parser("user", help="accounts (when auth is on)")
    user_sub = user.add_subparsers(dest="user_command", required=True)
    add = user_sub.add_parser("add", help="add an account")
    add.add_argument("name")
    add.add_argument("--role", choices=ROLES, default="member")
    add.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    add.set_defaults(func=cmd_user_add)
    role = user_sub.add_parser("role", help="change an account's role")
    role.add_argument("name")
    role.add_argument("role", choices=ROLES)
    role.set_defaults(func=cmd_user_role)
    user_sub.add_parser("list", help="the accounts and their roles").set_defaults(
        func=cmd_user_list
    )

    token = sub.add_parser("token", help="API tokens for scripts and the CLI")
    token_sub = token.add_subparsers(dest="token_command", required=True)
    create = token_sub.add_parser("create", help="a new token for USER, printed once")
    create.add_argument("user")
    create.add_argument("--label", default="", help="what the token is for")
    create.set_defaults(func=cmd_token_create)
    revoke = token_sub.add_parser("revoke", help="revoke a token by its id")
    revoke.add_argument("token_id")
    revoke.set_defaults(func=cmd_token_revoke)

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
