"""Read and check the ``data`` config mapping (dict or OmegaConf DictConfig), filling in defaults."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from padlib.configcheck import boolean, integer, known_keys
from padlib.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from padlib.errors import PadlibError

DATASETS = ("imagenet", "folder", "fashion_mnist", "synthetic")
# Default train/val crop side: the paper's 224 for photos; 32 for the small-image sets.
_IMAGE_SIZE = {"imagenet": 224, "folder": 224, "fashion_mnist": 32, "synthetic": 32}
# The paper resizes to 256 before the 224 centre crop; Fashion-MNIST is resized straight to the crop side.
_RESIZE_RATIO = 256 / 224
# Keys of the ``data`` group that configure the engine's DataLoader, not the datasets.
LOADER_KEYS = ("workers",)


@dataclass(frozen=True)
class SyntheticConfig:
    """How ``make_synthetic_imagefolder`` draws the synthetic dataset."""

    num_classes: int = 4
    train_per_class: int = 16
    val_per_class: int = 8
    size: int = 48
    seed: int = 0


@dataclass(frozen=True)
class DataConfig:
    """A checked ``data`` config."""

    name: str
    root: Path | None
    image_size: int
    resize_size: int
    crop_scale: tuple[float, float]
    hflip: bool
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    train_subset: int | None
    val_subset: int | None
    synthetic: SyntheticConfig
    # "synthetic": when Fashion-MNIST is wanted with no root and is nowhere to be found, train on
    # generated data instead of failing (the no-override default of train.py)
    fallback: str | None = None


def read_config(cfg: Mapping[str, Any]) -> DataConfig:
    """The checked ``DataConfig`` of ``cfg``; PadlibError naming the first bad key."""
    known_keys({k: v for k, v in cfg.items() if k not in LOADER_KEYS}, DataConfig, "data")
    name = cfg.get("name")
    if name not in DATASETS:
        raise PadlibError(f"data.name={name!r} is not a dataset; use one of {', '.join(DATASETS)}")
    root = cfg.get("root")
    image_size = integer(cfg, "image_size", _IMAGE_SIZE[name], 1, "data")
    resize_default = image_size if name == "fashion_mnist" else round(image_size * _RESIZE_RATIO)
    resize_size = integer(cfg, "resize_size", resize_default, 1, "data")
    if resize_size < image_size:
        raise PadlibError(
            f"data.resize_size={resize_size} is below data.image_size={image_size}, so the centre crop "
            "would pad the image; make resize_size >= image_size"
        )
    return DataConfig(
        name=name,
        root=Path(str(root)).expanduser() if root not in (None, "") else None,
        image_size=image_size,
        resize_size=resize_size,
        crop_scale=_crop_scale(cfg.get("crop_scale", (0.08, 1.0))),
        hflip=boolean(cfg, "hflip", True, "data"),
        mean=_triple(cfg, "mean", IMAGENET_MEAN, positive=False),
        std=_triple(cfg, "std", IMAGENET_STD, positive=True),
        train_subset=integer(cfg, "train_subset", None, 1, "data"),
        val_subset=integer(cfg, "val_subset", None, 1, "data"),
        synthetic=_synthetic(cfg.get("synthetic") or {}),
        fallback=_fallback(cfg.get("fallback")),
    )


def _fallback(value: Any) -> str | None:
    """``data.fallback``: null or ``synthetic``."""
    if value not in (None, "synthetic"):
        raise PadlibError(f"data.fallback={value!r} must be null or synthetic")
    return value


def _floats(value: Any) -> tuple[float, ...]:
    """``value`` (a number or a sequence of numbers) as a tuple of floats; () if it is neither."""
    if isinstance(value, int | float):
        return (float(value),)
    try:
        return () if isinstance(value, str) else tuple(float(v) for v in value)
    except (TypeError, ValueError):
        return ()


def _crop_scale(value: Any) -> tuple[float, float]:
    """RandomResizedCrop's [min, max] area fraction, 0 < min <= max <= 1."""
    scale = _floats(value)
    if len(scale) != 2 or not 0 < scale[0] <= scale[1] <= 1:
        raise PadlibError(f"data.crop_scale={value!r} must be [min, max] area fractions, 0 < min <= max <= 1")
    return scale  # type: ignore[return-value]


def _triple(cfg: Mapping[str, Any], key: str, default: tuple[float, ...], positive: bool) -> Any:
    """A per-channel (R, G, B) triple; one number means the same for all three channels."""
    value = cfg.get(key, default)
    values = _floats(value)
    if len(values) not in (1, 3) or (positive and min(values) <= 0):
        raise PadlibError(
            f"data.{key}={value!r} must be one number or three (R, G, B)" + (", all > 0" if positive else "")
        )
    return values * 3 if len(values) == 1 else values


def _synthetic(cfg: Mapping[str, Any]) -> SyntheticConfig:
    """The checked ``data.synthetic`` sub-mapping."""
    if not isinstance(cfg, Mapping):
        raise PadlibError(
            f"data.synthetic={cfg!r} must be a mapping of {', '.join(f.name for f in fields(SyntheticConfig))}"
        )
    known_keys(cfg, SyntheticConfig, "data.synthetic")
    return SyntheticConfig(
        **{
            f.name: integer(cfg, f.name, f.default, 0 if f.name == "seed" else 1, "data.synthetic")
            for f in fields(SyntheticConfig)
        }
    )
