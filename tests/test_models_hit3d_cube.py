"""FNO3d and IFNO3d on hit3d's periodic cube: with ``pad_y = 0`` (no wall padding) and no
coordinate channels a 16³ velocity window goes through both, their grid rule and the train
job's check accept a cube, and they commute with periodic shifts along every axis (what a
model of homogeneous turbulence must do; the channel's wall padding breaks it along y)."""

from __future__ import annotations

import pytest
import torch

from app.jobkinds.base import InvalidParams
from app.jobkinds.checks import check_model_config
from models.registry import build_model
from physics.hit3d.flow import HIT3D
from tests.helpers import randomise

CUBE = {"pad_y": 0, "add_grid": False}
SMALL = {
    "fno3d": {"width": 4, "modes_x": 4, "modes_y": 4, "modes_z": 4, "n_layers": 2, **CUBE},
    "ifno3d": {"width": 4, "modes_x": 4, "modes_y": 4, "modes_z": 4, "n_iterations": 2, **CUBE},
}
N = 16


def window() -> torch.Tensor:
    """One hit3d initial field as a model window (1, 1, 3, 16, 16, 16)."""
    return HIT3D.make_initial_condition("random", N, seed=3)[:, None]


@pytest.mark.parametrize("arch", sorted(SMALL))
def test_a_hit3d_window_goes_through_and_shifts_commute(arch):
    torch.manual_seed(0)
    model = build_model(arch, SMALL[arch])
    randomise(model)
    model.eval()
    x = window()
    HIT3D.check_grid(tuple(x.shape[-3:]))
    model.config.check_grid((N, N, N))
    with torch.no_grad():
        y = model(x)
        assert y.shape == (1, 1, 3, N, N, N) and torch.isfinite(y).all()
        assert (y - x).abs().max() > 1e-3  # the randomised model is not persistence
        for dim in (-3, -2, -1):
            shifted = model(torch.roll(x, 5, dims=dim))
            torch.testing.assert_close(shifted, torch.roll(y, 5, dims=dim), atol=1e-5, rtol=1e-5)
        # The channel's wall padding (zeros appended to y) breaks the symmetry along y.
        padded = build_model(arch, {**SMALL[arch], "pad_y": 4})
        padded.load_state_dict(model.state_dict())
        padded.eval()
        y_padded = padded(x)
        error = (padded(torch.roll(x, 5, dims=-2)) - torch.roll(y_padded, 5, dims=-2)).abs()
        assert error.max() > 1e-3


@pytest.mark.parametrize("arch", sorted(SMALL))
def test_the_train_check_accepts_a_hit3d_dataset_shape(arch):
    shape = [2, 3, N, N, N, 3]  # (trajectory, time, x, y, z, component)
    assert (
        check_model_config(arch, SMALL[arch], shape)
        == build_model(arch, SMALL[arch]).config.parameter_count()
    )
    with pytest.raises(InvalidParams, match="modes_x = 9: the x axis needs at least"):
        check_model_config(arch, {**SMALL[arch], "modes_x": 9}, shape)
