"""Spectral-Refiner's few-iteration refinement (models/refine.py). With the trunk frozen the
squared H⁻¹ objective is a convex quadratic in the output layer's parameters, and a teacher
that shares the student's trunk gives windows whose minimum is known exactly: zero, at the
teacher's output layer. L-BFGS must close in on it in a few full-batch iterations, never
go up, and touch nothing else."""

from __future__ import annotations

import copy
import itertools

import pytest
import torch

from models.losses import make_loss
from models.refine import RefinementStopped, full_batch, refine_output_layer
from models.registry import build_model
from tests.helpers import randomise

CONFIG = {
    "history": 2,
    "out_steps": 2,
    "width": 4,
    "modes": 3,
    "modes_t": 2,
    "n_layers": 1,
    "latent_steps": 4,
    "mlp_ratio": 1,
}
H_MINUS1 = make_loss("h-1", 1.0)


def teacher_and_student(seed: int = 1):
    teacher = build_model("sfno", CONFIG)
    randomise(teacher, seed)
    student = copy.deepcopy(teacher)
    with torch.no_grad():
        for p in student.output_layer.parameters():
            p.zero_()  # the student starts as persistence, on the teacher's trunk
    inputs = torch.randn(10, 2, 1, 16, 16, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        targets = teacher(inputs)
    return teacher, student, inputs, targets


def test_a_few_iterations_reach_the_known_minimum_and_only_the_output_layer_moves():
    teacher, student, inputs, targets = teacher_and_student()
    trunk = {k: v.clone() for k, v in student.state_dict().items() if "output_layer" not in k}
    seen = []
    result = refine_output_layer(student, inputs, targets, 20, on_iteration=seen.append)
    # The fine-tune's loss, the mean relative H⁻¹ error, from that of persistence (about 1)
    # to a twentieth of it; the quadratic J from ~1 to under a thousandth.
    assert result["loss_before"] > 0.9 and result["loss_after"] < 0.05
    assert result["objective_after"] < 1e-3 * result["objective_before"]
    with torch.no_grad():
        measured = H_MINUS1(student(inputs).flatten(0, 1), targets.flatten(0, 1))
    assert result["loss_after"] == pytest.approx(float(measured), rel=1e-4)
    assert result["iterations"] == 20 and result["windows"] == 10
    assert result["evaluations"] >= 20
    assert [e["iteration"] for e in seen] == list(range(1, 21))
    assert seen[0]["objective"] == pytest.approx(result["objective_before"], rel=1e-5)
    assert all(b["objective"] <= a["objective"] for a, b in itertools.pairwise(seen))
    for k, v in student.state_dict().items():
        if k in trunk:
            assert torch.equal(v, trunk[k]), k
    # At the minimum, the refined model answers like the teacher on windows it never saw.
    fresh = torch.randn(4, 2, 1, 16, 16, generator=torch.Generator().manual_seed(9))
    with torch.no_grad():
        fresh_error = H_MINUS1(student(fresh).flatten(0, 1), teacher(fresh).flatten(0, 1))
    assert float(fresh_error) < 0.1
    assert all(p.requires_grad for p in student.parameters())  # flags restored


def test_the_full_batch_is_the_same_in_any_chunks():
    _, one, inputs, targets = teacher_and_student(seed=2)
    chunked = copy.deepcopy(one)
    assert full_batch(one, inputs, targets, 1.0, 10, False) == pytest.approx(
        full_batch(one, inputs, targets, 1.0, 3, False), rel=1e-6
    )
    a = refine_output_layer(one, inputs, targets, 3, chunk_size=10)
    b = refine_output_layer(chunked, inputs, targets, 3, chunk_size=3)
    assert a["objective_after"] == pytest.approx(b["objective_after"], rel=1e-4)
    torch.testing.assert_close(
        one.output_layer.weight, chunked.output_layer.weight, rtol=1e-3, atol=1e-5
    )


def test_an_unreachable_target_still_only_goes_down():
    _, student, inputs, _ = teacher_and_student(seed=3)
    other = build_model("sfno", CONFIG)
    randomise(other, 7)  # another trunk: no output layer of the student's fits it exactly
    with torch.no_grad():
        targets = other(inputs)
    result = refine_output_layer(student, inputs, targets, 5)
    assert 0 < result["objective_after"] < result["objective_before"]


def test_models_without_an_output_layer_and_a_cancel():
    fno = build_model("fno2d", {"width": 2, "modes": 2, "n_layers": 1})
    x = torch.randn(2, 1, 1, 8, 8)
    with pytest.raises(ValueError, match="no output layer to refine"):
        refine_output_layer(fno, x, x, 2)
    _, student, inputs, targets = teacher_and_student()
    student.lift.weight.requires_grad_(False)
    before = student.output_layer.weight.detach().clone()
    calls = iter([False, True])
    with pytest.raises(RefinementStopped, match="after 1 iteration"):
        refine_output_layer(student, inputs, targets, 5, should_stop=lambda: next(calls))
    assert not torch.equal(student.output_layer.weight, before)  # the first one finished
    assert not student.lift.weight.requires_grad and student.lift.bias.requires_grad
    with pytest.raises(ValueError, match="as many target windows"):
        refine_output_layer(student, inputs, targets[:3], 1)
