"""Run directory names: one per combination of settings, the same for the same command, safe as paths."""

import pytest

from padlib.run_naming import MAX_COMPONENT, padding_component, safe_component, settings_component


def test_default_runs_have_no_settings_folder():
    assert settings_component([]) == ""
    # already in the path, or not changing results
    assert settings_component(["model=vgg16_bn", "padding=partial", "seed=3", "data=folder", "data.root=/x/y",
                               "trainer.device=cpu", "data.workers=4", "experiment=demo", "trainer.progress=false",
                               "padding.variant=mean_reflect", "model.name=resnet50d"]) == ""


def test_settings_are_sorted_and_plus_means_the_same_value():
    assert settings_component(["trainer.optim.lr=0.1", "+model.kwargs.dropout=0.3", "trainer.epochs=5"]) == (
        "model.kwargs.dropout=0.3,trainer.epochs=5,trainer.optim.lr=0.1")
    assert settings_component(["++trainer.epochs=5"]) == settings_component(["trainer.epochs=5"])


@pytest.mark.parametrize("a, b", [
    (["+model.kwargs.tag='a b'"], ["+model.kwargs.tag=a_b"]),  # replaced characters never merge two values
    (["+model.weights=/w/a.pth"], ["+model.weights=/w_a.pth"]),
    (["data.mean=[0.5,0.5,0.5]"], ["data.mean=[0.5,0.5,0.4]"]),
    ([f"+model.kwargs.tag={'a' * 300}"], [f"+model.kwargs.tag={'a' * 299}b"]),  # long: cut, with a digest
])
def test_different_settings_never_share_a_folder(a, b):
    ca, cb = settings_component(a), settings_component(b)
    assert ca != cb
    for c in (ca, cb):
        assert "/" not in c and len(c) <= MAX_COMPONENT and c not in (".", "..")


def test_a_value_written_two_ways_is_one_setting():
    # Hydra reads both as the float 0.1: the same run
    assert settings_component(["trainer.optim.lr=0.10"]) == settings_component(["trainer.optim.lr=0.1"])


def test_safe_component_keeps_plain_names():
    assert safe_component("trainer.optim.lr=0.1,trainer.epochs=5") == "trainer.optim.lr=0.1,trainer.epochs=5"
    assert safe_component("..") != ".."


def test_padding_folder_is_the_modes_label():
    assert padding_component({"mode": "zero"}) == "zero"
    assert padding_component({"mode": "distribution", "variant": "mean_interp"}) == "distribution"
    assert padding_component({"mode": "distribution", "variant": "mean_reflect"}) == "distribution-variant=mean_reflect"
    # a mode that cannot be built: named as asked (the trainer reports the error)
    assert padding_component({"mode": "custom", "_target_": "no.such.Mode"}) == "custom"
