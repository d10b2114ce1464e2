"""convert_padding on torchvision and timm models: what changes, what is kept, and the way back to zero."""

from __future__ import annotations

import pytest
import timm
import torch
import torchvision
from timm.layers import Conv2dSame, StdConv2d
from torch import nn

import padlib
from padlib.errors import PadlibError
from padlib.padding import PADDING_MODES, PaddedConv2d, PartialConv2d, convert_padding, converted_convs

TORCHVISION = ["resnet18", "resnet50", "vgg16_bn"]
# depthwise (mobilenetv3, efficientnet) and TF-'same' (tf_*: stride-2 convs are timm Conv2dSame)
TIMM = ["mobilenetv3_small_100", "efficientnet_b0", "tf_mobilenetv3_small_100"]


def _build(name: str) -> nn.Module:
    if name in TORCHVISION:
        return torchvision.models.get_model(name, weights=None, num_classes=10)
    return timm.create_model(name, pretrained=False, num_classes=10)


def _padded_conv_names(model: nn.Module) -> set[str]:
    """Convs that pad, read off their declared attributes (timm's Conv2dSame always may)."""
    return {
        name
        for name, m in model.named_modules()
        if isinstance(m, nn.Conv2d)
        and (isinstance(m, Conv2dSame) or m.padding not in ((0, 0), "valid"))
        and max(m.kernel_size) > 1
    }


def test_unknown_mode_lists_valid_names():
    with pytest.raises(PadlibError) as error:
        convert_padding(nn.Conv2d(1, 1, 3, padding=1), "mirror")
    assert all(mode in str(error.value) for mode in PADDING_MODES)
    assert PADDING_MODES == ("zero", "reflect", "replicate", "circular", "partial", "symmetric", "distribution")


def test_resnet50_has_exactly_17_converted_convs():
    model = torchvision.models.resnet50()
    original = dict(model.named_modules())
    params = {name: p for name, p in model.named_parameters()}
    assert padlib.convert_padding(model, "partial") is model
    names = converted_convs(model)
    assert len(names) == 17
    assert set(names) == _padded_conv_names(torchvision.models.resnet50())
    for name, module in model.named_modules():
        if name in names:
            assert type(module) is PartialConv2d
        else:
            assert module is original[name]
    assert all(p is params[name] for name, p in model.named_parameters())


@pytest.mark.parametrize("name", TORCHVISION + TIMM)
def test_state_dict_keys_and_parameters_are_kept(name):
    model = _build(name)
    keys = list(model.state_dict())
    params = [id(p) for p in model.parameters()]
    padded = _padded_conv_names(model)
    for mode in ("partial", "reflect"):
        convert_padding(model, mode)
        assert list(model.state_dict()) == keys
        assert [id(p) for p in model.parameters()] == params
        assert set(converted_convs(model)) == padded


def test_timm_tf_same_convs_become_dynamic_partial_convs():
    model = _build("tf_mobilenetv3_small_100")
    same = [name for name, m in model.named_modules() if isinstance(m, Conv2dSame)]
    assert same
    convert_padding(model, "partial")
    modules = dict(model.named_modules())
    assert all(type(modules[n]) is PartialConv2d and modules[n].tf_same for n in same)
    out = model.eval()(torch.randn(1, 3, 33, 40))
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("name", ["resnet18", "tf_mobilenetv3_small_100"])
def test_back_to_zero_restores_outputs(name):
    torch.manual_seed(0)
    model = _build(name).eval()
    x = torch.randn(2, 3, 19, 16)
    with torch.no_grad():
        want = model(x)
        partial = convert_padding(model, "partial")(x)
        convert_padding(model, "reflect")
        got = convert_padding(model, "zero")(x)
    assert not torch.allclose(partial, want)
    torch.testing.assert_close(got, want)
    for module in model.modules():
        if isinstance(module, PaddedConv2d):
            assert module.tf_same and module.padding_mode == "zeros"
        else:
            assert not isinstance(module, PartialConv2d)
    if name == "resnet18":
        assert all(type(m) is nn.Conv2d for m in model.modules() if isinstance(m, nn.Conv2d))


def test_zero_leaves_a_zero_model_untouched():
    model = _build("tf_mobilenetv3_small_100")
    before = list(model.modules())
    convert_padding(model, "zero")
    assert list(model.modules()) == before


def test_same_padding_conv_round_trip():
    conv = nn.Conv2d(2, 3, 4, padding="same")
    partial = convert_padding(conv, "partial")
    assert type(partial) is PartialConv2d and partial.padding == "same" and partial.weight is conv.weight
    back = convert_padding(partial, "zero")
    assert type(back) is nn.Conv2d and back.padding == "same"
    x = torch.randn(1, 2, 7, 6)
    torch.testing.assert_close(back(x), conv(x))


def test_keeps_training_flag_and_shares_a_shared_conv():
    shared = nn.Conv2d(3, 3, 3, padding=1)
    model = nn.Sequential(shared, nn.ReLU(), shared, nn.Conv2d(3, 3, 1)).eval()
    unpadded = model[3]
    convert_padding(model, "circular")
    assert model[0] is model[2] and type(model[0]) is PaddedConv2d
    assert model[3] is unpadded
    assert not model[0].training
    convert_padding(model.train(), "partial")
    assert model[0].training


def test_unsupported_conv_subclass_is_refused_without_changing_anything():
    model = nn.Sequential(nn.Conv2d(3, 3, 3, padding=1), StdConv2d(3, 3, 3, padding=1))
    first = model[0]
    with pytest.raises(PadlibError, match="StdConv2d"):
        convert_padding(model, "partial")
    assert model[0] is first
    assert convert_padding(model, "zero")[1] is not None
