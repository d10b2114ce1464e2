"""``nn.Conv2d`` that pads its input with ``F.pad`` (zeros, reflect, replicate, circular), tiny maps included.

Reflection needs a pad smaller than the axis and wrapping one no larger than it; where a feature map
is too small for that (deep layers of a ResNet on 28x28 images are 1x1 or 2x2), that axis is padded by
replication for that call instead of failing.
"""

from __future__ import annotations

from typing import Any

import torch.nn.functional as F
from torch import Tensor, nn

from padlib.padding.geometry import Pads, layer_pads

# F.pad's name for each nn.Conv2d padding_mode.
_PAD_MODE = {"zeros": "constant", "reflect": "reflect", "replicate": "replicate", "circular": "circular"}


def _fits(mode: str, pad: int, size: int) -> bool:
    if mode == "reflect":
        return pad < size
    if mode == "circular":
        return pad <= size
    return True


def pad_input(input: Tensor, pads: Pads, mode: str) -> Tensor:
    """``F.pad`` of ``input`` by ``pads`` in ``padding_mode`` ``mode``, replicating an axis too small for it."""
    left, right, top, bottom = pads
    height, width = input.shape[-2:]
    fit_w = _fits(mode, max(left, right), width)
    fit_h = _fits(mode, max(top, bottom), height)
    if fit_w and fit_h:
        return F.pad(input, pads, mode=_PAD_MODE[mode])
    input = F.pad(input, (left, right, 0, 0), mode=_PAD_MODE[mode if fit_w else "replicate"])
    return F.pad(input, (0, 0, top, bottom), mode=_PAD_MODE[mode if fit_h else "replicate"])


class PaddedConv2d(nn.Conv2d):
    """``nn.Conv2d`` padding by ``padding_mode`` with ``F.pad``; replicates an axis too small to reflect or wrap.

    ``tf_same=True`` pads like timm's ``Conv2dSame`` (TF 'same', from the input size) instead of by
    ``padding``; with ``padding_mode='zeros'`` it is a zero-padded dynamic 'same' conv.
    """

    def __init__(self, *args: Any, tf_same: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if tf_same and self.padding != (0, 0):
            raise ValueError("PaddedConv2d(tf_same=True) computes its padding; pass padding=0")
        self.tf_same = tf_same

    def extra_repr(self) -> str:
        return super().extra_repr() + (", tf_same=True" if self.tf_same else "")

    def forward(self, input: Tensor) -> Tensor:
        pads = layer_pads(self, *input.shape[-2:])
        input = pad_input(input, pads, self.padding_mode)
        return F.conv2d(input, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)
