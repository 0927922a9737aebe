"""PyTorch weights back from an exported ONNX model, to fine-tune a shipped network.

The exporter folds each convolution's batch norm into the convolution (``onnx::Conv_*`` initializers);
the named initializers (attention output, embedding, heads) keep their PyTorch names. A folded pair is
restored as the folded convolution, rescaled per output channel to the size of a He-initialised weight,
followed by a batch norm that undoes the rescaling (mean 0, scale 1, the rescaling in its variance,
shift = the folded bias): exactly what the graph computes, in a parameterisation that fine-tunes like the
original (without the rescaling, the tiny folded weights are wrecked by the optimiser's first steps). Fine-tune such a
network with its batch norms frozen (``freeze_bn``): their statistics are not the originals.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from torch import nn

log = logging.getLogger(__name__)


def _initializers(graph) -> dict[str, np.ndarray]:
    from onnx import numpy_helper

    out = {}
    for t in graph.initializer:
        arr = numpy_helper.to_array(t)
        name = t.name[: -len("__fp16")] if t.name.endswith("__fp16") else t.name
        out[name] = arr.astype(np.float32)
    return out


def _source(name: str, producers: dict[str, object]) -> str:
    """The initializer behind a node input, through Cast / Identity nodes (fp16-stored weights)."""
    while name in producers and producers[name].op_type in ("Cast", "Identity"):
        name = producers[name].input[0]
    return name[: -len("__fp16")] if name.endswith("__fp16") else name


def _folded_pairs(model: nn.Module) -> list[tuple[nn.Conv2d, nn.BatchNorm2d]]:
    """(conv, batch norm) pairs in forward order, as the exporter folds them."""
    pairs = []
    mods = list(model.modules())
    for a, b in zip(mods, mods[1:]):
        if isinstance(a, nn.Conv2d) and isinstance(b, nn.BatchNorm2d):
            pairs.append((a, b))
    return pairs


def load_member_from_onnx(model: nn.Module, onnx_path: str | Path, member: int | None = None) -> nn.Module:
    """Fill ``model`` (a fresh ``create_model(...)``) with the weights of one network of an exported graph:
    ``member`` k of an ensemble, or ``None`` for a single-network export. Returns ``model``."""
    import onnx

    graph = onnx.load(str(onnx_path)).graph
    inits = _initializers(graph)
    producers = {o: n for n in graph.node for o in n.output}
    prefix = "model." + (f"members.{member}." if member is not None else "")
    # folded convolutions in graph order, each with its bias; the first use of a weight decides the order
    folded: list[tuple[str, str]] = []
    seen: set[str] = set()
    for node in graph.node:
        if node.op_type != "Conv":
            continue
        w = _source(node.input[1], producers)
        if w in seen or not w.startswith("onnx::"):
            continue
        seen.add(w)
        folded.append((w, _source(node.input[2], producers)))
    pairs = _folded_pairs(model)
    members = len(folded) // len(pairs) if pairs else 0
    if not pairs or len(folded) % len(pairs):
        raise ValueError(f"{onnx_path}: {len(folded)} folded convolutions do not fit {len(pairs)} per network")
    k = member or 0
    if k >= members:
        raise ValueError(f"{onnx_path}: has {members} network(s), asked for member {k}")
    with torch.no_grad():
        for (conv, bn), (w, b) in zip(pairs, folded[k * len(pairs) : (k + 1) * len(pairs)]):
            if tuple(conv.weight.shape) != inits[w].shape:
                raise ValueError(f"{onnx_path}: shape {inits[w].shape}, network {tuple(conv.weight.shape)}")
            folded_w = torch.from_numpy(inits[w])
            # per output channel, the folded weights are rescaled to He-initialisation size and the scale is
            # moved into the frozen running variance: the same function, with weights that an optimiser's
            # steps (about lr each) perturb as little as they would in the original network
            ref = (2.0 / folded_w[0].numel()) ** 0.5
            scale = (folded_w.flatten(1).pow(2).mean(1).sqrt() / ref).clamp(1e-3, 100.0)
            conv.weight.copy_(folded_w / scale.view(-1, 1, 1, 1))
            bn.weight.fill_(1.0)
            bn.bias.copy_(torch.from_numpy(inits[b]))
            bn.running_mean.zero_()
            bn.running_var.copy_(scale.pow(-2) - bn.eps)
        state = model.state_dict()
        # a single-network export has no ``members.K.`` prefix: ``#0`` of it means the network itself
        if members == 1 and not any(n.startswith(prefix) for n in inits):
            prefix = "model."
        named = 0
        for key in state:
            if prefix + key in inits:
                state[key].copy_(torch.from_numpy(inits[prefix + key]).reshape(state[key].shape))
                named += 1
        if not named:
            raise ValueError(f"{onnx_path}: no named tensors under {prefix!r} (heads, attention) for member {k}")
    log.info("%s member %s: %d folded convolutions, %d named tensors", onnx_path, k, len(pairs), named)
    return model


def freeze_batchnorm(model: nn.Module) -> None:
    """Keep every batch norm in evaluation mode (call after each ``model.train()``)."""
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.eval()


@torch.no_grad()
def recalibrate_batchnorm(model: nn.Module, crops: torch.Tensor, batch_size: int = 256) -> int:
    """Re-estimate every batch norm's statistics from ``crops`` (uint8 NHWC) without changing what the
    network computes in evaluation mode, so that its norms can train again (``freeze_bn: false``) after
    an ONNX restore.

    One pass in evaluation mode records each norm's input mean and variance per channel; each norm then
    gets them as running statistics, with its scale and shift adjusted so that ``scale * (x - mean) / std
    + shift`` is unchanged. Returns the number of norms recalibrated."""
    from .augment import normalize

    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not all(m.affine for m in norms):
        raise ValueError("recalibrate_batchnorm: a norm without scale and shift cannot keep its function")
    sums: dict[nn.Module, tuple[torch.Tensor, torch.Tensor, int]] = {}  # per norm: sum, sum of squares, count

    def record(m: nn.Module, args: tuple[torch.Tensor, ...]) -> None:
        x = args[0].double().transpose(0, 1).flatten(1)  # channels first, everything else flattened
        total, squares, n = sums.get(m, (0.0, 0.0, 0))
        sums[m] = (total + x.sum(1), squares + x.pow(2).sum(1), n + x.shape[1])

    hooks = [m.register_forward_pre_hook(record) for m in norms]
    was_training = model.training
    model.eval()
    try:
        for i in range(0, len(crops), batch_size):
            model(normalize(crops[i : i + batch_size]).contiguous(memory_format=torch.channels_last))
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    for m in norms:
        total, squares, n = sums[m]
        mean = total / n
        var = (squares / n - mean.pow(2)).clamp_min(0.0)
        old = (m.running_var.double() + m.eps).sqrt()
        new = (var + m.eps).sqrt()
        m.bias.add_((m.weight.double() * (mean - m.running_mean.double()) / old).to(m.bias.dtype))
        m.weight.mul_((new / old).to(m.weight.dtype))
        m.running_mean.copy_(mean)
        m.running_var.copy_(var)
    log.info("recalibrated %d batch norms from %d crops", len(norms), len(crops))
    return len(norms)
