"""``python -m src.bench video``: debanding real video clips, side by side with ffmpeg's ``deband``.

Clips are made from the held-out photos (``python -m src.data.fetch``): a camera window moving over each
photo (``drift``: 0.25 px right and 0.1 px down per frame, a slow steady move; ``pan``: 4 px per frame;
``zoom``: a push-in, the window 0.2% smaller each frame about its centre; ``shake``: a hand-held camera, the
window jittering by a seeded random walk of about 1.5 px per frame, pulled back towards its start), banded
like streamed video (:func:`~src.data.degradations.stream_clip`: 4:2:0, luma 6 / chroma 5
bits, the whole clip through libx264 at CRF 30) and written as an MP4. Each method restores that file:

- ``deband`` (also ``--no-contour``, and ``--video-bit-depth 10``: 10-bit output, not dithered):
  :func:`~src.inference.video.deband_video` on the file as the command line runs it (decode, network,
  contour pass, dither, x264 CRF 16 encode), timed as a whole;
- ffmpeg's ``deband`` filter (PyAV) on the decoded frames (not re-encoded).

Scores, against the source frames: ``flicker``, the mean frame-to-frame change of BT.709 luma (8-bit codes)
over the pixels that are flat (3 x 3 range <= 1 code) and static (change < 0.25 code) in the source, which
is what a viewer sees as shimmer on a still sky; PSNR and smooth-region PSNR (mean over frames); frames per
second of the whole method; peak resident memory while it ran; the size of the file it wrote.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import torch

from src.bench.quality import DEFAULT_IMAGES, frame_size
from src.bench.speed import PeakRSS
from src.utils.errors import ConfigError, DataError

__all__ = ["MOTIONS", "make_clip", "flicker", "add_video_args", "run_video"]

#: steady moves: motion name -> (x, y) pixels per frame
MOVES = {"drift": (0.25, 0.1), "pan": (4.0, 0.0)}
#: ``zoom``: the fraction by which the window shrinks each frame, about its centre
ZOOM_PER_FRAME = 0.002
#: ``shake``: the random walk's step (px std per frame and axis) and the share of its offset kept each frame
SHAKE_STEP, SHAKE_KEEP = 1.5, 0.8
#: every motion :func:`make_clip` knows
MOTIONS = (*MOVES, "zoom", "shake")


def _path(motion: str, frames: int) -> tuple[list[float], list[float], list[float]]:
    """Per frame: the window's scale (1: the clip's size), x and y offsets (px) of ``motion``."""
    if motion in MOVES:
        dx, dy = MOVES[motion]
        return [1.0] * frames, [i * dx for i in range(frames)], [i * dy for i in range(frames)]
    if motion == "zoom":
        return [(1 - ZOOM_PER_FRAME) ** i for i in range(frames)], [0.0] * frames, [0.0] * frames
    # shake: the same jitter for every clip (seeded), so runs compare
    gen = torch.Generator().manual_seed(0)
    steps = torch.randn(frames, 2, generator=gen) * SHAKE_STEP
    off, xs, ys = torch.zeros(2), [], []
    for i in range(frames):
        off = SHAKE_KEEP * off + steps[i] if i else off
        xs.append(float(off[0]))
        ys.append(float(off[1]))
    return [1.0] * frames, xs, ys


def make_clip(photo: torch.Tensor, size: tuple[int, int], frames: int, motion: str) -> list[torch.Tensor]:
    """``frames`` views ``(3, h, w)`` of ``photo`` ``(3, H, W)`` in [0, 1] through a window that moves as
    ``motion`` (one of :data:`MOTIONS`) says, sampled bilinearly (sub-pixel)."""
    import torch.nn.functional as F

    from src.bench.quality import fit_frame

    if motion not in MOTIONS:
        raise ConfigError(f"motion must be one of {', '.join(MOTIONS)}; got {motion!r}")
    h, w = size
    scales, oxs, oys = _path(motion, frames)
    # the photo, fitted to the window plus room for every offset on both sides of where the window starts
    if motion in MOVES:  # a frame's worth more than the last offset (the clips the documented figures used)
        x0 = y0 = 1
        mx, my = (math.ceil(abs(d) * frames) + 2 for d in MOVES[motion])
    else:
        x0, y0 = math.ceil(-min(0.0, *oxs)) + 1, math.ceil(-min(0.0, *oys)) + 1  # where the window starts
        mx, my = x0 + math.ceil(max(0.0, *oxs)) + 1, y0 + math.ceil(max(0.0, *oys)) + 1
    big = fit_frame(photo.float(), h + my, w + mx)
    out = []
    for s, ox, oy in zip(scales, oxs, oys):
        # each output pixel's centre in the big frame (scaled about the window's centre), then normalised
        ry, rx = torch.arange(h) + 0.5, torch.arange(w) + 0.5
        if s != 1:
            ry, rx = h / 2 + (ry - h / 2) * s, w / 2 + (rx - w / 2) * s
        ys = (ry + y0 + oy) / (h + my) * 2 - 1
        xs = (rx + x0 + ox) / (w + mx) * 2 - 1
        gy, gx = torch.meshgrid(ys, xs, indexing="ij")
        grid = torch.stack([gx, gy], -1)[None]
        out.append(F.grid_sample(big[None], grid, mode="bilinear", align_corners=False)[0].clamp(0, 1))
    return out


def _luma_codes(rgb: torch.Tensor) -> torch.Tensor:
    from src.colour.yuv import rgb_to_ycbcr709

    return rgb_to_ycbcr709(rgb.double())[0]


def flicker(outputs: list[torch.Tensor], sources: list[torch.Tensor]) -> float:
    """Mean |luma change| between consecutive ``outputs`` (8-bit codes) over the pixels flat and static in
    ``sources`` (both lists of ``(3, H, W)`` in [0, 1]); NaN where no pixel qualifies."""
    from src.baselines.filters import max3

    total, count = 0.0, 0
    prev_src = prev_out = None
    for out, src in zip(outputs, sources):
        ys, yo = _luma_codes(src), _luma_codes(out)
        if prev_src is not None:
            x = ys[None, None]
            rng = max3(x) + max3(-x)
            mask = (rng[0, 0] <= 1.0) & ((ys - prev_src).abs() < 0.25)
            total += float((yo - prev_out).abs()[mask].sum())
            count += int(mask.sum())
        prev_src, prev_out = ys, yo
    return total / count if count else float("nan")


def _decode(path: Path) -> list[torch.Tensor]:
    import av
    import numpy as np

    from src.colour.yuv import frame_to_rgb

    with av.open(str(path)) as c:
        return [
            torch.from_numpy(np.ascontiguousarray(frame_to_rgb(f).transpose(2, 0, 1))).float()
            for f in c.decode(video=0)
        ]


@dataclass
class ClipResult:
    """One method on one clip."""

    flicker: float
    psnr: float
    smooth_psnr: float
    fps: float | None = None
    peak_rss_mb: float | None = None
    size_kb: float | None = None  # the method's output file, where it writes one


@dataclass
class Report:
    rows: dict[str, dict[str, ClipResult]] = field(default_factory=dict)  # clip -> method -> result


def _scores(outs: list[torch.Tensor], srcs: list[torch.Tensor], fps: float | None, rss: float | None) -> ClipResult:
    from src.metrics.smooth_psnr import smooth_psnr

    if len(outs) != len(srcs):
        raise DataError(f"a method returned {len(outs)} frames for a clip of {len(srcs)}")
    psnr = sum(float(10 * torch.log10(1 / ((o - s) ** 2).mean().clamp_min(1e-12))) for o, s in zip(outs, srcs))
    sp = torch.stack([smooth_psnr(o[None], s[None])[0] for o, s in zip(outs, srcs)])
    return ClipResult(flicker(outs, srcs), psnr / len(outs), float(sp.nanmean()), fps, rss)


def _timed(fn):  # noqa: ANN001, ANN202 - any callable -> (result, seconds, peak MB)
    with PeakRSS() as mem:
        t0 = time.perf_counter()
        result = fn()
        seconds = time.perf_counter() - t0
    return result, seconds, mem.peak / 2**20


def evaluate_clip(src_frames: list[torch.Tensor], workdir: Path, debanders: dict, crf: int = 30) -> dict:
    """Band ``src_frames`` into ``workdir/banded.mp4`` and score every method on it (see the module).

    ``debanders``: method name -> a Debander, or (Debander, VideoOptions) for other output settings."""
    from src.baselines.ffmpeg_filters import ffmpeg_filter
    from src.data.degradations import stream_clip
    from src.inference.video import VideoOptions, deband_video

    banded_path = workdir / "banded.mp4"
    stream_clip(src_frames, banded_path, luma_bits=6, chroma_bits=5, crf=crf)
    banded = _decode(banded_path)
    n = len(src_frames)
    res = {"input (banded)": _scores(banded, src_frames, None, None)}
    res["input (banded)"].size_kb = banded_path.stat().st_size / 1024
    for name, method in debanders.items():
        debander, opts = method if isinstance(method, tuple) else (method, VideoOptions(quiet=True))
        out_path = workdir / f"{''.join(c if c.isalnum() else '_' for c in name)}.mp4"
        _, seconds, rss = _timed(lambda d=debander, p=out_path, o=opts: deband_video(d, banded_path, p, o))
        res[name] = _scores(_decode(out_path), src_frames, n / seconds, rss)
        res[name].size_kb = out_path.stat().st_size / 1024
    outs, seconds, rss = _timed(lambda: [ffmpeg_filter(f, "deband") for f in _decode(banded_path)])
    res["ffmpeg deband"] = _scores(outs, src_frames, n / seconds, rss)
    return res


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def render(report: Report, header: list[str]) -> str:
    """The markdown report: one table per clip and the mean over clips."""

    def fmt(v: float | None, d: int) -> str:
        return "–" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{d}f}"

    cols = (
        "| method | flicker (codes) ↓ | PSNR ↑ | smooth PSNR ↑ | frames / s ↑ | peak RSS (MB) | file (kB) |\n"
        "|---|---|---|---|---|---|---|"
    )
    lines = ["# Video benchmark", "", *[f"- {h}" for h in header], ""]
    methods = list(next(iter(report.rows.values())))
    mean = {}
    for m in methods:
        rs = [per[m] for per in report.rows.values()]

        def avg(key: str, rs: list[ClipResult] = rs) -> float | None:
            vals = [getattr(r, key) for r in rs if getattr(r, key) is not None and not math.isnan(getattr(r, key))]
            return sum(vals) / len(vals) if vals else None

        mean[m] = ClipResult(*(avg(k) for k in ("flicker", "psnr", "smooth_psnr", "fps", "peak_rss_mb", "size_kb")))
    for title, per in [*report.rows.items(), (f"mean over {len(report.rows)} clips", mean)]:
        lines += [f"## {title}", "", cols]
        for m, r in per.items():
            lines.append(
                f"| {m} | {fmt(r.flicker, 3)} | {fmt(r.psnr, 2)} | {fmt(r.smooth_psnr, 2)} | {fmt(r.fps, 2)} "
                f"| {fmt(r.peak_rss_mb, 0)} | {fmt(r.size_kb, 0)} |"
            )
        lines.append("")
    return "\n".join(lines)


def add_video_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--images", type=Path, default=None, help="photos to make clips from (default: the test photos)")
    p.add_argument("--limit", type=int, default=2, help="photos used (default 2)")
    p.add_argument("--size", type=frame_size, default=(720, 1280), help="frame size WxH (default 1280x720)")
    p.add_argument("--frames", type=int, default=24, help="frames per clip (default 24)")
    p.add_argument("--motion", default="drift", help=f"comma-separated: {', '.join(MOTIONS)} (default drift)")
    p.add_argument("--crf", type=int, default=30, help="x264 CRF of the banded clips (default 30)")
    p.add_argument("--checkpoint", default="default", help="weights for deband (default: the shipped model)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: the idle cores)")
    p.add_argument("--out", type=Path, default=Path("logs/benchmark/video.md"), help="markdown report")


def run_video(args: argparse.Namespace) -> int:
    """The ``video`` subcommand: make the clips, run the methods, print and write the report."""
    from rich.console import Console

    from src.data.image_io import read_image, to_rgb
    from src.data.sources import list_images
    from src.inference.debander import Debander
    from src.inference.video import VideoOptions
    from src.utils.atomic import atomic_write_text
    from src.utils.progress import progress_bar
    from src.utils.threads import set_torch_threads

    motions = [m.strip() for m in args.motion.split(",") if m.strip()]
    for m in motions:
        if m not in MOTIONS:
            raise ConfigError(f"--motion must list names from {', '.join(MOTIONS)}; got {m!r}")
    if args.frames < 2:
        raise ConfigError(f"--frames must be >= 2 (flicker compares consecutive frames), got {args.frames}")
    h, w = args.size
    if h % 2 or w % 2:
        raise ConfigError(f"--size must be even for 4:2:0 video, got {w}x{h}")
    if args.limit < 1:
        raise ConfigError(f"--limit must be >= 1, got {args.limit}")
    folder = args.images or DEFAULT_IMAGES
    if not Path(folder).is_dir():
        raise DataError(f"no photos at '{folder}': run `python -m src.data.fetch` first (or pass --images FOLDER)")
    photos = list_images(folder)[: args.limit]
    if not photos:
        raise DataError(f"no photos in '{folder}'")
    set_torch_threads(args.threads)
    console = Console(file=sys.stderr)

    debander = Debander.from_checkpoint(args.checkpoint)
    debanders = {
        "deband": debander,
        "deband --no-contour": Debander(debander.weights, debander.device, debander.dtype),
        # 10-bit output is not dithered and re-encodes without re-banding: what it costs and gains
        "deband --video-bit-depth 10": (debander, VideoOptions(quiet=True, bit_depth=10)),
    }
    console.print(debander.describe())
    report = Report()
    with progress_bar(console) as progress, tempfile.TemporaryDirectory(prefix="indi-video-bench-") as tmp:
        task = progress.add_task("video", total=len(photos) * len(motions))
        for path in photos:
            arr, _ = read_image(path)
            photo = torch.from_numpy(to_rgb(arr).transpose(2, 0, 1).copy())
            for motion in motions:
                progress.update(task, description=f"{path.stem} · {motion}")
                clip = make_clip(photo, (h, w), args.frames, motion)
                report.rows[f"{path.stem}, {motion}"] = evaluate_clip(clip, Path(tmp), debanders, args.crf)
                progress.update(task, advance=1)
    header = [
        f"clips: {len(photos)} photos from `{folder}` x motion {', '.join(motions)}, {w}x{h}, {args.frames} frames, "
        f"4:2:0 luma 6 / chroma 5 bits, libx264 CRF {args.crf}",
        "flicker: mean |luma change| between consecutive frames (8-bit codes) over pixels flat and static in the "
        "source; frames / s: the whole method (deband: decode, network, contour pass, dither, x264 CRF 16 encode; "
        "ffmpeg deband: decode and filter, no encode); file: the method's output (the input's for the input)",
        f"{_cpu_name()}, {os.cpu_count()} CPUs, torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"{date.today().isoformat()}; load average at the end {os.getloadavg()[0]:.2f}",
        debander.describe(),
    ]
    md = render(report, header)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out, md)
    print(md)
    console.print(f"wrote {args.out}")
    return 0
