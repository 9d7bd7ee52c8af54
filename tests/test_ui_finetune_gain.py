"""The Models page's card for a fine-tuned model (app/ui/finetune_gain.py): its base linked,
the gain in plain words and the before/after table, built from a report that
models/finetune_report.py made of maps with known errors (tests/test_models_finetune_report.py:
on trajectories decaying ×0.9 per step, ×0.7 scores |0.7 − 0.9|/0.9 = 0.222 one step ahead,
×0.85 scores 0.0556, 75 % lower). No browser: the card is a pure function."""

from __future__ import annotations

from dash import html

from app.ui.finetune_gain import finetune_card, gain_text, headline, percent_change, report_rows
from app.ui.pages import models as models_page
from models.finetune_report import finetune_report
from tests.test_models_finetune_report import Scale, decaying

BASE = {"id": "base1", "name": "FNO on forced"}


def _report(before=0.7, after=0.85) -> dict:
    data = decaying([0.9, 0.9], 12)
    report = finetune_report(Scale(before), Scale(after), data, [0, 1], interval=0.5).to_dict()
    return report | {"base": BASE, "loss": "h-1"}


def _find(component, predicate) -> list:
    found = [component] if predicate(component) else []
    children = getattr(component, "children", None)
    if isinstance(children, list | tuple):
        for child in children:
            found += _find(child, predicate)
    elif children is not None and not isinstance(children, str | int | float):
        found += _find(children, predicate)
    return found


def test_the_gain_is_stated_plainly():
    assert gain_text("rollout L2 at t=10", 0.31, 0.12) == "rollout L2 at t=10: 0.31 → 0.12 (−61 %)"
    assert gain_text("one-step L2", 0.1, 0.125) == "one-step L2: 0.1 → 0.125 (+25 %)"
    assert gain_text("rollout L2 at t=5", None, 0.2) == "rollout L2 at t=5: — → 0.2"
    assert percent_change(0.0, 0.1) == ""

    report = _report()
    one_step, rollout = headline(report)
    assert one_step == "one-step L2: 0.222 → 0.0556 (−75 %)"
    # The longest horizon, 11 steps of 0.5: |0.7¹¹ − 0.9¹¹|/0.9¹¹ = 0.937 → 0.467 (−50 %).
    assert rollout == "rollout L2 at t=5.5: 0.937 → 0.467 (−50 %)"


def test_the_card_links_the_base_and_tables_every_measure():
    report = _report()
    card = finetune_card(report)
    links = _find(card, lambda c: isinstance(c, html.A))
    assert [(a.children, a.href) for a in links] == [("FNO on forced", "#model-row-base1")]
    text = str(card)
    assert "better than its base" in text and "tag-good" in text
    assert "on 2 held-out trajectories of the fine-tune (loss h-1)" in text

    rows = report_rows(report)
    assert [r[0] for r in rows] == [
        "one-step L2",
        "one-step H⁻¹",
        *(f"rollout L2 at t={t:g}" for t in (0.5, 1.0, 2.5, 5.0, 5.5)),
    ]
    # Persistence beside them: |1 − 0.9|/0.9 = 0.111 one step ahead.
    assert [round(x, 4) for x in rows[0][1:]] == [0.2222, 0.0556, 0.1111]
    table_rows = _find(card, lambda c: isinstance(c, html.Tr))
    assert len(table_rows) == 1 + len(rows)  # the header and one row per measure
    cells = [c.children for c in table_rows[1].children]
    assert cells == ["one-step L2", "0.222", "0.0556", "−75 %", "0.111"]

    worse = finetune_card(_report(before=0.85, after=0.7))
    assert "no clear gain over its base" in str(worse) and "+300 %" in str(worse)


def test_a_rollout_stopped_by_the_guard_and_a_report_without_held_out_data():
    steady = decaying([1.0], 8)
    report = finetune_report(Scale(4.0), Scale(1.0), steady, [0]).to_dict() | {"base": BASE}
    assert report_rows(report)[2][1] is None  # the base's rollout stopped at step 1
    lines = headline(report)
    assert len(lines) == 1 and lines[0].startswith("one-step L2: 3 → ")
    assert "—" in str(finetune_card(report))

    refused = finetune_card({"base": BASE, "error": "nothing held out (1 trajectory(ies))"})
    assert "No before/after report: nothing held out" in str(refused)


def test_the_models_table_puts_the_card_under_the_fine_tuned_row():
    def model(model_id, created, metrics):
        return {
            "id": model_id,
            "name": model_id,
            "arch": "fno2d",
            "flow": "ns2d-forced",
            "parameter_count": 10,
            "val_rel_l2": 0.1,
            "persistence_rel_l2": 0.2,
            "created_at": created,
            "metrics": metrics,
        }

    refine = {"iterations": 8, "loss_before": 0.104, "loss_after": 0.0305}
    tuned = model("tuned", "2025-01-02T00:00:00", {"finetune_report": _report(), "refine": refine})
    base = model("base1", "2025-01-01T00:00:00", {})
    table = models_page.models_table([base, tuned], "created", "desc")
    rows = table.children[1].children
    assert [r.id for r in rows] == ["model-row-tuned", "model-finetune-tuned", "model-row-base1"]
    assert rows[1].children.colSpan == len(models_page.COLUMNS)
    assert "refined by 8 L-BFGS iterations, training H⁻¹: 0.104 → 0.0305 (−71 %)" in str(rows[1])

    alone = models_page.models_table([tuned], "created", "desc")
    card = str(alone.children[1].children[1])
    assert "FNO on forced (deleted)" in card and "#model-row-base1" not in card
