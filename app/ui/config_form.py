"""Forms generated from declarations, and the values read back from them.

A model's config class declares its fields (``OperatorConfig.form_fields()``: name, type,
default, help, bounds, choices, advanced); the training options are declared by the API's
pydantic schema (``app.services.training_options.schema_fields``). Both become the same
list of field dicts, which ``form`` turns into Dash inputs (a number box with its bounds,
a checkbox, a dropdown of the choices, a text box) and ``coerce`` turns the inputs' values
back into the dict the API takes. There is no per-model code: a new registry entry gets
its form from its config.

Every input's id is ``{"type": kind, "field": name}``, so a page reads a whole form with
one pattern-matching ``State({"type": kind, "field": ALL}, "value")``; its HTML name is
``kind.name``. A page may add ``label``, ``choice_labels`` (value → shown text) and
``placeholder`` (what an empty box means) to a field dict; without a label the field's
name is made readable. An ``optional`` field's empty box is left out of the values.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from dash import dcc, html

CONFIG = "cfg-field"  # id type of a model config's inputs
ON = "on"  # the value of a ticked checkbox

_MISSING = object()


def field_id(kind: str, name: str) -> dict[str, str]:
    return {"type": kind, "field": name}


def label_of(field: Mapping[str, Any]) -> str:
    """The field's ``label``, else its name made readable (``n_layers`` → Number of layers)."""
    if field.get("label"):
        return str(field["label"])
    name = str(field["name"])
    if name.startswith("n_") and len(name) > 2:
        return "Number of " + name[2:].replace("_", " ")
    words = name.replace("_", " ").strip()
    return words[:1].upper() + words[1:]


def _num(value: float) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return f"{value:g}" if isinstance(value, float) else str(value)


def range_text(field: Mapping[str, Any]) -> str:
    """The allowed range as words: "1 to 64", "at least 0", "more than 0", or ""."""
    lo, hi = field.get("min"), field.get("max")
    above = "more than" if field.get("exclusive_min") else "at least"
    below = "less than" if field.get("exclusive_max") else "at most"
    if (
        lo is not None
        and hi is not None
        and not (field.get("exclusive_min") or field.get("exclusive_max"))
    ):
        return f"{_num(lo)} to {_num(hi)}"
    parts = []
    if lo is not None:
        parts.append(f"{above} {_num(lo)}")
    if hi is not None:
        parts.append(f"{below} {_num(hi)}")
    return ", ".join(parts)


def _says_range(field: Mapping[str, Any]) -> bool:
    # "at least 0" or "at least 1" go without saying for a count or a size.
    if field.get("type") not in ("int", "float") or field.get("choices"):
        return False
    if field.get("max") is not None or field.get("exclusive_min"):
        return field.get("min") is not None or field.get("max") is not None
    return field.get("min") not in (None, 0, 1)


def help_text(field: Mapping[str, Any]) -> str:
    """The field's help, with its range where the range is worth saying (an upper bound,
    a strict or unusual lower one)."""
    text = str(field.get("help") or "").strip()
    bounds = range_text(field) if _says_range(field) else ""
    if bounds:
        text = f"{text} ({bounds})" if text else bounds[:1].upper() + bounds[1:]
    return text


def choice_label(value: Any) -> str:
    return (
        _num(value)
        if isinstance(value, int | float) and not isinstance(value, bool)
        else str(value)
    )


# --- controls -------------------------------------------------------------------------


def control(field: Mapping[str, Any], kind: str = CONFIG, value: Any = _MISSING) -> Any:
    """The input for one field, holding ``value`` (default: the field's default)."""
    if value is _MISSING:
        value = field.get("default")
    fid = field_id(kind, field["name"])
    name = f"{kind}.{field['name']}"  # the <input>'s name, for scripts and tests
    if field["type"] == "bool":
        return dcc.Checklist(
            id=fid,
            options=[{"label": label_of(field), "value": ON}],
            value=[ON] if value else [],
            className="check",
            inputClassName="check-input",
            labelClassName="check-label",
        )
    if field.get("choices"):
        names = field.get("choice_labels") or {}
        return dcc.Dropdown(
            id=fid,
            options=[
                {"label": str(names.get(str(c), choice_label(c))), "value": c}
                for c in field["choices"]
            ],
            value=value,
            clearable=False,
            searchable=False,
            className="dropdown",
        )
    if field["type"] in ("int", "float"):
        bounds = {k: field[k] for k in ("min", "max") if field.get(k) is not None}
        if field.get("placeholder"):
            bounds["placeholder"] = str(field["placeholder"])
        return dcc.Input(
            id=fid,
            type="number",
            value=value,
            step=1 if field["type"] == "int" else "any",
            className="input",
            debounce=0.3,
            name=name,
            **bounds,
        )
    return dcc.Input(id=fid, type="text", value=value, className="input", debounce=0.3, name=name)


def row(field: Mapping[str, Any], kind: str = CONFIG, value: Any = _MISSING) -> html.Div:
    """The field's input with its label and help (a checkbox carries its own label)."""
    help_ = help_text(field)
    hint = html.Small(help_, className="form-help") if help_ else None
    if field["type"] == "bool":
        return html.Div(
            [control(field, kind, value), hint],
            className="form-row form-check",
            title=str(field["name"]),
        )
    return html.Div(
        [
            html.Label(label_of(field), className="form-label", title=str(field["name"])),
            control(field, kind, value),
            hint,
        ],
        className="form-row",
    )


def form(
    fields: Sequence[Mapping[str, Any]],
    kind: str = CONFIG,
    values: Mapping[str, Any] | None = None,
    advanced_label: str = "Advanced",
) -> list[Any]:
    """The fields' rows in declaration order; the ``advanced`` ones in a collapsed
    <details> after the others. ``values`` overrides the defaults by name."""
    values = values or {}

    def rows(group):
        return [row(f, kind, values.get(f["name"], _MISSING)) for f in group]

    basic = [f for f in fields if not f.get("advanced")]
    advanced = [f for f in fields if f.get("advanced")]
    out: list[Any] = [html.Div(rows(basic), className="form-grid")] if basic else []
    if advanced:
        out.append(
            html.Details(
                [
                    html.Summary(f"{advanced_label} ({len(advanced)})"),
                    html.Div(rows(advanced), className="form-grid"),
                ],
                className="form-advanced",
            )
        )
    return out


# --- values back ----------------------------------------------------------------------


def values_by_name(ids: Iterable[Mapping[str, Any]], values: Iterable[Any]) -> dict[str, Any]:
    """The ``{field: value}`` of a pattern-matched form (its ids and values, in order)."""
    return {i["field"]: v for i, v in zip(ids, values, strict=False)}


def coerce(
    fields: Sequence[Mapping[str, Any]], raw: Mapping[str, Any]
) -> tuple[dict[str, Any], list[str]]:
    """The inputs' values as the typed dict the API takes, and a sentence per value that
    cannot be one (an empty or out-of-range number box reads None).

    Names that are not fields are ignored; fields without a value keep their default
    (left out of the dict), as does an ``optional`` field left empty. Range and choice
    checks are left to the config itself, so its own sentences are the ones shown.
    """
    out: dict[str, Any] = {}
    problems: list[str] = []
    for field in fields:
        name = field["name"]
        if name not in raw:
            continue
        if field.get("optional") and (raw[name] is None or str(raw[name]).strip() == ""):
            continue
        value, problem = _coerce_one(field, raw[name])
        if problem:
            problems.append(problem)
        else:
            out[name] = value
    return out, problems


def _coerce_one(field: Mapping[str, Any], value: Any) -> tuple[Any, str | None]:
    kind = field["type"]
    label = label_of(field)
    if kind == "bool":
        if isinstance(value, list | tuple):
            return ON in value or True in value, None
        return bool(value), None
    if kind in ("int", "float"):
        if isinstance(value, str):
            try:
                value = float(value.strip()) if value.strip() else None
            except ValueError:
                value = None
        if value is None or isinstance(value, bool) or not math.isfinite(float(value)):
            bounds = range_text(field)
            whole = "a whole number" if kind == "int" else "a number"
            return None, f"{label}: enter {whole}" + (f" ({bounds})." if bounds else ".")
        if kind == "int":
            if float(value) != int(value):
                return None, f"{label}: enter a whole number, not {value:g}."
            return int(value), None
        return float(value), None
    if value is None:
        return "", None
    return str(value).strip() if not field.get("choices") else value, None


# --- what the form says about the model -----------------------------------------------


def _compact(n: int) -> str:
    for size, unit in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return str(n)


def parameter_text(count: int | None) -> str:
    """ "12,345 parameters (12.3 k)"; the compact form only from ten thousand up."""
    if count is None:
        return ""
    text = f"{count:,} parameter" + ("" if count == 1 else "s")
    return f"{text} ({_compact(count)})" if count >= 10_000 else text


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def contract_text(contract: Mapping[str, Any] | None) -> str:
    """ "1 frame in → 1 frame out · 1 channel · 2D" from a contract dict."""
    if not contract:
        return ""
    return (
        f"{_plural(int(contract['history']), 'frame')} in → "
        f"{_plural(int(contract['out_steps']), 'frame')} out · "
        f"{_plural(int(contract['channels']), 'channel')} · {int(contract['dims'])}D"
    )
