"""Benchmarks: ``python -m src.bench speed|quality|bound ...``.

Subcommands are registered in :data:`COMMANDS` (name -> (add_arguments, run)): ``speed`` measures inference
throughput and memory (``--checkpoint PATH --steps 1,2,4 --sizes 720p,1080p,4k``); ``quality`` scores methods
on held-out photos per degradation (:mod:`src.bench.quality`); ``bound`` scores non-blind dequantization,
which knows the quantization grid, on the same photos (:mod:`src.bench.bound`).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from src.utils.errors import ConfigError

__all__ = ["SIZES", "SpeedResult", "measure_speed", "PeakRSS", "add_speed_args", "run_speed"]

SIZES = {
    "480p": (480, 854),
    "720p": (720, 1280),
    "1080p": (1080, 1920),
    "1440p": (1440, 2560),
    "4k": (2160, 3840),
    "8k": (4320, 7680),
}


# --------------------------------------------------------------------------------------------------- memory
class PeakRSS:
    """Peak resident memory of this process while the ``with`` block runs (sampled every 5 ms with psutil;
    without psutil, the lifetime peak from ``resource.getrusage``)."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        try:
            import psutil

            self._proc = psutil.Process()
        except ImportError:
            self._proc = None

    def _rss(self) -> int:
        if self._proc is not None:
            return int(self._proc.memory_info().rss)
        import resource

        return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024  # KiB on Linux

    def _poll(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, self._rss())

    def __enter__(self) -> PeakRSS:
        self.peak = self._rss()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._rss())


# --------------------------------------------------------------------------------------------------- speed
@dataclass
class SpeedResult:
    size: str
    steps: int
    tile: int | None
    seconds: float
    megapixels: float
    peak_rss_mb: float

    @property
    def mp_per_s(self) -> float:
        return self.megapixels / self.seconds


def _parse_list(text: str, conv: Callable[[str], object], what: str) -> list:
    try:
        return [conv(s.strip()) for s in text.split(",") if s.strip()]
    except (ValueError, KeyError) as e:
        raise ConfigError(f"bad {what} list {text!r}") from e


def _size(name: str) -> tuple[int, int]:
    key = name.lower()
    if key in SIZES:
        return SIZES[key]
    if "x" in key:  # WxH
        w, h = key.split("x")
        return int(h), int(w)
    raise ConfigError(f"unknown size {name!r}: use {', '.join(SIZES)} or WxH")


def _test_frame(size: str):  # noqa: ANN202 - torch.Tensor (torch imported lazily)
    """``(1, 3, H, W)`` in [0, 1]: a smooth gradient plus noise. The network's time does not depend on content;
    the contour pass's grows with the number of code levels, and this full-range gradient holds more than a
    real frame does (0.65 s against 0.4 s for ``banded-2.png`` at 1080p)."""
    import torch

    h, w = _size(size)
    yy = torch.linspace(0, 1, h)[:, None]
    xx = torch.linspace(0, 1, w)[None, :]
    x = torch.stack([yy * 0.8 + xx * 0.2, (xx * 0.7).expand(h, w), (yy + xx) / 2]).unsqueeze(0)
    return (x + 0.01 * torch.rand_like(x)).clamp(0, 1)


def measure_speed(
    debander,
    size: str,
    steps: int,
    tile: int | None,
    overlap: int = 32,  # noqa: ANN001
    repeats: int = 1,
) -> SpeedResult:
    """Time ``deband_batch`` on one frame of ``size`` (a smooth gradient + noise; speed does not depend on content)."""
    x = _test_frame(size)
    h, w = x.shape[-2:]
    best = float("inf")
    with PeakRSS() as mem:
        for _ in range(repeats):
            t0 = time.perf_counter()
            debander.deband_batch(x, steps=steps, tile=tile, overlap=overlap)
            best = min(best, time.perf_counter() - t0)
    return SpeedResult(size, steps, tile, best, h * w / 1e6, mem.peak / 2**20)


# ------------------------------------------------------------------------------------------- whole process
#: run in a fresh interpreter: what a single ``deband`` call pays before its first pixel
_STARTUP_PROBE = """
import json, os, sys, time
t0 = time.perf_counter()
import torch
t1 = time.perf_counter()
from src.inference.debander import Debander
t2 = time.perf_counter()
torch.set_num_threads(int(sys.argv[2]))
Debander.from_checkpoint(sys.argv[1])
t3 = time.perf_counter()
print(json.dumps({"import torch": t1 - t0, "import deband": t2 - t1, "load weights": t3 - t2}), flush=True)
os._exit(0)  # as the deband script does: no interpreter teardown
"""

#: ffmpeg's deband filter on a PNG through PyAV, for machines without the ffmpeg command line
_PYAV_DEBAND = """
import sys
import numpy as np
from PIL import Image
from src.baselines.ffmpeg_filters import filter_rgb8
rgb = np.asarray(Image.open(sys.argv[1]).convert("RGB"))
Image.fromarray(filter_rgb8(rgb, "deband")).save(sys.argv[2], compress_level=1)
"""


@dataclass
class ProcessResult:
    """Whole-process seconds (start-up included) of one command, over ``repeats`` runs."""

    name: str
    best: float
    median: float
    runs: int


def _env() -> dict[str, str]:
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    return {**os.environ, "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", "")}


def _time_command(name: str, cmd: list[str], repeats: int) -> ProcessResult:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        r = subprocess.run(cmd, capture_output=True, text=True, env=_env())
        times.append(time.perf_counter() - t0)
        if r.returncode != 0:
            raise RuntimeError(f"{name} failed: {(r.stderr or r.stdout).strip().splitlines()[-1:]}")
    return ProcessResult(name, min(times), statistics.median(times), repeats)


def startup_costs(checkpoint: str, threads: int) -> dict[str, float]:
    """Seconds of a fresh interpreter's start-up: ``python`` itself (and the child process's creation),
    ``import torch``, the rest of the project's imports and loading the weights (measured in a child)."""
    t0 = time.perf_counter()
    r = subprocess.run(
        [sys.executable, "-c", _STARTUP_PROBE, checkpoint, str(threads)], capture_output=True, text=True, env=_env()
    )
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        raise RuntimeError(f"start-up probe failed: {r.stderr.strip().splitlines()[-1:]}")
    parts = json.loads(r.stdout.strip().splitlines()[-1])
    return {"interpreter": max(wall - sum(parts.values()), 0.0), **parts}


def whole_process(checkpoint: str, size: str, threads: int, repeats: int) -> tuple[list[ProcessResult], str]:
    """Time ``deband`` on one PNG of ``size`` as a user runs it (a new process each time, start-up, reading
    and writing included), with and without the contour pass, beside ffmpeg's ``deband`` filter on the same
    file (the ffmpeg command line when installed, else the same filter through PyAV in a Python process).
    Returns the results and how ffmpeg was run."""
    import numpy as np

    from src.data.image_io import write_image

    # the frame the table timed, as an 8-bit PNG
    q = np.round(_test_frame(size)[0].permute(1, 2, 0).numpy() * 255).astype(np.uint8)
    with tempfile.TemporaryDirectory(prefix="indi-speed-") as tmp:
        src = os.path.join(tmp, "frame.png")
        write_image(src, q)
        out = os.path.join(tmp, "out.png")
        base = [sys.executable, "-m", "src.deband", src, "-o", out, "--overwrite", "--quiet"]
        base += ["--checkpoint", checkpoint, "--threads", str(threads)]
        results = [
            _time_command("deband", base, repeats),
            _time_command("deband --no-contour", base + ["--no-contour"], repeats),
        ]
        ff = shutil.which("ffmpeg")
        if ff:
            cmd, how = [ff, "-v", "error", "-y", "-i", src, "-vf", "deband", out], "the ffmpeg command line"
        else:
            cmd, how = [sys.executable, "-c", _PYAV_DEBAND, src, out], "PyAV's filter graph in a Python process"
        results.append(_time_command("ffmpeg deband", cmd, repeats))
    return results, how


def add_speed_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", default="default", help="weights (.ckpt, .pt, .onnx or 'default')")
    p.add_argument("--steps", default="1,2,4", help="comma-separated step counts (default 1,2,4)")
    p.add_argument("--sizes", default="720p,1080p,4k", help=f"comma-separated: {', '.join(SIZES)} or WxH")
    p.add_argument("--tile", type=int, default=None, help="tile size (default: the automatic choice; 0 = off)")
    p.add_argument("--overlap", type=int, default=32)
    p.add_argument("--device", default=None)
    p.add_argument("--dtype", choices=["float32", "bfloat16"], default=None)
    p.add_argument("--compile", action="store_true", help="torch.compile the network (warm-up not timed)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: the idle cores)")
    p.add_argument("--repeats", type=int, default=1, help="runs per configuration; the fastest is reported")
    p.add_argument(
        "--no-contour",
        action="store_true",
        help="time the network alone, without the contour interpolation that deband runs after it",
    )
    p.add_argument(
        "--process",
        default="1080p",
        help="also time whole deband processes (start-up included) on one PNG of this size, beside ffmpeg's "
        "deband filter, and split the start-up into imports and weights; 'off' to skip (default 1080p)",
    )


def run_speed(args: argparse.Namespace) -> int:
    import torch
    from rich.console import Console
    from rich.table import Table

    from src.inference.debander import AUTO_TILE, AUTO_TILE_PIXELS, Debander

    steps_list = _parse_list(args.steps, int, "steps")
    sizes = _parse_list(args.sizes, str, "sizes")
    for s in sizes:
        _size(s)
    if args.process != "off":
        _size(args.process)
    from src.utils.threads import set_torch_threads

    set_torch_threads(args.threads)
    console = Console(file=sys.stderr)
    debander = Debander.from_checkpoint(
        args.checkpoint, device=args.device, dtype=args.dtype, compile=args.compile, contour=not args.no_contour
    )
    console.print(debander.describe())
    load0 = os.getloadavg()
    console.print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"load average {load0[0]:.2f} {load0[1]:.2f} {load0[2]:.2f}"
    )
    # warm-up: oneDNN picks kernels and (with --compile) the graph is compiled on the first calls
    debander.deband_batch(torch.rand(1, 3, 64, 64), steps=1, tile=0)

    table = Table(
        title="deband speed" + (" (network only)" if args.no_contour else " (network + contour interpolation)")
    )
    for col in ("size", "steps", "tile", "s / frame", "MP / s", "peak RSS (MB)"):
        table.add_column(col, justify="right")
    results = []
    for size in sizes:
        h, w = _size(size)
        tile = args.tile if args.tile is not None else (AUTO_TILE if h * w > AUTO_TILE_PIXELS else 0)
        for steps in steps_list:
            r = measure_speed(debander, size, steps, tile, args.overlap, args.repeats)
            results.append(r)
            table.add_row(
                size, str(steps), str(tile or "off"), f"{r.seconds:.2f}", f"{r.mp_per_s:.2f}", f"{r.peak_rss_mb:.0f}"
            )
            console.print(
                f"  {size} {steps} steps: {r.seconds:.2f} s/frame, {r.mp_per_s:.2f} MP/s, "
                f"peak RSS {r.peak_rss_mb:.0f} MB"
            )
    Console().print(table)
    if args.process != "off":
        _print_process(args, torch.get_num_threads(), results)
    load1 = os.getloadavg()
    console.print(
        f"load average at the end {load1[0]:.2f} {load1[1]:.2f} {load1[2]:.2f} "
        f"(timings are only comparable at low load)"
    )
    return 0


def _print_process(args: argparse.Namespace, threads: int, results: list[SpeedResult]) -> None:
    costs = startup_costs(args.checkpoint, threads)
    runs, how = whole_process(args.checkpoint, args.process, threads, args.repeats)
    print(
        "start-up of a fresh process: "
        + ", ".join(f"{k} {v:.2f} s" for k, v in costs.items())
        + f"; {sum(costs.values()):.2f} s in all"
    )
    print(
        f"whole process, one {args.process} PNG (start-up, reading, writing included; best / median of "
        f"{args.repeats}; ffmpeg deband through {how}):"
    )
    for r in runs:
        print(f"  {r.name}: {r.best:.2f} / {r.median:.2f} s")
    print(f"  deband / ffmpeg deband: {runs[0].best / max(runs[-1].best, 1e-9):.1f}x")
    net = [r.seconds for r in results if r.size == args.process and r.steps == 1]
    if net:
        print(f"  network{'' if args.no_contour else ' + contour pass'} in it (the table's 1-step row): {net[0]:.2f} s")
