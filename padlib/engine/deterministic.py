"""``trainer.deterministic=true`` on CUDA: layers whose CUDA backward has no deterministic kernel.

``torch.use_deterministic_algorithms`` makes such a backward raise, at the first step. The one the paper's
architectures meet is ``AdaptiveAvgPool2d`` with an output larger than 1x1: torchvision's VGG head,
``AdaptiveAvgPool2d((7, 7))`` (a 1x1 output runs as a mean, which is deterministic). Where the map
divides into the output, the pooling is an ordinary average pool (the identity at the paper's 224 px,
where VGG's map already is 7x7), which has deterministic kernels; elsewhere there is none, and the run
stops before its first step with one error instead of an hour into a job.
"""

from __future__ import annotations

import logging

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call

from padlib.errors import PadlibError

log = logging.getLogger("padlib")


def _pair(size: int | tuple[int | None, int | None] | None, like: tuple[int, int]) -> tuple[int, int]:
    """An adaptive pool's output size as (h, w); None keeps the input's."""
    h, w = (size, size) if isinstance(size, int) or size is None else size
    return (like[0] if h is None else h, like[1] if w is None else w)


class DivisibleAdaptiveAvgPool2d(nn.AdaptiveAvgPool2d):
    """``AdaptiveAvgPool2d`` computed as an average pool (same numbers) where the input divides into the
    output, so its CUDA backward is deterministic; raises a PadlibError elsewhere."""

    def forward(self, input: Tensor) -> Tensor:
        size = tuple(input.shape[-2:])
        out = _pair(self.output_size, size)  # type: ignore[arg-type]
        if size == out:
            return input  # VGG at 224 px: the map is already 7x7
        if size[0] % out[0] or size[1] % out[1]:
            raise PadlibError(
                f"trainer.deterministic=true on CUDA: AdaptiveAvgPool2d{out} receives a {size[0]}x{size[1]} map, "
                "whose CUDA backward has no deterministic kernel; choose data.image_size so that the map is a "
                f"multiple of {out[0]}x{out[1]} (VGG: a multiple of {32 * out[0]} px, e.g. 224), or train with "
                "trainer.deterministic=false"
            )
        kernel = (size[0] // out[0], size[1] // out[1])
        return F.avg_pool2d(input, kernel, kernel)


def deterministic_on(device: torch.device, model: nn.Module, image_size: int) -> int:
    """What ``trainer.deterministic=true`` needs of ``model`` on ``device``: ``make_deterministic`` on CUDA
    (CPU kernels are deterministic already); returns how many layers changed."""
    return make_deterministic(model, image_size) if device.type == "cuda" else 0


def make_deterministic(model: nn.Module, image_size: int) -> int:
    """Swap every ``AdaptiveAvgPool2d`` with an output larger than 1x1 for ``DivisibleAdaptiveAvgPool2d``
    (same parameters: none) and check, with a shape-only forward at ``image_size``, that each can run;
    returns how many were swapped. Raises a PadlibError naming the layer where one cannot."""
    swapped = 0
    for name, module in list(model.named_modules()):
        if type(module) is nn.AdaptiveAvgPool2d and _pair(module.output_size, (0, 0)) != (1, 1):
            parent_name, _, attr = name.rpartition(".")
            parent = model.get_submodule(parent_name) if parent_name else model
            setattr(parent, attr, DivisibleAdaptiveAvgPool2d(module.output_size))
            swapped += 1
    if swapped:
        # shapes only: the weights and the input on the meta device cost no memory and no arithmetic
        meta = {k: torch.empty_like(v, device="meta") for k, v in (*model.named_parameters(),
                                                                    *model.named_buffers())}
        with torch.no_grad():
            functional_call(model, meta, (torch.empty(2, 3, image_size, image_size, device="meta"),))
        log.info(f"trainer.deterministic: {swapped} adaptive average pool(s) run as average pools "
                 f"(deterministic CUDA backward) at {image_size} px")
    return swapped
