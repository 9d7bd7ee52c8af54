"""Model-config introspection for the Train page: the registered architectures with their
config forms, and whether a config makes a valid model for a dataset (its grid, channels
and trajectory length), with its parameter count and data contract."""

from __future__ import annotations

from typing import Any


def spatial_shape(shape: list[int] | tuple[int, ...] | None) -> tuple[int, ...]:
    """The grid of a dataset from its stored shape: ``(trajectory, time, *space)`` for a
    scalar field, ``(trajectory, time, X, Y, Z, component)`` for 3D velocity (The Well keeps
    a vector's components last)."""
    shape = tuple(int(s) for s in (shape or ()))
    return shape[2:5] if len(shape) == 6 else shape[2:]


def dataset_channels(shape: list[int] | tuple[int, ...] | None) -> int | None:
    """Physical channels of a dataset's fields: the component axis of a 3D vector field,
    else 1 (a scalar such as vorticity); None for no shape."""
    shape = tuple(shape or ())
    if len(shape) < 3:
        return None
    return int(shape[-1]) if len(shape) == 6 else 1


def architectures() -> list[dict[str, Any]]:
    """Every registered architecture, in registry order: ``name``, ``label``, ``dims``,
    ``description``, its config's ``title`` and ``fields`` (``form_fields()``), and
    ``error``: None, or why it cannot be used (its module failed to import, its config
    class is missing or its defaults do not validate). Modules are imported here, once."""
    from models.registry import MODELS

    out = []
    for name, spec in MODELS.items():
        entry: dict[str, Any] = {
            "name": name,
            "label": spec.label,
            "dims": int(spec.dims),
            "description": spec.description,
            "title": "",
            "fields": [],
            "error": None,
        }
        try:
            config_cls = spec.config_cls
            entry["fields"] = _plain(config_cls.form_fields())
            entry["title"] = str(getattr(config_cls, "title", "") or "")
            config_cls()  # the defaults must make a valid config
        except Exception as exc:  # a family still being written must not break the page
            entry["fields"] = []
            entry["error"] = _reason(exc)
        out.append(entry)
    return out


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ModuleNotFoundError):
        return f"its module cannot be imported ({exc})."
    if isinstance(exc, ImportError | AttributeError):
        return f"it cannot be loaded ({exc})."
    return f"it cannot be loaded ({type(exc).__name__}: {exc})."


def _plain(value: Any) -> Any:
    """JSON-ready copy: tuples become lists, other non-JSON leaves become strings."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def evaluate_config(
    arch: str,
    config: dict[str, Any],
    space: tuple[int, ...] | list[int] | None = None,
    channels: int | None = None,
    snapshots: int | None = None,
) -> dict[str, Any]:
    """What the form shows under a model's config: ``{"parameters", "contract"}`` when
    ``config`` makes a valid model for a grid of shape ``space`` (None: any grid), data of
    ``channels`` physical channels and trajectories of ``snapshots`` frames (None: any),
    else ``{"error": sentence}`` (the config's own sentence, or the data's)."""
    from models.registry import count_parameters, get_spec, make_config

    try:
        spec = get_spec(arch)
        parsed = make_config(arch, config)
    except (TypeError, ValueError) as exc:
        return {"error": _sentence(exc)}
    except Exception as exc:
        return {"error": f"{arch} {_reason(exc)}"}
    space = tuple(int(s) for s in space) if space else ()
    if space:
        if len(space) != spec.dims:
            grid = "×".join(map(str, space))
            return {
                "error": f"{spec.label} works on {spec.dims}D fields; the dataset's grid "
                f"is {grid} ({len(space)}D)."
            }
        check_grid = getattr(parsed, "check_grid", None)
        if callable(check_grid):
            try:
                check_grid(space)
            except ValueError as exc:
                return {"error": _sentence(exc)}
    out: dict[str, Any] = {"parameters": None, "contract": None}
    try:
        out["contract"] = parsed.contract().to_dict()
    except Exception:  # a config without a contract yet: the form still shows its size
        out["contract"] = None
    contract = out["contract"] or {}
    wanted = contract.get("channels")
    if channels is not None and wanted is not None and wanted != channels:
        return {
            "error": f"The dataset's fields have {channels} channel"
            f"{'' if channels == 1 else 's'}; this config reads {wanted} (channels)."
        }
    if snapshots is not None and contract.get("history") is not None:
        needed = int(contract["history"]) + int(contract.get("out_steps") or 1)
        if snapshots < needed:
            return {
                "error": f"A training sample needs {needed} consecutive snapshots "
                f"({contract['history']} in, {contract.get('out_steps') or 1} out); the "
                f"dataset's trajectories have {snapshots}."
            }
    try:
        out["parameters"] = int(count_parameters(arch, parsed.to_dict()))
    except (TypeError, ValueError) as exc:
        return {"error": _sentence(exc)}
    except Exception as exc:
        return {"error": f"The model could not be built to count its parameters ({exc})."}
    return out


def _sentence(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text[0].upper() + text[1:]
