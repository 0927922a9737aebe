"""Training speed on this machine: images/s of the training step, and minutes per epoch of a recipe.

Each row times ``--steps`` optimiser steps (after two warm-up steps) of the shipped network at 112 px, batch
64, on uint8 crops held in memory as training holds them: with and without the batch augmentation, in
fp32 NCHW, ``channels_last``, and ``channels_last`` with bf16 autocast, on 1 and 2 threads. The last column is
the minutes an epoch of ``--epoch-size`` draws would take at that speed (validation not counted).

    python benchmarks/train_speed.py [--steps 8] [--epoch-size 8000]

Prints a Markdown table. Run it on an idle machine: anything else running shows up in the figures.
"""

from __future__ import annotations

import argparse
import contextlib
import time

import torch

from agegender.models import create_model
from agegender.train.augment import augment, normalize
from agegender.train.levers.reencode import reencode


def _batch(x: torch.Tensor, g: torch.Generator, with_aug: bool, channels_last: bool) -> torch.Tensor:
    img = augment(reencode(x, 0.3, g), g, p_degrade=0.3) if with_aug else normalize(x)
    return img.contiguous(memory_format=torch.channels_last) if channels_last else img.contiguous()


def images_per_second(threads: int, channels_last: bool, bf16: bool, with_aug: bool, steps: int) -> float:
    torch.set_num_threads(threads)
    model = create_model("attn_mbv2", pretrained=False)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    g = torch.Generator().manual_seed(0)
    crops = torch.randint(0, 256, (64, 112, 112, 3), dtype=torch.uint8, generator=g)
    timed = 0.0
    for step in range(steps + 2):
        t0 = time.perf_counter()
        x = _batch(crops, g, with_aug, channels_last)
        ctx = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
        with ctx:
            gl, al, _ = model(x)
            loss = gl.float().logsumexp(1).mean() + al.float().logsumexp(1).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step >= 2:
            timed += time.perf_counter() - t0
    return 64 * steps / timed


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--epoch-size", type=int, default=8000)
    args = ap.parse_args()
    print("| threads | layout | precision | augmentation | images/s | minutes per epoch |")
    print("|---|---|---|---|---|---|")
    for threads in (1, 2):
        for layout, cl, bf16 in (("NCHW", False, False), ("channels_last", True, False),
                                 ("channels_last", True, True)):
            for with_aug in (False, True):
                ips = images_per_second(threads, cl, bf16, with_aug, args.steps)
                print(f"| {threads} | {layout} | {'bf16 autocast' if bf16 else 'fp32'} | "
                      f"{'yes' if with_aug else 'no'} | {ips:.0f} | {args.epoch_size / ips / 60:.1f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
