"""A small synthetic ImageFolder tree of JPEGs that a small CNN learns in a few epochs.

Class ``k`` is a shape (``SHAPES[k % 6]``) in its own hue on a noisy grey gradient. The shape sits anywhere,
often cut by the image border, and half the images also carry a band of the class hue along one edge
(side ``k % 4``): part of the evidence lies at the border, where the padding mode makes a difference.
"""

from __future__ import annotations

import colorsys
import fcntl
import json
import shutil
from pathlib import Path

import numpy as np
from PIL import Image

from padlib.errors import PadlibError

SHAPES = ("disc", "square", "ring", "cross", "triangle", "diamond")
_MARKER = ".padlib-synthetic.json"  # written last: the tree is complete
_WRITING = ".padlib-synthetic.writing"  # written first: the tree is ours, maybe half-written
_LOCK = ".padlib-synthetic.lock"
_FORMAT = 1  # bump when the drawing changes, so old trees are regenerated


def make_synthetic_imagefolder(
    root: str | Path,
    num_classes: int = 4,
    train_per_class: int = 16,
    val_per_class: int = 8,
    size: int = 48,
    seed: int = 0,
) -> Path:
    """Write ``root/{train,val}/<class>/*.jpg`` (deterministic for ``seed``), or reuse a complete tree
    written with the same arguments; returns ``root``."""
    root = Path(root)
    params = {
        "format": _FORMAT,
        "num_classes": num_classes,
        "train_per_class": train_per_class,
        "val_per_class": val_per_class,
        "size": size,
        "seed": seed,
    }
    root.mkdir(parents=True, exist_ok=True)
    # The processes of a multi-process run all build the data at once: one writes, the others then reuse.
    with open(root / _LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not _is_complete(root, params):
            _clear(root)
            for split, per_class in (("train", train_per_class), ("val", val_per_class)):
                _write_split(root / split, split, per_class, num_classes, size, seed)
            (root / _MARKER).write_text(json.dumps(params, sort_keys=True))
            (root / _WRITING).unlink()
    return root


def _is_complete(root: Path, params: dict[str, int]) -> bool:
    """Whether ``root`` holds a finished tree written with ``params``."""
    try:
        return json.loads((root / _MARKER).read_text()) == params
    except (OSError, ValueError):
        return False


def _clear(root: Path) -> None:
    """Remove a tree this module wrote (stale or half-written); refuse to touch anyone else's."""
    ours = (root / _MARKER).exists() or (root / _WRITING).exists()
    if not ours and ((root / "train").exists() or (root / "val").exists()):
        raise PadlibError(
            f"{root} already holds train/ or val/ that make_synthetic_imagefolder did not write; "
            "point data.root at an empty or new folder"
        )
    (root / _WRITING).touch()
    (root / _MARKER).unlink(missing_ok=True)
    for split in ("train", "val"):
        shutil.rmtree(root / split, ignore_errors=True)


def class_names(num_classes: int) -> list[str]:
    """Folder names of the classes, sorted as ImageFolder sorts them."""
    return [f"{k:02d}_{SHAPES[k % len(SHAPES)]}" for k in range(num_classes)]


def _write_split(folder: Path, split: str, per_class: int, num_classes: int, size: int, seed: int) -> None:
    """Draw and save ``per_class`` JPEGs for each class."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
    for k, name in enumerate(class_names(num_classes)):
        (folder / name).mkdir(parents=True)
        for j in range(per_class):
            # One generator per image: an image does not depend on how many others are drawn.
            rng = np.random.default_rng((seed, split == "val", k, j))
            pixels = _draw(rng, k, num_classes, yy, xx)
            Image.fromarray(pixels).save(folder / name / f"{j:05d}.jpg", quality=90)


def _draw(rng: np.random.Generator, k: int, num_classes: int, yy: np.ndarray, xx: np.ndarray) -> np.ndarray:
    """One uint8 [size, size, 3] image of class ``k``."""
    size = yy.shape[0]
    grey = rng.uniform(50, 200) + rng.uniform(-15, 15, 3)
    slope = rng.uniform(-60, 60, (2, 3))
    img = grey + (yy[..., None] / size - 0.5) * slope[0] + (xx[..., None] / size - 0.5) * slope[1]
    img += rng.normal(0, 12, img.shape)

    hue = (k / num_classes + rng.uniform(-0.25, 0.25) / num_classes) % 1.0
    colour = 255 * np.array(colorsys.hsv_to_rgb(hue, rng.uniform(0.7, 1.0), rng.uniform(0.75, 1.0)))
    radius = size * rng.uniform(0.15, 0.3)
    cy, cx = rng.uniform(0, size, 2)
    mask = _shape_mask(SHAPES[k % len(SHAPES)], yy - cy, xx - cx, radius)
    img[mask] = colour + rng.normal(0, 12, (int(mask.sum()), 3))

    if rng.random() < 0.5:
        band = max(1, size // 16)
        edge = [np.s_[:band, :], np.s_[:, -band:], np.s_[-band:, :], np.s_[:, :band]][k % 4]
        img[edge] = colour
    return np.clip(img, 0, 255).astype(np.uint8)


def _shape_mask(shape: str, dy: np.ndarray, dx: np.ndarray, r: float) -> np.ndarray:
    """Pixels inside ``shape`` of radius ``r``, given offsets ``dy``, ``dx`` from its centre."""
    ay, ax = np.abs(dy), np.abs(dx)
    if shape == "disc":
        return dy**2 + dx**2 <= r**2
    if shape == "square":
        return np.maximum(ay, ax) <= 0.8 * r
    if shape == "ring":
        return ((0.5 * r) ** 2 <= dy**2 + dx**2) & (dy**2 + dx**2 <= r**2)
    if shape == "cross":
        return (np.minimum(ay, ax) <= 0.3 * r) & (np.maximum(ay, ax) <= r)
    if shape == "triangle":
        return (dy <= 0.7 * r) & (dy + r >= 2 * ax)
    return ay + ax <= r  # diamond
