"""Typed, self-describing model configurations.

Every architecture's config is a dataclass deriving from :class:`OperatorConfig` whose
fields are declared with :func:`param`. The declaration carries what a form needs (help
text, bounds, choices), so the UI generates each model's form from the config alone and a
new architecture needs no UI code; the same metadata validates configs arriving as JSON.
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Any, ClassVar

_TYPES = {"int": int, "float": float, "bool": bool, "str": str}


def param(
    default: Any,
    help: str,
    *,
    min: float | None = None,
    max: float | None = None,
    choices: tuple[Any, ...] | None = None,
    advanced: bool = False,
) -> Any:
    """A config field with its form metadata (``advanced`` fields start collapsed)."""
    return dataclasses.field(
        default=default,
        metadata={"help": help, "min": min, "max": max, "choices": choices, "advanced": advanced},
    )


class OperatorConfig:
    """Mixin for config dataclasses: validation from field metadata, dict round trip.

    Subclasses are ``@dataclass`` classes whose fields are ``int``, ``float``, ``bool`` or
    ``str``, each declared with :func:`param`. ``check()`` may be overridden for rules that
    tie fields together (call ``super().check()`` first).
    """

    #: Shown above the generated form.
    title: ClassVar[str] = ""

    def __post_init__(self) -> None:
        self.check()

    @classmethod
    def _field_types(cls) -> dict[str, type]:
        hints = typing.get_type_hints(cls)
        return {f.name: hints[f.name] for f in dataclasses.fields(cls)}

    def check(self) -> None:
        name_of = type(self).__name__
        types = self._field_types()
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            kind = types[f.name]
            meta = f.metadata
            if kind is float and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
                object.__setattr__(self, f.name, value)
            if kind is bool:
                ok = isinstance(value, bool)
            elif kind is int:
                ok = isinstance(value, int) and not isinstance(value, bool)
            else:
                ok = isinstance(value, kind)
            if not ok:
                raise ValueError(f"{name_of}.{f.name} must be {kind.__name__}, got {value!r}")
            if meta.get("choices") is not None and value not in meta["choices"]:
                options = ", ".join(map(str, meta["choices"]))
                raise ValueError(f"{name_of}.{f.name} must be one of {options}; got {value!r}")
            if meta.get("min") is not None and value < meta["min"]:
                raise ValueError(
                    f"{name_of}.{f.name} must be at least {meta['min']}, got {value!r}"
                )
            if meta.get("max") is not None and value > meta["max"]:
                raise ValueError(f"{name_of}.{f.name} must be at most {meta['max']}, got {value!r}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None):
        """Builds a config from a (possibly partial) dict; unknown keys are an error."""
        data = dict(data or {})
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(
                f"unknown {cls.__name__} keys: {', '.join(unknown)} "
                f"(known: {', '.join(sorted(known))})"
            )
        return cls(**data)

    @classmethod
    def form_fields(cls) -> list[dict[str, Any]]:
        """One entry per field, in declaration order: what a form needs to render it."""
        types = cls._field_types()
        out = []
        for f in dataclasses.fields(cls):
            meta = f.metadata
            out.append(
                {
                    "name": f.name,
                    "type": types[f.name].__name__,
                    "default": f.default,
                    "help": meta.get("help", ""),
                    "min": meta.get("min"),
                    "max": meta.get("max"),
                    "choices": list(meta["choices"]) if meta.get("choices") else None,
                    "advanced": bool(meta.get("advanced")),
                }
            )
        return out
