"""Data-parallel training: two gloo processes on the CPU reach the same weights and loss as
one process on the same global batch.

Each rank takes every other sample of each global batch; DDP averages the gradients and the
loop weights each rank's loss by its share, so the update is that of the global batch mean.
Floating-point sums are taken in a different order, hence a tolerance, not equality.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from models import distributed
from models.registry import build_model
from models.training import TrainConfig, train
from tests.learning import advect_diffuse, smooth_fields

UNET = {"width": 4, "levels": 1, "groups": 2}
# Batch 6 over 2 ranks is 3 + 3; the last batch of an epoch (40 windows % 6 = 4) splits 2 + 2.
CONFIG = TrainConfig(epochs=2, batch_size=6, lr=3e-3, events_every=1)


# A uniform drift per step: advection–diffusion alone keeps each field's mean, so the
# residual's mean would be zero and the output bias's gradient pure round-off, which Adam
# (dividing by √v) turns into ±lr steps that differ between summation orders.
DRIFT = 0.05


def data() -> torch.Tensor:
    trajectories = advect_diffuse(smooth_fields(6, 1, (8, 8), seed=4), steps=8)
    steps = torch.arange(trajectories.shape[1], dtype=trajectories.dtype)
    return trajectories + DRIFT * steps[None, :, None, None, None]


def run(out: Path) -> dict:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = build_model("unet2d", UNET)
    events: list[dict] = []
    result = train(model, data(), CONFIG, on_event=events.append)
    rank = distributed.current()
    save_file(
        {k: v.contiguous() for k, v in result.model.state_dict().items()},
        out / f"rank{rank.rank}.safetensors",
    )
    summary = {
        "final_train_loss": result.history[-1]["train_loss"],
        "val": result.val_rel_l2,
        "events": len(events),
    }
    (out / f"rank{rank.rank}.json").write_text(json.dumps(summary))
    return summary


def rank_main(rank: int, world_size: int, payload: dict) -> None:
    run(Path(payload["out"]))


def test_two_gloo_processes_match_one_process(tmp_path):
    single_dir = tmp_path / "single"
    single_dir.mkdir()
    single = run(single_dir)

    ddp_dir = tmp_path / "ddp"
    ddp_dir.mkdir()
    distributed.launch(
        "tests.test_models_distributed:rank_main", 2, {"out": str(ddp_dir)}, backend="gloo"
    )

    ranks = [json.loads((ddp_dir / f"rank{r}.json").read_text()) for r in (0, 1)]
    # Only rank 0 reports events; both ranks see the same averaged loss and weights.
    assert ranks[0]["events"] == single["events"] > 0
    assert ranks[1]["events"] == 0
    for summary in ranks:
        assert summary["final_train_loss"] == pytest.approx(single["final_train_loss"], rel=1e-4)
        assert summary["val"] == pytest.approx(single["val"], rel=1e-4)

    reference = load_file(single_dir / "rank0.safetensors")
    for r in (0, 1):
        weights = load_file(ddp_dir / f"rank{r}.safetensors")
        for name, value in reference.items():
            # No gradient is round-off alone (see DRIFT), so the weights agree to about
            # 1e-7 (measured); the tolerance leaves a factor of ten.
            torch.testing.assert_close(weights[name], value, rtol=1e-5, atol=1e-6, msg=name)
