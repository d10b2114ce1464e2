"""``nn.Conv2d`` padded by zeros, reflection, replication or wrapping, tiny maps included.

The layer computes ``conv2d(F.pad(input, mode), weight)``: by padding in one pass (``index_pad``), or
on maps no larger than the kernel by one product with folded kernels (``folded_conv``), which skips
the padded taps as zero padding does.
Reflection needs a pad smaller than the axis and wrapping one no larger than it; where a feature map
is too small for that (deep layers of a ResNet on 28x28 images are 1x1 or 2x2), that axis is padded by
replication for that call instead of failing.
"""

from __future__ import annotations

from typing import Any

import torch.nn.functional as F
from torch import Tensor, nn

from padlib.padding.folded_conv import FoldCache, is_tiny, tiny_map_forward
from padlib.padding.geometry import layer_pads
from padlib.padding.index_pad import pad_input


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
        self._fold_cache: FoldCache = {}

    def __getstate__(self) -> dict[str, Any]:
        # The folds are derived data: deepcopy and pickle start without them.
        return {**self.__dict__, "_fold_cache": {}}

    def extra_repr(self) -> str:
        return super().extra_repr() + (", tf_same=True" if self.tf_same else "")

    def forward(self, input: Tensor) -> Tensor:
        height, width = input.shape[-2:]
        if is_tiny(self, height, width):
            return tiny_map_forward(self, input, self.padding_mode, self._fold_cache)
        input = pad_input(input, layer_pads(self, height, width), self.padding_mode)
        return F.conv2d(input, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)
