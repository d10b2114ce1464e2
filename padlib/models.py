"""Build a classification CNN by name (torchvision or timm) and give it a padding mode."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from torch import nn

from padlib.errors import PadlibError
from padlib.padding import convert_padding
from padlib.padding.convert import PaddingSpec

# The paper's architectures plus the small ResNets; all are torchvision definitions.
TORCHVISION_ARCHS = ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "vgg16_bn", "vgg19_bn")
SOURCES = ("auto", "torchvision", "timm")


def _torchvision_names() -> set[str]:
    import torchvision

    return set(torchvision.models.list_models(module=torchvision.models))


def _timm_names() -> set[str]:
    import timm

    return set(timm.list_models())


def build_model(name: str, num_classes: int = 1000, padding: PaddingSpec = "zero", source: str = "auto",
                kwargs: Mapping[str, Any] | None = None) -> nn.Module:
    """A randomly initialised ``name`` with ``num_classes`` outputs, its padded convs in ``padding`` mode
    (a name, label, import path, spec or mode: ``padlib.padding.get_padding``);
    ``kwargs`` go to the constructor (e.g. timm's ``drop_rate``, torchvision VGG's ``dropout``)."""
    if source not in SOURCES:
        raise PadlibError(f"model source {source!r} is unknown; use one of {', '.join(SOURCES)}")
    kwargs = dict(kwargs or {})
    if source in ("auto", "torchvision") and name in _torchvision_names():
        import torchvision

        model = _construct(torchvision.models.get_model, name, kwargs, weights=None, num_classes=num_classes)
    elif source in ("auto", "timm") and name in _timm_names():
        import timm

        model = _construct(timm.create_model, name, kwargs, pretrained=False, num_classes=num_classes)
    else:
        where = {"auto": "torchvision or timm", "torchvision": "torchvision", "timm": "timm"}[source]
        raise PadlibError(
            f"model {name!r} is not a {where} model; use one of {', '.join(TORCHVISION_ARCHS)}, "
            "or any timm CNN with model=timm model.name=NAME (see timm.list_models())"
        )
    return convert_padding(model, padding)


def _construct(factory: Callable[..., nn.Module], name: str, kwargs: dict[str, Any], **fixed: Any) -> nn.Module:
    """``factory(name, **fixed, **kwargs)``; a constructor argument it does not take is a PadlibError."""
    try:
        return factory(name, **fixed, **kwargs)
    except TypeError as e:
        if not kwargs:
            raise
        raise PadlibError(f"model {name!r} does not take model.kwargs {kwargs} ({e})") from None
