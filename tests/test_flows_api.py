"""``GET /api/flows`` lists the registered flows as the registry describes them, the UI's
flow pickers read the same list, and a new flow is one definition plus a registry entry."""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, replace
from typing import Any, ClassVar

import numpy as np
import pytest
import torch

from app.services import flows as flow_service
from physics.flows import UnknownFlowError, get_flow, register_flow, unregister_flow

EXPECTED = {
    # name: (dims, fields, geometry)
    "ns2d-forced": (2, ["vorticity"], "periodic"),
    "kolmogorov2d": (2, ["vorticity"], "periodic"),
    "decaying2d": (2, ["vorticity"], "periodic"),
    "taylor-green2d": (2, ["vorticity"], "periodic"),
    "channel3d": (3, ["u", "v", "w"], "channel"),
    "hit3d": (3, ["u", "v", "w"], "periodic"),
}


def test_flows_endpoint_lists_every_flow_with_dims_fields_grid_and_parameters(client):
    response = client.get("/api/flows")
    assert response.status_code == 200, response.text
    listed = {f["name"]: f for f in response.json()}
    assert set(EXPECTED) <= set(listed)
    for name, (dims, fields, geometry) in EXPECTED.items():
        flow = listed[name]
        assert (flow["dims"], flow["fields"], flow["geometry"]) == (dims, fields, geometry)
        assert flow["description"] and flow["statistics"] and flow["panels"]
        assert len(flow["domain"]["axes"]) == dims == len(flow["grid"]["default"])
        assert flow["initial_conditions"] and all(
            ic["name"] and ic["description"] for ic in flow["initial_conditions"]
        )
    forced = listed["ns2d-forced"]
    assert forced["parameters"]["allowed_nu"] == [1e-3, 1e-4, 1e-5]
    assert forced["grid"]["min"] == [16, 16] and forced["grid"]["max"] == [1024, 1024]
    assert forced["domain"]["lengths"] == [1.0, 1.0]
    assert forced["snapshot"] == {
        "format": "vorticity2d",
        "file_types": [".npy", ".npz", ".h5", ".hdf5"],
    }
    assert listed["kolmogorov2d"]["domain"]["lengths"] == pytest.approx([2 * math.pi] * 2)
    channel = listed["channel3d"]
    assert channel["grid"]["default"] == [32, 49, 32]
    assert channel["grid"]["min"] == [4, 4, 4] and channel["grid"]["max"] == [512, 1024, 512]
    assert channel["parameters"]["re_tau"] == 180.0
    assert channel["parameters"]["closures"] == ["none", "smagorinsky", "wale", "dynamic"]
    assert channel["parameters"]["drives"] == ["pressure", "flow_rate"]
    assert [ic["name"] for ic in channel["initial_conditions"]] == ["turbulent", "laminar"]
    assert "channel_stats" in channel["panels"] and "spectrum" not in channel["panels"]
    assert "spectrum" in forced["panels"] and "channel_stats" not in forced["panels"]
    # The endpoint serves exactly what the pickers read.
    assert response.json() == flow_service.flow_catalog()


def test_one_flow_by_name_and_a_sentence_for_an_unknown_one(client):
    one = client.get("/api/flows/channel3d")
    assert one.status_code == 200 and one.json() == flow_service.flow_info("channel3d")
    missing = client.get("/api/flows/ns3d-imaginary")
    assert missing.status_code == 404
    detail = missing.json()["detail"]
    assert detail.startswith("There is no flow called 'ns3d-imaginary'; the flows are ")
    assert "channel3d" in detail and detail.endswith(".")
    paths = client.get("/openapi.json").json()["paths"]
    assert "/api/flows" in paths and "404" in paths["/api/flows/{name}"]["get"]["responses"]


def test_pickers_and_channel_questions_read_the_registry():
    uploads = [name for name, _ in flow_service.upload_flows()]
    # Registry order: the 2D flows, then the channel and hit3d (each has an upload reader).
    assert uploads == list(EXPECTED)
    generate = [f["name"] for f in flow_service.generate_form_flows()]
    assert generate == [n for n, (dims, _, _) in EXPECTED.items() if dims == 2]
    forced = flow_service.generate_form_flows()[0]
    assert set(forced) == {
        "name",
        "description",
        "nu",
        "allowed_nu",
        "initial_conditions",
        "ic_descriptions",
        "length",
    }
    assert forced["allowed_nu"] == [1e-3, 1e-4, 1e-5] and forced["length"] == 1.0
    assert forced["initial_conditions"] == ["grf", "mcwilliams", "filtered"]
    assert "FNO" in forced["ic_descriptions"]["grf"]
    assert flow_service.is_channel_flow("channel3d")
    assert not flow_service.is_channel_flow("ns2d-forced")
    assert not flow_service.is_channel_flow(None) and not flow_service.is_channel_flow("nope")
    assert flow_service.flow_dims("channel3d") == 3 and flow_service.flow_dims("nope") is None
    assert flow_service.upload_file_types("channel3d") == (".npz", ".h5", ".hdf5")
    assert flow_service.upload_file_types("hit3d") == (".npy", ".npz", ".h5", ".hdf5")
    assert flow_service.flow_length("kolmogorov2d") == pytest.approx(2 * math.pi)
    assert flow_service.flow_length("nope") == 1.0


# ---------------------------------------------------------------------------------------
# A new flow: one definition and one registry entry, nothing else.


def _sheared_forcing(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return -8 * torch.cos(8 * y).expand_as(x)


def sheared_flow():
    """A 2D vorticity flow: a Kolmogorov flow forced at wavenumber 8."""
    return replace(
        get_flow("kolmogorov2d"),
        name="kolmogorov2d-k8",
        description="Kolmogorov flow forced at wavenumber 8 on the periodic box [0, 2π]².",
        vorticity_forcing=_sheared_forcing,
        max_n=64,
    )


@dataclass(frozen=True)
class BoxFlow:
    """A 3D velocity flow in a periodic box (a stand-in for hit3d): only the protocol."""

    name: str = "box3d-test"
    description: str = "Velocity in a triply periodic box, for the registry test."
    lx: float = 2 * math.pi
    initial_conditions: tuple[str, ...] = ("random",)

    dims: ClassVar[int] = 3
    fields: ClassVar[tuple[str, ...]] = ("u", "v", "w")
    geometry: ClassVar[str] = "periodic"
    axes: ClassVar[tuple[str, ...]] = ("x", "y", "z")
    statistics: ClassVar[tuple[str, ...]] = ("kinetic_energy",)
    panels: ClassVar[tuple[str, ...]] = ("slices",)
    snapshot_format: ClassVar[str] = "velocity3d-periodic"  # no upload reader for it yet
    file_types: ClassVar[tuple[str, ...]] = (".h5",)

    @property
    def lengths(self) -> tuple[float, float, float]:
        return (self.lx, self.lx, self.lx)

    @property
    def default_grid(self) -> tuple[int, int, int]:
        return (16, 16, 16)

    def check_grid(self, shape: tuple[int, ...]) -> None:
        if len(set(shape[-3:])) != 1:
            raise ValueError(f"{self.name} needs a cubic grid; got {shape}.")

    def grid_rules(self) -> dict[str, Any]:
        return {"axes": list(self.axes), "default": [16, 16, 16], "rule": "a cubic grid"}

    def parameters(self) -> dict[str, Any]:
        return {"nu": 0.01}

    def check_initial_condition(self, kind: str | None) -> None:
        if kind not in (None, *self.initial_conditions):
            raise ValueError(f"{self.name} offers random; got {kind!r}.")

    def initial_condition_description(self, kind: str | None = None) -> str:
        return "random divergence-free velocity"

    def make_solver(self, *args: Any, **kwargs: Any) -> None:
        return None


@pytest.fixture
def new_flows():
    added = [register_flow(sheared_flow()), register_flow(BoxFlow())]
    yield added
    for flow in added:
        unregister_flow(flow.name)


def npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def test_a_new_flow_is_a_definition_plus_a_registry_entry(client, new_flows):
    sheared, box = new_flows
    assert get_flow("kolmogorov2d-k8") is sheared and get_flow("box3d-test") is box
    listed = {f["name"]: f for f in client.get("/api/flows").json()}
    assert listed["kolmogorov2d-k8"]["dims"] == 2
    assert listed["kolmogorov2d-k8"]["grid"]["max"] == [64, 64]
    assert listed["box3d-test"]["dims"] == 3 and listed["box3d-test"]["fields"] == ["u", "v", "w"]
    assert client.get("/api/flows/box3d-test").json()["grid"]["rule"] == "a cubic grid"
    # The upload picker offers the flows the upload can read; the generate form 2D flows.
    uploads = [name for name, _ in flow_service.upload_flows()]
    assert "kolmogorov2d-k8" in uploads and "box3d-test" not in uploads
    generate = [f["name"] for f in flow_service.generate_form_flows()]
    assert "kolmogorov2d-k8" in generate and "box3d-test" not in generate
    assert not flow_service.is_channel_flow("box3d-test")
    assert flow_service.flow_dims("box3d-test") == 3
    # An initial condition of the new 2D flow is accepted, on the grids it allows.
    w = np.random.default_rng(0).standard_normal((32, 32)).astype(np.float32)
    stored = client.post(
        "/api/initial-conditions",
        files={"file": ("w.npy", npy_bytes(w))},
        data={"flow": "kolmogorov2d-k8"},
    )
    assert stored.status_code == 201, stored.text
    assert stored.json()["flow"] == "kolmogorov2d-k8"
    refused = client.post(
        "/api/initial-conditions",
        files={"file": ("w.npy", npy_bytes(np.zeros((96, 96), dtype=np.float32)))},
        data={"flow": "kolmogorov2d-k8"},
    )
    assert refused.status_code == 422
    assert refused.json()["detail"] == (
        "kolmogorov2d-k8 needs a square grid with an even number of points per side between "
        "16 and 64; got 96×96."
    )


def test_a_removed_flow_is_gone_everywhere(client):
    register_flow(sheared_flow())
    unregister_flow("kolmogorov2d-k8")
    with pytest.raises(UnknownFlowError):
        get_flow("kolmogorov2d-k8")
    assert client.get("/api/flows/kolmogorov2d-k8").status_code == 404
    assert "kolmogorov2d-k8" not in [n for n, _ in flow_service.upload_flows()]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (
            {"initial_condition": "grf"},
            "params.initial_condition: channel3d offers 'turbulent' (Reichardt profile) or "
            "'laminar' (Poiseuille), each plus divergence-free perturbations; got 'grf'.",
        ),
        (
            {"channel_grid": [2, 12, 8]},
            "params.channel_grid: nx and nz must be 4–512 and ny (cells) 4–1024; got 2, 12, 8.",
        ),
        (
            {"channel_grid": [8, 12, 8], "output_grid": [16, 4]},
            "params.output_grid: the stored x–z grid must be between 2 and the solver's 8×8; "
            "got 16×4.",
        ),
        (
            {"output_grid": [1, 4]},
            "params.output_grid: the stored x–z grid must be between 2 and the solver's 32×32; "
            "got 1×4.",
        ),
    ],
)
def test_channel_generate_parameters_are_checked_against_the_flow(params, message):
    from app.channel_params import check_channel_generate

    with pytest.raises(ValueError) as info:
        check_channel_generate({"flow": "channel3d", **params})
    assert str(info.value) == message


def test_channel_generate_parameters_the_flow_accepts_and_channel_only_keys():
    from app.channel_params import channel_attrs, channel_config, check_not_channel_params
    from app.channel_params import check_channel_generate as check

    check({"flow": "channel3d"})
    check({"flow": "channel3d", "initial_condition": "laminar", "channel_grid": [8, 12, 8]})
    check({"flow": "channel3d", "channel_grid": [8, 12, 8], "output_grid": [4, 8]})
    check_not_channel_params({"flow": "ns2d-forced", "drive": "pressure", "closure": None})
    with pytest.raises(ValueError) as info:
        check_not_channel_params({"flow": "ns2d-forced", "closure": "wale"})
    assert str(info.value) == "params.closure: applies to the channel3d or hit3d flow only."
    with pytest.raises(ValueError) as info:
        check_not_channel_params({"flow": "ns2d-forced", "re_tau": 395})
    assert str(info.value) == "params.re_tau: applies to the channel3d flow only."
    with pytest.raises(ValueError, match="ns2d-forced is not a channel flow"):
        channel_config({"flow": "ns2d-forced"})
    config = channel_config({"flow": "channel3d", "closure": "none"})
    assert (config.nx, config.ny, config.nz, config.re_tau, config.les) == (32, 49, 32, 180, None)
    p = {"flow": "channel3d", "interval": 0.1, "warmup": 0.0, "seed": 1}
    attrs = channel_attrs(p, config)
    assert attrs["flow"] == "channel3d" and attrs["initial_condition"] == "turbulent"
    assert attrs["solver_grid"] == [32, 49, 32] and attrs["closure"] == "none"
