"""Every registered flow satisfies the flow protocol; channel3d is one of them, with the
grid rules, initial conditions, closures and solver defaults the channel jobs use."""

from __future__ import annotations

import json
import math

import pytest
import torch

from physics.channel.flow import CHANNEL3D, ChannelFlow
from physics.channel.solver import ChannelConfig, ChannelSolver
from physics.flow_protocol import FlowProtocol, check_flow, describe_flow
from physics.flows import (
    FLOWS,
    Flow,
    UnknownFlowError,
    find_flow,
    flows_of,
    get_flow,
    register_flow,
    unregister_flow,
)

FLOWS_2D = ("ns2d-forced", "kolmogorov2d", "decaying2d", "taylor-green2d")


def test_every_registered_flow_satisfies_the_protocol_and_describes_itself_as_json():
    assert set(FLOWS_2D) | {"channel3d", "hit3d"} <= set(FLOWS)
    for name, flow in FLOWS.items():
        assert isinstance(flow, FlowProtocol), name
        check_flow(flow)
        described = describe_flow(flow)
        assert json.loads(json.dumps(described)) == described  # plain JSON
        assert described["name"] == name and described["dims"] in (2, 3)
        assert len(described["domain"]["axes"]) == described["dims"]
        assert described["initial_conditions"][0]["name"] == flow.initial_conditions[0]


def test_flows_of_separates_2d_vorticity_from_3d_velocity_flows():
    assert [f.name for f in flows_of(dims=2)] == list(FLOWS_2D)
    assert all(isinstance(f, Flow) and f.fields == ("vorticity",) for f in flows_of(dims=2))
    assert [f.name for f in flows_of(dims=3)] == ["channel3d", "hit3d"]
    assert [f.name for f in flows_of(geometry="channel")] == ["channel3d"]
    assert [f.name for f in flows_of(dims=3, geometry="periodic")] == ["hit3d"]
    assert find_flow("channel3d") is CHANNEL3D and find_flow("nope") is None
    assert find_flow(None) is None


def test_channel3d_is_registered_with_its_fields_domain_and_defaults():
    flow = get_flow("channel3d")
    assert isinstance(flow, ChannelFlow) and flow is CHANNEL3D
    assert (flow.dims, flow.fields, flow.geometry) == (3, ("u", "v", "w"), "channel")
    assert flow.axes == ("x", "y", "z")
    assert flow.lengths == pytest.approx((4 * math.pi, 2.0, 4 * math.pi / 3))
    assert flow.default_grid == (32, 49, 32)
    assert flow.re_tau == 180.0 and flow.nu == pytest.approx(1 / 180)
    assert flow.initial_conditions == ("turbulent", "laminar")
    assert flow.closures == ("none", "smagorinsky", "wale", "dynamic")
    assert flow.drives == ("pressure", "flow_rate")
    assert "channel_stats" in flow.statistics and "channel_stats" in flow.panels
    assert flow.snapshot_format == "channel-velocity" and ".npy" not in flow.file_types
    # Its defaults are the solver's.
    default = ChannelConfig()
    assert (default.nx, default.ny, default.nz) == flow.default_grid
    assert (default.re_tau, default.lx, default.lz) == (flow.re_tau, flow.lx, flow.lz)


def test_channel_grid_rules_are_the_generate_jobs_with_a_sentence():
    flow = CHANNEL3D
    for ok in [(32, 49, 32), (4, 4, 4), (512, 1024, 512), (16, 12, 8)]:
        flow.check_grid(ok)
    flow.check_grid((1, 3, 32, 49, 32))  # a full velocity shape: its last three sizes
    with pytest.raises(ValueError) as info:
        flow.check_grid((2, 12, 8))
    assert str(info.value) == (
        "channel3d: nx and nz must be 4–512 and ny (cells) 4–1024; got 2, 12, 8."
    )
    for bad in [(8, 3, 8), (1024, 49, 32), (32, 2048, 32), (32, 49, 3)]:
        with pytest.raises(ValueError, match="nx and nz must be 4–512"):
            flow.check_grid(bad)
    with pytest.raises(ValueError, match="three-dimensional"):
        flow.check_grid((32, 32))
    flow.check_storage_grid((16, 8), (32, 49, 32))
    with pytest.raises(ValueError, match="stored x–z grid must be between 2 and the solver's"):
        flow.check_storage_grid((64, 8), (32, 49, 32))
    rules = flow.grid_rules()
    assert rules["default"] == [32, 49, 32] and rules["min"] == [4, 4, 4]
    assert rules["max"] == [512, 1024, 512] and "nx and nz must be 4–512" in rules["rule"]


def test_channel_initial_conditions_and_solver_configuration():
    flow = CHANNEL3D
    flow.check_initial_condition(None)
    flow.check_initial_condition("laminar")
    with pytest.raises(ValueError, match="channel3d offers 'turbulent' \\(Reichardt profile\\)"):
        flow.check_initial_condition("grf")
    assert "Poiseuille" in flow.initial_condition_description("laminar")
    config = flow.config()
    assert (config.nx, config.ny, config.nz, config.re_tau) == (32, 49, 32, 180.0)
    assert (config.drive, config.les) == ("pressure", None)
    config = flow.config((8, 12, 8), re_tau=395, drive="flow_rate", closure="wale")
    assert (config.nx, config.ny, config.nz, config.re_tau) == (8, 12, 8, 395)
    assert (config.drive, config.les) == ("flow_rate", "wale")
    assert flow.config(closure="none").les is None
    solver = flow.make_solver((8, 12, 8), dtype=torch.float64)
    assert isinstance(solver, ChannelSolver) and solver.config.dtype == torch.float64
    u = solver.initial_condition(1, seed=0, profile=flow.initial_conditions[0])
    assert u.shape[:2] == (1, 3) and torch.isfinite(u).all()


def test_2d_flows_answer_the_protocol_without_changing_their_api():
    flow = get_flow("ns2d-forced")
    assert (flow.dims, flow.geometry, flow.axes) == (2, "periodic", ("y", "x"))
    assert flow.lengths == (1.0, 1.0) and flow.default_grid == (64, 64)
    assert flow.parameters()["allowed_nu"] == [1e-3, 1e-4, 1e-5]
    assert flow.grid_rules()["min"] == [16, 16] and flow.grid_rules()["square"] is True
    flow.check_initial_condition("mcwilliams")
    with pytest.raises(ValueError, match="ns2d-forced offers grf, mcwilliams, filtered; got 'x'"):
        flow.check_initial_condition("x")
    # A variant is still a Flow with the same protocol answers.
    variant = flow.variant(1e-4)
    assert variant.dims == 2 and variant.parameters()["nu"] == 1e-4


class _Incomplete:
    name = "half-a-flow"
    description = "Not a flow."
    dims = 2


def test_register_flow_refuses_what_is_not_a_flow_and_a_taken_name():
    with pytest.raises(TypeError, match="half-a-flow is not a flow: it lacks fields"):
        register_flow(_Incomplete())
    with pytest.raises(ValueError, match="already registered"):
        register_flow(CHANNEL3D)
    other = ChannelFlow(name="channel3d-test", re_tau=395.0)
    try:
        assert register_flow(other) is other
        assert get_flow("channel3d-test").re_tau == 395.0
        assert [f.name for f in flows_of(geometry="channel")] == ["channel3d", "channel3d-test"]
    finally:
        unregister_flow("channel3d-test")
    with pytest.raises(UnknownFlowError):
        get_flow("channel3d-test")
    with pytest.raises(ValueError, match="ny \\(cells\\)"):
        ChannelFlow(name="bad", default_grid=(2, 2, 2))
