"""Quality benchmark on held-out photos: ``python -m src.benchmark quality [options]``.

Each photo is resized (short side = ``--size``) and centre-cropped to ``size x size``, then degraded three
ways (:func:`make_degradations`): bit-depth reduction in YCbCr (luma 6 / chroma 5 bits), in RGB (5 bits)
followed by JPEG (quality 85), and a real codec (libx264 at CRF 35, 8-bit 4:2:0, through PyAV). Every method
(the banded input itself, ffmpeg's ``deband`` and ``gradfun``, a plain luma-guided filter (``GUIDED``: the
classical edge-aware smoother the default model's blend head draws on, with no network; dithered to 8 bits
like the models' first rows), the original recipe checkpoint at its schedule's steps, the default model at
its default steps) restores every banded crop, and the metrics of
:mod:`src.metrics.collection` compare the result with the clean crop. One markdown table per degradation
goes to stdout and, atomically, to ``--out``.

Each model has two rows. The first is what ``deband`` writes to an 8-bit file by default: the output rounded
to 8 bits with blue-noise dither, the same 8-bit footing as the input and ffmpeg's filters (which dither
too). The second (``, float``) is the unrounded output: PSNR/SSIM see its full precision, while CAMBI, which
works on 8-bit codes, rounds it plainly, and a smooth ramp rounded plainly is a staircase of 1-code steps
that CAMBI counts (so is a 16-bit clean photo's, see the clean crops' CAMBI in the header).

The speed column is seconds per 1920x1080 frame at the method's steps on this machine: with
``--speed measure`` (default) one 1080p frame is timed after a warm-up; with ``--speed extrapolate`` it is
1080p's 2.07 MP divided by the MP/s measured on the benchmark crops (time is linear in pixels, see
docs/deband.md, but small crops run less efficiently, so this overestimates a little).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from src.utils.errors import ConfigError, DataError

if TYPE_CHECKING:  # torch is imported where used, so `python -m src.benchmark --help` stays fast
    import torch
    from torchmetrics import Metric

    from src.inference.debander import Debander

__all__ = [
    "DEFAULT_IMAGES",
    "FRAME_1080P",
    "COLUMNS",
    "Degradation",
    "Method",
    "MethodResult",
    "fit_square",
    "load_images",
    "make_degradations",
    "dither_8bit",
    "LastRun",
    "evaluate",
    "render_markdown",
    "add_quality_args",
    "run_quality",
]

#: where ``python -m src.data.fetch`` puts the held-out test photos
DEFAULT_IMAGES = Path("data/photos/test")
#: (H, W) of the frame the speed column is about
FRAME_1080P = (1080, 1920)
#: metric name (src.metrics.collection) -> column header; arrows say which way is better
COLUMNS = {"psnr": "PSNR ↑", "psnr_smooth": "smooth PSNR ↑", "ssim": "SSIM ↑", "cambi": "CAMBI ↓",
           "cambi_mlc5": "CAMBI mlc5 ↓"}
SPEED_COLUMN = "s / 1080p frame"


# --------------------------------------------------------------------------------------------------- images
def fit_square(img: torch.Tensor, size: int) -> torch.Tensor:
    """``(3, H, W)`` in [0, 1] -> ``(3, size, size)``: short side resized to ``size`` (antialiased bilinear
    when shrinking, which also averages away a JPEG's noise), then the centre crop."""
    import torch.nn.functional as F

    h, w = img.shape[-2:]
    scale = size / min(h, w)
    nh, nw = max(size, round(h * scale)), max(size, round(w * scale))
    if (nh, nw) != (h, w):
        img = F.interpolate(img[None].float(), size=(nh, nw), mode="bilinear", align_corners=False,
                            antialias=scale < 1)[0].clamp(0.0, 1.0)
    top, left = (nh - size) // 2, (nw - size) // 2
    return img[:, top:top + size, left:left + size].contiguous()


def load_images(folder: Path, size: int, limit: int | None = None) -> list[tuple[str, torch.Tensor]]:
    """The first ``limit`` images under ``folder`` (sorted by path) as ``(name, (3, size, size) float32)``.

    Raises:
        DataError: the folder is missing or holds no readable image.
    """
    import numpy as np
    import torch

    from src.data.image_io import read_image, to_rgb
    from src.data.sources import list_images

    paths = list_images(folder)[:limit]
    out = []
    for p in paths:
        arr, _ = read_image(p)  # 16-bit files keep their precision: the clean reference is not re-quantized
        img = torch.from_numpy(np.ascontiguousarray(to_rgb(arr).transpose(2, 0, 1)))
        out.append((p.relative_to(folder).as_posix(), fit_square(img, size)))
    return out


# --------------------------------------------------------------------------------------------------- degradations
@dataclass(frozen=True)
class Degradation:
    """``apply``: clean ``(3, H, W)`` -> banded ``(3, H, W)``, both float32 in [0, 1]."""

    name: str
    description: str
    apply: Callable[[torch.Tensor], torch.Tensor]


def make_degradations(crf: int = 35) -> list[Degradation]:
    """The three benchmark degradations (see the module docstring)."""
    from src.data.degradations import h264_roundtrip, jpeg_compress, quantize, quantize_ycbcr

    return [
        Degradation("ycbcr_6_5", "bit-depth reduction in YCbCr: luma 6 bits, chroma 5 bits",
                    lambda x: quantize_ycbcr(x, 6, 5)),
        Degradation("rgb_jpeg", "bit-depth reduction in RGB to 5 bits, then JPEG quality 85 (4:2:0)",
                    lambda x: jpeg_compress(quantize(x, 5), 85)),
        Degradation("h264", f"H.264 (libx264, CRF {crf}, preset medium, 8-bit 4:2:0), one intra frame per photo",
                    lambda x: h264_roundtrip(x, crf)),
    ]


# --------------------------------------------------------------------------------------------------- methods
@dataclass
class Method:
    """A restoration method: ``run`` maps banded ``(1, 3, H, W)`` to restored ``(1, 3, H, W)`` in [0, 1]."""

    name: str
    run: Callable[[torch.Tensor], torch.Tensor]
    steps: int | None = None  # INDI steps (models only)
    timed: bool = True  # False for the input row: nothing to time
    speed_from: str | None = None  # show this other method's s / 1080p frame (same model, other output)


@dataclass
class MethodResult:
    """Accumulated metrics and timing of one method on one degradation."""

    metrics: dict[str, Metric] = field(default_factory=dict)
    seconds: float = 0.0
    megapixels: float = 0.0
    s_per_1080p: float | None = None

    def values(self) -> dict[str, float]:
        return {k: float(m.compute()) for k, m in self.metrics.items()}


def _filter_method(name: str) -> Method:
    from src.baselines.ffmpeg_filters import ffmpeg_filter

    return Method(f"ffmpeg {name}", lambda x: ffmpeg_filter(x, name))


def dither_8bit(x: torch.Tensor) -> torch.Tensor:
    """``(B, 3, H, W)`` in [0, 1] -> the same rounded to 8 bits with blue-noise dither, as ``deband`` writes
    8-bit files by default (:mod:`src.inference.dither`), back as floats."""
    import numpy as np
    import torch

    from src.inference.dither import quantize

    arr = x.detach().float().clamp(0, 1).permute(0, 2, 3, 1).cpu().numpy()
    q = np.stack([quantize(a, 8, "blue-noise") for a in arr]).astype(np.float32) / 255.0
    return torch.from_numpy(q).permute(0, 3, 1, 2).contiguous()


class LastRun:
    """``fn`` with a one-entry cache keyed by the input tensor object: two rows that show two outputs of the
    same model run (float, dithered) restore each banded image once."""

    def __init__(self, fn: Callable[[torch.Tensor], torch.Tensor]) -> None:
        self.fn = fn
        self.key: torch.Tensor | None = None
        self.out: torch.Tensor | None = None

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.key is not x:
            self.key, self.out = x, self.fn(x)
        return self.out


def _model_methods(label: str, debander: Debander) -> list[Method]:
    """Two rows for the model at the weights' own steps (``deband_steps``, else the schedule's grid, which an
    explicit step count would replace by a uniform one): its output as ``deband`` writes an 8-bit file by
    default (blue-noise dither), then the float output itself (which CAMBI rounds to 8 bits plainly)."""
    steps = debander.default_steps
    name = f"{label} ({steps} step{'s' if steps != 1 else ''})"
    run = LastRun(lambda x: debander.deband_batch(x, steps=None))
    return [Method(name, lambda x: dither_8bit(run(x)), steps=steps),
            Method(f"{name}, float", run, steps=steps, speed_from=name)]


def _load_model_method(label: str, path: str, device: str | None, dtype: str | None, notes: list[str],
                       describe: list[str], schedule_steps: bool = False) -> list[Method]:
    """``[the model's Method]``, or ``[]`` with a note when its weights do not load."""
    from src.inference.debander import Debander

    try:
        d = Debander.from_checkpoint(path, device=device, dtype=dtype)
    except DataError as e:
        notes.append(f"{label}: skipped ({e})")
        return []
    if schedule_steps:
        d.weights = replace(d.weights, deband_steps=None)
    describe.append(f"{label}: {d.describe()}")
    return _model_methods(label, d)


GUIDED = (4, 1e-4)  # radius, eps of the guided-filter baseline: the best of a small grid on the test photos


def _guided_method() -> Method:
    from src.models.guided import guided_filter, guided_scale

    r, eps = GUIDED
    # written to 8 bits with the same dither as the models' first rows: the 8-bit footing of every other row
    return Method(f"guided filter (r {r}, eps {eps:g})",
                  lambda x: dither_8bit(guided_filter(x.float(), r, eps, scale=guided_scale(r))))


def build_methods(checkpoint: str | None, recipe: str | None, device: str | None, dtype: str | None,
                  notes: list[str], describe: list[str]) -> list[Method]:
    """Input, the ffmpeg filters, the guided filter, and the models whose weights load; skipped ones get a
    line in ``notes``."""
    methods = [Method("input (banded)", lambda x: x, timed=False), _filter_method("deband"),
               _filter_method("gradfun"), _guided_method()]
    if recipe is None:
        notes.append("recipe: skipped (pass --recipe PATH to an `experiment=fft_indi` checkpoint)")
    else:
        # the recipe runs its training schedule (typically 30 steps), not a shorter deband_steps
        methods += _load_model_method("recipe", recipe, device, dtype, notes, describe, schedule_steps=True)
    if checkpoint is None:
        notes.append("default model: skipped (--checkpoint none)")
    else:
        methods += _load_model_method("default model", checkpoint, device, dtype, notes, describe)
    return methods


# --------------------------------------------------------------------------------------------------- running
def _frame(h: int, w: int) -> torch.Tensor:
    """``(1, 3, h, w)``: a smooth gradient with a little noise (speed does not depend on content)."""
    import torch

    g = torch.Generator().manual_seed(0)
    yy = torch.linspace(0, 1, h)[:, None]
    xx = torch.linspace(0, 1, w)[None, :]
    x = torch.stack([yy * 0.8 + xx * 0.2, (xx * 0.7).expand(h, w), (yy + xx) / 2])[None]
    return (x + 0.01 * torch.rand(x.shape, generator=g)).clamp(0, 1)


def time_frame(method: Method, size: tuple[int, int] | None = None) -> float:
    """Seconds for ``method`` on one frame of ``size`` (default :data:`FRAME_1080P`), after a small warm-up
    (oneDNN picks its kernels on the first call)."""
    h, w = size or FRAME_1080P
    method.run(_frame(64, 64))
    x = _frame(h, w)
    t0 = time.perf_counter()
    method.run(x)
    return time.perf_counter() - t0


def evaluate(images: Sequence[tuple[str, torch.Tensor]], degradations: Sequence[Degradation],
             methods: Sequence[Method], metric_names: Sequence[str] = tuple(COLUMNS),
             advance: Callable[[str], None] | None = None) -> dict[str, dict[str, MethodResult]]:
    """Every method on every degraded image: ``results[degradation][method] -> MethodResult``.

    ``advance(description)`` is called after each (degradation, image, method) run, for a progress bar.
    """
    from src.metrics.collection import make_metric

    results: dict[str, dict[str, MethodResult]] = {}
    for deg in degradations:
        per = {m.name: MethodResult({k: make_metric(k) for k in metric_names}) for m in methods}
        results[deg.name] = per
        for i, (_, clean) in enumerate(images):
            clean_b = clean[None]
            banded = deg.apply(clean).float()[None]
            for m in methods:
                t0 = time.perf_counter()
                out = m.run(banded).float().clamp(0, 1)
                r = per[m.name]
                r.seconds += time.perf_counter() - t0
                r.megapixels += banded.shape[-1] * banded.shape[-2] / 1e6
                for metric in r.metrics.values():
                    metric.update(out, clean_b)
                if advance is not None:
                    advance(f"{deg.name} · {m.name} · image {i + 1}/{len(images)}")
    return results


def _clean_cambi(images: Sequence[tuple[str, torch.Tensor]]) -> str:
    """``"cambi x, cambi_mlc5 y"`` of the clean crops: photos can carry their own banding."""
    from src.metrics.collection import make_metric

    parts = []
    for name in ("cambi", "cambi_mlc5"):
        metric = make_metric(name)
        for _, clean in images:
            metric.update(clean[None])
        parts.append(f"{COLUMNS[name].rstrip(' ↓')} {float(metric.compute()):.3f}")
    return ", ".join(parts)


def _fmt(v: float | None, digits: int) -> str:
    if v is None:
        return "–"
    return "n/a" if not math.isfinite(v) else f"{v:.{digits}f}"


def render_markdown(results: dict[str, dict[str, MethodResult]], degradations: Sequence[Degradation],
                    methods: Sequence[Method], header: Sequence[str], speed_note: str) -> str:
    """The report: a bullet list of settings, then one table per degradation (rows = methods)."""
    digits = {"psnr": 2, "psnr_smooth": 2, "ssim": 4, "cambi": 3, "cambi_mlc5": 3}
    lines = ["# Quality benchmark", "", *[f"- {h}" for h in header], f"- {SPEED_COLUMN}: {speed_note}", ""]
    for deg in degradations:
        lines += [f"## {deg.name}: {deg.description}", "",
                  "| method | " + " | ".join(COLUMNS.values()) + f" | {SPEED_COLUMN} |",
                  "|---" * (len(COLUMNS) + 2) + "|"]
        for m in methods:
            r = results[deg.name][m.name]
            vals = r.values()
            cells = [_fmt(vals[k], digits[k]) for k in COLUMNS] + [_fmt(r.s_per_1080p, 2)]
            lines.append(f"| {m.name} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------------- CLI
def add_quality_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", default="default",
                   help="the default model's weights (.ckpt, .pt, .onnx, 'default' or 'none' to skip)")
    p.add_argument("--recipe", default=None, help="the original recipe's checkpoint (experiment=fft_indi), "
                   "run at its schedule's steps (typically 30); skipped when not given")
    p.add_argument("--images", type=Path, default=None,
                   help=f"folder of clean photos (default: {DEFAULT_IMAGES}, the test split of src.data.fetch)")
    p.add_argument("--size", type=int, default=512, help="crop size: short side resized to it, then centre crop")
    p.add_argument("--limit", type=int, default=None, help="use only the first N images")
    p.add_argument("--crf", type=int, default=35, help="libx264 CRF of the h264 degradation (default 35)")
    p.add_argument("--speed", choices=["measure", "extrapolate"], default="measure",
                   help="s / 1080p frame: time one 1920x1080 frame (default), or extrapolate from the crops' MP/s")
    p.add_argument("--out", type=Path, default=Path("logs/benchmark/quality.md"), help="markdown report")
    p.add_argument("--device", default=None)
    p.add_argument("--dtype", choices=["float32", "bfloat16"], default=None)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: the idle cores)")


def _check_args(args: argparse.Namespace) -> None:
    if args.size < 16 or args.size % 2:
        raise ConfigError(f"--size must be an even number >= 16 (H.264 4:2:0 needs even sizes), got {args.size}")
    if args.limit is not None and args.limit < 1:
        raise ConfigError(f"--limit must be >= 1, got {args.limit}")
    if not 0 <= args.crf <= 51:
        raise ConfigError(f"--crf must be in 0..51, got {args.crf}")


def run_quality(args: argparse.Namespace) -> int:
    """The ``quality`` subcommand: evaluate, print the tables, write ``--out``."""
    import torch
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from src.inference.atomic import atomic_output
    from src.inference.device import auto_threads

    _check_args(args)
    folder = args.images
    if folder is None:
        folder = DEFAULT_IMAGES
        if not folder.is_dir():
            raise DataError(f"no test photos at '{folder}': run `python -m src.data.fetch` first "
                            f"(or pass --images FOLDER)")
    torch.set_num_threads(args.threads or auto_threads())
    console = Console(file=sys.stderr)
    images = load_images(folder, args.size, args.limit)
    notes: list[str] = []
    described: list[str] = []
    checkpoint = None if str(args.checkpoint).lower() == "none" else args.checkpoint
    methods = build_methods(checkpoint, args.recipe, args.device, args.dtype, notes, described)
    for line in described + notes:
        console.print(line)
    degradations = make_degradations(args.crf)

    runs = len(degradations) * len(images) * len(methods)
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=True) as progress:
        task = progress.add_task("quality", total=runs)
        results = evaluate(images, degradations, methods,
                           advance=lambda d: progress.update(task, advance=1, description=d))
        timed = [m for m in methods if m.timed and m.speed_from is None]
        if args.speed == "measure":
            speed_note = (f"measured: one {FRAME_1080P[1]}x{FRAME_1080P[0]} frame per method at its steps, "
                          "after a warm-up")
            t2 = progress.add_task("timing 1080p frames", total=len(timed))
            for m in timed:
                progress.update(t2, description=f"timing a 1080p frame · {m.name}")
                seconds = time_frame(m)
                for per in results.values():
                    per[m.name].s_per_1080p = seconds
                progress.update(t2, advance=1)
        else:
            speed_note = ("extrapolated: 2.07 MP / the MP/s measured on the benchmark crops "
                          "(small crops run less efficiently, so a little pessimistic)")
            mp = FRAME_1080P[0] * FRAME_1080P[1] / 1e6
            for m in timed:
                total_s = sum(per[m.name].seconds for per in results.values())
                total_mp = sum(per[m.name].megapixels for per in results.values())
                for per in results.values():
                    per[m.name].s_per_1080p = mp * total_s / total_mp
        for m in methods:
            if m.speed_from is not None:
                for per in results.values():
                    per[m.name].s_per_1080p = per[m.speed_from].s_per_1080p

    load = os.getloadavg()
    threads = torch.get_num_threads()
    header = [
        f"images: {len(images)} from `{folder}` (short side resized to {args.size}, centre crop "
        f"{args.size}x{args.size}): " + ", ".join(f"`{name}`" for name, _ in images),
        f"CAMBI of the clean crops themselves (the floor a method can reach): {_clean_cambi(images)}",
        f"torch {torch.__version__}, {threads} CPU thread{'s' if threads != 1 else ''}; load average at the end "
        f"{load[0]:.2f} (timings are only comparable at low load)",
        *described,
        *notes,
    ]
    report = render_markdown(results, degradations, methods, header, speed_note)
    print(report)
    with atomic_output(args.out) as tmp:
        tmp.write_text(report, encoding="utf-8")
    console.print(f"wrote {args.out}")
    return 0
