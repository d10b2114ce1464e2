"""Switch every padded conv of a model to one padding mode, in place, keeping its parameters.

Only convolutions change, as in the paper; pools keep their own padding (max-pool pads with -inf,
avg-pool per ``count_include_pad``). The mode rebuilds each conv (``PaddingMode.convert``), so padlib's
modes and a user's are converted alike.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import nn

from padlib.errors import PadlibError
from padlib.padding.geometry import could_pad, is_tf_same
from padlib.padding.mode import PaddingMode, get_padding
from padlib.padding.padded_conv import TORCH_MODES, PaddedConv2d
from padlib.padding.partial_conv import PartialConv2d

PaddingSpec = str | Mapping[str, Any] | PaddingMode


def conv_mode(conv: nn.Conv2d) -> PaddingMode:
    """The padding mode a conv runs in: a padlib layer's, or a stock conv's ``padding_mode``."""
    mode = getattr(conv, "mode", None)
    if isinstance(mode, PaddingMode):
        return mode
    return get_padding(TORCH_MODES.get(getattr(conv, "padding_mode", "zeros"), "zero"))


def layer_mode(conv: nn.Conv2d) -> str:
    """The label of the padding mode a padded conv runs in ('zero', 'reflect', ..., 'partial')."""
    return conv_mode(conv).label


def converted_convs(model: nn.Module) -> list[str]:
    """Names of the convs in ``model`` that are padlib layers (PartialConv2d or PaddedConv2d)."""
    return [
        name for name, module in model.named_modules() if isinstance(module, PartialConv2d | PaddedConv2d)
    ]


# Classes whose padding padlib knows how to read and rebuild.
_OWN_TYPES = (nn.Conv2d, PartialConv2d, PaddedConv2d)


def _same_mode(conv: nn.Conv2d, mode: PaddingMode) -> bool:
    """Whether ``conv`` already pads in ``mode`` (a stock conv as its ``padding_mode`` says)."""
    if getattr(conv, "mode", None) is None and type(conv) is not nn.Conv2d:
        return False
    return conv_mode(conv) == mode


def _convert_conv(conv: nn.Conv2d, mode: PaddingMode, name: str) -> nn.Conv2d:
    """``conv`` itself where it already runs ``mode`` or never pads, else a new conv sharing its parameters."""
    own = type(conv) in _OWN_TYPES
    timm_tf_same = not own and is_tf_same(conv)
    if not own and not timm_tf_same:
        # timm's StdConv2dSame pads dynamically with padding=0 and says so in `same_pad`.
        if mode.name != "zero" and (could_pad(conv) or getattr(conv, "same_pad", False)):
            raise PadlibError(
                f"layer {name!r} is a {type(conv).__name__}, a Conv2d subclass padlib cannot re-pad; "
                "only nn.Conv2d and timm's Conv2dSame are supported, so use padding 'zero' for this model"
            )
        return conv
    if not could_pad(conv):
        return conv
    if _same_mode(conv, mode) or (mode.name == "zero" and timm_tf_same):
        return conv
    return mode.convert(conv, is_tf_same(conv))


def convert_padding(model: nn.Module, mode: PaddingSpec) -> nn.Module:
    """Put every padded ``nn.Conv2d`` of ``model`` in padding ``mode``, in place; returns ``model``.

    ``mode`` is a registered name ('partial'), a mode object, or a spec with ``mode``/``_target_``
    and parameters. Unpadded convs stay the same objects; a root conv is returned converted.
    """
    mode = get_padding(mode)
    if isinstance(model, nn.Conv2d):
        return _convert_conv(model, mode, "")
    # Every replacement is built before any is installed, so an unsupported layer changes nothing;
    # a conv shared by two parents gets one replacement.
    new_by_id: dict[int, nn.Module] = {}
    slots = []
    for parent_name, parent in model.named_modules():
        # _modules, not named_children(): the latter skips the second slot of a shared child.
        for child_name, child in parent._modules.items():
            if isinstance(child, nn.Conv2d):
                name = f"{parent_name}.{child_name}" if parent_name else child_name
                if id(child) not in new_by_id:
                    new_by_id[id(child)] = _convert_conv(child, mode, name)
                slots.append((parent, child_name, child))
    for parent, child_name, child in slots:
        if new_by_id[id(child)] is not child:
            setattr(parent, child_name, new_by_id[id(child)])
    return model
