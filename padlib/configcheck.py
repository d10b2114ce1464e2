"""Checks shared by the config readers (``data``, ``trainer``): one clear PadlibError per bad key; and
``flatten``, how the trainer and the evaluator compare configs.

Hydra hands over whatever the user typed (``trainer.epochs=abc`` arrives as a string), so every
reader checks types and ranges here instead of failing later, or worse, running with it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from typing import Any

from padlib.errors import PadlibError

# Settings that do not change what a run computes: a run may be resumed with other values, and the
# evaluator pools runs that differ only in them.
RUNTIME_KEYS = (
    "run_dir", "data.root", "data.workers", "trainer.device", "trainer.log_every", "trainer.progress",
    "trainer.keep_last", "trainer.max_unreadable_fraction", "trainer.compile_backend",
    # used only when Fashion-MNIST is missing, and then the run's dataset is named synthetic
    "data.fallback",
)


def known_keys(cfg: Mapping[str, Any], schema: type, where: str, also: tuple[str, ...] = ()) -> None:
    """Raise on a key that is neither a field of ``schema`` nor in ``also``: a typo would otherwise
    silently change the experiment."""
    valid = [f.name for f in fields(schema)] + list(also)
    unknown = [str(k) for k in cfg if k not in valid]
    if unknown:
        raise PadlibError(f"{where} has unknown key(s) {', '.join(unknown)}; valid keys are {', '.join(valid)}")


def mapping(value: Any, where: str, schema: type) -> Mapping[str, Any]:
    """``value`` when it is a mapping with only ``schema``'s keys."""
    if not isinstance(value, Mapping):
        raise PadlibError(f"{where}={value!r} must be a mapping of {', '.join(f.name for f in fields(schema))}")
    known_keys(value, schema, where)
    return value


def integer(cfg: Mapping[str, Any], key: str, default: int | None, minimum: int, where: str) -> Any:
    """``cfg[key]`` as an int >= ``minimum`` (None allowed only when that is the default)."""
    value = cfg.get(key, default)
    if value is None and default is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise PadlibError(f"{where}.{key}={value!r} must be an integer >= {minimum}")
    return value


def number(cfg: Mapping[str, Any], key: str, default: float, where: str, minimum: float = 0.0,
           maximum: float | None = None, open_min: bool = False, open_max: bool = False) -> float:
    """``cfg[key]`` as a float in [minimum, maximum] (ends excluded where ``open_*``)."""
    value = cfg.get(key, default)
    ok = isinstance(value, int | float) and not isinstance(value, bool) and value == value
    if ok:
        ok = (value > minimum if open_min else value >= minimum) and (
            maximum is None or (value < maximum if open_max else value <= maximum))
    if not ok:
        low = f"{'>' if open_min else '>='} {minimum:g}"
        high = "" if maximum is None else f" and {'<' if open_max else '<='} {maximum:g}"
        raise PadlibError(f"{where}.{key}={value!r} must be a number {low}{high}")
    return float(value)


def boolean(cfg: Mapping[str, Any], key: str, default: bool, where: str) -> bool:
    """``cfg[key]`` as a bool."""
    value = cfg.get(key, default)
    if not isinstance(value, bool):
        raise PadlibError(f"{where}.{key}={value!r} must be true or false")
    return value


def choice(cfg: Mapping[str, Any], key: str, default: str, options: tuple[str, ...], where: str) -> str:
    """``cfg[key]``, one of ``options``."""
    value = cfg.get(key, default)
    if value not in options:
        raise PadlibError(f"{where}.{key}={value!r} is unknown; use one of {', '.join(options)}")
    return value


def flatten(cfg: Any, prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``; anything but a mapping has no settings at all."""
    if not isinstance(cfg, Mapping):
        return {}
    out: dict[str, Any] = {}
    for key, value in cfg.items():
        if isinstance(value, Mapping):
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out
