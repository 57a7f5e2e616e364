"""What knowing the quantization grid is worth: ``python -m src.bench bound [options]``.

On the benchmark's held-out crops (as :mod:`src.bench.quality` makes them), two pure bit-depth
degradations are restored by non-blind dequantization (:mod:`src.baselines.consistent`: heat diffusion
projected into each pixel's quantization cell, which needs the exact grid) from the banded input, and from
the default model's output. The cells are those of the degradation itself:

- ``ycbcr_6_5``: the quality benchmark's YCbCr luma 6 / chroma 5 bits, cells in full-range YCbCr;
- ``rgb_5``: RGB at 5 bits, the first half of the quality benchmark's ``rgb_jpeg`` without its JPEG (the JPEG
  moves values out of their cells, so ``rgb_jpeg`` has no such reference).

The rows are float outputs (the quality benchmark's first rows are dithered to 8 bits, 0.2-0.4 dB lower on
smooth PSNR); the last column is the smooth-region gain over the banded input, which the quality targets set
at +4 dB. A blind tool never sees the grid, so these rows are a reference, not a competitor.
"""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from src.utils.errors import ConfigError, DataError

if TYPE_CHECKING:
    import torch

    from src.bench.quality import Method

__all__ = ["BoundCase", "make_cases", "build_bound_methods", "render_bound", "add_bound_args", "run_bound"]

METRICS = ("psnr", "psnr_smooth", "ssim")
HEADERS = ("PSNR ↑", "smooth PSNR ↑", "SSIM ↑", "smooth gain (dB)")


@dataclass(frozen=True)
class BoundCase:
    """A degradation with a known grid: ``smooth(banded, start, iters)`` is the consistent smoothing in its
    cells, starting from ``start`` (``(1, 3, H, W)`` RGB in [0, 1] each)."""

    name: str
    description: str
    apply: Callable[[torch.Tensor], torch.Tensor]
    smooth: Callable[[torch.Tensor, torch.Tensor, int], torch.Tensor]


def make_cases() -> list[BoundCase]:
    """``ycbcr_6_5`` and ``rgb_5`` (see the module docstring)."""
    from src.baselines.consistent import consistent_smooth_rgb, consistent_smooth_ycbcr
    from src.data.degradations import quantize, quantize_ycbcr

    return [
        BoundCase(
            "ycbcr_6_5",
            "bit-depth reduction in YCbCr: luma 6 bits, chroma 5 bits (as in `quality`)",
            lambda x: quantize_ycbcr(x, 6, 5),
            lambda b, s, n: consistent_smooth_ycbcr(b, 6, 5, start=s, iters=n),
        ),
        BoundCase(
            "rgb_5",
            "bit-depth reduction in RGB to 5 bits (`quality`'s rgb_jpeg before its JPEG)",
            lambda x: quantize(x, 5),
            lambda b, s, n: consistent_smooth_rgb(b, 5, start=s, iters=n),
        ),
    ]


def build_bound_methods(
    case: BoundCase, iters: Sequence[int], model: Callable[[torch.Tensor], torch.Tensor] | None
) -> list[Method]:
    """Rows for one case: input, consistent smoothing per ``iters``, and (with ``model``) the model and the
    model followed by consistent smoothing per ``iters`` (0 = the model's output projected into the cells)."""
    from src.bench.quality import LastRun, Method

    rows = [Method("input (banded)", lambda x: x, timed=False)]
    rows += [
        Method(f"consistent smoothing, {n} iterations (knows the grid)", lambda x, n=n: case.smooth(x, x, n))
        for n in iters
    ]
    if model is not None:
        run = LastRun(model)
        rows.append(Method("default model (blind)", run))
        rows += [
            Method(
                f"default model, then consistent smoothing, {n} iterations", lambda x, n=n: case.smooth(x, run(x), n)
            )
            for n in (0, *iters)
        ]
    return rows


def render_bound(
    results: dict, cases: Sequence[BoundCase], methods: dict[str, list[Method]], header: Sequence[str]
) -> str:
    """Markdown: settings, then one table per case with the smooth-region gain over the input."""
    lines = ["# What knowing the quantization grid is worth", "", *[f"- {h}" for h in header], ""]
    for case in cases:
        per = results[case.name]
        base = per["input (banded)"].values()["psnr_smooth"]
        lines += [
            f"## {case.name}: {case.description}",
            "",
            "| method | " + " | ".join(HEADERS) + " |",
            "|---" * (len(HEADERS) + 1) + "|",
        ]
        for m in methods[case.name]:
            v = per[m.name].values()
            lines.append(
                f"| {m.name} | {v['psnr']:.2f} | {v['psnr_smooth']:.2f} | {v['ssim']:.4f} | "
                f"{v['psnr_smooth'] - base:+.2f} |"
            )
        lines.append("")
    return "\n".join(lines)


def _iters(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ConfigError(f"--iters must be comma-separated integers, got {text!r}") from None
    if not values or any(v < 1 for v in values):
        raise ConfigError(f"--iters must list integers >= 1, got {text!r}")
    return values


def add_bound_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--checkpoint", default="default", help="the model's weights (.ckpt, .pt, .onnx, 'default' or 'none' to skip)"
    )
    p.add_argument("--images", type=Path, default=None, help="folder of clean photos (default: the test split)")
    p.add_argument("--size", type=int, default=512, help="crop size: short side resized to it, then centre crop")
    p.add_argument("--limit", type=int, default=None, help="use only the first N images")
    p.add_argument("--iters", default="50,100,200,400", help="consistent-smoothing iteration counts")
    p.add_argument("--out", type=Path, default=Path("logs/benchmark/bound.md"), help="markdown report")
    p.add_argument("--device", default=None)
    p.add_argument("--dtype", choices=["float32", "bfloat16"], default="float32")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: the idle cores)")


def run_bound(args: argparse.Namespace) -> int:
    """The ``bound`` subcommand: evaluate, print the tables, write ``--out`` atomically."""
    from rich.console import Console

    from src.bench.quality import DEFAULT_IMAGES, evaluate, load_images
    from src.inference.debander import Debander
    from src.utils.atomic import atomic_output
    from src.utils.progress import progress_bar
    from src.utils.threads import set_torch_threads

    iters = _iters(args.iters)
    if args.size < 16:
        raise ConfigError(f"--size must be >= 16, got {args.size}")
    if args.limit is not None and args.limit < 1:
        raise ConfigError(f"--limit must be >= 1, got {args.limit}")
    folder = args.images or DEFAULT_IMAGES
    if not folder.is_dir():
        raise DataError(f"no test photos at '{folder}': run `python -m src.data.fetch` first (or pass --images)")
    set_torch_threads(args.threads)
    console = Console(file=sys.stderr)
    images = load_images(folder, args.size, args.limit)
    header = [
        f"images: {len(images)} from `{folder}` (short side resized to {args.size}, centre crop "
        f"{args.size}x{args.size}); float outputs (not dithered)"
    ]
    model = None
    if str(args.checkpoint).lower() != "none":
        d = Debander.from_checkpoint(args.checkpoint, device=args.device, dtype=args.dtype)
        header.append(f"default model: {d.describe()}")
        model = functools.partial(d.deband_batch, steps=None)
    cases = make_cases()
    methods = {c.name: build_bound_methods(c, iters, model) for c in cases}
    results = {}
    total = len(images) * sum(len(m) for m in methods.values())
    with progress_bar(console) as progress:
        task = progress.add_task("bound", total=total)
        for c in cases:
            results.update(
                evaluate(
                    images,
                    [c],
                    methods[c.name],
                    METRICS,
                    advance=lambda s: progress.update(task, advance=1, description=s),
                )
            )
    report = render_bound(results, cases, methods, header)
    print(report)
    with atomic_output(args.out) as tmp:
        tmp.write_text(report, encoding="utf-8")
    console.print(f"wrote {args.out}")
    return 0
