"""Tests of padlib.data on small trees of real JPEG files and tiny IDX files written on the fly."""

from __future__ import annotations

import gzip
import logging
import pickle
import re
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from PIL import Image

from padlib.data import DATASETS, Batch, build_data, collate, make_synthetic_imagefolder
from padlib.data.fashion_mnist import CLASSES, FILES
from padlib.data.subset import balanced_subset
from padlib.errors import PadlibError

DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


def write_jpeg(path: Path, colour: tuple[int, int, int], size: tuple[int, int] = (40, 30)) -> None:
    """A solid-colour JPEG of (width, height) ``size``, with a gradient so crops differ."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.empty((size[1], size[0], 3), dtype=np.uint8)
    pixels[:] = colour
    pixels[:, :, 0] = np.linspace(0, 255, size[0], dtype=np.uint8)[None, :] // 2 + colour[0] // 2
    Image.fromarray(pixels).save(path, quality=95)


def make_tree(root: Path, layout: dict[str, dict[str, int]]) -> Path:
    """``root/<split>/<class>/<j>.jpg`` with ``layout[split][class]`` images per class."""
    for split, classes in layout.items():
        (root / split).mkdir(parents=True, exist_ok=True)
        for k, (name, count) in enumerate(classes.items()):
            (root / split / name).mkdir(exist_ok=True)
            for j in range(count):
                write_jpeg(root / split / name / f"{j}.jpg", (60 * k, 100, 200 - 40 * k))
    return root


def write_idx(path: Path, array: np.ndarray, gz: bool) -> None:
    """``array`` (uint8) as an IDX file, gzipped if ``gz``."""
    data = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(data) if gz else data)


def make_idx_tree(folder: Path, n_train: int = 30, n_val: int = 20, gz: bool = True) -> Path:
    """The four Fashion-MNIST IDX files with random 28x28 images and labels 0..9 in turn."""
    rng = np.random.default_rng(0)
    for split, n in (("train", n_train), ("val", n_val)):
        suffix = ".gz" if gz else ""
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        write_idx(folder / f"{FILES[f'{split}_images']}{suffix}", images, gz)
        write_idx(folder / f"{FILES[f'{split}_labels']}{suffix}", np.arange(n, dtype=np.uint8) % 10, gz)
    return folder


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    return make_tree(tmp_path / "tree", {s: {"cat": 5, "dog": 4, "eel": 3} for s in ("train", "val")})


def folder_cfg(root: Path, **extra: object) -> dict:
    return {"name": "folder", "root": str(root), "image_size": 16, "resize_size": 20, **extra}


def raises(match: str):
    """pytest.raises for a one-line PadlibError whose message contains ``match``."""
    return pytest.raises(PadlibError, match=match)


# --- items ---------------------------------------------------------------------------------------


def test_folder_items_have_shape_dtype_and_normalisation(tree: Path) -> None:
    bundle = build_data(folder_cfg(tree))
    assert (bundle.name, bundle.classes, bundle.num_classes) == ("folder", ["cat", "dog", "eel"], 3)
    assert (len(bundle.train), len(bundle.val)) == (12, 12)
    assert (bundle.mean, bundle.std) == (MEAN, STD)
    for ds in (bundle.train, bundle.val):
        image, target, index = ds[7]
        assert image.shape == (3, 16, 16) and image.dtype == torch.float32
        assert (target, index) == (1, 7)
    # Blue and green are constant in the files: normalised as (v / 255 - mean) / std (JPEG leaves ~1%).
    image, _, _ = bundle.val[0]
    expected = torch.tensor([(100 / 255 - MEAN[1]) / STD[1], (200 / 255 - MEAN[2]) / STD[2]])
    assert torch.allclose(image[1:].mean(dim=(1, 2)), expected, atol=0.05)
    raw = bundle.val_image(0)
    assert raw.mode == "RGB" and raw.size == (16, 16)


def test_val_is_deterministic_and_train_varies(tree: Path) -> None:
    bundle = build_data(folder_cfg(tree))
    assert torch.equal(bundle.val[3][0], bundle.val[3][0])
    assert any(not torch.equal(bundle.train[3][0], bundle.train[3][0]) for _ in range(5))


@pytest.mark.parametrize("name", ["folder", "fashion_mnist"])
def test_seeded_augmentation_is_a_function_of_the_seed_only(tree: Path, tmp_path: Path, name: str) -> None:
    root = tree if name == "folder" else make_idx_tree(tmp_path / "idx")
    train = build_data({**folder_cfg(root), "name": name}).train
    torch.manual_seed(123)
    state = torch.get_rng_state()
    first = train[(2, 99)][0]
    assert torch.equal(torch.get_rng_state(), state), "seeded item moved the caller's RNG"
    torch.rand(10)  # another ambient RNG position must not matter
    assert torch.equal(train[(2, 99)][0], first)
    assert not torch.equal(train[(2, 100)][0], first)


def test_one_seed_for_every_sample_still_gives_each_its_own_crop(tree: Path) -> None:
    train = build_data(folder_cfg(tree)).train
    assert (tree / "train/cat/0.jpg").read_bytes() == (tree / "train/cat/1.jpg").read_bytes()
    assert not torch.equal(train[(0, 99)][0], train[(1, 99)][0])


def test_plain_keys_use_the_ambient_rng(tree: Path) -> None:
    train = build_data(folder_cfg(tree)).train
    torch.manual_seed(5)
    a = train[4][0]
    torch.manual_seed(5)
    assert torch.equal(train[4][0], a)


def test_bad_keys(tree: Path) -> None:
    train = build_data(folder_cfg(tree)).train
    with pytest.raises(IndexError):
        train[len(train)]
    assert train[np.int64(1)][2] == 1 and train[(torch.tensor(1), np.int64(3))][2] == 1


def test_datasets_pickle_for_dataloader_workers(tree: Path) -> None:
    bundle = build_data(folder_cfg(tree))
    clone = pickle.loads(pickle.dumps(bundle.train))
    assert torch.equal(clone[(1, 2)][0], bundle.train[(1, 2)][0])


# --- collate and unreadable files ---------------------------------------------------------------


def test_collate_stacks_and_counts_dropped_items(tree: Path) -> None:
    val = build_data(folder_cfg(tree)).val
    batch = collate([val[0], None, val[5], None])
    assert isinstance(batch, Batch) and batch.skipped == 2
    assert batch.images.shape == (2, 3, 16, 16)
    assert batch.targets.dtype == batch.indices.dtype == torch.int64
    assert batch.indices.tolist() == [0, 5] and batch.targets.tolist() == [0, 1]


def test_collate_of_only_unreadable_items_is_empty() -> None:
    batch = collate([None, None])
    assert batch.skipped == 2 and len(batch.targets) == len(batch.indices) == 0
    assert batch.images.shape[:2] == (0, 3) and batch.images.dim() == 4


def test_dataloader_with_seeded_keys(tree: Path) -> None:
    train = build_data(folder_cfg(tree)).train
    loader = torch.utils.data.DataLoader(
        train, batch_size=4, sampler=[(i, 7) for i in range(6)], collate_fn=collate
    )
    batches = list(loader)
    assert [b.images.shape[0] for b in batches] == [4, 2]
    assert torch.equal(batches[0].images[1], train[(1, 7)][0])


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_unreadable_image_gives_none_and_a_warning(tree: Path, caplog, damage: str) -> None:
    bad = tree / "val" / "dog" / "0.jpg"
    data = bad.read_bytes()
    bad.write_bytes(b"this is not a jpeg" * 10 if damage == "garbage" else data[: len(data) // 2])
    bundle = build_data(folder_cfg(tree))
    index = bundle.val.targets.tolist().index(1)  # dog/0.jpg is the first dog
    with caplog.at_level(logging.WARNING, logger="padlib.data"):
        assert bundle.val[index] is None
        assert bundle.val_image(index) is None
    assert str(bad) in caplog.text
    assert collate([bundle.val[0], bundle.val[index]]).skipped == 1


# --- bad input ----------------------------------------------------------------------------------


def test_bad_folder_trees(tmp_path: Path) -> None:
    with raises("data.root is not set"):
        build_data({"name": "folder"})
    with raises("is not a directory"):
        build_data(folder_cfg(tmp_path / "nowhere"))
    (tmp_path / "empty").mkdir()
    with raises("is empty"):
        build_data(folder_cfg(tmp_path / "empty"))
    only_train = make_tree(tmp_path / "only_train", {"train": {"a": 1}})
    with raises(r"val is missing"):
        build_data(folder_cfg(only_train))
    only_val = make_tree(tmp_path / "only_val", {"val": {"a": 1}})
    with raises(r"train is missing"):
        build_data(folder_cfg(only_val))
    no_classes = make_tree(tmp_path / "no_classes", {"train": {}, "val": {"a": 1}})
    with raises("train has no class folders"):
        build_data(folder_cfg(no_classes))


def test_class_mismatch_names_the_classes(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "t", {"train": {"a": 1, "b": 1, "c": 1}, "val": {"a": 1, "d": 1}})
    with raises(r"only in train/: b, c; only in val/: d"):
        build_data(folder_cfg(root))


def test_class_folder_without_images(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "t", {"train": {"a": 1, "b": 1}, "val": {"a": 1, "b": 0}})
    (root / "val" / "b" / "notes.txt").write_text("not an image")
    with raises(r"val/b has no images"):
        build_data(folder_cfg(root))


@pytest.mark.parametrize(
    ("cfg", "match"),
    [
        ({"name": "cifar"}, "data.name='cifar' is not a dataset; use one of imagenet, folder, fashion_mnist"),
        ({}, "data.name=None"),
        ({"name": "folder", "image_sise": 32}, "unknown key.* image_sise"),
        ({"name": "folder", "image_size": 0}, "data.image_size=0"),
        ({"name": "folder", "image_size": 32, "resize_size": 28}, "data.resize_size=28 .* would pad"),
        ({"name": "folder", "crop_scale": [0.5, 0.1]}, "data.crop_scale"),
        ({"name": "folder", "hflip": "yes"}, "data.hflip"),
        ({"name": "folder", "std": [0.2, 0.0, 0.2]}, "data.std"),
        ({"name": "folder", "mean": [0.5, 0.5]}, "data.mean"),
        ({"name": "folder", "train_subset": -3}, "data.train_subset=-3"),
        ({"name": "synthetic", "synthetic": {"classes": 3}}, "data.synthetic has unknown key.* classes"),
        ({"name": "synthetic", "synthetic": {"size": 0}}, "data.synthetic.size=0"),
    ],
)
def test_bad_config_values(cfg: dict, match: str) -> None:
    with raises(match) as info:
        build_data(cfg)
    assert "\n" not in str(info.value)


def test_datasets_constant() -> None:
    assert DATASETS == ("imagenet", "folder", "fashion_mnist", "synthetic")


@pytest.mark.parametrize("name", ["fashion_mnist", "folder", "imagenet", "synthetic"])
def test_the_repo_data_configs_are_accepted(name: str, tree: Path, tmp_path: Path) -> None:
    path = Path(__file__).parents[1] / "configs" / "data" / f"{name}.yaml"
    if not path.is_file():
        pytest.skip(f"{path} not written yet")
    cfg = OmegaConf.load(path)
    roots = {"fashion_mnist": make_idx_tree(tmp_path / "idx"), "synthetic": tmp_path / "synthetic"}
    cfg.root, cfg.train_subset = str(roots.get(name, tree)), None  # small stand-ins for the real data
    bundle = build_data(cfg)
    assert bundle.train[(0, 1)][0].shape == (3, cfg.image_size, cfg.image_size)


def test_omegaconf_config_and_defaults(tree: Path) -> None:
    cfg = OmegaConf.create({"name": "imagenet", "root": str(tree), "crop_scale": [0.5, 1.0], "mean": 0.5})
    bundle = build_data(cfg)
    assert bundle.train[0][0].shape == (3, 224, 224) and bundle.val_image(0).size == (224, 224)
    assert bundle.mean == (0.5, 0.5, 0.5) and bundle.name == "imagenet"


# --- subsets ------------------------------------------------------------------------------------


def test_subsets_are_deterministic_balanced_and_sized(tree: Path) -> None:
    a = build_data(folder_cfg(tree, train_subset=6, val_subset=3))
    b = build_data(folder_cfg(tree, train_subset=6, val_subset=3))
    assert (len(a.train), len(a.val)) == (6, 3)
    assert a.train.files.tolist() == b.train.files.tolist()
    assert sorted(a.train.targets.tolist()) == [0, 0, 1, 1, 2, 2]
    assert sorted(a.val.targets.tolist()) == [0, 1, 2]
    assert a.train[5][2] == 5  # indices count within the subset
    with raises("data.val_subset=13 asks for more than the 12 images"):
        build_data(folder_cfg(tree, val_subset=13))


def test_balanced_subset_of_unbalanced_classes() -> None:
    targets = [0] * 50 + [1] * 5 + [2] * 45
    keep = balanced_subset(targets, 30, "x")
    counts = np.bincount(np.asarray(targets)[keep])
    assert counts.tolist() == [13, 5, 12] or counts.tolist() == [12, 5, 13]
    assert np.array_equal(keep, np.sort(keep)) and len(set(keep.tolist())) == 30


# --- Fashion-MNIST ------------------------------------------------------------------------------


@pytest.mark.parametrize("layout", ["flat_gz", "flat_raw", "torchvision"])
def test_fashion_mnist_from_idx_files(tmp_path: Path, layout: str) -> None:
    folder = tmp_path / "fm" / ("FashionMNIST/raw" if layout == "torchvision" else "")
    make_idx_tree(folder, gz=layout != "flat_raw")
    bundle = build_data({"name": "fashion_mnist", "root": str(tmp_path / "fm"), "train_subset": 20})
    assert bundle.classes == list(CLASSES) and bundle.num_classes == 10
    assert (len(bundle.train), len(bundle.val)) == (20, 20)
    image, target, index = bundle.train[(3, 1)]
    assert image.shape == (3, 32, 32) and image.dtype == torch.float32 and index == 3
    assert target == bundle.train.targets[3]
    # Grey in, three channels out: un-normalised, they agree.
    image, _, _ = bundle.val[0]
    grey = image * torch.tensor(STD).view(3, 1, 1) + torch.tensor(MEAN).view(3, 1, 1)
    assert torch.allclose(grey[0], grey[1], atol=1e-5) and torch.allclose(grey[0], grey[2], atol=1e-5)
    picture = bundle.val_image(0)
    assert picture.mode == "RGB" and picture.size == (32, 32)
    assert np.allclose(np.asarray(picture)[..., 0], grey[0].numpy() * 255, atol=1.0)


def test_fashion_mnist_resize_never_pads(tmp_path: Path) -> None:
    make_idx_tree(tmp_path)
    bundle = build_data(
        {"name": "fashion_mnist", "root": str(tmp_path), "image_size": 20, "crop_scale": [1, 1]}
    )
    assert bundle.val[0][0].shape == (3, 20, 20) and bundle.train[0][0].shape == (3, 20, 20)


@pytest.mark.skipif(
    not DEBIAN_FASHION_MNIST.is_dir(),
    reason=f"{DEBIAN_FASHION_MNIST} missing: `apt-get install dataset-fashion-mnist` provides it",
)
def test_fashion_mnist_from_the_debian_package() -> None:
    bundle = build_data({"name": "fashion_mnist", "root": None})
    assert (len(bundle.train), len(bundle.val)) == (60000, 10000)
    assert np.bincount(bundle.val.targets).tolist() == [1000] * 10
    assert bundle.train[(0, 0)][0].shape == (3, 32, 32)


def test_fashion_mnist_missing_files(tmp_path: Path) -> None:
    make_idx_tree(tmp_path)
    (tmp_path / f"{FILES['val_labels']}.gz").unlink()
    where = re.escape(
        f"not found in {tmp_path}, {tmp_path}/FashionMNIST/raw; `apt-get install dataset-fashion-mnist`"
    )
    with raises(where):
        build_data({"name": "fashion_mnist", "root": str(tmp_path)})


@pytest.mark.parametrize("damage", ["truncated_gz", "truncated_raw", "bad_magic", "label_count"])
def test_fashion_mnist_corrupt_idx(tmp_path: Path, damage: str) -> None:
    make_idx_tree(tmp_path, gz=damage != "truncated_raw")
    suffix = "" if damage == "truncated_raw" else ".gz"
    images = tmp_path / f"{FILES['train_images']}{suffix}"
    if damage.startswith("truncated"):
        images.write_bytes(images.read_bytes()[:-100])
        culprit = images
    elif damage == "bad_magic":
        write_idx(images, np.zeros((3, 28, 28, 1), dtype=np.uint8), gz=True)
        culprit = images
    else:
        culprit = tmp_path / f"{FILES['train_labels']}.gz"
        write_idx(culprit, np.zeros(7, dtype=np.uint8), gz=True)
    with raises(re.escape(str(culprit))) as info:
        build_data({"name": "fashion_mnist", "root": str(tmp_path)})
    assert "\n" not in str(info.value) and "dataset-fashion-mnist" in str(info.value)


# --- synthetic ----------------------------------------------------------------------------------


def _tree_bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*.jpg"))}


def test_synthetic_is_deterministic_and_reused(tmp_path: Path) -> None:
    a = make_synthetic_imagefolder(tmp_path / "a", num_classes=3, train_per_class=4, val_per_class=2, seed=1)
    b = make_synthetic_imagefolder(tmp_path / "b", num_classes=3, train_per_class=4, val_per_class=2, seed=1)
    c = make_synthetic_imagefolder(tmp_path / "c", num_classes=3, train_per_class=4, val_per_class=2, seed=2)
    assert len(_tree_bytes(a)) == 18 and _tree_bytes(a) == _tree_bytes(b) != _tree_bytes(c)
    first = a / "train" / "00_disc" / "00000.jpg"
    stamp = first.stat().st_mtime_ns
    make_synthetic_imagefolder(a, num_classes=3, train_per_class=4, val_per_class=2, seed=1)
    assert first.stat().st_mtime_ns == stamp, "a complete tree must be reused"
    make_synthetic_imagefolder(a, num_classes=2, train_per_class=4, val_per_class=2, seed=2)
    d = make_synthetic_imagefolder(tmp_path / "d", num_classes=2, train_per_class=4, val_per_class=2, seed=2)
    assert _tree_bytes(a) == _tree_bytes(d), "other arguments must regenerate the tree"


def test_synthetic_half_written_tree_is_regenerated(tmp_path: Path) -> None:
    root = make_synthetic_imagefolder(tmp_path, num_classes=2, train_per_class=3, val_per_class=2)
    complete = _tree_bytes(root)
    (root / ".padlib-synthetic.json").rename(root / ".padlib-synthetic.writing")  # as if killed mid-write
    (root / "train" / "01_square" / "00002.jpg").unlink()
    make_synthetic_imagefolder(root, num_classes=2, train_per_class=3, val_per_class=2)
    assert _tree_bytes(root) == complete


def test_synthetic_refuses_a_foreign_tree(tree: Path) -> None:
    with raises("did not write"):
        make_synthetic_imagefolder(tree)


def test_build_synthetic(tmp_path: Path) -> None:
    cfg = {"name": "synthetic", "root": str(tmp_path), "synthetic": {"num_classes": 3, "train_per_class": 4}}
    bundle = build_data(cfg)
    assert bundle.classes == ["00_disc", "01_square", "02_ring"]
    assert (len(bundle.train), len(bundle.val)) == (12, 24)
    assert bundle.train[0][0].shape == bundle.val[0][0].shape == (3, 32, 32)


def test_missing_fashion_mnist_falls_back_to_generated_data_only_when_asked(tmp_path, monkeypatch, caplog) -> None:
    monkeypatch.chdir(tmp_path)  # the generated tree goes to ./data/synthetic
    monkeypatch.setattr("padlib.data.fashion_mnist.DEFAULT_ROOTS", (tmp_path / "nowhere",))
    cfg = {"name": "fashion_mnist", "root": None, "train_subset": 12000}
    with pytest.raises(PadlibError, match="dataset-fashion-mnist"):
        build_data(cfg)
    with caplog.at_level(logging.WARNING, logger="padlib.data"):
        bundle = build_data({**cfg, "fallback": "synthetic"})
    assert bundle.name == "synthetic" and bundle.num_classes == 10
    assert len(bundle.train) == 2000 and len(bundle.val) == 500
    assert "generated data" in caplog.text and "not found" in caplog.text
    with pytest.raises(PadlibError, match="data.fallback"):
        build_data({**cfg, "fallback": "imagenet"})


def test_val_fingerprint_follows_the_files_and_pixels(tmp_path):
    """What the evaluator's cache keys a val set by: unchanged when nothing changed, changed by one replaced
    file (same name), one label or one pixel."""
    from padlib.data.datasets import ImageFiles, TensorImages
    from padlib.data.transforms import Normalize

    root = make_synthetic_imagefolder(tmp_path / "tree", num_classes=2, train_per_class=1, val_per_class=2, size=16)
    files = sorted(str(p.relative_to(root / "val")) for p in (root / "val").rglob("*.jpg"))
    norm = Normalize((0.5,) * 3, (0.5,) * 3)
    files_ds = lambda targets=(0, 0, 1, 1): ImageFiles(root / "val", files, list(targets), lambda x: x, norm)  # noqa: E731
    before = files_ds().fingerprint()
    assert files_ds().fingerprint() == before
    assert files_ds((0, 1, 1, 1)).fingerprint() != before
    shutil.copyfile(root / "val" / files[-1], root / "val" / files[0])
    assert files_ds().fingerprint() != before

    images = torch.zeros(3, 1, 4, 4, dtype=torch.uint8)
    tensor_fp = TensorImages(images, [0, 1, 2], lambda x: x, norm).fingerprint()
    assert TensorImages(images.clone(), [0, 1, 2], lambda x: x, norm).fingerprint() == tensor_fp
    images[1, 0, 2, 2] = 1
    assert TensorImages(images, [0, 1, 2], lambda x: x, norm).fingerprint() != tensor_fp
