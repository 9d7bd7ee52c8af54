"""hit3d as a registered flow: the protocol, its grid rules with their sentences, its
viscosity variants, initial-condition families and the solver it builds."""

from __future__ import annotations

import json
import math

import pytest
import torch

from physics.flow_protocol import FlowProtocol, check_flow, describe_flow
from physics.flows import FLOWS, find_flow, flows_of, get_flow
from physics.hit3d import diagnostics
from physics.hit3d.flow import HIT3D, HITFlow
from physics.hit3d.grid import Grid3D
from physics.hit3d.initial import random_velocity, taylor_green
from physics.hit3d.solver import HITSolver


def test_hit3d_is_registered_and_satisfies_the_protocol():
    flow = get_flow("hit3d")
    assert flow is HIT3D and isinstance(flow, HITFlow) and isinstance(flow, FlowProtocol)
    check_flow(flow)
    assert list(FLOWS)[-1] == "hit3d"  # the registry order: 2D flows, channel3d, hit3d
    assert flows_of(dims=3, geometry="periodic") == [flow] and find_flow("hit3d") is flow
    assert (flow.dims, flow.fields, flow.geometry, flow.axes) == (
        3,
        ("u", "v", "w"),
        "periodic",
        ("x", "y", "z"),
    )
    assert flow.lengths == pytest.approx((2 * math.pi,) * 3)
    assert flow.default_grid == (32, 32, 32)
    assert flow.initial_conditions == ("random", "taylor-green", "abc")
    described = describe_flow(flow)
    assert json.loads(json.dumps(described)) == described
    assert described["parameters"]["closures"] == ["none", "smagorinsky", "dynamic"]
    assert described["parameters"]["forcings"] == ["none", "linear"]
    assert described["parameters"]["filters"] == ["spectral", "box"]
    assert described["snapshot"] == {
        "format": "periodic-velocity",
        "file_types": [".npy", ".npz", ".h5", ".hdf5"],
    }
    assert "hit_spectrum" in flow.statistics and "hit_spectrum" in flow.panels


def test_hit3d_grid_rules_with_a_sentence():
    flow = HIT3D
    for ok in [(16, 16, 16), (32, 32, 32), (128, 128, 128), (2, 3, 24, 24, 24)]:
        flow.check_grid(ok)
    rule = "a cubic grid with an even number of points per side between 16 and 128"
    for bad, shown in [
        ((16, 16, 18), "16×16×18"),
        ((17, 17, 17), "17×17×17"),
        ((14, 14, 14), "14×14×14"),
        ((130, 130, 130), "130×130×130"),
    ]:
        with pytest.raises(ValueError) as info:
            flow.check_grid(bad)
        assert str(info.value) == f"hit3d needs {rule}; got {shown}."
    with pytest.raises(ValueError, match=r"three-dimensional and needs a cubic grid \(n, n, n\)"):
        flow.check_grid((64, 64))
    rules = flow.grid_rules()
    assert rules["default"] == [32] * 3 and rules["min"] == [16] * 3 and rules["max"] == [128] * 3
    assert rules["rule"] == rule and rules["cubic"] and rules["even"]


def test_viscosity_variants_and_initial_condition_families():
    assert HIT3D.variant(None) is HIT3D and HIT3D.variant(0.04) is HIT3D
    assert HIT3D.variant(0.01).nu == 0.01 and HIT3D.variant(0.01).name == "hit3d"
    with pytest.raises(ValueError) as info:
        HIT3D.variant(100.0)
    assert str(info.value) == "hit3d takes a viscosity from 1e-05 to 10; got 100."
    HIT3D.check_initial_condition(None)
    with pytest.raises(ValueError) as info:
        HIT3D.check_initial_condition("grf")
    assert str(info.value) == "hit3d offers random, taylor-green, abc; got 'grf'."
    assert "k^4" in HIT3D.initial_condition_description()

    grid = Grid3D(16)
    u = HIT3D.make_initial_condition("random", 16, batch=1, seed=7, dtype=torch.float64)
    torch.testing.assert_close(
        u, random_velocity(grid, 1, k_peak=2.0, u_rms=1.0, seed=7, dtype=torch.float64)
    )
    assert float(diagnostics.kinetic_energy(u)) == pytest.approx(1.5, rel=1e-12)  # 3u'²/2
    v = HIT3D.make_initial_condition("random", 16, seed=7, k_peak=3, u_rms=0.5)
    assert v.dtype == torch.float32
    assert float(diagnostics.kinetic_energy(v.double())) == pytest.approx(0.375, rel=1e-6)
    tg = HIT3D.make_initial_condition("taylor-green", 16, batch=2, dtype=torch.float64)
    torch.testing.assert_close(tg, taylor_green(grid, 2))
    abc = HIT3D.make_initial_condition("abc", 16, dtype=torch.float64)
    assert float(diagnostics.kinetic_energy(abc)) == pytest.approx(1.5)  # (A²+B²+C²)/2
    with pytest.raises(ValueError, match="k_peak and u_rms shape the random family only"):
        HIT3D.make_initial_condition("taylor-green", 16, k_peak=3)
    with pytest.raises(ValueError, match="hit3d needs a cubic grid"):
        HIT3D.make_initial_condition("random", 18 + 1)


def test_make_solver_builds_the_reference_solver_with_forcing_and_closure():
    solver = HIT3D.make_solver(16)
    assert isinstance(solver, HITSolver) and solver.grid.n == 16 and solver.nu == 0.04
    assert solver.forcing is None and solver.closure is None
    forced = HIT3D.make_solver(16, nu=0.02, forcing="linear", closure="dynamic")
    assert forced.forcing == "linear" and forced.hold_energy and forced.k_forcing == 2
    assert forced.closure.name == "dynamic" and forced.nu == 0.02
    assert HIT3D.make_solver(16, forcing="none", closure="none").forcing is None
    with pytest.raises(ValueError, match="hit3d offers the closures none, smagorinsky, dynamic"):
        HIT3D.make_solver(16, closure="wale")
    with pytest.raises(ValueError, match="hit3d needs a cubic grid"):
        HIT3D.make_solver(12)
    # The energy-holding forcing keeps E at its initial value while the flow dissipates.
    u = HIT3D.make_initial_condition("random", 16, seed=1, dtype=torch.float64)
    after = forced.advance(u, 0.2)
    e0, e1 = (float(diagnostics.kinetic_energy(x)) for x in (u, after))
    assert e1 == pytest.approx(e0, rel=1e-6)
    assert float(diagnostics.divergence_max(after)) < 1e-12
