"""Build a classification CNN by name (torchvision or timm) and give it a padding mode."""

from __future__ import annotations

from torch import nn

from padlib.errors import PadlibError
from padlib.padding import convert_padding

# The paper's architectures plus the small ResNets; all are torchvision definitions.
TORCHVISION_ARCHS = ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "vgg16_bn", "vgg19_bn")
SOURCES = ("auto", "torchvision", "timm")


def _torchvision_names() -> set[str]:
    import torchvision

    return set(torchvision.models.list_models(module=torchvision.models))


def _timm_names() -> set[str]:
    import timm

    return set(timm.list_models())


def build_model(name: str, num_classes: int = 1000, padding: str = "zero", source: str = "auto") -> nn.Module:
    """A randomly initialised ``name`` with ``num_classes`` outputs, its padded convs in ``padding`` mode."""
    if source not in SOURCES:
        raise PadlibError(f"model source {source!r} is unknown; use one of {', '.join(SOURCES)}")
    if source in ("auto", "torchvision") and name in _torchvision_names():
        import torchvision

        model = torchvision.models.get_model(name, weights=None, num_classes=num_classes)
    elif source in ("auto", "timm") and name in _timm_names():
        import timm

        model = timm.create_model(name, pretrained=False, num_classes=num_classes)
    else:
        where = {"auto": "torchvision or timm", "torchvision": "torchvision", "timm": "timm"}[source]
        raise PadlibError(
            f"model {name!r} is not a {where} model; use one of {', '.join(TORCHVISION_ARCHS)}, "
            "or any timm CNN with model=timm model.name=NAME (see timm.list_models())"
        )
    return convert_padding(model, padding)
