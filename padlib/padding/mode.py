"""What a padding mode is: one interface for padlib's modes and a user's, and the registry of names.

A mode is a small frozen dataclass (its fields are its parameters, recorded in run.json and checkpoints)
that says how a padded ``nn.Conv2d`` is rebuilt (:meth:`PaddingMode.convert`). Two families exist, each
defined next to its layer and with a default ``convert``:

- ``PadThenConvolve`` (``padded_conv.py``): pad the input (``pad``), then convolve without padding.
  Zero, reflect, replicate, circular, symmetric and distribution padding. ``IndexPadding`` is the
  sub-family that pads by copying pixels (``source``); padlib then pads in one pass and folds tiny maps
  into the kernel.
- ``ReweightOutput`` (``partial_conv.py``): convolve with zero padding, then re-weight each output by
  the product of a per-axis factor of the taps inside the image (``axis_ratio``). Partial padding.

``docs/PADDING.md`` walks through writing one. Names map to classes in one registry, filled by
:func:`register_padding`; a config names a mode by registry name or by import path (``_target_``).
"""

from __future__ import annotations

import ast
import dataclasses
import importlib
import re
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Protocol, TypeVar

from torch import nn

from padlib.errors import PadlibError

# Config keys of a padding group that are not the mode's own parameters.
SPEC_KEYS = ("mode", "_target_")


@dataclasses.dataclass(frozen=True)
class PaddingMode:
    """A padding method: how a padded conv is rebuilt. Subclass a family, not this class."""

    name: ClassVar[str] = ""  # the registry name; set by @register_padding or the class itself

    def convert(self, conv: nn.Conv2d, tf_same: bool) -> nn.Conv2d:
        """A conv sharing ``conv``'s parameters that pads this way (``tf_same``: TF-'same' pads)."""
        raise NotImplementedError

    def params(self) -> dict[str, Any]:
        """The mode's parameters (its dataclass fields), as run.json and checkpoints record them."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def spec(self) -> dict[str, Any]:
        """What rebuilds this mode anywhere: name, import path and parameters (Hydra's ``_target_`` style)."""
        return {"mode": self.name, "_target_": _path(type(self)), **self.params()}

    @property
    def label(self) -> str:
        """How tables and logs name the mode: its name, with parameters that differ from the defaults."""
        changed = {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if f.default is dataclasses.MISSING or getattr(self, f.name) != f.default
        }
        return self.name + ("(" + ",".join(f"{k}={v}" for k, v in changed.items()) + ")" if changed else "")


class PixelSource(Protocol):
    """What padlib's one-pass pad and kernel folding need of a mode that copies pixels (``IndexPadding``)."""

    def source(self, i: int, size: int) -> int | None: ...

    def fits(self, pad: int, size: int) -> bool: ...


class AxisRatio(Protocol):
    """What kernel folding needs of a mode that re-weights outputs (``ReweightOutput``)."""

    def axis_ratio(self, inside: int, kernel: int) -> float: ...


_REGISTRY: dict[str, type[PaddingMode]] = {}
M = TypeVar("M", bound=type[PaddingMode])


def register_padding(name: str) -> Callable[[M], M]:
    """Class decorator: make ``name`` (e.g. ``padding=name`` in a config) build this mode."""

    def register(cls: M) -> M:
        if not (isinstance(cls, type) and issubclass(cls, PaddingMode)):
            raise TypeError(f"@register_padding({name!r}) decorates a PaddingMode subclass, not {cls!r}")
        if name in _REGISTRY and _REGISTRY[name].__qualname__ != cls.__qualname__:
            raise PadlibError(
                f"padding mode {name!r} is already registered by {_REGISTRY[name].__qualname__}"
            )
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return register


def registered_paddings() -> tuple[str, ...]:
    """Names of every registered mode, padlib's first."""
    return tuple(_REGISTRY)


def _path(cls: type) -> str:
    """The import path of ``cls``, as ``spec()`` records it."""
    return f"{cls.__module__}.{cls.__qualname__}"


def _import_class(path: str) -> type[PaddingMode]:
    """The class at ``path`` ('pkg.module.Class'), or a PadlibError saying why not."""
    module_name, _, attr = path.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module_name), attr) if module_name else None
    except (ImportError, AttributeError) as e:
        raise PadlibError(
            f"padding._target_ {path!r} cannot be imported ({type(e).__name__}: {e}); "
            f"give an importable 'package.module.Class' or a registered mode: {', '.join(_REGISTRY)}"
        ) from None
    if not (isinstance(cls, type) and issubclass(cls, PaddingMode)):
        raise PadlibError(
            f"padding._target_ {path!r} is not a padlib PaddingMode subclass (see docs/PADDING.md)"
        )
    if not cls.name:
        cls.name = cls.__name__.lower()
    # Known by name from now on: tables and logs name a mode by its label, which must rebuild it.
    _REGISTRY.setdefault(cls.name, cls)
    return cls


def _parse_label(text: str) -> dict[str, Any] | None:
    """The spec of a label with parameters, ``name(key=value,...)``; None for anything else."""
    match = re.fullmatch(r"([\w.]+)\((.*)\)", text)
    if not match:
        return None
    spec: dict[str, Any] = {"mode": match.group(1)}
    for part in filter(None, match.group(2).split(",")):
        key, _, value = part.partition("=")
        try:
            spec[key.strip()] = ast.literal_eval(value.strip())
        except (ValueError, SyntaxError):
            spec[key.strip()] = value.strip()  # a string parameter: labels print it without quotes
    return spec


def get_padding(spec: str | Mapping[str, Any] | PaddingMode) -> PaddingMode:
    """The mode ``spec`` names: a registry name or label (``name(key=value)``), an import path, a mode,
    or a config / recorded spec with ``mode``, optional ``_target_`` (import path, Hydra's convention)
    and the mode's parameters."""
    if isinstance(spec, PaddingMode):
        return spec
    if isinstance(spec, str):
        # A label with parameters ('distribution(variant=mean_reflect)'); a dotted name that is not
        # registered is an import path (the command line's short form); else a registry name.
        parsed = _parse_label(spec)
        if parsed is not None:
            spec = parsed
        else:
            spec = {"_target_": spec} if "." in spec and spec not in _REGISTRY else {"mode": spec}
    spec = dict(spec)
    target, name = spec.get("_target_"), spec.get("mode")
    if name == "custom" and not target:
        raise PadlibError("padding=custom needs padding._target_=package.module.Class (docs/PADDING.md)")
    params = {k: v for k, v in spec.items() if k not in SPEC_KEYS}
    if name in _REGISTRY and (not target or target == _path(_REGISTRY[name])):
        cls = _REGISTRY[name]  # a recorded spec of a registered mode: no import needed
    elif target:
        cls = _import_class(str(target))
    else:
        raise PadlibError(
            f"padding mode {name!r} is unknown; use one of {', '.join(_REGISTRY)}, "
            "or padding._target_=package.module.Class for your own (docs/PADDING.md)"
        )
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(params) - fields)
    if unknown:
        raise PadlibError(
            f"padding mode {cls.name or name!r} has no parameter {', '.join(unknown)}; "
            f"its parameters: {', '.join(sorted(fields)) or 'none'}"
        )
    try:
        return cls(**params)
    except (TypeError, ValueError) as e:
        raise PadlibError(f"padding mode {cls.name!r}: {e}") from None
