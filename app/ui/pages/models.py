"""``/models``: every trained model with its architecture, size, training data and how it
compares with the persistence baseline on held-out data; each can be rolled out in one
click. The column headers sort the table through the address (``/models?sort=parameters&
order=desc``), so a sorted view can be bookmarked; the rows refresh every few seconds."""

from __future__ import annotations

import asyncio
import math
from typing import Any

from dash import Input, Output, State, callback, dcc, html

from app.services import catalog
from app.ui import manage
from app.ui.components import card, data_table, fmt_count, fmt_number, fmt_time, page
from app.ui.context import get_state
from app.ui.finetune_gain import finetune_card
from models.channel_skill import headline
from models.rollout_skill import headline as rollout_headline

REFRESH_MS = 5000

# (sort key, header); a column without a key does not sort. A first click on a column
# sorts it ascending unless FIRST_ORDER says otherwise.
COLUMNS: list[tuple[str | None, str]] = [
    ("name", "Name"),
    ("arch", "Architecture"),
    ("parameters", "Parameters"),
    ("flow", "Flow · training data"),
    ("val", "Validation rel. L2"),
    ("skill", "vs persistence"),
    ("rollout", "Rollout skill"),
    ("horizon", "Long-horizon statistics"),
    ("created", "Created"),
    (None, ""),
]
FIRST_ORDER = {"parameters": "desc", "skill": "desc", "created": "desc"}
DEFAULT_SORT = ("created", "desc")


def layout(sort: str | None = None, order: str | None = None, **_query: Any) -> html.Main:
    key, direction = normalise_sort(sort, order)
    return page(
        "Models",
        "Trained neural operators. Validation error is the one-step relative L2 on held-out "
        "trajectories; persistence (the next frame equals the last one) is the baseline to "
        "beat. 2D models are also rolled out from a held-out trajectory's first frame: "
        "their relative L2 at several horizons against persistence's, and the step a "
        "divergence guard (energy over 10× the start's, or NaN) would stop them. Channel "
        "models also get a long rollout (ten times their training window) "
        "from a held-out frame: the errors of its mean-velocity (U) and u′rms profiles "
        "against the training data's statistics, and the step at which a guard stopped it. "
        "A fine-tuned model shows, under its row, its base's errors and its own on the "
        "trajectories the fine-tune held out, beside persistence's.",
        dcc.Store(id="models-sort", data={"sort": key, "order": direction}),
        card(
            None,
            html.Div(id="models-table", className="table-wrap"),
            dcc.Interval(id="models-refresh", interval=REFRESH_MS),
        ),
        manage.dialog(),  # Edit, Lineage and Delete of each row (app.ui.manage)
    )


def normalise_sort(sort: str | None, order: str | None) -> tuple[str, str]:
    keys = {k for k, _ in COLUMNS if k}
    if sort not in keys:
        return DEFAULT_SORT
    return sort, order if order in ("asc", "desc") else FIRST_ORDER.get(sort, "asc")


def skill(model: dict[str, Any]) -> float | None:
    """How many times smaller the validation error is than persistence's (None: unknown)."""
    val, base = model.get("val_rel_l2"), model.get("persistence_rel_l2")
    if val is None or not base:
        return None
    return base / val if val else math.inf


def _sort_value(model: dict[str, Any], key: str) -> Any:
    return {
        "name": (model.get("name") or "").lower(),
        "arch": (model.get("label") or model.get("arch") or "").lower(),
        "parameters": model.get("parameter_count"),
        "flow": ((model.get("flow") or ""), (model.get("dataset_name") or "").lower()),
        "val": model.get("val_rel_l2"),
        "skill": skill(model),
        "rollout": rollout_headline((model.get("metrics") or {}).get("rollout_skill")),
        "horizon": headline((model.get("metrics") or {}).get("long_horizon")),
        "created": model.get("created_at") or "",
    }[key]


def sort_models(models: list[dict[str, Any]], key: str, order: str) -> list[dict[str, Any]]:
    """Sorted by ``key``; models without a value for it come last in either order."""
    known = [m for m in models if _sort_value(m, key) is not None]
    unknown = [m for m in models if _sort_value(m, key) is None]
    known.sort(key=lambda m: _sort_value(m, key), reverse=order == "desc")
    return known + unknown


def sort_href(key: str, current: str, order: str) -> str:
    """Where a header links: the same column flips its order, another starts at its own."""
    if key == current:
        following = "asc" if order == "desc" else "desc"
    else:
        following = FIRST_ORDER.get(key, "asc")
    return f"/models?sort={key}&order={following}"


def header_cells(current: str, order: str) -> list[Any]:
    """The headers: a sortable column's is a link that sorts by it (an arrow on the current)."""
    cells: list[Any] = []
    for key, title in COLUMNS:
        if key is None:
            cells.append(title)
            continue
        arrow = (" ▲" if order == "asc" else " ▼") if key == current else ""
        cells.append(
            dcc.Link(
                f"{title}{arrow}",
                href=sort_href(key, current, order),
                className="sort-link" + (" sort-active" if arrow else ""),
                id=f"models-sort-{key}",
            )
        )
    return cells


def _config_text(config: dict[str, Any], limit: int = 4) -> str:
    """The config's sizes in short: numbers and words, without the channels and a window
    of one frame (what every 2D model has)."""
    trivial = {"channels": None, "in_channels": None, "history": 1, "out_steps": 1}
    items = [
        f"{k} {v}"
        for k, v in config.items()
        if isinstance(v, int | float | str)
        and not isinstance(v, bool)
        and not (k in trivial and trivial[k] in (None, v))
    ]
    text = ", ".join(items[:limit])
    return text + ("…" if len(items) > limit else "")


# Within this fraction of persistence's error a model is "on par" with it: a badge saying
# "1.0× better" for 0.184 against 0.186 claims more than the numbers hold.
ON_PAR = 0.05


def skill_text(ratio: float) -> tuple[str, str]:
    """The badge's words and its class for persistence error / model error = ``ratio``."""
    if abs(ratio - 1) < ON_PAR:
        return "on par with persistence", "tag"
    if ratio > 1:
        return (f"{ratio:.1f}× better" if ratio < 10 else f"{ratio:.0f}× better"), "tag tag-good"
    worse = 1 / ratio if ratio > 0 else math.inf
    return (f"{worse:.1f}× worse" if worse < 10 else f"{worse:.0f}× worse"), "tag tag-bad"


def _skill_tag(model: dict[str, Any]) -> Any:
    ratio = skill(model)
    if ratio is None:
        return None
    text, kind = skill_text(ratio)
    return html.Span(text, className=kind)


def _percent(value: float | None) -> str:
    return "—" if value is None or not math.isfinite(value) else f"{100 * value:.3g} %"


def long_horizon_cell(m: dict[str, Any]) -> list[Any]:
    """A channel model's long-horizon skill (``models.channel_skill``): the relative errors
    of its U and u′rms profiles over the rollout against the data's statistics, and whether
    a guard stopped it and where. "—" for models that have none (2D models)."""
    skill = (m.get("metrics") or {}).get("long_horizon")
    if not skill:
        return ["—"]
    if skill.get("error"):
        return [html.Small(skill["error"], className="muted")]
    errors = skill.get("errors") or {}
    steps = skill.get("steps")
    if skill.get("stopped_at"):
        fate = html.Span(
            f"stopped at step {skill['stopped_at']} of {steps}",
            className="tag tag-bad",
            title=skill.get("guard") or "",
        )
    else:
        fate = html.Span(f"stable over {steps} steps", className="tag tag-good")
    if not errors:
        return [fate]
    text = f"U {_percent(errors.get('u_mean'))} · u′ {_percent(errors.get('u_rms'))}"
    detail = (
        f"v′ {_percent(errors.get('v_rms'))} · w′ {_percent(errors.get('w_rms'))} · "
        f"−u′v′ {_percent(errors.get('uv'))}"
    )
    return [
        html.Span(text, className="long-horizon-errors"),
        html.Br(),
        fate,
        html.Br(),
        html.Small(detail, className="muted"),
    ]


def _t(value: float) -> str:
    return f"{value:g}"


def rollout_skill_cell(m: dict[str, Any], shown: int = 3) -> list[Any]:
    """A 2D model's rollout skill (``models.rollout_skill``): its relative L2 against
    persistence's at a few horizons (the first, one between, the last), whether it stays
    below persistence and until when, and whether the guard stopped it. "—" for models that
    have none (channel models, models trained before it was measured)."""
    skill = (m.get("metrics") or {}).get("rollout_skill")
    if not skill:
        return ["—"]
    if skill.get("error"):
        return [html.Small(skill["error"], className="muted")]
    horizons = skill.get("horizons") or []
    times = skill.get("t") or horizons
    errors, baseline = skill.get("rel_l2") or [], skill.get("persistence_rel_l2") or []
    cells: list[Any] = []
    if horizons:
        picks = sorted({0, len(horizons) // 2, len(horizons) - 1})[:shown]
        lines = [
            f"t {_t(times[i])}: {fmt_number(errors[i], 3)} vs {fmt_number(baseline[i], 3)}"
            for i in picks
        ]
        cells += [html.Span(" · ".join(lines), className="rollout-skill-errors"), html.Br()]
        worse = [i for i, (a, b) in enumerate(zip(errors, baseline, strict=False)) if a >= b]
        if worse:
            first = worse[0]
            cells.append(
                html.Span(
                    f"worse than persistence from t {_t(times[first])}",
                    className="tag tag-bad",
                )
            )
        else:
            cells.append(
                html.Span(f"beats persistence to t {_t(times[-1])}", className="tag tag-good")
            )
        cells.append(html.Br())
    if skill.get("stopped_at"):
        cells.append(
            html.Span(
                f"guard stops it at step {skill['stopped_at']}",
                className="tag tag-bad",
                title=skill.get("guard") or "",
            )
        )
    else:
        cells.append(html.Small(f"no blow-up in {skill.get('steps', 0)} steps", className="muted"))
    return cells


def _training_data(m: dict[str, Any]) -> list[Any]:
    grid = m.get("grid") or (f"{m['resolution']}²" if m.get("resolution") else "—")
    dt = f"Δt {m['interval']:g}" if m.get("interval") is not None else ""
    dataset = m.get("dataset_name") or (
        "deleted dataset" if m.get("dataset_id") else "no dataset recorded"
    )
    return [
        html.Span(m["flow"]),
        html.Br(),
        html.Small(" · ".join(p for p in (dataset, grid, dt) if p), className="muted"),
    ]


def model_row(m: dict[str, Any]) -> html.Tr:
    return html.Tr(
        [
            html.Td(
                [
                    html.Span(m["name"], className="strong model-name"),
                    html.Br(),
                    html.Code(m["id"], className="muted small"),
                ]
            ),
            html.Td(
                [
                    html.Span(m.get("label") or m["arch"], title=m["arch"]),
                    html.Br(),
                    html.Small(_config_text(m.get("config") or {}), className="muted"),
                ]
            ),
            html.Td(fmt_count(m["parameter_count"]), className="num model-parameters"),
            html.Td(_training_data(m)),
            html.Td(fmt_number(m["val_rel_l2"], 3), className="num"),
            html.Td(
                [
                    _skill_tag(m),
                    html.Br(),
                    html.Small(
                        f"persistence {fmt_number(m['persistence_rel_l2'], 3)}", className="muted"
                    ),
                ],
                className="num",
            ),
            html.Td(rollout_skill_cell(m), className="num model-rollout-skill"),
            html.Td(long_horizon_cell(m), className="num model-long-horizon"),
            html.Td(fmt_time(m["created_at"]), title=m["created_at"] or ""),
            html.Td(
                html.Div(
                    [
                        dcc.Link(
                            "Roll out →",
                            href=f"/rollout?model={m['id']}",
                            className="button button-small button-primary",
                        ),
                        *manage.item_actions("model", m["id"]),
                    ],
                    className="row-actions",
                )
            ),
        ],
        id=f"model-row-{m['id']}",
    )


def finetune_row(m: dict[str, Any], present: set[str]) -> html.Tr | None:
    """Under a fine-tuned model's row: what the fine-tune gained over its base
    (``app.ui.finetune_gain``); None for other models."""
    metrics = m.get("metrics") or {}
    report = metrics.get("finetune_report")
    if not report:
        return None
    base_id = (report.get("base") or {}).get("id")
    card = finetune_card(report, base_id in present, metrics.get("refine"))
    return html.Tr(
        html.Td(card, colSpan=len(COLUMNS)),
        id=f"model-finetune-{m['id']}",
        className="finetune-row",
    )


def models_table(models: list[dict[str, Any]], sort: str = "created", order: str = "desc"):
    key, order = normalise_sort(sort, order)
    present = {m["id"] for m in models}
    rows = [
        row
        for m in sort_models(models, key, order)
        for row in (model_row(m), finetune_row(m, present))
        if row is not None
    ]
    return data_table(
        header_cells(key, order),
        rows,
        empty="No models yet. Train one on the Train page.",
        className="models-table",
    )


@callback(
    Output("models-table", "children"),
    Input("models-refresh", "n_intervals"),
    State("models-sort", "data"),
)
async def refresh(_n: int | None, sort: dict[str, Any] | None):
    sort = sort or {}
    models = await asyncio.to_thread(catalog.models_overview, get_state())
    return models_table(models, sort.get("sort"), sort.get("order"))
