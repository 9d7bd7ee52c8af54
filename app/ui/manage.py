"""Rename, tags, notes, lineage and delete for any item a page lists (initial conditions,
datasets, models, runs): ``item_actions`` gives a row its buttons, ``dialog`` is the one
dialog a page holds for them, and the callback here serves every page.

The dialog opens on a button: "Edit" shows the name, tags (comma-separated) and notes;
"Lineage" shows where the item came from, what it made and where it was used, each a
link; "Delete" shows the same and what a delete takes with it, and is the confirmation:
its button names everything that goes ("Delete model and 2 runs"). What a delete would
take is computed again when it is confirmed; if it changed meanwhile nothing is deleted
and the new list is shown. The services check the user's rights (``auth.Forbidden``
becomes the dialog's message)."""

from __future__ import annotations

import asyncio
from typing import Any

from dash import ALL, Input, Output, State, callback, ctx, dcc, html, no_update
from dash.exceptions import PreventUpdate

from app.services import auth, lineage
from app.ui.components import alert
from app.ui.context import get_state

ACTION = "item-action"
ACTIONS = ("edit", "lineage", "delete")


def item_actions(kind: str, item_id: str, *, delete: bool = True) -> list[html.Button]:
    """The row's Edit, Lineage and (``delete``) Delete buttons."""
    labels = {"edit": "Edit", "lineage": "Lineage", "delete": "Delete"}
    return [
        html.Button(
            labels[action],
            id={"type": ACTION, "action": action, "kind": kind, "id": item_id},
            className="button button-small" + (" button-danger" if action == "delete" else ""),
            title=f"{labels[action]} this {lineage.LABELS[kind][0]}",
            n_clicks=0,
        )
        for action in ACTIONS
        if delete or action != "delete"
    ]


def dialog() -> html.Div:
    """The page's dialog (hidden until a row's button opens it)."""
    return html.Div(
        html.Div(
            [
                html.H2(id="item-dialog-title", className="dialog-title"),
                html.Div(
                    [
                        html.Label("Name", htmlFor="item-dialog-name", className="dialog-label"),
                        dcc.Input(id="item-dialog-name", type="text", className="input"),
                        html.Label("Tags", htmlFor="item-dialog-tags", className="dialog-label"),
                        dcc.Input(
                            id="item-dialog-tags",
                            type="text",
                            placeholder="comma-separated, e.g. baseline, re1000",
                            className="input",
                        ),
                        html.Label("Notes", htmlFor="item-dialog-notes", className="dialog-label"),
                        dcc.Textarea(id="item-dialog-notes", className="input dialog-notes"),
                    ],
                    id="item-dialog-edit",
                    className="dialog-edit hidden",
                ),
                html.Div(id="item-dialog-info", className="dialog-info"),
                html.Div(id="item-dialog-feedback"),
                html.Div(
                    [
                        html.Button(
                            "Save",
                            id="item-dialog-save",
                            className="button button-primary hidden",
                            n_clicks=0,
                        ),
                        html.Button(
                            "Delete",
                            id="item-dialog-delete",
                            className="button button-danger hidden",
                            n_clicks=0,
                        ),
                        html.Button(
                            "Close", id="item-dialog-close", className="button", n_clicks=0
                        ),
                    ],
                    className="row-actions dialog-actions",
                ),
                dcc.Store(id="item-dialog-target"),
            ],
            className="dialog",
            role="dialog",
        ),
        id="item-dialog",
        className="dialog-backdrop hidden",
    )


# --- lineage as links -------------------------------------------------------------------


def href(item: dict[str, Any]) -> str | None:
    """Where an item of a lineage opens."""
    kind, item_id = item["kind"], item["id"]
    if kind == "job":
        job_kind = item.get("job_kind")
        if job_kind in ("train", "finetune"):
            return f"/train?job={item_id}"
        if job_kind == "rollout":
            return f"/rollout/{item_id}"
        if job_kind == "compare":
            return f"/compare/{item_id}"
        return "/data"
    if kind == "rollout":
        return f"/{'compare' if item['name'].startswith('compare') else 'rollout'}/{item_id}"
    return {"dataset": f"/data?preview={item_id}", "model": "/models", "initial_condition": None}[
        kind
    ]


def item_link(item: dict[str, Any]) -> html.Li:
    label = lineage.LABELS.get(item["kind"], (item["kind"],))[0]
    if item["kind"] == "job":
        label = "run"
    target = href(item)
    name = dcc.Link(item["name"], href=target, className="link") if target else item["name"]
    status = f" · {item['status']}" if item.get("status") else ""
    return html.Li(
        [html.Span(f"{label} ", className="muted"), name, html.Small(status, className="muted")],
        className=f"lineage-item lineage-{item['kind']}",
        **{"data-id": item["id"]},
    )


def lineage_view(data: dict[str, Any]) -> html.Div:
    """Came from / made / used by, each a list of links ("—" when empty)."""
    sections = []
    for key, heading in (("came_from", "Came from"), ("made", "Made"), ("used_by", "Used by")):
        items = data.get(key) or []
        if key == "made" and not items:
            continue
        sections.append(
            html.Div(
                [
                    html.H3(heading, className="lineage-heading"),
                    html.Ul([item_link(i) for i in items], className="lineage-list")
                    if items
                    else html.P("—", className="muted"),
                ],
                className=f"lineage-section lineage-{key.replace('_', '-')}",
            )
        )
    return html.Div(sections, className="lineage", id="item-lineage")


def delete_text(preview: dict[str, Any]) -> tuple[Any, str]:
    """The sentence above the Delete button and the button's words."""
    item = preview["item"]
    what = lineage.LABELS[item["kind"]][0]
    if preview["blocked"]:
        return alert(preview["blocked"], "error", id="item-dialog-blocked"), ""
    if not preview["taken"]:
        text = f"Delete the {what} {item['name']!r} and its files? This cannot be undone."
        return html.P(text, className="dialog-warning"), f"Delete {what}"
    n = len(preview["taken"])
    text = (
        f"The {what} {item['name']!r} is used by other items. Deleting it also deletes "
        f"{preview['sentence']}, with their files. This cannot be undone."
    )
    return html.P(text, className="dialog-warning"), f"Delete {what} and {n} more"


# --- the callback -----------------------------------------------------------------------

HIDDEN = "dialog-backdrop hidden"
SHOWN = "dialog-backdrop"
# Save and Delete hidden, the Delete label kept, no target.
CLOSED = ("button button-primary hidden", "button button-danger hidden", no_update, None)


def _tags(text: str | None) -> list[str]:
    return [t.strip() for t in (text or "").split(",") if t.strip()]


def _open(action: str, kind: str, item_id: str) -> tuple:
    state = get_state()
    with state.db.session() as session:
        current = lineage.editable(session, kind, item_id)
        graph = lineage.lineage(session, kind, item_id)
        preview = lineage.preview_delete(session, kind, item_id) if action == "delete" else None
    what = lineage.LABELS[kind][0]
    target = {"action": action, "kind": kind, "id": item_id}
    edit_class = "dialog-edit" + ("" if action == "edit" else " hidden")
    save_class = "button button-primary" + ("" if action == "edit" else " hidden")
    delete_class, delete_label = "button button-danger hidden", "Delete"
    info: list[Any] = []
    if action == "edit":
        heading = f"Edit {what}: {current['title']}"
    elif action == "lineage":
        heading = f"Lineage of {what} {current['title']}"
        info = [lineage_view(graph)]
    else:
        heading = f"Delete {what} {current['title']}?"
        sentence, delete_label = delete_text(preview)
        info = [sentence, lineage_view(graph)]
        if not preview["blocked"]:
            delete_class = "button button-danger"
            target["expected"] = sorted(t["id"] for t in preview["taken"])
    return (
        SHOWN,
        heading,
        edit_class,
        current["name"],
        ", ".join(current["tags"]),
        current["notes"],
        info,
        None,
        save_class,
        delete_class,
        delete_label,
        target,
    )


def _save(target: dict[str, Any], name: str | None, tags: str | None, notes: str | None):
    state = get_state()
    changes: dict[str, Any] = {"tags": _tags(tags), "notes": notes or ""}
    if name and name.strip():
        changes["name"] = name.strip()
    elif target["kind"] != "job":
        return alert("A name cannot be blank.", "error")
    if len(changes["tags"]) > 20 or any(len(t) > 40 for t in changes["tags"]):
        return alert("At most 20 tags of up to 40 characters each.", "error")
    with state.db.session() as session:
        lineage.patch(session, target["kind"], target["id"], changes)
    return alert("Saved.", "success", id="item-dialog-saved")


def _delete(target: dict[str, Any]):
    """Delete when what it takes is still what the dialog showed; else show the new list."""
    state = get_state()
    kind, item_id = target["kind"], target["id"]
    with state.db.session() as session:
        preview = lineage.preview_delete(session, kind, item_id)
        if preview["blocked"]:
            return alert(preview["blocked"], "error"), None
        taken = sorted(t["id"] for t in preview["taken"])
        if taken != target.get("expected", []):
            sentence, _ = delete_text(preview)
            return [alert("What this would delete has changed: look again.", "error"), sentence], (
                taken
            )
        out = lineage.delete_item(session, state.artifacts, kind, item_id, cascade=bool(taken))
    return alert(out["detail"], "success", id="item-dialog-deleted"), None


@callback(
    Output("item-dialog", "className"),
    Output("item-dialog-title", "children"),
    Output("item-dialog-edit", "className"),
    Output("item-dialog-name", "value"),
    Output("item-dialog-tags", "value"),
    Output("item-dialog-notes", "value"),
    Output("item-dialog-info", "children"),
    Output("item-dialog-feedback", "children"),
    Output("item-dialog-save", "className"),
    Output("item-dialog-delete", "className"),
    Output("item-dialog-delete", "children"),
    Output("item-dialog-target", "data"),
    Input({"type": ACTION, "action": ALL, "kind": ALL, "id": ALL}, "n_clicks"),
    Input("item-dialog-close", "n_clicks"),
    Input("item-dialog-save", "n_clicks"),
    Input("item-dialog-delete", "n_clicks"),
    State("item-dialog-target", "data"),
    State("item-dialog-name", "value"),
    State("item-dialog-tags", "value"),
    State("item-dialog-notes", "value"),
    prevent_initial_call=True,
)
async def act(_rows, _close, _save_clicks, _delete_clicks, target, name, tags, notes):
    trigger = ctx.triggered_id
    if trigger is None or not ctx.triggered or not ctx.triggered[0].get("value"):
        raise PreventUpdate  # a table redrawn with fresh buttons (n_clicks 0)
    keep = [no_update] * 12
    if trigger == "item-dialog-close":
        return HIDDEN, *keep[1:]
    if isinstance(trigger, dict):
        try:
            return await asyncio.to_thread(_open, trigger["action"], trigger["kind"], trigger["id"])
        except lineage.NotFound as exc:
            gone = alert(str(exc), "error", id="item-dialog-error")
            return (SHOWN, "Not found", "dialog-edit hidden", *keep[3:6], [], gone, *CLOSED)
    if not target:
        raise PreventUpdate
    out = list(keep)
    try:
        if trigger == "item-dialog-save":
            out[7] = await asyncio.to_thread(_save, target, name, tags, notes)
        elif trigger == "item-dialog-delete":
            message, changed = await asyncio.to_thread(_delete, target)
            out[7] = message
            if changed is None:  # deleted, or refused: nothing more to confirm
                out[9] = "button button-danger hidden"
                out[11] = None
            else:
                out[11] = {**target, "expected": changed}
    except (auth.Forbidden, lineage.Conflict, lineage.NotFound) as exc:
        out[7] = alert(str(exc), "error", id="item-dialog-error")
    return tuple(out)
