"""Partial-convolution based padding (Liu et al. 2018, Eq. 1-2) as a drop-in ``nn.Conv2d``."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from padlib.padding.geometry import layer_pads, pair

# (ratio or None where it is all ones, in-image mask or None where no output is all holes)
Scaling = tuple[Tensor | None, Tensor | None]


def border_scaling(
    conv: nn.Conv2d, height: int, width: int, device: torch.device, dtype: torch.dtype
) -> Scaling:
    """Paper's ratio r = taps / in-image taps per output position (0 where none), and the in-image mask."""
    with torch.no_grad():
        # Counting in fp32 keeps counts and ratios exact whatever the activation dtype.
        ones = torch.ones(1, 1, height, width, device=device, dtype=torch.float32)
        ones = F.pad(ones, layer_pads(conv, height, width))
        taps = torch.ones(1, 1, *pair(conv.kernel_size), device=device, dtype=torch.float32)
        counts = F.conv2d(ones, taps, stride=conv.stride, dilation=conv.dilation)
        inside = counts > 0
        ratio = torch.where(inside, taps.numel() / counts.clamp(min=1), 0.0)
        mask = None if bool(inside.all()) else inside.to(dtype)
        return (None if bool((ratio == 1).all()) else ratio.to(dtype)), mask


class PartialConv2d(nn.Conv2d):
    """``nn.Conv2d`` whose zero padding is re-weighted: ``out = (W.X) * r + b``, and 0 where no tap is inside.

    ``r`` depends only on the layer and the input's height and width, so it is computed once per
    (height, width, device, dtype) and kept in a plain dict: not in the state_dict, not pickled, and
    shared by every batch size. ``tf_same=True`` pads like timm's ``Conv2dSame`` (TF 'same', from the
    input size, extra pixel after) instead of by ``padding``.
    """

    def __init__(self, *args: Any, tf_same: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.padding_mode != "zeros":
            raise ValueError(
                f"PartialConv2d pads by itself; padding_mode must be 'zeros', not {self.padding_mode!r}"
            )
        if tf_same and self.padding != (0, 0):
            raise ValueError("PartialConv2d(tf_same=True) computes its padding; pass padding=0")
        self.tf_same = tf_same
        self._scaling_cache: dict[tuple[int, int, torch.device, torch.dtype], Scaling] = {}

    def __getstate__(self) -> dict[str, Any]:
        # The cache is derived data: deepcopy and pickle start without it.
        return {**self.__dict__, "_scaling_cache": {}}

    def extra_repr(self) -> str:
        return super().extra_repr() + (", tf_same=True" if self.tf_same else "")

    def scaling(self, height: int, width: int, device: torch.device, dtype: torch.dtype) -> Scaling:
        """The cached (ratio, mask) for an input of ``height`` x ``width``."""
        key = (height, width, device, dtype)
        if key not in self._scaling_cache:
            self._scaling_cache[key] = border_scaling(self, height, width, device, dtype)
        return self._scaling_cache[key]

    def forward(self, input: Tensor) -> Tensor:
        height, width = input.shape[-2:]
        if self.tf_same:
            input, padding = F.pad(input, layer_pads(self, height, width)), 0
        else:
            padding = self.padding
        out = F.conv2d(input, self.weight, None, self.stride, padding, self.dilation, self.groups)
        ratio, mask = self.scaling(height, width, out.device, out.dtype)
        bias = None if self.bias is None else self.bias.to(out.dtype).view(1, -1, 1, 1)
        if bias is not None and mask is not None:
            bias = bias * mask
        if ratio is None:
            return out if bias is None else out + bias
        return out * ratio if bias is None else torch.addcmul(bias, out, ratio)
