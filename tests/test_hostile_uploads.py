"""Hostile files: each attack a user could upload is refused with a sentence (4xx), stores
nothing, reads nothing outside the file, and leaves the server's memory where it was.

The reproducers are the ones found by trying the server as an attacker: HDF5 external raw
storage pointing at /etc/passwd (and at the server's own SQLite database), a virtual dataset
mapping another file, an external link, a .npz that inflates 2 MB to 2 GB, a 1.4 KB HDF5
declaring 20000², a .npy declaring 4 TiB, an HDF5 declaring 64 GiB, a deflate chunk that
inflates past its declared size, a .npz with 30 000 members."""

from __future__ import annotations

import io
import threading
import time
import zipfile
from pathlib import Path

import h5py
import httpx
import numpy as np
import pytest

from physics.formats.untrusted import (
    Limits,
    TooLarge,
    UnsafeFile,
    check_hdf5,
    load_npy,
    load_npz,
    open_hdf5,
)
from tests.conftest import Server, service_env
from tests.hostile_files import (
    MiB,
    damaged_chunks,
    declared_hdf5,
    declared_npy,
    deflate_bomb,
    external_link,
    external_storage,
    h5_bytes,
    many_members,
    npy_bytes,
    npz_bomb,
    virtual_dataset,
)

# --- the reader itself ----------------------------------------------------------------------


def open_checked(content: bytes) -> None:
    with open_hdf5(content):
        pass


def test_external_storage_is_refused_before_any_byte_is_read():
    with pytest.raises(UnsafeFile, match=r"external files .*/etc/passwd"):
        open_checked(external_storage("/etc/passwd"))


def test_virtual_dataset_and_external_link_are_refused(tmp_path: Path):
    with pytest.raises(UnsafeFile, match="virtual dataset"):
        open_checked(virtual_dataset(tmp_path))
    with pytest.raises(UnsafeFile, match="external link"), open_hdf5(external_link(tmp_path)):
        pass


def test_soft_links_must_land_inside_the_file():
    def dangling(f: h5py.File) -> None:
        f["data"] = np.zeros((4, 4))
        f["vorticity"] = h5py.SoftLink("/nowhere")

    with pytest.raises(UnsafeFile, match="soft link"), open_hdf5(h5_bytes(dangling)):
        pass

    def inside(f: h5py.File) -> None:
        f["data"] = np.arange(16.0).reshape(4, 4)
        f["vorticity"] = h5py.SoftLink("/data")

    with open_hdf5(h5_bytes(inside)) as f:
        np.testing.assert_array_equal(f["vorticity"][()], np.arange(16.0).reshape(4, 4))


def test_hard_link_cycles_are_walked_once():
    def cycle(f: h5py.File) -> None:
        group = f.create_group("g")
        group["up"] = f["/"]  # /g/up is the root again
        group["vorticity"] = np.ones((4, 4))

    with open_hdf5(h5_bytes(cycle)) as f:
        assert f["g/up/g/vorticity"].shape == (4, 4)


def test_declared_sizes_are_refused_from_the_headers():
    tiny = declared_hdf5((20000, 20000), (1000, 1000))
    assert len(tiny) < 4096
    with pytest.raises(TooLarge, match=r"\(20000, 20000\) float32 would take 1.5 GiB"):
        open_checked(tiny)
    with pytest.raises(TooLarge, match=r"64.0 GiB"):
        open_checked(declared_hdf5((131072, 131072), (4096, 4096)))
    with pytest.raises(TooLarge, match=r"4096.0 GiB"):
        load_npy(declared_npy((1 << 19, 1 << 20)))


def test_a_deflate_chunk_that_inflates_past_its_size_is_refused():
    with pytest.raises(UnsafeFile, match=r"inflates past its declared size of 4.0 KiB"):
        open_checked(deflate_bomb())


def test_filters_outside_the_allowed_set_are_refused():
    data = h5_bytes(
        lambda f: f.create_dataset("vorticity", data=np.ones((8, 8)), compression="lzf")
    )
    with pytest.raises(UnsafeFile, match="filter 32000"), open_hdf5(data):
        pass


def test_allowed_filters_read_exactly():
    field = np.random.default_rng(0).standard_normal((64, 64))

    def build(f: h5py.File) -> None:
        f.create_dataset(
            "vorticity", data=field, chunks=(16, 16), compression="gzip", shuffle=True,
            fletcher32=True,
        )  # fmt: skip

    with open_hdf5(h5_bytes(build)) as f:
        np.testing.assert_array_equal(f["vorticity"][()], field)


def test_npz_bomb_is_refused_from_the_member_header():
    bomb = npz_bomb()
    assert len(bomb) < 3 * MiB
    with pytest.raises(TooLarge, match=r"inflated, would take 2.0 GiB"):
        load_npz(bomb)


def test_npz_member_count_is_capped_with_a_short_sentence():
    with pytest.raises(TooLarge, match="30,000 members") as refused:
        load_npz(many_members(30_000))
    assert len(str(refused.value)) < 200


def test_npz_member_must_hold_what_its_header_declares():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        # The .npy header says 64×64 float64 (32 KiB); the member holds 8 bytes of data.
        archive.writestr("vorticity.npy", declared_npy((64, 64))[:-56])
    with pytest.raises(UnsafeFile, match=r"declares .*64, 64.* but its member holds 8 bytes"):
        load_npz(buffer.getvalue())


def test_npy_that_holds_less_than_it_declares_is_refused():
    data = npy_bytes(np.ones((32, 32)))
    with pytest.raises(UnsafeFile, match=r"holds 4.0 KiB"):
        load_npy(data[:-4096])


def test_object_arrays_and_structured_types_are_refused():
    with pytest.raises(UnsafeFile, match="pickle"):
        load_npy(npy_bytes(np.array([{"a": 1}], dtype=object)))
    structured = np.zeros(4, dtype=[("a", "f4"), ("b", "i4")])
    with pytest.raises(UnsafeFile, match="data type"):
        load_npy(npy_bytes(structured))


def test_the_object_count_is_bounded():
    def wide(f: h5py.File) -> None:
        for i in range(50):
            f.create_group(f"g{i}")

    with (
        h5py.File(io.BytesIO(h5_bytes(wide)), "r") as f,
        pytest.raises(TooLarge, match="more than 20 objects"),
    ):
        check_hdf5(f, Limits(max_objects=20))


def test_npy_and_npz_round_trip_exactly():
    field = np.random.default_rng(1).standard_normal((16, 8)).astype(np.float32)
    np.testing.assert_array_equal(load_npy(npy_bytes(field)), field)
    fortran = np.asfortranarray(field)
    np.testing.assert_array_equal(load_npy(npy_bytes(fortran)), field)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, vorticity=field, nu=np.float64(1e-3))
    arrays = load_npz(buffer.getvalue())
    np.testing.assert_array_equal(arrays["vorticity"], field)
    assert arrays["nu"] == 1e-3


# --- through the API: a sentence, nothing stored -------------------------------------------


def _stored(client) -> tuple[int, list[Path]]:
    artifacts = client.app.state.eddyscope.artifacts.resolve("")
    files = sorted(p for p in Path(artifacts).rglob("*") if p.is_file())
    return len(client.get("/api/initial-conditions").json()), files


def hostile_files(tmp_path: Path, sqlite_path: Path) -> dict[str, tuple[str, bytes, int, str]]:
    """name → (filename, content, status, phrase of the sentence)."""
    return {
        "external-passwd": ("w.h5", external_storage("/etc/passwd"), 422, "external files"),
        "external-sqlite": ("w.h5", external_storage(str(sqlite_path)), 422, "external files"),
        "virtual": ("w.h5", virtual_dataset(tmp_path), 422, "virtual dataset"),
        "external-link": ("w.h5", external_link(tmp_path), 422, "external link"),
        "declared-20000": ("w.h5", declared_hdf5((20000, 20000), (1000, 1000)), 413, "1.5 GiB"),
        "declared-64GiB": ("w.h5", declared_hdf5((131072, 131072), (4096, 4096)), 413, "64.0"),
        "declared-npy": ("w.npy", declared_npy((1 << 19, 1 << 20)), 413, "4096.0 GiB"),
        "deflate-bomb": ("w.h5", deflate_bomb(), 422, "inflates past"),
        "npz-members": ("w.npz", many_members(500), 413, "500 members"),
        "damaged": ("w.h5", damaged_chunks(), 422, "could not be read"),
    }


@pytest.mark.parametrize("flow", ["ns2d-forced", "channel3d", "hit3d"])
def test_hostile_uploads_get_a_sentence_and_store_nothing(client, tmp_path: Path, flow: str):
    # The SQLite database of the sqlite run (the file the attack read back before).
    sqlite_path = client.app.state.eddyscope.settings.data_dir / "eddyscope.sqlite"
    before = _stored(client)
    for name, (filename, content, status, phrase) in hostile_files(tmp_path, sqlite_path).items():
        if flow == "channel3d" and filename.endswith(".npy"):
            status, phrase = 415, "not a supported file type"
        response = client.post(
            "/api/initial-conditions",
            files={"file": (filename, content)},
            data={"flow": flow},
        )
        assert response.status_code == status, (name, response.text)
        detail = response.json()["detail"]
        assert phrase in detail, (name, detail)
        assert len(detail) < 400, name
        assert "root:" not in response.text  # nothing of /etc/passwd comes back
    assert _stored(client) == before


# --- a real server: memory during and after a volley of bombs ------------------------------


def _rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


@pytest.mark.integration
def test_server_memory_stays_bounded_under_bombs(tmp_path: Path, redis_url: str):
    data_dir = tmp_path / "server"
    data_dir.mkdir()
    server = Server(service_env(data_dir, EDDYSCOPE_BROKER_URL=redis_url), tmp_path / "server.log")
    try:
        server.wait_ready()
        url = f"{server.url}/api/initial-conditions"
        with httpx.Client(timeout=60) as http:
            ok = http.post(url, files={"file": ("w.npy", npy_bytes(np.zeros((32, 32))))})
            assert ok.status_code == 201, ok.text
            listed = http.get(f"{server.url}/api/initial-conditions").json()
        baseline = _rss(server.process.pid)
        peak = [baseline]
        stop = threading.Event()

        def sample() -> None:
            while not stop.is_set():
                peak[0] = max(peak[0], _rss(server.process.pid))
                time.sleep(0.02)

        sampler = threading.Thread(target=sample)
        sampler.start()
        bombs = [
            ("w.npz", npz_bomb()),
            ("w.h5", declared_hdf5((20000, 20000), (1000, 1000))),
            ("w.npy", declared_npy((1 << 19, 1 << 20))),
            ("w.h5", declared_hdf5((131072, 131072), (4096, 4096))),
            ("w.h5", deflate_bomb()),
        ]
        statuses: list[int] = []

        def send(filename: str, content: bytes) -> None:
            with httpx.Client(timeout=60) as http:
                response = http.post(url, files={"file": (filename, content)})
                statuses.append(response.status_code)

        try:
            for _round in range(2):
                # Four at once, as the attack that left the server at 4.5 GB did.
                threads = [threading.Thread(target=send, args=bomb) for bomb in bombs[:4]] + [
                    threading.Thread(target=send, args=bombs[4])
                ]
                for thread in threads:
                    thread.start()
                for thread in threads:
                    thread.join()
        finally:
            stop.set()
            sampler.join()
        time.sleep(0.5)
        after = _rss(server.process.pid)
        assert sorted(set(statuses)) == [413, 422], statuses
        assert len(statuses) == 10
        assert peak[0] - baseline < 600 * MiB, (baseline, peak[0])
        assert after - baseline < 300 * MiB, (baseline, after)
        with httpx.Client(timeout=10) as http:
            assert http.get(f"{server.url}/api/initial-conditions").json() == listed
    finally:
        server.stop()
