"""Find and check an ImageFolder tree: ``root/{train,val}/<class>/<image>``.

ImageNet (ILSVRC2012) needs that layout under ``root``; the official val tarball is one flat folder of
50,000 images, so its images must first be moved into their class (WordNet id) folders. Either:

* put ``ILSVRC2012_devkit_t12.tar.gz``, ``ILSVRC2012_img_train.tar`` and ``ILSVRC2012_img_val.tar`` in
  ``root`` and run ``python -c "from torchvision.datasets import ImageNet as I; I('root', split='train');
  I('root', split='val')"`` (needs scipy): torchvision unpacks both splits into ``root/train/<wnid>/``
  and ``root/val/<wnid>/``, using the devkit's val ground truth; or
* by hand: ``mkdir -p root/train root/val``; ``tar -xf ILSVRC2012_img_train.tar -C root/train`` and in
  ``root/train`` unpack each ``<wnid>.tar`` into a ``<wnid>/`` folder; ``tar -xf ILSVRC2012_img_val.tar
  -C root/val``, then in ``root/val`` run the ``valprep.sh`` that pytorch/examples' ImageNet README
  points to (https://raw.githubusercontent.com/soumith/imagenetloader.torch/master/valprep.sh).

Both splits then hold the same 1000 class folders, which is what is checked here.
"""

from __future__ import annotations

import os
from pathlib import Path

from torchvision.datasets.folder import IMG_EXTENSIONS

from padlib.errors import PadlibError

SPLITS = ("train", "val")


def scan_imagefolder(root: Path) -> tuple[list[str], dict[str, tuple[list[str], list[int]]]]:
    """(classes, {split: (image paths relative to root/split, targets)}) of a checked tree."""
    if not root.is_dir():
        raise PadlibError(
            f"data.root {root} is not a directory; point it at a folder holding train/ and val/"
        )
    if not any(root.iterdir()):
        raise PadlibError(f"data.root {root} is empty; put the train/ and val/ class folders there")
    for split in SPLITS:
        if not (root / split).is_dir():
            raise PadlibError(f"{root / split} is missing; data.root must hold train/ and val/ class folders")
    classes = {split: _class_names(root / split) for split in SPLITS}
    _check_same_classes(root, classes["train"], classes["val"])
    index = {name: k for k, name in enumerate(classes["train"])}
    found = {}
    for split in SPLITS:
        files: list[str] = []
        targets: list[int] = []
        for name in classes[split]:
            images = _images(root / split, name)
            files += images
            targets += [index[name]] * len(images)
        found[split] = (files, targets)
    return classes["train"], found


def _class_names(split_dir: Path) -> list[str]:
    """Sorted names of the visible sub-folders of ``split_dir``; at least one."""
    names = sorted(e.name for e in os.scandir(split_dir) if e.is_dir() and not e.name.startswith("."))
    if not names:
        raise PadlibError(
            f"{split_dir} has no class folders; put each class's images in {split_dir}/<class>/"
        )
    return names


def _check_same_classes(root: Path, train: list[str], val: list[str]) -> None:
    """Raise naming the classes that only one split has."""
    only_train = sorted(set(train) - set(val))
    only_val = sorted(set(val) - set(train))
    if only_train or only_val:
        parts = [
            f"only in {split}/: {_some(names)}"
            for split, names in (("train", only_train), ("val", only_val))
            if names
        ]
        raise PadlibError(
            f"train/ and val/ under {root} have different class folders ({'; '.join(parts)}); "
            "give both splits the same classes"
        )


def _some(names: list[str], limit: int = 5) -> str:
    """The first ``limit`` names, and how many more."""
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def _images(split_dir: Path, name: str) -> list[str]:
    """Sorted image files under ``split_dir/name`` (recursively, hidden ones skipped), relative to ``split_dir``."""
    found = []
    for dirpath, dirnames, filenames in os.walk(split_dir / name, followlinks=True):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        rel = os.path.relpath(dirpath, split_dir)
        found += [
            os.path.join(rel, f)
            for f in filenames
            if not f.startswith(".") and f.lower().endswith(IMG_EXTENSIONS)
        ]
    if not found:
        raise PadlibError(
            f"class folder {split_dir / name} has no images ({', '.join(IMG_EXTENSIONS)}); add some or remove it"
        )
    return sorted(found)
