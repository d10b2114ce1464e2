"""A padding mode defined outside padlib: the worked example of docs/PADDING.md.

    PYTHONPATH=examples/user_padding python train.py padding=custom padding._target_=mypads.MeanPad
"""

from __future__ import annotations

import dataclasses

import torch.nn.functional as F
from torch import Tensor

from padlib.padding import PadThenConvolve, register_padding


@register_padding("mean")
@dataclasses.dataclass(frozen=True)
class MeanPad(PadThenConvolve):
    """Pads each map with its own per-channel mean, so the border looks like the image's average.

    ``detach``: whether the gradient flows through the mean (into every pixel) or only through the
    interior, as distribution padding does.
    """

    detach: bool = False

    def pad(self, input: Tensor, pads: tuple[int, int, int, int]) -> Tensor:
        mean = input.mean((-2, -1), keepdim=True)
        mean = mean.detach() if self.detach else mean
        # Zero-padding the centred map and adding the mean back: the interior is the input exactly.
        return F.pad(input - mean, pads) + mean
