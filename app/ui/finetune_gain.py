"""What a fine-tune gained, as the Models page shows it under a fine-tuned model's row: its
base model (linked to the base's row), the gain in plain words ("rollout L2 at t=2:
0.548 → 0.264 (−52 %)") and the before/after table of ``models.finetune_report`` (one-step
relative L² and H⁻¹, rollout relative L² at each horizon, persistence beside them). Pure
functions of a model's ``metrics.finetune_report``, so tests call them without a browser."""

from __future__ import annotations

import math
from typing import Any

from dash import html

from app.ui.components import fmt_number


def percent_change(before: float | None, after: float | None) -> str:
    """``(−61 %)`` for 0.31 → 0.12; empty when it cannot be said (unknown, or from zero)."""
    if before is None or after is None or not math.isfinite(before) or before == 0:
        return ""
    change = 100 * (after - before) / before
    sign = "−" if change < 0 else "+"
    return f"({sign}{abs(change):.0f} %)"


def gain_text(label: str, before: float | None, after: float | None) -> str:
    """``"rollout L2 at t=10: 0.31 → 0.12 (−61 %)"``; "—" stands for an unknown number (a
    rollout a divergence guard stopped before that horizon)."""
    change = percent_change(before, after)
    text = f"{label}: {fmt_number(before)} → {fmt_number(after)}"
    return f"{text} {change}" if change else text


def _horizon_labels(report: dict[str, Any]) -> list[str]:
    times = report.get("t")
    if times:
        return [f"t={t:g}" for t in times]
    return [f"{h} step{'s' if h != 1 else ''}" for h in report.get("horizons") or []]


def _last_common(before: list[Any], after: list[Any]) -> int | None:
    both = [i for i, (b, a) in enumerate(zip(before, after, strict=False)) if None not in (b, a)]
    return both[-1] if both else None


def headline(report: dict[str, Any]) -> list[str]:
    """The gain in a sentence or two: one-step relative L² and the rollout's relative L² at
    the longest horizon both models reached."""
    before, after = report["before"], report["after"]
    lines = [gain_text("one-step L2", before["one_step_rel_l2"], after["one_step_rel_l2"])]
    i = _last_common(before["rollout_rel_l2"], after["rollout_rel_l2"])
    if i is not None:
        label = f"rollout L2 at {_horizon_labels(report)[i]}"
        lines.append(gain_text(label, before["rollout_rel_l2"][i], after["rollout_rel_l2"][i]))
    return lines


def report_rows(report: dict[str, Any]) -> list[tuple[str, Any, Any, Any]]:
    """(measure, before, after, persistence) for every row of the table."""
    before, after, still = report["before"], report["after"], report["persistence"]
    rows = [
        (f"one-step {name}", before[key], after[key], still[key])
        for name, key in (("L2", "one_step_rel_l2"), ("H⁻¹", "one_step_rel_h_minus1"))
    ]
    for i, label in enumerate(_horizon_labels(report)):
        rows.append(
            (
                f"rollout L2 at {label}",
                before["rollout_rel_l2"][i],
                after["rollout_rel_l2"][i],
                still["rollout_rel_l2"][i],
            )
        )
    return rows


def report_table(report: dict[str, Any]) -> html.Table:
    """The before/after table: one row per measure, the change in percent, persistence."""
    header = html.Tr(
        [html.Th(h) for h in ("relative error", "before (base)", "after", "change", "persistence")]
    )
    body = []
    for label, before, after, still in report_rows(report):
        change = percent_change(before, after).strip("()")
        better = before is not None and after is not None and after < before
        body.append(
            html.Tr(
                [
                    html.Td(label),
                    html.Td(fmt_number(before), className="num"),
                    html.Td(fmt_number(after), className="num"),
                    html.Td(
                        change or "—",
                        className="num " + ("gain-better" if better else "gain-worse"),
                    ),
                    html.Td(fmt_number(still), className="num muted"),
                ]
            )
        )
    return html.Table([html.Thead(header), html.Tbody(body)], className="finetune-report-table")


def _base_link(base: dict[str, Any], present: bool) -> Any:
    name = base.get("name") or base.get("id") or "its base"
    if not present:
        return html.Span(f"{name} (deleted)", className="muted")
    return html.A(name, href=f"#model-row-{base['id']}", className="finetune-base-link")


def refine_text(refine: dict[str, Any]) -> str:
    """The output-layer refinement (``models.refine``) in a line."""
    return gain_text(
        f"refined by {refine['iterations']} L-BFGS iterations, training H⁻¹",
        refine.get("loss_before"),
        refine.get("loss_after"),
    )


def finetune_card(
    report: dict[str, Any], base_present: bool = True, refine: dict[str, Any] | None = None
) -> html.Div:
    """The card under a fine-tuned model's row: its base (a link to the base's row, or the
    name and "deleted"), the gain stated plainly and the table, and the output layer's
    refinement when there was one; or, when the job could not report (nothing held out),
    the reason."""
    base = report.get("base") or {}
    title = [html.Strong("Fine-tuned from "), _base_link(base, base_present)]
    if report.get("error"):
        return html.Div(
            [html.Div(title), html.Small(f"No before/after report: {report['error']}")],
            className="finetune-card muted",
        )
    improved = report.get("improved")
    verdict = html.Span(
        "better than its base" if improved else "no clear gain over its base",
        className="tag tag-good" if improved else "tag tag-bad",
    )
    n = len(report.get("trajectories") or [])
    scope = (
        f"on {n} held-out trajector{'y' if n == 1 else 'ies'} of the fine-tune "
        f"(loss {report.get('loss', '?')})"
    )
    lines = headline(report) + ([refine_text(refine)] if refine else [])
    parts: list[Any] = [
        html.Div([*title, " ", verdict]),
        html.Ul([html.Li(line) for line in lines], className="finetune-gain"),
        report_table(report),
        html.Small(scope, className="muted"),
    ]
    if report.get("base_trained_on"):
        seen = ", ".join(str(i) for i in report["base_trained_on"])
        parts += [
            html.Br(),
            html.Small(
                f"The base trained on trajectory(ies) {seen} of these: its 'before' is not "
                "held-out for them.",
                className="muted",
            ),
        ]
    return html.Div(parts, className="finetune-card")
