"""The paper's image transforms, for PIL images (image folders) and uint8 tensors (Fashion-MNIST).

Train: RandomResizedCrop(image_size, scale) + RandomHorizontalFlip; val: Resize + CenterCrop; both then
ToTensor + Normalize. Images are only ever cropped and resized, never padded: padding the images would
confound a study of padding.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TypeVar

import torch
import torch.nn.functional as F
from PIL import Image
from torchvision.transforms import v2
from torchvision.transforms.v2.functional import pil_to_tensor, to_pil_image

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# torchvision's RandomResizedCrop defaults.
_RATIO = (3 / 4, 4 / 3)
_TRIES = 10

ImageLike = Image.Image | torch.Tensor  # PIL image, or a [C, H, W] tensor with values in 0..255
T = TypeVar("T")


class RandomResizedCropFlip:
    """RandomResizedCrop(size, scale) then, if ``hflip``, a horizontal flip with probability 1/2.

    Samples crops from the same distribution as torchvision's RandomResizedCrop, but takes all its
    randomness from torch's global RNG in one draw instead of up to 32 small ones: that makes the whole
    per-sample transform of a 28px tensor ~3x faster, which matters when two cores feed the training loop.
    """

    def __init__(self, size: int, scale: Sequence[float], hflip: bool) -> None:
        self.size = size
        self.scale = (float(scale[0]), float(scale[1]))
        self.hflip = hflip

    def __call__(self, img: ImageLike) -> ImageLike:
        """A random crop of ``img`` resized to ``size`` x ``size``, maybe flipped."""
        height, width = _hw(img)
        u = torch.rand(2 * _TRIES + 3).tolist()
        top, left, h, w = self._box(height, width, u)
        return _resized_crop(img, top, left, h, w, self.size, flip=self.hflip and u[-1] < 0.5)

    def _box(self, height: int, width: int, u: list[float]) -> tuple[int, int, int, int]:
        """(top, left, h, w) of the crop, following torchvision's RandomResizedCrop.get_params."""
        area = height * width
        log_lo, log_hi = math.log(_RATIO[0]), math.log(_RATIO[1])
        for k in range(_TRIES):
            target = area * (self.scale[0] + (self.scale[1] - self.scale[0]) * u[2 * k])
            ratio = math.exp(log_lo + (log_hi - log_lo) * u[2 * k + 1])
            w = round(math.sqrt(target * ratio))
            h = round(math.sqrt(target / ratio))
            if 0 < w <= width and 0 < h <= height:
                return int((height - h + 1) * u[-3]), int((width - w + 1) * u[-2]), h, w
        # Fallback after 10 misses: the central crop with the aspect ratio clamped into range.
        w, h = width, height
        if width / height < _RATIO[0]:
            h = round(width / _RATIO[0])
        elif width / height > _RATIO[1]:
            w = round(height * _RATIO[1])
        return (height - h) // 2, (width - w) // 2, h, w


def _hw(img: ImageLike) -> tuple[int, int]:
    """(height, width) of a PIL image or a [..., H, W] tensor."""
    if isinstance(img, torch.Tensor):
        return img.shape[-2], img.shape[-1]
    return img.height, img.width


def _resized_crop(img: ImageLike, top: int, left: int, h: int, w: int, size: int, flip: bool) -> ImageLike:
    """The box (top, left, h, w) of ``img`` resized (bilinear, antialiased) to ``size`` x ``size``."""
    if isinstance(img, torch.Tensor):
        crop = img[None, :, top : top + h, left : left + w].float()
        # Antialiasing only changes downscaling, and costs 4x when upscaling (the usual case at 28 -> 32).
        shrink = h > size or w > size
        out = F.interpolate(crop, size=(size, size), mode="bilinear", align_corners=False, antialias=shrink)[
            0
        ]
        return out.flip(-1) if flip else out
    out = img.resize((size, size), Image.Resampling.BILINEAR, box=(left, top, left + w, top + h))
    return out.transpose(Image.Transpose.FLIP_LEFT_RIGHT) if flip else out


def val_geometry(resize_size: int, image_size: int) -> v2.Compose:
    """Resize the short side to ``resize_size``, then take the central ``image_size`` square."""
    return v2.Compose([v2.Resize(resize_size, antialias=True), v2.CenterCrop(image_size)])


class Normalize:
    """Image with values in 0..255 (PIL, or [1 or 3, H, W] tensor) -> float [3, H, W], (x/255 - mean) / std.

    Grey images come out as three equal channels, each normalised with its own mean and std.
    """

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        std_t = torch.tensor(std, dtype=torch.float32).view(3, 1, 1)
        self.scale = 1 / (255 * std_t)
        self.shift = -torch.tensor(mean, dtype=torch.float32).view(3, 1, 1) / std_t

    def __call__(self, img: ImageLike) -> torch.Tensor:
        """The normalised float tensor of ``img``."""
        x = pil_to_tensor(img) if isinstance(img, Image.Image) else img
        # One fused op, broadcasting a grey channel to three.
        return torch.addcmul(self.shift, x.float(), self.scale)


def to_pil(img: ImageLike) -> Image.Image:
    """An RGB PIL image of ``img`` (a grey [1, H, W] tensor gets three equal channels)."""
    if isinstance(img, Image.Image):
        return img.convert("RGB")
    return to_pil_image(img.round().clamp(0, 255).to(torch.uint8).expand(3, -1, -1))


def with_seed(fn: Callable[[ImageLike], T], img: ImageLike, seed: int) -> T:
    """``fn(img)`` with torch's global RNG seeded by ``seed``; the caller's RNG state is left as it was."""
    state = torch.get_rng_state()
    # default_generator.manual_seed, not torch.manual_seed: the latter also seeds every accelerator
    # and costs ~200 us, more than the whole transform.
    torch.default_generator.manual_seed(seed)
    try:
        return fn(img)
    finally:
        torch.set_rng_state(state)
