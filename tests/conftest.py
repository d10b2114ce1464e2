"""Fixtures shared by the end-to-end tests."""

import pytest

from padlib.data import make_synthetic_imagefolder


@pytest.fixture(scope="session")
def data_root(tmp_path_factory):
    """The synthetic JPEG tree that tests/train_helpers.train_cmd's data.synthetic settings describe (train.py
    reuses it): 3 classes x 15 val images = 45, not a multiple of a 2-process world size. Read-only: a test
    that damages files copies it first."""
    return make_synthetic_imagefolder(tmp_path_factory.mktemp("synthetic"), num_classes=3, train_per_class=48,
                                      val_per_class=15, size=40)
