"""What the job forms offer, read from the API's schemas so a form's defaults, bounds and
choices are the ones the API checks: the training options as form fields
(``schema_fields`` turns any pydantic model's scalar fields into the same field dicts a
model config's ``form_fields()`` gives) and the generate parameters' defaults."""

from __future__ import annotations

import typing
from collections.abc import Iterable
from typing import Any, Literal

_TYPES = {bool: "bool", int: "int", float: "float", str: "str"}


def schema_fields(
    model_cls: type, exclude: Iterable[str] = (), optional: bool = False
) -> list[dict[str, Any]]:
    """The scalar fields of a pydantic model as form fields (same keys as
    ``OperatorConfig.form_fields()``, plus ``exclusive_min``/``exclusive_max``): bounds
    from ``ge``/``gt``/``le``/``lt``, choices from ``Literal``, help from the description.
    Fields that are not a plain bool, int, float, str or Literal (dicts) are left out, as
    are those named in ``exclude``, and optional ones (``int | None``) unless ``optional``:
    then they are fields with ``optional: True``, whose empty box means "the default"."""
    skip = set(exclude)
    out = []
    for name, info in model_cls.model_fields.items():
        if name in skip:
            continue
        annotation = info.annotation
        args = typing.get_args(annotation)
        is_optional = type(None) in args and len(args) == 2
        if is_optional:
            if not optional:
                continue
            annotation = next(a for a in args if a is not type(None))
        choices = None
        if typing.get_origin(annotation) is Literal:
            choices = list(typing.get_args(annotation))
            kinds = {_TYPES.get(type(c)) for c in choices}
            if len(kinds) != 1 or None in kinds:
                continue
            kind = kinds.pop()
        elif annotation in _TYPES:
            kind = _TYPES[annotation]
        else:
            continue
        entry: dict[str, Any] = {
            "name": name,
            "type": kind,
            "default": info.default,
            "help": info.description or "",
            "min": None,
            "max": None,
            "choices": choices,
            "advanced": False,
            "exclusive_min": False,
            "exclusive_max": False,
        }
        if is_optional:
            entry["optional"] = True
        for bound in info.metadata:
            for attr, key, exclusive in (
                ("ge", "min", False),
                ("gt", "min", True),
                ("le", "max", False),
                ("lt", "max", True),
            ):
                if getattr(bound, attr, None) is not None:
                    entry[key] = getattr(bound, attr)
                    entry[f"exclusive_{key}"] = exclusive
        out.append(entry)
    return out


def train_options() -> list[dict[str, Any]]:
    """The training options as form fields (``name``, ``type``, ``default``, ``help``,
    ``min``, ``max``, ``choices``, ``exclusive_min``), read from the API's schema so the
    form's defaults, bounds and choices are the ones the API checks. What the rest of the
    form sets (dataset, name, architecture, config) and the queue are left out."""
    from app.jobkinds.train import TrainParams

    return schema_fields(TrainParams, exclude=("queue", "dataset_id", "name", "arch", "config"))


def online_options() -> list[dict[str, Any]]:
    """The options of online training (``train.online``) as form fields, the optional ones
    (``seed``, ``min_fill``, ``max_seen``) included: left empty, the API fills them in."""
    from app.jobkinds.online_params import OnlineOptions

    return schema_fields(OnlineOptions, optional=True)


def generate_defaults() -> dict[str, Any]:
    """The generate parameters' defaults and the schemes, from the API's schema."""
    from typing import get_args

    from app.jobkinds.generate import GenerateParams

    fields = GenerateParams.model_fields
    defaults = {name: field.default for name, field in fields.items()}
    scheme = fields.get("scheme")
    defaults["schemes"] = list(get_args(scheme.annotation)) if scheme is not None else []
    return defaults
