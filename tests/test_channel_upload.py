"""Uploading channel-flow velocity snapshots through ``POST /api/initial-conditions`` with
``flow=channel3d`` (on SQLite, Redis as the broker): the layouts the reader accepts, where
ν comes from, the stored ``.npz`` and row, and every refusal with its own sentence and
nothing stored."""

from __future__ import annotations

import io
import math
import pickle

import h5py
import numpy as np
import pytest

from app.db.tables import InitialCondition
from app.services.initial_conditions import (
    NU_SOURCES,
    load_channel_initial_condition,
    load_initial_condition,
)
from physics.channel.flow import CHANNEL3D
from physics.channel.grid import ChannelGrid
from physics.channel.stats import snapshot_statistics
from physics.formats.channel import read_channel_snapshot
from tests.test_api import stored

FLOW = "channel3d"
NX, NY, NZ = 8, 17, 8
NU = 1 / 180


@pytest.fixture
def database_url(tmp_path) -> str:
    """SQLite only: the upload path is the same on PostgreSQL (tests/test_api.py)."""
    return f"sqlite:///{tmp_path / 'eddyscope.sqlite'}"


def channel_y(ny: int = NY) -> np.ndarray:
    """Chebyshev–Gauss–Lobatto points, walls included, increasing."""
    return -np.cos(np.pi * np.arange(ny) / (ny - 1))


def channel_snapshot(
    nx: int = NX, ny: int = NY, nz: int = NZ, seed: int = 0, nu: float = NU
) -> tuple[np.ndarray, np.ndarray]:
    """A laminar parabola U = (1 − y²)/(2ν) (τ_w = 1, so u_τ = 1 and Re_τ = 1/ν) plus
    fluctuations that vanish at the walls; velocity (3, nx, ny, nz) float32 and y."""
    y = channel_y(ny)
    rng = np.random.default_rng(seed)
    damp = (1 - y**2)[None, None, :, None]
    u = 0.5 * rng.standard_normal((3, nx, ny, nz)) * damp
    u[0] += ((1 - y**2) / (2 * nu))[None, :, None]
    return u.astype(np.float32), y


def npz_bytes(**arrays) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def h5_bytes(build) -> bytes:
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as f:
        build(f)
    return buffer.getvalue()


def upload(client, name: str, content: bytes, **form):
    return client.post(
        "/api/initial-conditions",
        files={"file": (name, content)},
        data={"flow": FLOW, **{k: str(v) for k, v in form.items()}},
    )


def row_of(client, ic_id: str) -> InitialCondition:
    state = client.app.state.eddyscope
    with state.db.session() as session:
        return session.get(InitialCondition, ic_id)


def test_npz_snapshot_is_stored_with_its_statistics(client):
    u, y = channel_snapshot()
    response = upload(client, "channel.npz", npz_bytes(velocity=u, y=y))
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["flow"] == FLOW and body["shape"] == [3, NX, NY, NZ]
    assert body["fields"] == ["u", "v", "w"]
    stats = body["stats"]
    # No ν and no Re_τ in the file: the default 1/180, said so.
    assert stats["nu"] == pytest.approx(NU)
    assert NU_SOURCES[int(stats["nu_source"])] == "default" and stats["nu_assumed"] == 1.0
    assert stats["lx_assumed"] == 1.0 and stats["lx"] == pytest.approx(4 * math.pi)
    # Chebyshev points are not the solver's cell centres: interpolated onto them, said so.
    assert stats["y_interpolated"] == 1.0 and stats["y_points_uploaded"] == NY
    row = row_of(client, body["id"])
    artifacts = client.app.state.eddyscope.artifacts
    snapshot = load_channel_initial_condition(artifacts, row)
    centres = ChannelGrid(NX, NY, NZ, stretching=CHANNEL3D.stretching).y_centres.numpy()
    np.testing.assert_array_equal(snapshot.y, centres)
    expected = snapshot_statistics(snapshot.velocity, centres, NU, 4 * math.pi, 4 * math.pi / 3)
    assert stats["u_tau"] == pytest.approx(expected.u_tau)
    assert stats["re_tau"] == pytest.approx(expected.re_tau)
    assert stats["re_tau"] == pytest.approx(180, rel=0.02)
    assert stats["bulk_u_plus"] == pytest.approx(expected.bulk_u_plus)
    assert stats["centreline_u_plus"] == pytest.approx(expected.centreline_u_plus)
    assert all(isinstance(v, float) for v in stats.values())

    listed = client.get("/api/initial-conditions").json()
    assert [ic["id"] for ic in listed] == [body["id"]]
    assert row.path.endswith(".npz")
    # The mean profile survives the interpolation (the parabola exactly, up to float32).
    np.testing.assert_allclose(
        snapshot.velocity[0].mean(axis=(0, 2)), (1 - centres**2) / (2 * NU), rtol=0, atol=0.2
    )
    assert snapshot.nu == pytest.approx(NU) and snapshot.lz == pytest.approx(4 * math.pi / 3)
    np.testing.assert_array_equal(load_initial_condition(artifacts, row), snapshot.velocity)
    # Never a pickle: the stored archive loads without allow_pickle.
    with np.load(artifacts.resolve(row.path), allow_pickle=False) as archive:
        assert set(archive.files) == {"velocity", "y", "nu", "lx", "lz"}


def _well(f: h5py.File, u: np.ndarray, y: np.ndarray) -> None:
    f.attrs["n_spatial_dims"] = 3
    f.attrs["nu"] = 1 / 150
    dims = f.create_group("dimensions")
    dims.attrs["spatial_dims"] = ["x", "y", "z"]
    dims.create_dataset("y", data=y)
    f.create_group("t1_fields").create_dataset(
        "velocity", data=np.moveaxis(u, 0, -1)[None, None].repeat(2, axis=1)
    )


LAYOUTS = {
    "npz components last": (
        "c.npz",
        lambda u, y: npz_bytes(velocity=np.moveaxis(u, 0, -1), y=y[::-1].copy(), re_tau=200),
        "re_tau",
    ),
    "npz u v w": ("c.npz", lambda u, y: npz_bytes(u=u[0], v=u[1], w=u[2], y=y), "default"),
    "hdf5 with nu": (
        "c.h5",
        lambda u, y: h5_bytes(
            lambda f: (
                f.create_dataset("velocity", data=u),
                f.create_dataset("dimensions/y", data=y),
                f.attrs.create("nu", 1 / 150),
                f.attrs.create("lx", 2.0),
            )
        ),
        "file",
    ),
    "the well": ("c.hdf5", lambda u, y: h5_bytes(lambda f: _well(f, u, y)), "file"),
}


@pytest.mark.parametrize("layout", LAYOUTS)
def test_each_layout_is_read_and_says_where_nu_came_from(client, layout):
    name, make, source = LAYOUTS[layout]
    u, y = channel_snapshot()
    response = upload(client, name, make(u, y))
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["shape"] == [3, NX, NY, NZ]
    stats = body["stats"]
    assert NU_SOURCES[int(stats["nu_source"])] == source
    expected_nu = {"re_tau": 1 / 200, "default": NU, "file": 1 / 150}[source]
    assert stats["nu"] == pytest.approx(expected_nu)
    if layout == "hdf5 with nu":
        assert stats["lx"] == 2.0 and stats["lx_assumed"] == 0.0
    if source == "re_tau":
        assert stats["re_tau_nominal"] == 200.0 and stats["nu_assumed"] == 1.0
    row = row_of(client, body["id"])
    snapshot = read_channel_snapshot(client.app.state.eddyscope.artifacts.resolve(row.path))
    assert snapshot.velocity.shape == (3, NX, NY, NZ)
    assert snapshot.nu == pytest.approx(expected_nu)


def test_form_nu_is_used_only_when_the_file_has_none(client):
    u, y = channel_snapshot(nu=1 / 100)
    body = upload(client, "c.npz", npz_bytes(velocity=u, y=y), nu=0.01).json()
    assert NU_SOURCES[int(body["stats"]["nu_source"])] == "form"
    assert body["stats"]["nu_assumed"] == 0.0
    assert body["stats"]["re_tau"] == pytest.approx(100, rel=0.02)
    # The file's ν wins over the form's.
    body = upload(client, "c.npz", npz_bytes(velocity=u, y=y, nu=0.02), nu=0.01).json()
    assert NU_SOURCES[int(body["stats"]["nu_source"])] == "file"
    assert body["stats"]["nu"] == pytest.approx(0.02)


def test_a_snapshot_without_positive_wall_shear_is_stored_without_wall_units(client):
    u, y = channel_snapshot()
    u[0] *= -1  # flowing in −x
    body = upload(client, "reverse.npz", npz_bytes(velocity=u, y=y)).json()
    assert body["stats"]["wall_units"] == 0.0 and "u_tau" not in body["stats"]


def _u():
    return channel_snapshot()


BAD = {
    "npy": (
        "c.npy",
        lambda: (lambda b: (np.save(b, _u()[0]), b.getvalue())[1])(io.BytesIO()),
        415,
        "no y coordinates",
    ),
    "wrong extension": ("c.txt", lambda: b"1 2 3", 415, ".npz, .h5 or .hdf5"),
    "pickle": ("c.npz", lambda: pickle.dumps({"velocity": [1.0]}), 422, "pickle"),
    "no y": ("c.npz", lambda: npz_bytes(velocity=_u()[0]), 422, "no y coordinates"),
    "y length": (
        "c.npz",
        lambda: npz_bytes(velocity=_u()[0], y=channel_y(NY + 2)),
        422,
        f"y has {NY + 2} points",
    ),
    "nan": (
        "c.npz",
        lambda: npz_bytes(velocity=np.where(_u()[0] > 50, np.nan, _u()[0]), y=_u()[1]),
        422,
        "NaN",
    ),
    "y short of a wall": (
        "c.npz",
        lambda: npz_bytes(velocity=_u()[0], y=np.linspace(-1, 0.5, NY)),
        422,
        "do not span the channel",
    ),
    "object array": (
        "c.npz",
        lambda: (
            lambda b: (
                np.savez(b, velocity=np.array([object(), 1], dtype=object), y=channel_y()),
                b.getvalue(),
            )[1]
        )(io.BytesIO()),
        422,
        "pickle",
    ),
    "no velocity": ("c.npz", lambda: npz_bytes(y=channel_y()), 422, "has no velocity"),
    "not hdf5": ("c.h5", lambda: b"hello world", 422, "neither a .npz archive nor an HDF5"),
    "too large": (
        "c.npz",
        lambda: npz_bytes(velocity=channel_snapshot(32, 65, 32)[0], y=channel_y(65)),
        413,
        "limit",
    ),
}


@pytest.mark.parametrize("case", BAD)
def test_bad_channel_uploads_get_their_own_message_and_store_nothing(client, case):
    u, y = channel_snapshot()
    assert upload(client, "good.npz", npz_bytes(velocity=u, y=y)).status_code == 201
    before = stored(client)
    name, make, status, phrase = BAD[case]
    response = upload(client, name, make())
    assert response.status_code == status, response.text
    assert phrase in response.json()["detail"], response.json()["detail"]
    assert stored(client) == before


def test_a_bad_viscosity_is_refused(client):
    u, y = channel_snapshot()
    response = upload(client, "c.npz", npz_bytes(velocity=u, y=y), nu="-1")
    assert response.status_code == 422
    assert "positive" in response.json()["detail"]
    assert stored(client)[0] == 0
