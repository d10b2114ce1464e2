"""The folded kernels of tiny maps are never stale: outside ``fold_once`` every call folds the weights it is
given, whatever a user's loop did to them; inside it (``validate``) they are folded once. Each check compares
the converted model with a fresh one built from the same effective weights."""

from __future__ import annotations

import copy
import random

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, stack_module_state
from torch.nn.utils import parametrizations, prune

from padlib.padding import convert_padding, fold_once
from padlib.padding.convert import layer_mode

MODES = ["reflect", "partial", "symmetric"]


def small_cnn(mode: str, seed: int = 0) -> nn.Module:
    """Two padded convs on 2x2 maps: every call takes the folded product (batch 64)."""
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 4, 3, padding=1))
    return convert_padding(net, mode)


def fresh_like(model: nn.Module, mode: str) -> nn.Module:
    """A new model in ``mode`` with ``model``'s effective weights (what its forward uses now)."""
    fresh = small_cnn(mode, seed=123)
    with torch.no_grad():
        for (_, new), old in zip(((n, m) for n, m in fresh.named_modules() if isinstance(m, nn.Conv2d)),
                                 (m for m in model.modules() if isinstance(m, nn.Conv2d)), strict=True):
            # a parametrized weight: its computed value; a pruned one: what its pre-hook computes next
            weight = old.weight_orig * old.weight_mask if hasattr(old, "weight_mask") else old.weight
            new.weight.copy_(weight.detach())
            new.bias.copy_(old.bias.detach())
    return fresh


X = torch.randn(64, 3, 2, 2, generator=torch.Generator().manual_seed(1))


def evaluate(model: nn.Module, how: str) -> torch.Tensor:
    if how == "no_grad":
        with torch.no_grad():
            return model(X)
    if how == "inference_mode":
        with torch.inference_mode():
            return model(X).clone()
    with torch.no_grad(), fold_once(model):  # as validate does: weights fixed inside
        model(X)
        return model(X)


def check(model: nn.Module, mode: str) -> None:
    want = fresh_like(model, mode)(X).detach()
    for how in ("no_grad", "inference_mode", "fold_once"):
        torch.testing.assert_close(evaluate(model, how), want, msg=f"stale after the edit ({how})")


def train_step(model: nn.Module, optimizer: torch.optim.Optimizer) -> None:
    optimizer.zero_grad()
    model(X).square().mean().backward()
    optimizer.step()


EDITS = {
    "fused SGD": lambda m: train_step(m, torch.optim.SGD(m.parameters(), lr=0.5, momentum=0.9, fused=True)),
    "fused AdamW": lambda m: train_step(m, torch.optim.AdamW(m.parameters(), lr=0.1, fused=True)),
    "data.copy_": lambda m: m[2].weight.data.copy_(torch.randn_like(m[2].weight)),
    "data.mul_": lambda m: m[0].weight.data.mul_(-3.0),
    "EMA by hand": lambda m: [p.data.mul_(0.5).add_(torch.randn_like(p), alpha=0.5) for p in m.parameters()],
    "weight.data = new tensor": lambda m: setattr(m[2].weight, "data", torch.randn_like(m[2].weight)),
    "load_state_dict": lambda m: m.load_state_dict({k: torch.randn_like(v) for k, v in m.state_dict().items()}),
}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("edit", list(EDITS))
def test_every_way_to_change_weights_is_seen(mode, edit):
    model = small_cnn(mode)
    for how in ("no_grad", "inference_mode", "fold_once"):
        evaluate(model, how)  # whatever could be cached, is
    EDITS[edit](model)
    check(model, mode)
    EDITS[edit](model)  # and again: a second change after an evaluation
    check(model, mode)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("wrap", ["weight_norm", "spectral_norm", "prune"])
def test_parametrized_and_pruned_weights(mode, wrap):
    model = small_cnn(mode)
    for conv in (model[0], model[2]):
        if wrap == "weight_norm":
            parametrizations.weight_norm(conv)
        elif wrap == "spectral_norm":
            parametrizations.spectral_norm(conv)
        else:
            prune.l1_unstructured(conv, "weight", amount=0.5)
    model.eval()  # spectral_norm's power iteration only runs in training
    for _ in range(3):
        evaluate(model, "no_grad")
        train_step(model.train(), torch.optim.SGD(model.parameters(), lr=0.5))
        model.eval()
        check(model, mode)


@pytest.mark.parametrize("mode", MODES)
def test_functional_call_with_fresh_tensors(mode):
    model = small_cnn(mode)
    for seed in range(4):
        torch.manual_seed(seed)
        params = {k: torch.randn_like(v) for k, v in model.named_parameters()}
        with torch.no_grad():
            got = functional_call(model, params, (X,))
        ref = copy.deepcopy(model)
        ref.load_state_dict(params)
        torch.testing.assert_close(got, fresh_like(ref, mode)(X).detach())


@pytest.mark.parametrize("mode", MODES)
def test_random_sequences_of_edits_and_evaluations(mode):
    """A property test: any interleaving of weight edits and evaluations gives what a fresh model gives."""
    for seed in range(12):
        rng = random.Random(seed)
        model = small_cnn(mode, seed)
        for _ in range(10):
            if rng.random() < 0.5:
                EDITS[rng.choice(list(EDITS))](model)
            how = rng.choice(["no_grad", "inference_mode", "fold_once"])
            torch.testing.assert_close(evaluate(model, how), fresh_like(model, mode)(X).detach(),
                                       msg=f"seed {seed}: stale ({how})")


@pytest.mark.parametrize("mode", MODES)
def test_fold_once_keeps_nothing_after_its_block(mode):
    model = small_cnn(mode)
    with torch.no_grad(), fold_once(model):
        model(X)
        twin = copy.deepcopy(model)  # a copy made inside the block starts without the folded kernels
    assert not any("_padlib_folded_kernels" in m.__dict__ for m in (*model.modules(), *twin.modules()))
    twin[0].weight.data.mul_(2)
    with torch.no_grad():
        torch.testing.assert_close(twin(X), fresh_like(twin, mode)(X))


@pytest.mark.parametrize("mode", MODES)
def test_weights_made_under_inference_mode(mode):
    with torch.inference_mode():
        model = small_cnn(mode)
        got = model(X)
    torch.testing.assert_close(got, fresh_like(model, mode)(X).detach())


@pytest.mark.parametrize("mode", MODES)
def test_vmap_over_stacked_models_on_tiny_maps(mode):
    models = [small_cnn(mode, seed) for seed in range(3)]
    params, buffers = stack_module_state(models)
    base = copy.deepcopy(models[0]).to("meta")

    def call(p, b, x):
        return functional_call(base, (p, b), (x,))

    out = torch.vmap(call, in_dims=(0, 0, None))(params, buffers, X)
    for i, model in enumerate(models):
        torch.testing.assert_close(out[i], model(X))


def test_jit_trace_of_partial_padding_with_grad_enabled():
    model = convert_padding(nn.Sequential(nn.Conv2d(3, 4, 3, padding=1)), "partial")
    x = torch.randn(2, 3, 8, 8)
    traced = torch.jit.trace(model, x)
    torch.testing.assert_close(traced(x), model(x))


def test_folds_follow_the_geometry():
    conv = small_cnn("reflect")[0]
    before = conv(X)
    conv.padding = (0, 0)  # another geometry under the same size: another fold, not the cached one
    torch.testing.assert_close(conv(torch.randn(64, 3, 3, 3)).shape, torch.Size([64, 8, 1, 1]))
    conv.padding = (1, 1)
    torch.testing.assert_close(conv(X), before)


@pytest.mark.parametrize("padding_mode", ["zeros", "reflect", "replicate", "circular"])
def test_convert_to_zero_from_every_padding_mode(padding_mode):
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 4, 3, padding=1, padding_mode=padding_mode)
    assert layer_mode(conv) == {"zeros": "zero"}.get(padding_mode, padding_mode)
    zero = convert_padding(copy.deepcopy(conv), "zero")
    assert layer_mode(zero) == "zero"
    x = torch.randn(2, 3, 6, 6)
    torch.testing.assert_close(zero(x), F.conv2d(x, conv.weight, conv.bias, padding=1))


@pytest.mark.parametrize("kernel", [(1, 3), (3, 1)])
def test_zero_padding_tf_same_on_one_axis(kernel):
    timm_layers = pytest.importorskip("timm.layers")
    same = timm_layers.Conv2dSame(4, 4, kernel)
    x = torch.randn(2, 4, 5, 5)
    want = same(x)
    back = convert_padding(convert_padding(same, "partial"), "zero")  # partial, then zero again
    torch.testing.assert_close(back(x), want)
