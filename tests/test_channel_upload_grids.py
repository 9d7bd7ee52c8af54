"""Channel uploads on other y grids (issue 12, item 2): interpolated onto the cell centres of
the solver's tanh-stretched grid (said in the stats and on the page) or refused at upload
with the grid needed; a file of the wrong kind for the chosen flow gets its own sentence.

The interpolation (``physics.channel.grid.interpolate_y``) is checked against known
profiles; an interpolated upload then passes the channel rollout's own y check: a one-step
rollout from it runs (in this process) and succeeds."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch

from app.services.initial_conditions import channel_grid_note, load_channel_initial_condition
from physics.channel.flow import CHANNEL3D
from physics.channel.grid import ChannelGrid, interpolate_y
from tests.test_api import stored
from tests.test_channel_upload import FLOW, npz_bytes, row_of, upload
from tests.test_compare import run_in_process
from workers.runners.rollout import run_rollout

NX, NY, NZ = 8, 17, 8
GAMMA = CHANNEL3D.stretching


@pytest.fixture
def database_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'eddyscope.sqlite'}"


def uniform_centres(n: int) -> np.ndarray:
    """n uniform cell centres between the walls (what a uniform-grid code writes)."""
    return -1 + (np.arange(n) + 0.5) * (2 / n)


def rollout_accepts(velocity_shape, y) -> bool:
    """The channel rollout's check (workers/runners/rollout_channel.py): y sorted equal to
    the centres of the solver grid of the snapshot's shape, within 1e-6."""
    nx, ny, nz = velocity_shape[1:]
    centres = CHANNEL3D.config(grid=(nx, ny, nz)).grid().y_centres.numpy()
    return np.allclose(np.sort(np.asarray(y, dtype=np.float64)), centres, atol=1e-6)


# --- the interpolation --------------------------------------------------------------------


def test_poiseuille_from_a_uniform_grid_is_exact_on_the_stretched_centres():
    grid = ChannelGrid(NX, 49, NZ, stretching=GAMMA)
    y = uniform_centres(49)
    profile = torch.as_tensor(1 - y**2)
    result = interpolate_y(profile, y, grid.y_centres, dim=-1)
    expected = 1 - grid.y_centres**2
    # Cubic pieces reproduce a parabola to rounding (the walls, value 0, are nodes of it).
    assert float((result - expected).abs().max()) < 1e-12


def test_a_smooth_turbulent_like_profile_is_accurate_to_a_stated_tolerance():
    grid = ChannelGrid(NX, 33, NZ, stretching=GAMMA)
    y = uniform_centres(33)

    def f(t):
        return np.tanh(8 * (1 - np.abs(t))) * (1 + 0.3 * np.sin(3 * t))

    result = interpolate_y(torch.as_tensor(f(y)), y, grid.y_centres, dim=-1).numpy()
    # Steep near the walls (δ ≈ 1/8) and sampled every 2/33: within 1 % of the maximum.
    assert np.abs(result - f(grid.y_centres.numpy())).max() < 1e-2


def test_a_divergence_free_field_stays_close_to_divergence_free():
    """ψ = (1 − y²)² sin(k x): u = ∂ψ/∂y, v = −∂ψ/∂x has zero divergence; interpolated in
    y from 41 uniform points, ∂u/∂x + ∂v/∂y at the stretched centres (the same 3-point
    ∂/∂y for both) is as small as that of the exact values, relative to |∂u/∂x|."""
    grid = ChannelGrid(16, 41, 4, stretching=GAMMA)
    k = 2 * np.pi / grid.lx
    x = np.arange(grid.nx) * grid.dx

    def fields(y):
        psi_y = -4 * y * (1 - y**2)
        psi = (1 - y**2) ** 2
        u = psi_y[None, :] * np.sin(k * x)[:, None]
        v = -psi[None, :] * k * np.cos(k * x)[:, None]
        return torch.as_tensor(np.stack([u, v]))  # (2, nx, ny)

    y = uniform_centres(41)
    interpolated = interpolate_y(fields(y), y, grid.y_centres, dim=-1)
    exact = fields(grid.y_centres.numpy())

    def divergence(f):
        dudx = torch.fft.ifft(
            1j * k * torch.fft.fftfreq(grid.nx, 1 / grid.nx)[:, None] * torch.fft.fft(f[0], dim=0),
            dim=0,
        ).real
        return dudx, grid.ddy_centres.apply(f[1], dim=-1)

    dudx, dvdy = divergence(interpolated)
    scale = float(dudx.abs().max())
    exact_dudx, exact_dvdy = divergence(exact)
    discrete = float((exact_dudx + exact_dvdy).abs().max()) / scale
    after = float((dudx + dvdy).abs().max()) / scale
    # (The 3-point stencil's own residual, ~0.8 % here, is the floor; interpolation adds
    # nothing visible to it.)
    assert abs(after - discrete) < 1e-4, (after, discrete)
    # The x mean of v stays zero at every centre (mass conservation between the walls).
    assert float(interpolated[1].mean(dim=0).abs().max()) < 1e-12


def test_wall_values_are_respected():
    """Points that stop short of the walls: the result goes to the no-slip value there."""
    grid = ChannelGrid(NX, 64, NZ, stretching=GAMMA)
    y = uniform_centres(20)
    result = interpolate_y(torch.ones(20, dtype=torch.float64), y, grid.y_centres, dim=-1)
    assert float(result[0]) < 0.2 and float(result[-1]) < 0.2  # the first centre is near y=−1
    assert float((result[20:-20] - 1).abs().max()) < 1e-12


# --- through the API ----------------------------------------------------------------------


def laminar_snapshot(y: np.ndarray, nu: float = 1 / 180) -> np.ndarray:
    """U = (1 − y²)/(2ν) (u_τ = 1) plus a small divergence-free wave, (3, NX, n, NZ)."""
    x = np.arange(NX) * (4 * np.pi / NX)
    k = 2 * np.pi / (4 * np.pi)
    u = np.zeros((3, NX, y.size, NZ))
    u[0] += ((1 - y**2) / (2 * nu))[None, :, None]
    u[0] += (-4 * y * (1 - y**2))[None, :, None] * np.sin(k * x)[:, None, None]
    u[1] += (-((1 - y**2) ** 2))[None, :, None] * k * np.cos(k * x)[:, None, None]
    return u.astype(np.float32)


def test_a_uniform_y_upload_is_interpolated_said_so_and_rolls_out(client):
    y = uniform_centres(NY)
    velocity = laminar_snapshot(y)
    response = upload(client, "uniform.npz", npz_bytes(velocity=velocity, y=y, nu=1 / 180))
    assert response.status_code == 201, response.text
    body = response.json()
    stats = body["stats"]
    assert body["shape"] == [3, NX, NY, NZ]
    assert stats["y_interpolated"] == 1.0 and stats["y_points_uploaded"] == NY
    assert stats["y_stretching"] == GAMMA
    # A parabola plus a cubic-in-y wave: the round trip changes almost nothing.
    assert 0 <= stats["y_interpolation_relative_change"] < 1e-3
    assert stats["re_tau"] == pytest.approx(180, rel=0.02)
    note = channel_grid_note(stats, NY)
    assert note.startswith(f"Interpolated from {NY} y points onto the solver's {NY} cell centres")
    assert "max change" in note

    state = client.app.state.eddyscope
    snapshot = load_channel_initial_condition(state.artifacts, row_of(client, body["id"]))
    assert rollout_accepts(snapshot.velocity.shape, snapshot.y)
    centres = snapshot.y
    np.testing.assert_allclose(
        snapshot.velocity[0].mean(axis=(0, 2)), (1 - centres**2) * 90, rtol=1e-4, atol=1e-3
    )

    job_id, result = run_in_process(
        state.db,
        state.artifacts,
        "rollout",
        {"initial_condition_id": body["id"], "steps": 1, "interval": 0.005},
        run_rollout,
    )
    assert result["frames"] == 2
    job = client.get(f"/api/jobs/{job_id}").json()
    assert job["status"] == "succeeded", job


def test_centres_of_the_solver_grid_are_stored_as_uploaded(client):
    grid = ChannelGrid(NX, NY, NZ, stretching=GAMMA)
    y = grid.y_centres.numpy()[::-1].copy()  # top-down, as some codes write
    velocity = laminar_snapshot(y)
    body = upload(client, "centres.npz", npz_bytes(velocity=velocity, y=y)).json()
    assert body["stats"]["y_interpolated"] == 0.0
    snapshot = load_channel_initial_condition(
        client.app.state.eddyscope.artifacts, row_of(client, body["id"])
    )
    np.testing.assert_array_equal(snapshot.velocity, velocity)
    assert "stored as uploaded" in channel_grid_note(body["stats"], NY)


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


REFUSED = {
    "non-monotonic y": (
        "c.npz",
        lambda: npz_bytes(
            velocity=laminar_snapshot(uniform_centres(NY)),
            y=np.concatenate([uniform_centres(NY)[:8], uniform_centres(NY)[8:][::-1]]),
        ),
        422,
        ["strictly monotonic", "cell centres of its tanh-stretched y grid"],
    ),
    "y outside the walls": (
        "c.npz",
        lambda: npz_bytes(
            velocity=laminar_snapshot(uniform_centres(NY)), y=np.linspace(-1.5, 1.5, NY)
        ),
        422,
        ["must lie in [-1, 1]", "cell centres of its tanh-stretched y grid"],
    ),
    "half a channel": (
        "c.npz",
        lambda: npz_bytes(
            velocity=laminar_snapshot(np.linspace(0, 1, NY)), y=np.linspace(0, 1, NY)
        ),
        422,
        ["do not span the channel (−1, 1)", f"{NY} cell centres"],
    ),
    "too coarse": (
        "c.npz",
        lambda: npz_bytes(velocity=laminar_snapshot(uniform_centres(5)), y=uniform_centres(5)),
        422,
        ["too few to interpolate", "cell centres"],
    ),
    "2D npy for channel3d": (
        "w.npy",
        lambda: _npy(np.zeros((32, 32), dtype=np.float32)),
        415,
        ["holds one array of shape (32, 32), a 2D field", "choose that flow"],
    ),
}


@pytest.mark.parametrize("case", REFUSED)
def test_unusable_channel_uploads_are_refused_with_the_grid_and_nothing_stored(client, case):
    before = stored(client)
    name, make, status, phrases = REFUSED[case]
    response = upload(client, name, make())
    assert response.status_code == status, response.text
    detail = response.json()["detail"]
    for phrase in phrases:
        assert phrase in detail, detail
    assert stored(client) == before


def test_a_channel_snapshot_for_a_2d_flow_gets_its_sentence(client):
    before = stored(client)
    y = uniform_centres(NY)
    velocity = laminar_snapshot(y)
    for name, content in (
        ("c.npz", npz_bytes(velocity=velocity, y=y)),
        ("c.npy", _npy(velocity)),
    ):
        response = client.post(
            "/api/initial-conditions",
            files={"file": (name, content)},
            data={"flow": "ns2d-forced"},
        )
        assert response.status_code == 422, response.text
        detail = response.json()["detail"]
        assert "channel" in detail and "2D vorticity field (ny, nx)" in detail, detail
    assert stored(client) == before
    assert FLOW == "channel3d"


def test_the_upload_page_lets_a_file_of_another_kind_reach_the_server():
    """The drop zone's accept lists every type, so the server's sentence is shown instead of
    the browser dropping a .npy for a channel flow without a word."""
    from app.ui.pages.upload import file_types

    accept, hint = file_types("channel3d")
    assert ".npy" in accept.split(",") and ".npy" not in hint
