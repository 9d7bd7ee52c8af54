"""The Train page's curves for a physics-informed run: the PDE residual (training and
validation, with persistence's residual of 1) beside the data error, at the same x as the
loss; a data-only run's figure is unchanged; the run summary names the residual."""

from __future__ import annotations

from app.ui import training_figures
from app.ui.pages import train as train_page

TRAIN = [
    {
        "epoch": 1,
        "step": 2,
        "total_steps": 8,
        "train_loss": 0.9,
        "data_loss": 0.05,
        "pde_loss": 0.9,
        "lr": 1e-3,
    },
    {
        "epoch": 2,
        "step": 4,
        "total_steps": 8,
        "train_loss": 0.4,
        "data_loss": 0.02,
        "pde_loss": 0.4,
        "lr": 1e-3,
    },
]
EPOCHS = [
    {"epoch": 1, "val_rel_l2": 0.04, "persistence_rel_l2": 0.05, "val_pde_residual": 0.8},
    {"epoch": 2, "val_rel_l2": 0.02, "persistence_rel_l2": 0.05, "val_pde_residual": 0.3},
]


def traces(fig) -> dict:
    return {t.name: t for t in fig.data}


def test_the_residual_is_drawn_beside_the_data_error():
    fig = training_figures.training_figure(TRAIN, EPOCHS, epochs=4, loss="rel_l2")
    by_name = traces(fig)
    assert list(by_name) == [
        "training objective (weighted sum)",
        "validation rel. L2",
        "persistence baseline",
        "training data loss",
        "training PDE residual",
        "validation PDE residual",
        "persistence residual",
    ]
    # Train events sit at their fraction of the run (step/total · epochs), as the loss does.
    assert list(by_name["training PDE residual"].x) == [1.0, 2.0]
    assert list(by_name["training PDE residual"].y) == [0.9, 0.4]
    assert list(by_name["training data loss"].y) == [0.05, 0.02]
    assert list(by_name["validation PDE residual"].x) == [1, 2]
    assert list(by_name["validation PDE residual"].y) == [0.8, 0.3]
    assert list(by_name["persistence residual"].y) == [1.0, 1.0]
    assert list(by_name["validation rel. L2"].y) == [0.04, 0.02]
    assert fig.layout.yaxis.type == "log" and "PDE residual" in fig.layout.yaxis.title.text


def test_a_data_only_run_has_no_residual_curves():
    plain_train = [
        {k: v for k, v in e.items() if k not in ("data_loss", "pde_loss")} for e in TRAIN
    ]
    plain_epochs = [{k: v for k, v in e.items() if k != "val_pde_residual"} for e in EPOCHS]
    fig = training_figures.training_figure(plain_train, plain_epochs, epochs=4, loss="rel_l2")
    assert [t.name for t in fig.data] == [
        "training loss (relative L2)",
        "validation rel. L2",
        "persistence baseline",
    ]
    assert "residual" not in (fig.layout.yaxis.title.text or "")


def test_a_residual_only_after_a_resume_keeps_the_latest_pass():
    # A redelivered job reports step 2 again: the repeated step replaces the earlier one.
    again = {**TRAIN[0], "pde_loss": 0.7}
    fig = training_figures.training_figure([*TRAIN, again], EPOCHS[:1], epochs=4)
    residual = traces(fig)["training PDE residual"]
    assert list(residual.y) == [0.7]


def test_the_summary_names_the_validation_residual():
    job = {"id": "j1", "params": {"arch": "fno2d"}, "result": {}, "status": "running"}
    text = str(train_page.summary(job, EPOCHS[-1], []))
    assert "Validation PDE residual" in text and "0.3" in text
    assert "Validation PDE residual" not in str(
        train_page.summary(job, EPOCHS[-1] | {"val_pde_residual": None}, [])
    )


def test_the_datas_own_residual_is_drawn_and_a_large_one_is_called_out():
    floor = [e | {"data_pde_residual": 0.05} for e in EPOCHS]
    line = traces(training_figures.training_figure(TRAIN, floor, epochs=4))[
        "the data's own residual"
    ]
    assert list(line.x) == [1, 2] and list(line.y) == [0.05, 0.05]
    job = {"id": "j1", "params": {"arch": "fno2d"}, "result": {}, "status": "running"}
    small = str(train_page.summary(job, floor[-1], []))
    assert "The data's own PDE residual" in small and "too far apart" not in small
    # Frames far apart in time: the data fail the discrete equations themselves.
    large = str(train_page.summary(job, EPOCHS[-1] | {"data_pde_residual": 0.6}, []))
    assert "score 0.6 against the equations" in large and "smaller interval" in large
