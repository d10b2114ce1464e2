"""Activations at chosen layers: which layers to look at (each ResNet stage / VGG block by default), forward
hooks that keep each layer's channel-mean |activation| map, and those maps for a batch of images (the
activation figure; ``border_score`` scores the same maps).
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import contextmanager

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


def pick_layers(model: nn.Module, layers: Sequence[str] | None) -> list[str]:
    """``layers`` (PadlibError naming one the model lacks), or the model's ``default_layers``."""
    chosen = list(layers) if layers else default_layers(model)
    check_layers(model, chosen)
    return chosen


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


@torch.no_grad()
def activation_maps(model: nn.Module, layers: Sequence[str], images: torch.Tensor,
                    device: torch.device) -> dict[str, np.ndarray]:
    """Channel-mean |activation| maps [N, H, W] of ``images`` at each layer."""
    model.eval().to(device)
    with channel_mean_maps(model, layers) as maps:
        model(images.to(device))
        return {name: maps[name].numpy() for name in layers if name in maps}
