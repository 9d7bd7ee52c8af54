"""The flow registry, grid checks, and a short forced run from a random initial condition."""

from __future__ import annotations

import ast
import math
from pathlib import Path

import pytest
import torch

from physics.diagnostics import kinetic_energy
from physics.flows import FLOWS, Flow, UnknownFlowError, get_flow
from physics.ns2d.solver import VorticitySolver2D
from physics.spectral import velocity_from_vorticity

PHYSICS = Path(__file__).resolve().parents[1] / "physics"


def test_registry_has_the_fno_benchmark():
    flow = get_flow("ns2d-forced")
    assert isinstance(flow, Flow) and FLOWS["ns2d-forced"] is flow
    assert flow.fields == ("vorticity",)
    assert (flow.length, flow.nu, flow.drag) == (1.0, 1e-3, 0.0)
    f = flow.forcing(32, dtype=torch.float64)
    s = torch.arange(32, dtype=torch.float64) / 32
    y, x = torch.meshgrid(s, s, indexing="ij")
    phase = 2 * math.pi * (x + y)
    torch.testing.assert_close(f, 0.1 * (torch.sin(phase) + torch.cos(phase)))


def test_unknown_flow_names_itself_and_the_known_ones():
    with pytest.raises(UnknownFlowError) as info:
        get_flow("ns3d-imaginary")
    message = str(info.value)
    assert "ns3d-imaginary" in message and "ns2d-forced" in message
    assert isinstance(info.value, ValueError)


def test_check_grid_accepts_and_rejects_with_a_sentence():
    flow = get_flow("ns2d-forced")
    flow.check_grid((64, 64))
    flow.check_grid((2, 1, 32, 32))  # a full field shape: the last two sizes are checked
    with pytest.raises(ValueError) as info:
        flow.check_grid((63, 64))
    assert str(info.value) == (
        "ns2d-forced needs a square grid with an even number of points per side between "
        "16 and 1024; got 63×64."
    )
    for bad in [(8, 8), (63, 63), (2048, 2048), (32, 64)]:
        with pytest.raises(ValueError, match=f"got {bad[0]}×{bad[1]}"):
            flow.check_grid(bad)
    with pytest.raises(ValueError, match="two-dimensional"):
        flow.check_grid((64,))
    with pytest.raises(ValueError):
        flow.make_solver(63)


def test_forced_run_from_a_random_field_stays_finite_and_bounded():
    """Energy input is bounded by the forcing: d‖u‖/dt ≤ ‖F‖ (rms norms, F the velocity
    forcing whose curl is f), since viscosity only removes energy. So
    √(2E(t)) ≤ √(2E(0)) + t‖F‖ must hold for the computed flow too."""
    flow = get_flow("ns2d-forced")
    n, t = 32, 2.0
    solver = flow.make_solver(n)
    assert isinstance(solver, VorticitySolver2D)
    w0 = flow.random_initial_condition(n, batch=2, seed=0)
    assert w0.shape == (2, 1, n, n) and w0.dtype == torch.float32
    w = w0
    for _ in range(4):
        w = solver.advance(w, t / 4)
    assert w.shape == w0.shape and w.dtype == torch.float32
    assert torch.isfinite(w).all()
    fu, fv = velocity_from_vorticity(flow.forcing(n, dtype=torch.float64)[None, None])
    forcing_rms = math.sqrt((fu**2 + fv**2).mean().item())
    bound = torch.sqrt(2 * kinetic_energy(w0.double())) + t * forcing_rms
    assert (torch.sqrt(2 * kinetic_energy(w.double())) <= bound * (1 + 1e-3)).all()
    assert not torch.equal(w, w0)


def test_physics_imports_no_service_or_sibling_package():
    """physics/ is a plain torch library: no Celery, FastAPI, Dash, or app/models/workers."""
    banned = {"celery", "fastapi", "dash", "starlette", "app", "models", "workers"}
    for path in sorted(PHYSICS.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                assert name.split(".")[0] not in banned, f"{path.name} imports {name}"
