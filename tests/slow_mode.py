"""A padding mode for the SLURM tests: zero padding that sleeps in every padded conv, so a run lasts about
as long on any machine, long enough for a signal SLURM sends at a time of its own choosing."""

from __future__ import annotations

import dataclasses
import time

import torch.nn.functional as F
from torch import Tensor

from padlib.padding import PadThenConvolve, register_padding


@register_padding("slow_zero")
@dataclasses.dataclass(frozen=True)
class SlowZero(PadThenConvolve):
    """Zero padding, ``seconds`` slower per padded conv."""

    seconds: float = 0.004

    def pad(self, input: Tensor, pads: tuple[int, int, int, int]) -> Tensor:
        time.sleep(self.seconds)
        return F.pad(input, pads)
