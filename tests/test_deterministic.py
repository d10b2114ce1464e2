"""trainer.deterministic=true on CUDA: VGG's adaptive pooling becomes an average pool with the same numbers
(deterministic CUDA backward), or one error before the first step. Checked on CPU: the swap and the shape
check do not depend on the device."""

import pytest
import torch
from torch import nn

from padlib.engine.deterministic import DivisibleAdaptiveAvgPool2d, deterministic_on
from padlib.errors import PadlibError
from padlib.models import build_model
from padlib.padding import get_padding

CUDA = torch.device("cuda")  # a device object only: nothing runs on it


@pytest.mark.parametrize("size, out", [(7, (7, 7)), (14, (7, 7)), (28, (7, 7)), (12, (3, 4)), (6, (None, 3))])
def test_same_numbers_as_adaptive_pooling(size, out):
    x = torch.randn(2, 8, size, size, requires_grad=True)
    ours, ref = DivisibleAdaptiveAvgPool2d(out)(x), nn.AdaptiveAvgPool2d(out)(x)
    torch.testing.assert_close(ours, ref)
    g = torch.randn_like(ref)
    torch.testing.assert_close(torch.autograd.grad(ours, x, g)[0], torch.autograd.grad(ref, x, g)[0])


@pytest.mark.parametrize("padding", ["zero", "partial", "reflect"])
def test_vgg_at_the_papers_size_runs_its_pool_as_identity(padding):
    model = build_model("vgg16_bn", 10, get_padding(padding))
    assert deterministic_on(CUDA, model, 224) == 1
    assert isinstance(model.avgpool, DivisibleAdaptiveAvgPool2d)
    x = torch.randn(1, 512, 7, 7)
    assert model.avgpool(x) is x


def test_vgg_at_a_size_without_a_deterministic_pool_is_one_error_up_front():
    model = build_model("vgg19_bn", 10, get_padding("partial"))
    with pytest.raises(PadlibError, match=r"AdaptiveAvgPool2d\(7, 7\) receives a 3x3 map.*data.image_size"):
        deterministic_on(CUDA, model, 100)


def test_resnets_and_cpu_are_left_alone():
    resnet = build_model("resnet50", 10, get_padding("zero"))
    assert deterministic_on(CUDA, resnet, 224) == 0  # a 1x1 output is a mean: deterministic already
    vgg = build_model("vgg16_bn", 10, get_padding("zero"))
    assert deterministic_on(torch.device("cpu"), vgg, 100) == 0
    assert type(vgg.avgpool) is nn.AdaptiveAvgPool2d
