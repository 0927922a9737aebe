"""Model registry: ``create_model(name, pretrained=...)``; duplicate names are refused."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

_REGISTRY: dict[str, Callable[..., nn.Module]] = {}


def register_model(name: str) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    def deco(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _REGISTRY:
            raise ValueError(f"model name already registered: {name}")
        _REGISTRY[name] = fn
        return fn

    return deco


def list_models() -> list[str]:
    return sorted(_REGISTRY)


def create_model(name: str, pretrained: bool = False, **kwargs: object) -> nn.Module:
    if name not in _REGISTRY:
        raise KeyError(f"unknown model {name!r}; known: {', '.join(list_models())}")
    return _REGISTRY[name](pretrained=pretrained, **kwargs)


def _mbv2_multitask(pretrained: bool, attention: bool, gender_to_age: bool, expand_scale: int = 1,
                    **kw: object) -> nn.Module:
    from .backbones import MobileNetV2, load_imagenet_weights
    from .multitask import MultiTaskNet
    from .widen import WIDEN_NOISE, widen_into

    bb = MobileNetV2(expand_scale)
    if pretrained:
        narrow = bb if expand_scale == 1 else MobileNetV2()
        load_imagenet_weights(narrow)
        if narrow is not bb:
            widen_into(narrow, bb, noise=WIDEN_NOISE)
    return MultiTaskNet(bb, MobileNetV2.num_features, attention=attention, gender_to_age=gender_to_age, **kw)


@register_model("attn_mbv2")
def attn_mbv2(pretrained: bool = False, **kw: object) -> nn.Module:
    """Attentional residual net (MobileNetV2 backbone), predicted gender fed to the age head."""
    return _mbv2_multitask(pretrained, attention=True, gender_to_age=True, **kw)


@register_model("attn_mbv2_x2")
def attn_mbv2_x2(pretrained: bool = False, **kw: object) -> nn.Module:
    """attn_mbv2 with twice the hidden channels in every expanding block: one pass costs about what two
    passes of attn_mbv2 do. Start it from a trained attn_mbv2 with ``model.init_arch`` (``models.widen``)."""
    return _mbv2_multitask(pretrained, attention=True, gender_to_age=True, expand_scale=2, **kw)


@register_model("mbv2")
def mbv2(pretrained: bool = False, **kw: object) -> nn.Module:
    """Plain residual net: global average pooling instead of attention (ablation / ensemble member)."""
    return _mbv2_multitask(pretrained, attention=False, gender_to_age=True, **kw)


@register_model("attn_mbv2_face")
def attn_mbv2_face(pretrained: bool = False, **kw: object) -> nn.Module:
    """attn_mbv2 that reads the face only: the outer 10 % of the crop on each side (hair, ears,
    background at margin 0) is hidden inside the network; the partner of full-crop networks in ensembles."""
    kw.setdefault("border_mask", 0.1)
    return _mbv2_multitask(pretrained, attention=True, gender_to_age=True, **kw)


@register_model("attn_mbv2_nogender")
def attn_mbv2_nogender(pretrained: bool = False, **kw: object) -> nn.Module:
    """Ablation: attention, but the age head does not see the predicted gender."""
    return _mbv2_multitask(pretrained, attention=True, gender_to_age=False, **kw)
