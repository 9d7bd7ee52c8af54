"""Bounded requests: request bodies are limited while they stream (app/body_limit.py), and
cursors and frame indices stay in range (422 or 404 with a sentence, never a 500).

Cursor and frame tests use the in-process TestClient (SQLite and PostgreSQL); the body
tests run against a real server process (uvicorn, with the UI mounted), because only a
real server receives a chunked body piece by piece the way a client sends it."""

from __future__ import annotations

import base64
import io
import json
import os
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from app.db.tables import Job, Rollout
from app.jobs import add_event
from app.main import MULTIPART_OVERHEAD
from physics.formats.store import RolloutWriter
from tests.conftest import Server, service_env

MAX_SEQ = 2**63 - 1
MiB = 1 << 20


def npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def is_sentence(text: str) -> bool:
    return text[:1].isupper() and text.endswith(".")


# --- cursors and frame indices (in-process) ----------------------------------------------


@pytest.fixture
def rollout(client) -> tuple[str, str]:
    """A finished rollout of 3 reference frames with one metrics event: (job id, rollout id)."""
    state = client.app.state.eddyscope
    relative = "rollouts/limits.h5"
    writer = RolloutWriter(state.artifacts.resolve(relative), 16, ("reference",), 1.0, {})
    for k in range(3):
        writer.append(0.5 * k, {"reference": np.full((16, 16), k, np.float32)})
    writer.close()
    with state.db.session() as session:
        job = Job(kind="rollout", params={}, status="succeeded", queue="cpu")
        session.add(job)
        session.commit()
        add_event(session, job.id, "metrics", {"step": 1, "time": 0.5})
        row = Rollout(
            job_id=job.id,
            flow="ns2d-forced",
            steps=2,
            interval=0.5,
            resolution=16,
            path=relative,
        )
        session.add(row)
        session.commit()
        return job.id, row.id


def cursor_urls(rollout: tuple[str, str]) -> list[str]:
    job_id, rollout_id = rollout
    return [f"/api/jobs/{job_id}/events", f"/api/rollouts/{rollout_id}/metrics"]


@pytest.mark.parametrize("after", [MAX_SEQ + 1, 2**64, 10**30, -1])
def test_cursor_out_of_range_is_a_422_with_a_sentence(client, rollout, after):
    for url in cursor_urls(rollout):
        response = client.get(url, params={"after": after})
        assert response.status_code == 422, (url, response.text)
        detail = response.json()["detail"]
        assert detail.startswith("after: ") and detail.endswith("."), detail


def test_cursors_in_range_still_read(client, rollout):
    for url in cursor_urls(rollout):
        events = client.get(url, params={"after": 0}).json()
        assert any(e.get("type", "metrics") == "metrics" for e in events), events
        assert client.get(url, params={"after": MAX_SEQ}).json() == []


@pytest.mark.parametrize("k", [-1, -3, 3, 4, 2**70])
def test_frame_index_outside_the_finished_frames_is_a_404_with_a_sentence(client, rollout, k):
    _, rollout_id = rollout
    response = client.get(f"/api/rollouts/{rollout_id}/frames/{k}", params={"source": "reference"})
    assert response.status_code == 404, response.text
    detail = response.json()["detail"]
    assert is_sentence(detail) and str(k) in detail, detail


def test_frames_zero_to_count_minus_one_are_served(client, rollout):
    _, rollout_id = rollout
    for k in range(3):
        response = client.get(
            f"/api/rollouts/{rollout_id}/frames/{k}", params={"source": "reference"}
        )
        assert response.status_code == 200, response.text
        assert np.load(io.BytesIO(response.content)).max() == k
        assert float(response.headers["X-Eddyscope-Time"]) == 0.5 * k


def test_json_body_over_the_default_limit_is_refused(client, settings):
    limit = settings.max_request_bytes
    big = {"kind": "train", "params": {"notes": "x" * limit}}
    response = client.post("/api/jobs", json=big)
    assert response.status_code == 413, response.text
    detail = response.json()["detail"]
    assert f"{limit:,} bytes" in detail and is_sentence(detail)


# --- request bodies (a real server) ------------------------------------------------------

UPLOAD_LIMIT = 1_000_000
BOUNDARY = "limits-boundary"
SENT_AT_MOST = 256 * MiB  # what an over-limit chunked request would send if let through


class LiveServer:
    def __init__(self, server: Server, tmpdir: Path, data_dir: Path):
        self.server, self.url, self.tmpdir, self.data_dir = server, server.url, tmpdir, data_dir

    @property
    def pid(self) -> int:
        return self.server.process.pid

    def rss_bytes(self) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise AssertionError("no VmRSS")

    def largest_open_file(self) -> int:
        """The size of the largest file the server holds open under its TMPDIR or data dir
        (a spooled upload is such a file, deleted or not)."""
        largest = 0
        fds = Path(f"/proc/{self.pid}/fd")
        for fd in os.listdir(fds):
            try:
                target = os.readlink(fds / fd)
                if target.startswith((str(self.tmpdir), str(self.data_dir))):
                    largest = max(largest, os.stat(fds / fd).st_size)
            except OSError:
                continue  # closed meanwhile
        return largest

    def files_over(self, folder: Path, size: int) -> list[Path]:
        return [p for p in folder.rglob("*") if p.is_file() and p.stat().st_size > size]

    def stored(self) -> list[str]:
        return [ic["id"] for ic in httpx.get(f"{self.url}/api/initial-conditions").json()]


@pytest.fixture(scope="module")
def live(tmp_path_factory, redis_url: str) -> Iterator[LiveServer]:
    root = tmp_path_factory.mktemp("limits")
    data_dir, tmpdir = root / "data", root / "tmp"
    data_dir.mkdir()
    tmpdir.mkdir()
    env = service_env(
        data_dir,
        EDDYSCOPE_BROKER_URL=redis_url,
        EDDYSCOPE_MAX_UPLOAD_BYTES=str(UPLOAD_LIMIT),
        TMPDIR=str(tmpdir),
    )
    server = Server(env, root / "server.log")
    try:
        server.wait_ready()
        yield LiveServer(server, tmpdir, data_dir)
    finally:
        server.stop()


def multipart_head(filename: str = "w.npy") -> bytes:
    return (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="flow"\r\n\r\nns2d-forced\r\n'
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()


def multipart_tail() -> bytes:
    return f"\r\n--{BOUNDARY}--\r\n".encode()


def chunked(head: bytes, total: int, probe: Callable[[], None] = lambda: None) -> Iterator[bytes]:
    """``head`` then zeros up to ``total`` bytes, 1 MiB at a time, calling ``probe`` before
    each piece; a generator, so httpx sends it chunked, without a Content-Length."""
    yield head
    piece = b"\0" * MiB
    sent = len(head)
    while sent < total:
        probe()
        yield piece
        sent += len(piece)


def callback_request(live: LiveServer, contents: str, filename: str) -> dict:
    """The JSON body the browser posts when a file is dropped on the Upload page."""
    dependencies = httpx.get(f"{live.url}/_dash-dependencies").json()
    upload = next(
        d for d in dependencies if {"id": "upload-file", "property": "contents"} in d["inputs"]
    )
    outputs = [
        dict(zip(("id", "property"), part.rsplit(".", 1), strict=True))
        for part in upload["output"].strip(".").split("...")
    ]
    values = {
        "filename": filename,
        "upload-flow": "ns2d-forced",
        "upload-list-token": 0,
        "upload-nu": None,
    }
    state = [
        {**s, "value": values["filename" if s["property"] == "filename" else s["id"]]}
        for s in upload["state"]
    ]
    return {
        "output": upload["output"],
        "outputs": outputs,
        "inputs": [{"id": "upload-file", "property": "contents", "value": contents}],
        "changedPropIds": ["upload-file.contents"],
        "state": state,
    }


def limit_from(detail: str) -> int:
    return int(detail.split("limit of ", 1)[1].split(" bytes", 1)[0].replace(",", ""))


@pytest.mark.parametrize("endpoint", ["upload", "callback", "jobs"])
def test_chunked_body_over_the_limit_is_refused_while_it_streams(live, endpoint):
    before = live.stored()
    # Files already there (the registered demo model's weights are larger than the limit).
    big_before = live.files_over(live.data_dir, UPLOAD_LIMIT)
    if endpoint == "upload":
        path, head = "/api/initial-conditions", multipart_head()
        content_type = f"multipart/form-data; boundary={BOUNDARY}"
        allowed = UPLOAD_LIMIT + MULTIPART_OVERHEAD
    elif endpoint == "callback":
        request = callback_request(live, "data:application/octet-stream;base64,", "w.npy")
        text = json.dumps(request)
        # The file's base64 text never ends: the JSON is cut off inside the string.
        path, head = "/_dash-update-component", text[: text.index("base64,") + 7].encode()
        content_type = "application/json"
        allowed = None
    else:
        path, head = "/api/jobs", b'{"kind": "train", "params": {"notes": "'
        content_type, allowed = "application/json", 1024 * 1024

    largest = [0]

    def probe() -> None:
        largest[0] = max(largest[0], live.largest_open_file())

    rss = live.rss_bytes()
    started = time.monotonic()
    response = httpx.post(
        f"{live.url}{path}",
        content=chunked(head, SENT_AT_MOST, probe),
        headers={"content-type": content_type},
        timeout=60,
    )
    elapsed = time.monotonic() - started

    assert response.status_code == 413, response.text
    detail = response.json()["detail"]
    assert is_sentence(detail) and "limit of" in detail, detail
    if endpoint == "upload":
        assert f"{UPLOAD_LIMIT:,} bytes" in detail
    if endpoint == "callback":
        assert f"{UPLOAD_LIMIT:,} bytes" in detail  # the upload limit is named too
        assert limit_from(detail) >= -(-UPLOAD_LIMIT // 3) * 4
    if allowed is not None:
        assert limit_from(detail) in (allowed, UPLOAD_LIMIT)
    # Refused when the limit was passed, not after the whole 256 MiB.
    assert elapsed < 20, elapsed
    assert largest[0] <= UPLOAD_LIMIT + MULTIPART_OVERHEAD, largest[0]
    assert live.rss_bytes() - rss < 300 * MiB
    assert live.stored() == before
    assert live.files_over(live.tmpdir, 0) == []
    assert live.files_over(live.data_dir, UPLOAD_LIMIT) == big_before
    assert httpx.get(f"{live.url}/api/health").status_code == 200


def raw_request(live: LiveServer, head: str, timeout: float = 10) -> tuple[int, dict]:
    """Send only a request's head (no body) and read the answer: a server that waited for
    the declared body would time out here."""
    host, port = live.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        sock.sendall(head.encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
            if b"\r\n\r\n" in data:
                header, _, body = data.partition(b"\r\n\r\n")
                length = next(
                    int(line.split(b":", 1)[1])
                    for line in header.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
                if len(body) >= length:
                    break
    status = int(data.split(b" ", 2)[1])
    return status, json.loads(data.partition(b"\r\n\r\n")[2])


@pytest.mark.parametrize(
    ("path", "content_type", "declared"),
    [
        ("/api/initial-conditions", f"multipart/form-data; boundary={BOUNDARY}", 10**12),
        ("/api/initial-conditions", "multipart/form-data; boundary=x", UPLOAD_LIMIT + 10**6),
        ("/_dash-update-component", "application/json", 10**9),
        ("/api/jobs", "application/json", 2 * MiB),
    ],
)
def test_declared_content_length_over_the_limit_is_refused_at_once(
    live, path, content_type, declared
):
    before = live.stored()
    started = time.monotonic()
    status, body = raw_request(
        live,
        f"POST {path} HTTP/1.1\r\nHost: test\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {declared}\r\n\r\n",
    )
    assert status == 413, body
    assert is_sentence(body["detail"]) and "limit of" in body["detail"], body
    assert time.monotonic() - started < 5
    assert live.stored() == before


def test_upload_just_under_the_limit_is_stored(live):
    """A 32×32 field, and a 492×492 one (968 KiB of 1 MB) sent chunked, are stored."""
    small = npy_bytes(np.random.default_rng(0).standard_normal((32, 32)).astype(np.float32))
    response = httpx.post(
        f"{live.url}/api/initial-conditions",
        files={"file": ("w.npy", small)},
        data={"flow": "ns2d-forced"},
    )
    assert response.status_code == 201, response.text

    near = npy_bytes(np.random.default_rng(1).standard_normal((492, 492)).astype(np.float32))
    assert UPLOAD_LIMIT - 50_000 < len(near) <= UPLOAD_LIMIT

    def body() -> Iterator[bytes]:
        yield multipart_head()
        for start in range(0, len(near), 100_000):
            yield near[start : start + 100_000]
        yield multipart_tail()

    response = httpx.post(
        f"{live.url}/api/initial-conditions",
        content=body(),
        headers={"content-type": f"multipart/form-data; boundary={BOUNDARY}"},
        timeout=60,
    )
    assert response.status_code == 201, response.text
    assert response.json()["shape"] == [492, 492]
    assert response.json()["id"] in live.stored()


def test_upload_page_callback_just_under_the_limit_is_stored(live):
    """The Upload page's callback carries the file base64-encoded: a file near the upload
    limit fits in the callback limit."""
    near = npy_bytes(np.random.default_rng(2).standard_normal((492, 492)).astype(np.float32))
    contents = "data:application/octet-stream;base64," + base64.b64encode(near).decode()
    before = live.stored()
    response = httpx.post(
        f"{live.url}/_dash-update-component",
        json=callback_request(live, contents, "near.npy"),
        timeout=60,
    )
    assert response.status_code == 200, response.text[:2000]
    added = set(live.stored()) - set(before)
    assert len(added) == 1, response.text[:2000]
