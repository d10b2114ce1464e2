"""Activation maps at chosen layers, and the border-artifact score: how much stronger a layer's
activations are on the outermost row/column of its feature maps than inside them.

The score is ``mean |activation| on the border ring / mean |activation| in the interior``, over
channels and over a set of val images (ratio of the two means over all images). 1 means the border
looks like the interior; above 1, activations peak at the edges.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from padlib.errors import PadlibError


def default_layers(model: nn.Module) -> list[str]:
    """Stage outputs: ResNet ``layer1..4``, timm ``stages.i``, or each VGG block (the ReLU before a pool)."""
    names = dict(model.named_modules())
    resnet = [f"layer{i}" for i in range(1, 5) if f"layer{i}" in names]
    if resnet:
        return resnet
    stages = names.get("stages")
    if isinstance(stages, nn.Sequential) and len(stages):
        return [f"stages.{i}" for i in range(len(stages))]
    features = names.get("features")
    if isinstance(features, nn.Sequential):
        children = list(features.named_children())
        blocks = [f"features.{children[i - 1][0]}" for i, (_, m) in enumerate(children)
                  if isinstance(m, nn.MaxPool2d) and i > 0]
        if blocks:
            return blocks
    raise PadlibError(f"no default layers known for {type(model).__name__}; name them with --layers "
                      "(module names as in model.named_modules())")


def check_layers(model: nn.Module, layers: Sequence[str]) -> None:
    """PadlibError naming a layer the model does not have."""
    names = dict(model.named_modules())
    missing = [n for n in layers if n not in names]
    if missing:
        some = ", ".join(n for n in list(names)[1:12])
        raise PadlibError(f"{type(model).__name__} has no module {', '.join(missing)}; modules are e.g. {some}")


@contextmanager
def channel_mean_maps(model: nn.Module, layers: Sequence[str]):
    """Within the block, each forward pass fills the yielded dict: layer -> [B, H, W] channel-mean |activation|."""
    maps: dict[str, torch.Tensor] = {}
    modules = dict(model.named_modules())

    def hook(name: str):
        def fn(_module: nn.Module, _inputs: tuple, output: torch.Tensor) -> None:
            if isinstance(output, torch.Tensor) and output.dim() == 4:
                maps[name] = output.detach().float().abs().mean(1).cpu()
        return fn

    handles = [modules[name].register_forward_hook(hook(name)) for name in layers]
    try:
        yield maps
    finally:
        for h in handles:
            h.remove()


def border_mask(h: int, w: int) -> torch.Tensor:
    """True on the outermost row and column of an h x w map."""
    mask = torch.zeros(h, w, dtype=torch.bool)
    mask[0, :] = mask[-1, :] = mask[:, 0] = mask[:, -1] = True
    return mask


@dataclass
class BorderSums:
    """Running sums of border and interior activation over images."""

    border: float = 0.0
    border_n: int = 0
    interior: float = 0.0
    interior_n: int = 0

    def add(self, maps: torch.Tensor) -> None:
        """Add a batch of [B, H, W] maps; maps without an interior (H or W < 3) add nothing."""
        _, h, w = maps.shape
        if h < 3 or w < 3:
            return
        mask = border_mask(h, w)
        self.border += float(maps[:, mask].double().sum())
        self.border_n += int(mask.sum()) * maps.shape[0]
        self.interior += float(maps[:, ~mask].double().sum())
        self.interior_n += int((~mask).sum()) * maps.shape[0]

    @property
    def score(self) -> float:
        """Mean border activation over mean interior activation (NaN when undefined)."""
        if not self.border_n or not self.interior_n or self.interior == 0:
            return float("nan")
        return (self.border / self.border_n) / (self.interior / self.interior_n)


@torch.no_grad()
def border_scores(model: nn.Module, layers: Sequence[str], batches: Iterable[torch.Tensor],
                  device: torch.device) -> dict[str, float]:
    """The border-artifact score of each layer over the images of ``batches``."""
    sums = {name: BorderSums() for name in layers}
    model.eval().to(device)
    with channel_mean_maps(model, layers) as maps:
        for images in batches:
            maps.clear()
            model(images.to(device))
            for name in layers:
                if name in maps:
                    sums[name].add(maps[name])
    return {name: s.score for name, s in sums.items()}


@torch.no_grad()
def activation_maps(model: nn.Module, layers: Sequence[str], images: torch.Tensor,
                    device: torch.device) -> dict[str, np.ndarray]:
    """Channel-mean |activation| maps [N, H, W] of ``images`` at each layer."""
    model.eval().to(device)
    with channel_mean_maps(model, layers) as maps:
        model(images.to(device))
        return {name: maps[name].numpy() for name in layers if name in maps}
