"""Frame-written → pixel latency of the live Rollout and Compare pages.

Starts `eddyscope up` (the API/UI and a worker) on a free port with a data directory of its
own, Redis db 15 as broker when Redis answers (else the embedded broker), opens the page in
headless Chromium and runs two scenarios through the UI's own Start button:

* rollout: the shipped demo model from the shipped 64² example initial condition;
* compare: a 3-model comparison (the demo model and two copies of it registered for the
  bench) from the same field.

Each figure the pages draw carries the step it shows (``layout.meta.step``); a script added
to every document before the page's own records, for each field and curve graph, when
Plotly finished drawing each step (``plotly_afterplot``, performance.timeOrigin +
performance.now(), milliseconds since the epoch). The worker's write time of step k is its
``metrics`` event's ``created_at`` (recorded right after the frame's HDF5 chunk is flushed):
latency = first draw of step k − that time, on the same machine's clock.

ours: the pages as built (push over Dash's WebSocket callbacks); peer: the same pages with
``EDDYSCOPE_UI_PUSH=false``, which polls every 500 ms (Rollout) / 700 ms (Compare) as the
previous design did. One JSON line per scenario and side, then one per scenario with the
house fields: ``ours_ms`` is the field's p90, ``floor_ms`` 500 (field); the curves' p90 is
``curves_p90_ms`` with ``curves_floor_ms`` 700.

    python bench/ui_latency.py [--steps 120] [--compare-steps 60] [--no-peer]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
# Not 13 or 14: the test suite's default database and its live server's (tests/conftest.py);
# this bench flushes its own.
REDIS_DB = "redis://127.0.0.1:6379/15"
FIELD_FLOOR_MS = 500.0
PER_FRAME = False  # --per-frame: each drawn frame's field latency, in the order drawn
CURVES_FLOOR_MS = 700.0

# Added to every document before the page's scripts: which step each graph drew, and when.
INSTRUMENT = """
window.__drawn = [];
(function () {
  function hook(gd) {
    if (gd.__benchHooked || typeof gd.on !== 'function') { return; }
    gd.__benchHooked = true;
    const host = gd.closest('[id]');
    const id = host ? host.id : '?';
    gd.on('plotly_afterplot', function () {
      const meta = gd.layout && gd.layout.meta;
      if (meta && meta.step !== undefined && meta.step !== null) {
        window.__drawn.push({id: id, step: meta.step,
                             at: performance.timeOrigin + performance.now()});
      }
    });
  }
  new MutationObserver(function () {
    document.querySelectorAll('.js-plotly-plot').forEach(hook);
  }).observe(document, {subtree: true, childList: true, attributes: true,
                        attributeFilter: ['class']});
})();
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def redis_answers() -> bool:
    try:
        import redis

        return bool(redis.Redis.from_url(REDIS_DB, socket_timeout=1).ping())
    except Exception:
        return False


class Server:
    """`eddyscope up` in its own process group, with its own data directory."""

    def __init__(self, push: bool):
        self.data_dir = Path(tempfile.mkdtemp(prefix="eddyscope-ui-latency-"))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("EDDYSCOPE_")}
        env |= {
            "EDDYSCOPE_DATA_DIR": str(self.data_dir),
            "EDDYSCOPE_UI_PUSH": "true" if push else "false",
            "PYTHONUNBUFFERED": "1",
        }
        if redis_answers():
            import redis

            redis.Redis.from_url(REDIS_DB).flushdb()  # db 15 is this bench's own
            env["EDDYSCOPE_BROKER_URL"] = REDIS_DB
        self.broker = env.get("EDDYSCOPE_BROKER_URL", "embedded")
        self.log = open(self.data_dir / "server.log", "wb")  # noqa: SIM115 (closed in stop)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "up", "--port", str(self.port)],
            cwd=ROOT,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/api/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.3)
        else:
            self.stop()
            raise RuntimeError("the server did not start")
        # The worker logs "ready." when it takes jobs.
        while time.monotonic() < deadline and b" ready." not in self._log():
            time.sleep(0.3)

    def _log(self) -> bytes:
        return (self.data_dir / "server.log").read_bytes()

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, 15)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, 9)
                self.process.wait()
        # The worker runs in a session of its own: stop whatever still serves this data dir.
        mine = f"EDDYSCOPE_DATA_DIR={self.data_dir}".encode()
        for proc in Path("/proc").glob("[0-9]*"):
            try:
                if mine in (proc / "environ").read_bytes().split(b"\0"):
                    os.killpg(os.getpgid(int(proc.name)), 9)
            except (OSError, ProcessLookupError):
                pass
        self.log.close()
        shutil.rmtree(self.data_dir, ignore_errors=True)


def clone_model(data_dir: Path, model_id: str, name: str) -> str:
    """Register a copy of a model (weights copied) under another name: a comparison takes
    each (model, precision) once, and the bench wants three models."""
    from sqlalchemy import select

    from app.db.tables import Model, new_id
    from app.settings import Settings
    from app.state import AppState

    state = AppState.from_settings(Settings(data_dir=data_dir))
    with state.db.session() as session:
        source = session.get(Model, model_id)
        if session.scalar(select(Model.id).where(Model.name == name)):
            return session.scalar(select(Model.id).where(Model.name == name))
        copy_id = new_id()
        relative = state.artifacts.model_dir(copy_id)
        shutil.copytree(state.artifacts.resolve(source.path), state.artifacts.resolve(relative))
        columns = {c.name: getattr(source, c.name) for c in Model.__table__.columns}
        columns |= {"id": copy_id, "name": name, "path": relative}
        columns.pop("created_at", None)
        session.add(Model(**columns))
        session.commit()
        return copy_id


def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="eddyscope-bench-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-dev-shm-usage",
        f"--user-data-dir={profile}",
        "--window-size=1440,1500",
    ):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": INSTRUMENT})
    driver.profile_dir = profile
    return driver


def wait(condition, timeout: float, what: str, every: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = condition()
            if value:
                return value
        except Exception:
            pass
        time.sleep(every)
    raise RuntimeError(f"timed out waiting for {what}")


def text(driver, element_id: str) -> str:
    return driver.execute_script(
        "const e = document.getElementById(arguments[0]); return e ? e.innerText : '';",
        element_id,
    )


def metric_events(url: str, job_id: str) -> list[dict[str, Any]]:
    """The job's metrics events in order: step, write time (ms since the epoch), payload."""
    out, after = [], 0
    while True:
        page = httpx.get(
            f"{url}/api/jobs/{job_id}/events", params={"after": after, "limit": 1000}
        ).json()
        for e in page:
            if e["type"] == "metrics":
                at = datetime.fromisoformat(e["created_at"].rstrip("Z")).replace(tzinfo=UTC)
                out.append({"step": e["payload"]["step"], "at": at.timestamp() * 1000, **e})
        if len(page) < 1000:
            return out
        after = page[-1]["seq"]


def start_from_page(driver, url: str, path: str, start_id: str, steps_id: str, steps: int):
    from selenium.webdriver.common.by import By

    driver.get(url + path)
    wait(
        lambda: driver.find_elements(By.XPATH, "//*[contains(@class, 'dash-dropdown-value-item')]"),
        60,
        "the form to load",
    )
    time.sleep(1.0)  # the model picker follows the initial condition
    box = driver.find_element(By.ID, steps_id)
    box.clear()
    box.send_keys(str(steps))
    driver.find_element(By.ID, start_id).click()
    prefix = url + path.split("?")[0] + "/"
    return wait(
        lambda: (
            driver.current_url.split("?")[0][len(prefix) :]
            if driver.current_url.startswith(prefix)
            else None
        ),
        30,
        "the run's address",
    )


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def latencies(drawn: list[dict], written: dict[int, float], ids: set[str]) -> list[float]:
    """Per step, the first time any of ``ids`` drew it, minus its write time."""
    first: dict[int, float] = {}
    for d in drawn:
        if d["id"] in ids and d["step"] in written and d["step"] not in first:
            first[d["step"]] = d["at"]
    return [first[s] - written[s] for s in sorted(first)]


def summary(name: str, field: list[float], curves: list[float], written: int, extra: dict):
    def r(v):
        return None if v is None else round(v, 1)

    per_frame = {"field_ms": [r(v) for v in field]} if PER_FRAME else {}
    return {
        "name": name,
        "field_p50_ms": r(percentile(field, 0.5)),
        "field_p90_ms": r(percentile(field, 0.9)),
        "field_max_ms": r(max(field) if field else None),
        "curves_p50_ms": r(percentile(curves, 0.5)),
        "curves_p90_ms": r(percentile(curves, 0.9)),
        "curves_max_ms": r(max(curves) if curves else None),
        "frames_drawn": len(field),
        "frames_written": written,
        **extra,
        **per_frame,
    }


def run_rollout(driver, url: str, model_id: str, steps: int, name: str) -> dict[str, Any]:
    ref = start_from_page(
        driver,
        url,
        f"/rollout?example=1&model={model_id}",
        "rollout-start",
        "rollout-steps",
        steps,
    )
    wait(lambda: "succeeded" in text(driver, "rollout-status").lower(), 600, "the rollout")
    time.sleep(2.0)  # the final redraw
    job_id = httpx.get(f"{url}/api/jobs/{ref}").json()["id"]
    events = metric_events(url, job_id)
    written = {e["step"]: e["at"] for e in events}
    drawn = driver.execute_script("return window.__drawn")
    field = latencies(drawn, written, {"rollout-fields"})
    curves = latencies(drawn, written, {"rollout-error-curve"})
    # At the end: every step's error in the curve, and field, status and curves agree.
    final = driver.execute_script(
        """
        const gd = id => document.querySelector('#' + id + ' .js-plotly-plot');
        const c = gd('rollout-error-curve'), f = gd('rollout-fields');
        return {y: Array.from(c.data[0].y), curve_step: c.layout.meta.step,
                field_step: f.layout.meta.step,
                status: document.getElementById('rollout-status').innerText};
        """
    )
    expected = [e["payload"].get("rel_l2") for e in events]
    every = len(final["y"]) == len(expected) and all(
        (a is None and b is None) or (a is not None and b is not None and abs(a - b) < 1e-9)
        for a, b in zip(final["y"], expected, strict=False)
    )
    last = events[-1]["step"]
    agree = final["curve_step"] == final["field_step"] == last
    return summary(
        name,
        field,
        curves,
        len(events),
        {"all_metrics_in_curves": every, "final_steps_agree": agree, "status": final["status"]},
    )


def run_compare(driver, url: str, models: list[str], steps: int, name: str) -> dict[str, Any]:
    ref = start_from_page(
        driver,
        url,
        "/compare?models=" + ",".join(models),
        "compare-start",
        "compare-steps",
        steps,
    )
    wait(lambda: "succeeded" in text(driver, "compare-status").lower(), 900, "the comparison")
    time.sleep(2.0)
    job_id = httpx.get(f"{url}/api/jobs/{ref}").json()["id"]
    events = metric_events(url, job_id)
    written = {e["step"]: e["at"] for e in events}
    drawn = driver.execute_script("return window.__drawn")
    field_ids = {d["id"] for d in drawn if "compare-field" in d["id"]}
    field = latencies(drawn, written, field_ids)
    curves = latencies(drawn, written, {"compare-error"})
    final = driver.execute_script(
        """
        const c = document.querySelector('#compare-error .js-plotly-plot');
        const f = Array.from(document.querySelectorAll('.compare-col-graph .js-plotly-plot'));
        return {ys: c.data.filter(t => t.meta && t.meta.entry !== undefined || true)
                     .map(t => Array.from(t.y || [])),
                names: c.data.map(t => t.name), curve_step: c.layout.meta.step,
                field_steps: f.map(g => g.layout.meta ? g.layout.meta.step : null),
                label: document.getElementById('compare-frame-label').innerText};
        """
    )
    n = len(events)
    counts = [len(y) for y in final["ys"] if len(y) >= n - 1]
    every = len(counts) >= len(models) and all(c == n for c in counts)
    last = events[-1]["step"]
    agree = final["curve_step"] == last and all(s == last for s in final["field_steps"])
    return summary(
        name,
        field,
        curves,
        n,
        {"all_metrics_in_curves": every, "final_steps_agree": agree, "label": final["label"]},
    )


def measure(push: bool, steps: int, compare_steps: int, only: str | None) -> list[dict[str, Any]]:
    server = Server(push)
    driver = browser()
    side = "push" if push else "polling"
    try:
        models = httpx.get(f"{server.url}/api/models").json()
        demo = next(m["id"] for m in models if m["name"].startswith("demo"))
        out = []
        if only in (None, "rollout"):
            out.append(run_rollout(driver, server.url, demo, steps, f"rollout-64-{side}"))
        if only in (None, "compare"):
            copies = [clone_model(server.data_dir, demo, f"demo copy {i}") for i in (1, 2)]
            models = [demo, *copies]
            out.append(run_compare(driver, server.url, models, compare_steps, f"compare-3-{side}"))
        for row in out:
            row["broker"] = server.broker
        return out
    finally:
        driver.quit()
        shutil.rmtree(driver.profile_dir, ignore_errors=True)
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=120)
    parser.add_argument("--compare-steps", type=int, default=60)
    parser.add_argument("--no-peer", action="store_true", help="skip the polling run")
    parser.add_argument("--only", choices=("rollout", "compare"), help="one scenario")
    parser.add_argument(
        "--per-frame", action="store_true", help="list each drawn frame's field latency"
    )
    args = parser.parse_args()
    global PER_FRAME
    PER_FRAME = args.per_frame
    ours = measure(True, args.steps, args.compare_steps, args.only)
    for row in ours:
        print(json.dumps(row), flush=True)
    peers = [] if args.no_peer else measure(False, args.steps, args.compare_steps, args.only)
    for row in peers:
        print(json.dumps(row), flush=True)
    for i, row in enumerate(ours):
        peer = peers[i] if peers else {}
        scenario = row["name"].rsplit("-", 1)[0]
        peer_ms = peer.get("field_p90_ms")
        print(
            json.dumps(
                {
                    "name": scenario,
                    "ours_ms": row["field_p90_ms"],
                    "peer": "polling at 500 ms (Rollout) / 700 ms (Compare), the previous design",
                    "peer_ms": peer_ms,
                    "ratio": round(row["field_p90_ms"] / peer_ms, 3)
                    if peer_ms and row["field_p90_ms"]
                    else None,
                    "floor_ms": FIELD_FLOOR_MS,
                    "curves_p90_ms": row["curves_p90_ms"],
                    "peer_curves_p90_ms": peer.get("curves_p90_ms"),
                    "curves_floor_ms": CURVES_FLOOR_MS,
                    "meets_floors": bool(
                        row["field_p90_ms"] is not None
                        and row["field_p90_ms"] <= FIELD_FLOOR_MS
                        and row["curves_p90_ms"] is not None
                        and row["curves_p90_ms"] <= CURVES_FLOOR_MS
                        and row["all_metrics_in_curves"]
                    ),
                    "frames_drawn": row["frames_drawn"],
                    "frames_written": row["frames_written"],
                    "all_metrics_in_curves": row["all_metrics_in_curves"],
                }
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()
