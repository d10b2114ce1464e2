"""Switch every padded conv of a model to one padding mode, in place, keeping its parameters.

Only convolutions change, as in the paper; pools keep their own padding (max-pool pads with -inf,
avg-pool per ``count_include_pad``).
"""

from __future__ import annotations

from torch import nn

from padlib.errors import PadlibError
from padlib.padding.geometry import could_pad, is_tf_same
from padlib.padding.padded_conv import PaddedConv2d
from padlib.padding.partial_conv import PartialConv2d

PADDING_MODES = ("zero", "reflect", "replicate", "circular", "partial")

# nn.Conv2d's padding_mode for each padlib mode that F.pad implements.
_TORCH_MODE = {"zero": "zeros", "reflect": "reflect", "replicate": "replicate", "circular": "circular"}


def check_mode(mode: str) -> None:
    """Raise a PadlibError naming the valid modes unless ``mode`` is one of them."""
    if mode not in PADDING_MODES:
        raise PadlibError(f"padding mode {mode!r} is unknown; use one of {', '.join(PADDING_MODES)}")


def layer_mode(conv: nn.Conv2d) -> str:
    """The padlib mode a padded conv runs in ('zero', 'reflect', ..., 'partial')."""
    if isinstance(conv, PartialConv2d):
        return "partial"
    return {torch_mode: mode for mode, torch_mode in _TORCH_MODE.items()}[conv.padding_mode]


def converted_convs(model: nn.Module) -> list[str]:
    """Names of the convs in ``model`` that are padlib layers (PartialConv2d or PaddedConv2d)."""
    return [
        name for name, module in model.named_modules() if isinstance(module, PartialConv2d | PaddedConv2d)
    ]


# Classes whose padding padlib knows how to read and rebuild.
_OWN_TYPES = (nn.Conv2d, PartialConv2d, PaddedConv2d)


def _target(mode: str, tf_same: bool) -> tuple[type[nn.Conv2d], str]:
    """The class and padding_mode that implement ``mode``."""
    if mode == "partial":
        return PartialConv2d, "zeros"
    if mode == "zero" and not tf_same:
        return nn.Conv2d, "zeros"
    return PaddedConv2d, _TORCH_MODE[mode]


def _convert_conv(conv: nn.Conv2d, mode: str, name: str) -> nn.Conv2d:
    """``conv`` itself where it already runs ``mode`` or never pads, else a new conv sharing its parameters."""
    own = type(conv) in _OWN_TYPES
    timm_tf_same = not own and is_tf_same(conv)
    if not own and not timm_tf_same:
        # timm's StdConv2dSame pads dynamically with padding=0 and says so in `same_pad`.
        if mode != "zero" and (could_pad(conv) or getattr(conv, "same_pad", False)):
            raise PadlibError(
                f"layer {name!r} is a {type(conv).__name__}, a Conv2d subclass padlib cannot re-pad; "
                "only nn.Conv2d and timm's Conv2dSame are supported, so use padding 'zero' for this model"
            )
        return conv
    if not could_pad(conv):
        return conv
    tf_same = is_tf_same(conv)
    cls, padding_mode = _target(mode, tf_same)
    if (type(conv) is cls and conv.padding_mode == padding_mode) or (mode == "zero" and timm_tf_same):
        return conv
    extra = {"tf_same": True} if tf_same else {}
    # Built on the meta device so no weights are allocated; the original Parameters are then shared,
    # which keeps optimizers holding them valid.
    new = cls(
        conv.in_channels,
        conv.out_channels,
        conv.kernel_size,
        stride=conv.stride,
        padding=0 if tf_same else conv.padding,
        dilation=conv.dilation,
        groups=conv.groups,
        bias=conv.bias is not None,
        padding_mode=padding_mode,
        device="meta",
        **extra,
    )
    new.weight = conv.weight
    new.bias = conv.bias
    return new.train(conv.training)


def convert_padding(model: nn.Module, mode: str) -> nn.Module:
    """Put every padded ``nn.Conv2d`` of ``model`` in padding ``mode``, in place; returns ``model``.

    Unpadded convs stay the same objects; a root module that is itself a conv is returned converted.
    """
    check_mode(mode)
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
