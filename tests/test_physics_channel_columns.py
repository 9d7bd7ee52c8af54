"""The solver columns of a channel comparison (physics.channel.columns) and the field maps
they rest on (faces_from_centres, upsample). Tiny grids: 8×12×8 coarse, 16×12(24)×16 fine."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from physics.channel.columns import CoarseLES, FilteredReference
from physics.channel.fields import faces_from_centres, filter_xz, upsample
from physics.channel.grid import ChannelGrid
from physics.channel.solver import ChannelConfig, ChannelSolver

F64 = torch.float64
FINE = ChannelConfig(re_tau=50.0, nx=16, ny=12, nz=16, lx=4.0, lz=2.0, dtype=F64)
COARSE = (8, 12, 8)


def coarse_grid(ny: int = 12) -> ChannelGrid:
    return ChannelGrid(8, ny, 8, FINE.lx, FINE.lz, FINE.stretching)


def turbulent_like(config: ChannelConfig, seed: int = 3) -> torch.Tensor:
    """A divergence-free staggered field of ``config``'s grid (float64)."""
    return ChannelSolver(config).initial_condition(1, seed=seed, amplitude=0.2, dtype=F64)


# --- faces_from_centres and upsample --------------------------------------------------------


def test_faces_from_centres_inverts_to_centres_for_a_staggered_field():
    u = turbulent_like(FINE)
    back = faces_from_centres(FINE.grid().to_centres(u))
    torch.testing.assert_close(back, u, rtol=0, atol=1e-10)
    # u and w are untouched, v differs from its centred values (the map does something).
    assert not torch.allclose(FINE.grid().to_centres(u)[:, 1], u[:, 1])


def test_the_rollout_runner_uses_the_moved_faces_from_centres():
    from workers.runners import rollout_channel

    assert rollout_channel.faces_from_centres is faces_from_centres


def test_upsample_then_the_spectral_cut_returns_the_coarse_field():
    fine_grid = ChannelGrid(16, 12, 16, FINE.lx, FINE.lz, FINE.stretching)
    generator = torch.Generator().manual_seed(0)
    # A coarse field as the datasets hold it: a spectral cut of a finer one (no Nyquist).
    coarse = filter_xz(torch.randn(2, 3, 16, 12, 16, generator=generator, dtype=F64), 8, 8)
    up = upsample(coarse, coarse_grid(), fine_grid)
    assert up.shape == (2, 3, 16, 12, 16)
    torch.testing.assert_close(filter_xz(up, 8, 8), coarse, rtol=0, atol=1e-12)
    # The Fourier interpolant passes through the coarse points (every other fine point).
    torch.testing.assert_close(up[..., ::2, :, ::2], coarse, rtol=0, atol=1e-12)
    # ...and is not a nearest-neighbour copy in between.
    assert (up[..., 1::2, :, ::2] - coarse).abs().max() > 1e-3


def test_upsample_drops_the_coarse_nyquist_modes_as_the_cut_does():
    x = torch.arange(8, dtype=F64)
    nyquist = torch.cos(torch.pi * x)[:, None, None].expand(8, 12, 8)[None, None]
    up = upsample(nyquist.expand(1, 3, 8, 12, 8), coarse_grid(), FINE.grid())
    assert up.abs().max() < 1e-12


def test_upsample_interpolates_a_parabola_in_y_exactly():
    fine_grid = ChannelGrid(16, 24, 16, FINE.lx, FINE.lz, FINE.stretching)
    coarse = coarse_grid()
    x = torch.arange(8, dtype=F64) * coarse.dx
    wave = torch.sin(2 * torch.pi * x / coarse.lx)  # mode 1 in x: kept exactly
    parabola = 1 - coarse.y_centres**2
    field = torch.zeros(1, 3, 8, 12, 8, dtype=F64)
    field[0, 0] = parabola[None, :, None] * (2 + wave[:, None, None])
    field[0, 2] = 0.5 * parabola[None, :, None]
    up = upsample(field, coarse, fine_grid)
    xf = torch.arange(16, dtype=F64) * fine_grid.dx
    fine_parabola = 1 - fine_grid.y_centres**2
    expected_u = (
        fine_parabola[None, :, None] * (2 + torch.sin(2 * torch.pi * xf / coarse.lx))[:, None, None]
    )
    torch.testing.assert_close(up[0, 0], expected_u.expand(16, 24, 16), rtol=0, atol=1e-12)
    torch.testing.assert_close(
        up[0, 2], (0.5 * fine_parabola)[None, :, None].expand(16, 24, 16), rtol=0, atol=1e-12
    )
    assert up[0, 1].abs().max() == 0


def test_upsample_refuses_a_field_off_its_coarse_grid_and_a_coarser_target():
    with pytest.raises(ValueError, match="not the coarse grid"):
        upsample(torch.zeros(1, 3, 6, 12, 8), coarse_grid(), FINE.grid())
    with pytest.raises(ValueError, match="coarser"):
        upsample(torch.zeros(1, 3, 8, 12, 8), coarse_grid(), ChannelGrid(8, 6, 8, 4.0, 2.0))


# --- CoarseLES ------------------------------------------------------------------------------


def test_coarse_les_builds_the_solver_on_the_coarse_grid_with_the_closure():
    les = CoarseLES(FINE, COARSE, "smagorinsky")
    assert (les.grid.nx, les.grid.ny, les.grid.nz) == COARSE
    assert les.config.les == "smagorinsky" and les.name == "smagorinsky"
    assert les.label == "Smagorinsky LES"
    assert (les.config.re_tau, les.config.lx, les.config.lz) == (50.0, 4.0, 2.0)
    assert CoarseLES(FINE, COARSE, "none").config.les is None
    with pytest.raises(ValueError, match="closure"):
        CoarseLES(FINE, COARSE, "spalart")


def test_coarse_les_without_closure_is_the_solver_on_the_coarse_grid():
    config = dataclasses.replace(FINE, nx=8, ny=12, nz=8)
    solver = ChannelSolver(config)
    u0 = turbulent_like(config)
    les = CoarseLES(FINE, COARSE, "none")
    start = les.start(config.grid().to_centres(u0))
    torch.testing.assert_close(start, config.grid().to_centres(u0), rtol=0, atol=1e-10)
    out = les.advance(0.02)
    expected = config.grid().to_centres(solver.advance(u0, 0.02))
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-9)
    assert (out - start).abs().max() > 1e-4  # it did move
    # A closure changes the result (the closure reaches the solver).
    smag = CoarseLES(FINE, COARSE, "smagorinsky")
    smag.start(config.grid().to_centres(u0))
    assert (smag.advance(0.02) - out).abs().max() > 1e-8


def test_coarse_les_state_is_divergence_free_even_from_a_noisy_start():
    les = CoarseLES(FINE, COARSE, "wale")
    generator = torch.Generator().manual_seed(1)
    noisy = torch.randn(1, 3, *COARSE, generator=generator, dtype=F64)
    noisy[:, 0] += 5 * (1 - les.grid.y_centres**2)[None, :, None]
    les.start(noisy)
    assert les.solver.divergence(faces_from_centres(noisy)).abs().max() > 1.0
    assert les.solver.divergence(les.state).abs().max() < 1e-10
    les.advance(0.01)
    assert les.solver.divergence(les.state).abs().max() < 1e-10


def test_coarse_les_must_be_started_first():
    with pytest.raises(RuntimeError, match="start"):
        CoarseLES(FINE, COARSE, "none").advance(0.01)


# --- FilteredReference ----------------------------------------------------------------------


def test_filtered_reference_with_the_identity_filter_is_the_plain_solver():
    grid = FINE.grid()
    u0 = turbulent_like(FINE)
    reference = FilteredReference(FINE, lambda u: u, grid)
    start = reference.start(grid.to_centres(u0))
    assert not reference.upsampled
    torch.testing.assert_close(start, grid.to_centres(u0), rtol=0, atol=1e-10)
    out = reference.advance(0.02)
    expected = grid.to_centres(ChannelSolver(FINE).advance(u0, 0.02))
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-9)
    torch.testing.assert_close(reference.fine, expected, rtol=0, atol=1e-9)


def test_filtered_reference_filters_and_upsamples_a_coarse_start():
    grid = FINE.grid()
    u0 = turbulent_like(FINE)
    reference = FilteredReference(FINE, lambda u: filter_xz(u, 8, 8), coarse_grid())
    seen = reference.start(grid.to_centres(u0))
    assert seen.shape == (1, 3, *COARSE) and reference.fine.shape == (1, 3, 16, 12, 16)
    torch.testing.assert_close(seen, filter_xz(grid.to_centres(u0), 8, 8), rtol=0, atol=1e-10)
    # A coarse start: upsampled, and since the filtered field of a divergence-free one is
    # divergence-free (same y grid), the projection keeps it and the cut returns it.
    again = FilteredReference(FINE, lambda u: filter_xz(u, 8, 8), coarse_grid())
    back = again.start(seen)
    assert again.upsampled
    torch.testing.assert_close(back, seen, rtol=0, atol=1e-9)
    moved = again.advance(0.02)
    assert moved.shape == (1, 3, *COARSE) and (moved - back).abs().max() > 1e-4
    with pytest.raises(ValueError, match="neither"):
        again.start(torch.zeros(1, 3, 10, 12, 10, dtype=F64))
