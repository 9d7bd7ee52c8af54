"""Hostile uploads against a running server: each reproducer's status, time and the server's
memory (peak during, and after) as JSON lines.

    python bench/hostile_uploads.py --url http://127.0.0.1:8050 --pid <server pid> [--flow hit3d]

``--pid`` is the server process (uvicorn); its VmRSS is sampled every 20 ms. Run it against
an older commit's server as the peer to see the before/after figures: the same files, the
same process measurements. Each line: ``name``, ``status``, ``ms``, ``rss_before_mb``,
``rss_peak_mb``, ``rss_after_mb`` (0.5 s after the response), ``detail`` (cut to 160
characters), ``flow``. The last line sends four bombs at once (``concurrent-4``). ``--flow``
picks the flow the files are uploaded for (each flow's reader meets them: ns2d-forced's 2D
field, channel3d's channel snapshot, hit3d's periodic velocity); hit3d adds a .npy and an
HDF5 velocity declaring 192 GiB and 12 GiB."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.hostile_files import (
    declared_hdf5,
    declared_hdf5_velocity,
    declared_npy,
    deflate_bomb,
    external_link,
    external_storage,
    many_members,
    npz_bomb,
    virtual_dataset,
)

MB = 1e6


def rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


class Sampler:
    """The peak VmRSS of ``pid`` while the block runs."""

    def __init__(self, pid: int):
        self.pid, self.peak, self._stop = pid, rss(pid), threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss(self.pid))
            time.sleep(0.02)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self._stop.set()
        self._thread.join()


def files(tmp: Path, flow: str = "ns2d-forced") -> dict[str, tuple[str, bytes]]:
    out = {
        "external-storage-/etc/passwd": ("w.h5", external_storage("/etc/passwd")),
        "virtual-dataset": ("w.h5", virtual_dataset(tmp)),
        "external-link": ("w.h5", external_link(tmp)),
        "npz-2MB-inflating-to-2GB": ("w.npz", npz_bomb()),
        "hdf5-declaring-20000x20000": ("w.h5", declared_hdf5((20000, 20000), (1000, 1000))),
        "hdf5-declaring-64GiB": ("w.h5", declared_hdf5((131072, 131072), (4096, 4096))),
        "npy-declaring-4TiB": ("w.npy", declared_npy((1 << 19, 1 << 20))),
        "hdf5-deflate-chunk-bomb": ("w.h5", deflate_bomb()),
        "npz-30000-members": ("w.npz", many_members(30_000)),
    }
    if flow == "hit3d":
        out["npy-declaring-192GiB-velocity"] = ("u.npy", declared_npy((3, 2048, 2048, 2048)))
        out["hdf5-declaring-12GiB-velocity"] = (
            "u.h5",
            declared_hdf5_velocity((3, 1024, 1024, 1024), (1, 64, 64, 64)),
        )
    return out


def post(url: str, filename: str, content: bytes, flow: str = "ns2d-forced") -> httpx.Response:
    with httpx.Client(timeout=600) as client:
        return client.post(
            f"{url}/api/initial-conditions",
            files={"file": (filename, content)},
            data={"flow": flow},
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8050")
    parser.add_argument("--pid", type=int, required=True, help="the server process")
    parser.add_argument("--flow", default="ns2d-forced", help="the flow uploaded for")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        built = files(Path(tmp), args.flow)
        for name, (filename, content) in built.items():
            before = rss(args.pid)
            with Sampler(args.pid) as sampler:
                started = time.perf_counter()
                response = post(args.url, filename, content, args.flow)
                ms = (time.perf_counter() - started) * 1e3
            time.sleep(0.5)
            print(
                json.dumps(
                    {
                        "name": name,
                        "flow": args.flow,
                        "bytes_sent": len(content),
                        "status": response.status_code,
                        "ms": round(ms, 1),
                        "rss_before_mb": round(before / MB),
                        "rss_peak_mb": round(sampler.peak / MB),
                        "rss_after_mb": round(rss(args.pid) / MB),
                        "detail_chars": len(response.text),
                        "detail": response.text[:160],
                    }
                ),
                flush=True,
            )
        bombs = [built[k] for k in list(built)[3:7]]
        before = rss(args.pid)
        statuses: list[int] = []
        with Sampler(args.pid) as sampler:
            threads = [
                threading.Thread(
                    target=lambda b=b: statuses.append(post(args.url, *b, args.flow).status_code)
                )
                for b in bombs
            ]
            started = time.perf_counter()
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            ms = (time.perf_counter() - started) * 1e3
        time.sleep(0.5)
        print(
            json.dumps(
                {
                    "name": "concurrent-4",
                    "flow": args.flow,
                    "status": sorted(statuses),
                    "ms": round(ms, 1),
                    "rss_before_mb": round(before / MB),
                    "rss_peak_mb": round(sampler.peak / MB),
                    "rss_after_mb": round(rss(args.pid) / MB),
                }
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()
