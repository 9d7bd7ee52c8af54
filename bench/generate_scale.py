"""Dataset generation at scale through the API with two worker processes.

For each N it generates `ns2d-forced` on a 64² solver grid, 20 snapshots 0.1 apart after a
warm-up of 1, with two `eddyscope worker` processes, and prints one JSON line: the wall time
from submission to the registered dataset, the peak resident memory of each worker process
(from the shards' reports), and whether the dataset reads back with its parameters. The peer
is the smallest N of the run: memory should stay flat as N grows (ratio ≈ 1), time linear.

    python bench/generate_scale.py [--sizes 64 1024] [--shard-size 64]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import httpx

from physics.formats import read_trajectories

ROOT = Path(__file__).resolve().parents[1]
PARAMS = {
    "flow": "ns2d-forced",
    "resolution": 64,
    "n_snapshots": 20,
    "interval": 0.1,
    "warmup": 1.0,
    "batch_size": 16,
    "seed": 1,
}


def start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    with open(log, "wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "app.cli", *args],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def wait_http(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer")


def run(base: str, n: int, shard_size: int, artifacts: Path) -> dict:
    started = time.perf_counter()
    job = httpx.post(
        f"{base}/api/jobs",
        json={
            "kind": "generate",
            "params": {**PARAMS, "n_trajectories": n, "shard_size": shard_size},
        },
    ).json()
    while (status := httpx.get(f"{base}/api/jobs/{job['id']}").json())["status"] not in (
        "succeeded",
        "failed",
        "cancelled",
    ):
        time.sleep(0.2)
    wall = time.perf_counter() - started
    if status["status"] != "succeeded":
        return {"name": f"generate_ns2d_64x64_N{n}", "error": status["error"]}
    shards = httpx.get(f"{base}/api/jobs", params={"parent_id": job["id"], "limit": 1000}).json()
    peak: dict[str, float] = defaultdict(float)
    for shard in shards:
        peak[shard["worker"]] = max(peak[shard["worker"]], shard["result"]["peak_rss_mb"])
    # Read back through the generic reader (format detection included), not our writer's twin.
    back = read_trajectories(artifacts / f"datasets/{status['result']['dataset_id']}.h5")
    attrs = back.attrs
    readback = (
        back.vorticity.shape == (n, 20, 64, 64)
        and back.source_format == "eddyscope"
        and attrs["n_trajectories"] == n
        and attrs["interval"] == 0.1
        and attrs["warmup"] == 1.0
    )
    return {
        "name": f"generate_ns2d_64x64_N{n}",
        "wall_s": round(wall, 2),
        "shards": len(shards),
        "peak_rss_mb_by_worker": dict(peak),
        "reads_back_with_parameters": bool(readback),
        "trajectories_per_s": round(n / wall, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 1024])
    parser.add_argument("--shard-size", type=int, default=64)
    parser.add_argument("--port", type=int, default=8093)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith("EDDYSCOPE_")}
        # The embedded broker: what `eddyscope up` uses on a machine with no services.
        env |= {
            "EDDYSCOPE_DATA_DIR": tmp,
            "EDDYSCOPE_REDIS_PROBE_URL": "redis://127.0.0.1:1/0",
            "EDDYSCOPE_BROKER_URL": f"sqla+sqlite:///{tmp}/broker.sqlite",
        }
        api = start(["api", "--port", str(args.port)], env, Path(tmp) / "api.log")
        workers = [
            start(["worker", "--name", f"w{i}@%h"], env, Path(tmp) / f"w{i}.log") for i in range(2)
        ]
        try:
            base = f"http://127.0.0.1:{args.port}"
            wait_http(f"{base}/api/health")
            time.sleep(5)  # workers ready
            rows = [run(base, n, args.shard_size, Path(tmp) / "artifacts") for n in args.sizes]
        finally:
            for process in [api, *workers]:
                os.killpg(process.pid, 15)
                process.wait(30)
    base_row = rows[0]
    for row in rows:
        if "wall_s" in row and "wall_s" in base_row:
            row["peer"] = base_row["name"]
            row["peak_rss_ratio"] = round(
                max(row["peak_rss_mb_by_worker"].values())
                / max(base_row["peak_rss_mb_by_worker"].values()),
                3,
            )
            row["time_per_trajectory_ratio"] = round(
                (row["wall_s"] / int(row["name"].split("N")[-1]))
                / (base_row["wall_s"] / int(base_row["name"].split("N")[-1])),
                3,
            )
        print(json.dumps(row))


if __name__ == "__main__":
    main()
