"""Uploading periodic-box velocity snapshots through ``POST /api/initial-conditions`` with
``flow=hit3d`` (on SQLite, Redis as the broker): every accepted layout round-trips bit for
bit, the stored statistics are ``physics.hit3d.diagnostics``' to 1e-12, the divergence
policy (kept, Leray-projected and said so, refused with the measured numbers), every bad
file refused with its own sentence and nothing stored, declared sizes refused before any
data is read, and the Upload page's callbacks showing an upload's |ω| midplanes and
spectrum."""

from __future__ import annotations

import asyncio
import base64
import io
import math
import pickle
import tracemalloc

import numpy as np
import pytest
import torch

from app.db.tables import InitialCondition
from app.services.initial_conditions import load_hit3d_initial_condition, load_initial_condition
from app.services.uploads import DIVERGENCE_KEEP, DIVERGENCE_REFUSE, UploadError, parse_hit3d_upload
from physics.formats.hit3d_store import HITDatasetWriter
from physics.formats.untrusted import TooLarge
from physics.hit3d import diagnostics
from physics.hit3d.grid import Grid3D
from physics.hit3d.initial import abc_flow
from tests.hostile_files import declared_hdf5_velocity, declared_npy, h5_bytes, npy_bytes
from tests.test_api import stored

FLOW = "hit3d"
N = 16
NU = 0.04  # the flow's default
# Unequal A, B, C and k = 2: a transposed axis or swapped component would not round-trip.
A, B, C, K = 1.0, 0.7, 0.4, 2


@pytest.fixture
def database_url(tmp_path) -> str:
    """SQLite only: the upload path is the same on PostgreSQL (tests/test_api.py)."""
    return f"sqlite:///{tmp_path / 'eddyscope.sqlite'}"


def abc(n: int = N, dtype=np.float64) -> np.ndarray:
    """The ABC (Beltrami) flow (3, n, n, n): divergence-free exactly, E = (A²+B²+C²)/2,
    ε = 2νk²E (ω = k u)."""
    return abc_flow(Grid3D(n), a=A, b=B, c=C, k=K)[0].numpy().astype(dtype)


def npz_bytes(**arrays) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def upload(client, name: str, content: bytes, **form):
    return client.post(
        "/api/initial-conditions",
        files={"file": (name, content)},
        data={"flow": FLOW, **{k: str(v) for k, v in form.items()}},
    )


def row_of(client, ic_id: str) -> InitialCondition:
    with client.app.state.eddyscope.db.session() as session:
        return session.get(InitialCondition, ic_id)


def well_bytes(tmp_path, u: np.ndarray) -> bytes:
    """Our hit3d dataset layout (``HITDatasetWriter``): 1 trajectory, 2 times, the snapshot
    at the last time (the reader's default), nu in the root attributes."""
    path = tmp_path / "hit.h5"
    writer = HITDatasetWriter(path, 1, np.array([0.0, 0.5]), N, 2 * math.pi, {"nu": 0.02})
    last = np.moveaxis(u, 0, -1)
    writer.write(0, np.stack([np.zeros_like(last), last])[None], {"energy": np.zeros((1, 2))})
    writer.close()
    return path.read_bytes()


def coords(n: int = N) -> np.ndarray:
    return np.arange(n) * (2 * math.pi / n)


# name: (file name, content from the field (3, n, n, n), dtype uploaded, ν the file gives)
LAYOUTS = {
    "npy components first": ("u.npy", lambda u, _: npy_bytes(u), np.float64, None),
    "npy components last": (
        "u.npy",
        lambda u, _: npy_bytes(np.moveaxis(u, 0, -1)),
        np.float64,
        None,
    ),
    "npy batch of one, float32": ("u.npy", lambda u, _: npy_bytes(u[None]), np.float32, None),
    "npz velocity components last, x y z": (
        "u.npz",
        lambda u, _: npz_bytes(velocity=np.moveaxis(u, 0, -1), x=coords(), y=coords(), z=coords()),
        np.float64,
        None,
    ),
    "npz u v w with nu": (
        "u.npz",
        lambda u, _: npz_bytes(u=u[0], v=u[1], w=u[2], nu=np.float64(0.01)),
        np.float64,
        0.01,
    ),
    "hdf5 velocity with nu and length": (
        "u.h5",
        lambda u, _: h5_bytes(
            lambda f: (
                f.create_dataset("velocity", data=u, chunks=(3, N, N, 4), compression="gzip"),
                f.attrs.create("nu", 0.03),
                f.attrs.create("length", 2 * math.pi),
            )
        ),
        np.float64,
        0.03,
    ),
    "hdf5 u v w with dimensions": (
        "u.hdf5",
        lambda u, _: h5_bytes(
            lambda f: (
                [f.create_dataset(c, data=u[i]) for i, c in enumerate("uvw")]
                + [f.create_dataset(f"dimensions/{c}", data=coords()) for c in "xyz"]
            )
        ),
        np.float64,
        None,
    ),
    "our hdf5 dataset (The Well's layout)": (
        "hit.h5",
        lambda u, tmp: well_bytes(tmp, u),
        np.float32,
        0.02,
    ),
}


@pytest.mark.parametrize("layout", LAYOUTS)
def test_each_layout_round_trips_bit_exact_with_the_diagnostics(client, tmp_path, layout):
    name, make, dtype, file_nu = LAYOUTS[layout]
    u = abc(dtype=dtype)
    response = upload(client, name, make(u, tmp_path))
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["flow"] == FLOW and body["shape"] == [3, N, N, N]
    assert body["fields"] == ["u", "v", "w"]
    row = row_of(client, body["id"])
    artifacts = client.app.state.eddyscope.artifacts
    stored_u = load_initial_condition(artifacts, row)
    assert stored_u.dtype == dtype
    np.testing.assert_array_equal(stored_u, u)  # bit for bit, in the file's order
    snapshot = load_hit3d_initial_condition(artifacts, row)
    np.testing.assert_array_equal(snapshot.velocity, u)

    stats = body["stats"]
    nu = file_nu or NU
    assert stats["nu"] == nu and stats["nu_source"] == (0.0 if file_nu else 2.0)
    assert stats["leray_projected"] == 0.0
    assert stats["divergence_relative_uploaded"] <= DIVERGENCE_KEEP
    t = torch.from_numpy(u.astype(np.float64))[None]
    expected = {
        "energy": diagnostics.kinetic_energy(t),
        "dissipation": diagnostics.dissipation(t, nu),
        "taylor_reynolds": diagnostics.taylor_reynolds(t, nu),
        "u_rms": diagnostics.rms_velocity(t),
    }
    for key, value in expected.items():
        assert stats[key] == pytest.approx(float(value[0]), rel=1e-12, abs=0), key
    assert stats["kinetic_energy"] == stats["energy"]
    assert abs(stats["divergence_max"] - float(diagnostics.divergence_max(t)[0])) < 1e-12
    # And the Beltrami field's own numbers: E = (A²+B²+C²)/2, ε = 2νk²E.
    energy = (A**2 + B**2 + C**2) / 2
    tol = 1e-6 if dtype == np.float32 else 1e-12
    assert stats["energy"] == pytest.approx(energy, rel=tol)
    assert stats["dissipation"] == pytest.approx(2 * nu * K**2 * energy, rel=tol)
    assert all(isinstance(v, float) and math.isfinite(v) for v in stats.values())
    with np.load(artifacts.resolve(row.path), allow_pickle=False) as archive:
        assert set(archive.files) == {"velocity", "nu", "length"}


def test_a_form_viscosity_is_used_when_the_file_has_none(client):
    body = upload(client, "u.npy", npy_bytes(abc()), nu="0.1").json()
    assert body["stats"]["nu"] == 0.1 and body["stats"]["nu_source"] == 1.0
    assert body["stats"]["taylor_reynolds"] == pytest.approx(
        float(diagnostics.taylor_reynolds(torch.from_numpy(abc())[None], 0.1)[0]), rel=1e-12
    )
    # The file's ν wins over the form's.
    body = upload(client, "u.npz", npz_bytes(velocity=abc(), nu=0.02), nu="0.1").json()
    assert body["stats"]["nu"] == 0.02 and body["stats"]["nu_source"] == 0.0


def _gradient_part(amplitude: float) -> np.ndarray:
    """amplitude·∇(−cos x) = amplitude·(sin x, 0, 0): a pure gradient, all divergence."""
    x = Grid3D(N).coordinates()[0].numpy()
    out = np.zeros((3, N, N, N))
    out[0] = amplitude * np.sin(x)
    return out


def test_a_slightly_divergent_field_is_leray_projected_and_the_row_says_so(client):
    # A 3 % gradient part on the ABC field: projection removes exactly that part.
    u = abc()
    response = upload(client, "u.npy", npy_bytes(u + _gradient_part(0.05)))
    assert response.status_code == 201, response.text
    stats = response.json()["stats"]
    assert stats["leray_projected"] == 1.0
    ratio = stats["divergence_relative_uploaded"]
    assert DIVERGENCE_KEEP < ratio < DIVERGENCE_REFUSE
    assert stats["divergence_max_uploaded"] == pytest.approx(0.05, rel=1e-9)
    assert stats["projection_change"] == pytest.approx(0.05, rel=1e-9)
    assert stats["divergence_max"] < 1e-12
    stored_u = load_initial_condition(
        client.app.state.eddyscope.artifacts, row_of(client, response.json()["id"])
    )
    np.testing.assert_allclose(stored_u, u, rtol=0, atol=1e-13)
    from app.services.initial_conditions import hit3d_divergence_note

    assert hit3d_divergence_note(stats).startswith("Leray-projected: as uploaded, max |∇·u| was")


def test_a_far_from_solenoidal_field_is_refused_with_the_measured_numbers(client):
    before = stored(client)
    response = upload(client, "u.npy", npy_bytes(abc() + _gradient_part(0.5)))
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert detail.startswith("The velocity is not divergence-free: max |∇·u| = 0.5 is ")
    assert "of max |∇u| = " in detail and "axes are (x, y, z)" in detail
    assert stored(client) == before


def _npz_object() -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, velocity=np.array([object(), 1], dtype=object))
    return buffer.getvalue()


def _with_nan() -> np.ndarray:
    u = abc()
    u[1, 2, 3, 4] = np.nan
    u[2, 0, 0, 0] = np.inf
    return u


BAD = {
    "pickle": ("u.npy", lambda: pickle.dumps({"velocity": [1.0]}), 422, "Python pickle"),
    "object array": ("u.npz", _npz_object, 422, "pickle"),
    "wrong extension": ("u.txt", lambda: b"1 2 3", 415, "not a supported file type"),
    "not an array file": ("u.h5", lambda: b"hello world", 422, "neither a .npy array"),
    "nan and inf": ("u.npy", lambda: npy_bytes(_with_nan()), 422, "2 NaN or infinite values"),
    "a 2D field": (
        "u.npy",
        lambda: npy_bytes(np.zeros((32, 32))),
        422,
        "has shape (32, 32); expected one velocity snapshot (3, nx, ny, nz)",
    ),
    "no component axis": (
        "u.npy",
        lambda: npy_bytes(np.zeros((4, N, N, N))),
        422,
        "no axis of the 3 velocity components (u, v, w) first or last",
    ),
    "not cubic": (
        "u.npy",
        lambda: npy_bytes(np.zeros((3, N, N, N + 2))),
        422,
        "The snapshot's grid is 16 × 16 × 18: hit3d needs a cubic grid",
    ),
    "odd side": (
        "u.npy",
        lambda: npy_bytes(np.zeros((3, 17, 17, 17), np.float32)),
        422,
        "an even number of points per side between 16 and 128; got 17×17×17",
    ),
    "too coarse": (
        "u.npy",
        lambda: npy_bytes(abc(8)),
        422,
        "between 16 and 128; got 8×8×8",
    ),
    "another box": (
        "u.npz",
        lambda: npz_bytes(velocity=abc(), length=np.float64(1.0)),
        422,
        "The file's box side is 1; hit3d is the box [0, 6.28319)³",
    ),
    "uneven coordinates": (
        "u.npz",
        lambda: npz_bytes(velocity=abc(), x=np.sort(np.random.default_rng(0).random(N))),
        422,
        "the coordinate 'x' is not uniformly spaced",
    ),
    "u v w unlike": (
        "u.npz",
        lambda: npz_bytes(u=abc()[0], v=abc()[1], w=abc()[2][:8]),
        422,
        "u, v and w must each be one field shaped (nx, ny, nz), all alike",
    ),
    "no velocity": (
        "u.npz",
        lambda: npz_bytes(vorticity=np.zeros((32, 32))),
        422,
        "has no velocity: expected an array 'velocity'",
    ),
    "viscosity out of range": (
        "u.npz",
        lambda: npz_bytes(velocity=abc(), nu=np.float64(100.0)),
        422,
        "The viscosity from the file: hit3d takes a viscosity from 1e-05 to 10; got 100.",
    ),
    "complex": (
        "u.npy",
        lambda: npy_bytes(abc().astype(np.complex64)),
        422,
        "not numeric",
    ),
    "declared 200 GiB": (
        "u.npy",
        lambda: declared_npy((3, 2048, 2048, 2048)),
        413,
        "would take 192.0 GiB",
    ),
    "declared in HDF5": (
        "u.h5",
        lambda: declared_hdf5_velocity((3, 1024, 1024, 1024), (1, 64, 64, 64)),
        413,
        "'/velocity' (3, 1024, 1024, 1024) float32 would take 12.0 GiB",
    ),
    "larger than the upload limit": (
        "u.npy",
        lambda: npy_bytes(abc(32)),
        413,
        "larger than the limit of 200,000 bytes",
    ),
}


@pytest.mark.parametrize("case", BAD)
def test_bad_hit3d_uploads_get_their_own_sentence_and_store_nothing(client, case):
    assert upload(client, "good.npy", npy_bytes(abc())).status_code == 201
    before = stored(client)
    name, make, status, phrase = BAD[case]
    response = upload(client, name, make())
    assert response.status_code == status, response.text
    detail = response.json()["detail"]
    assert phrase in detail, detail
    assert len(detail) < 400
    assert stored(client) == before


def test_a_header_declaring_a_huge_array_is_refused_before_reading():
    """The declared 192 GiB .npy and 12 GiB HDF5 velocity are refused from their headers:
    the reader allocates nothing near their size (traced: well under 1 MiB)."""
    huge_npy = declared_npy((3, 2048, 2048, 2048))
    huge_h5 = BAD["declared in HDF5"][1]()
    for name, content in (("u.npy", huge_npy), ("u.h5", huge_h5)):
        tracemalloc.start()
        try:
            with pytest.raises(UploadError) as refused:
                parse_hit3d_upload(name, content)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert refused.value.status == 413
        assert peak < 1 << 20, (name, peak)
    with pytest.raises(TooLarge):
        from physics.formats.periodic import read_periodic_velocity

        read_periodic_velocity(huge_npy)


# --- the Upload page's callbacks (the UI's data layer, without a browser) -------------------


@pytest.fixture
def ui_state(client):
    from app.ui.context import set_state

    state = client.app.state.eddyscope
    set_state(state)
    return state


def _text(component) -> str:
    if isinstance(component, str | int | float):
        return str(component)
    if isinstance(component, list | tuple):
        return " ".join(_text(c) for c in component)
    children = getattr(component, "children", None)
    return "" if children is None else _text(children)


def test_the_upload_page_shows_a_hit3d_uploads_preview(ui_state):
    from app.ui.pages import upload as page

    accept, hint, help_text, nu_row, view, placeholder = asyncio.run(page.choose_flow(FLOW))
    assert ".npy" in accept and hint == (
        ".npy · .npz · .h5 · .hdf5 with velocity (3, n, n, n) or (n, n, n, 3), or u, v, w"
    )
    assert "periodic-box" in help_text and nu_row == "" and view == "2d"
    assert "0.04" in placeholder

    u = abc()
    contents = "data:application/octet-stream;base64," + base64.b64encode(npy_bytes(u)).decode()
    note, slices, spectrum, title, token, _channel, view = asyncio.run(
        page.on_upload(contents, "abc.npy", FLOW, 0, None)
    )
    text = _text(note)
    assert note.id == "upload-success", text
    assert "a 16×16×16 hit3d velocity snapshot" in text and "Divergence-free as uploaded" in text
    assert token == 1 and view == "2d" and title == "abc.npy · 3×16×16×16 · hit3d"
    # The midplanes of |ω|: for a Beltrami field ω = k u, so |ω| = k|u| on each plane.
    assert [trace.type for trace in slices.data] == ["heatmap"] * 3
    omega = K * np.sqrt((u**2).sum(axis=0))
    m = N // 2
    np.testing.assert_allclose(np.asarray(slices.data[2].z), omega[:, :, m].T, rtol=1e-5)
    # The spectrum: all the energy in shell k = 2 (drawn from k = 1).
    drawn = dict(zip(spectrum.data[0].x, spectrum.data[0].y, strict=True))
    assert drawn[K] == pytest.approx((A**2 + B**2 + C**2) / 2, rel=1e-12)

    listed = _text(asyncio.run(page.refresh_list(token)))
    assert "abc.npy" in listed and "Re_λ" in listed

    # Preview of the stored row draws the same figures.
    from app.services import catalog, initial_conditions

    (row,) = catalog.list_initial_conditions(ui_state)
    assert row["id"] in text
    found = initial_conditions.initial_condition_field(ui_state, row["id"])
    again, _spectrum, _title = page.hit3d_preview(*found)
    np.testing.assert_array_equal(np.asarray(again.data[2].z), np.asarray(slices.data[2].z))

    # A refusal is shown with its sentence.
    refused, *_rest = asyncio.run(
        page.on_upload(
            "data:;base64," + base64.b64encode(npy_bytes(abc(8))).decode(), "c.npy", FLOW, 1, None
        )
    )
    assert refused.id == "upload-error" and "got 8×8×8" in _text(refused)
