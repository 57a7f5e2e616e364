"""Benchmarks: ``python -m src.bench speed|quality|bound|figure|video ...``.

``speed`` measures inference throughput and memory (``--checkpoint PATH --steps 1,2,4 --sizes
720p,1080p,4k``, :mod:`src.bench.speed`); ``quality`` scores methods on held-out photos per degradation, or
banded frames without a reference (:mod:`src.bench.quality`); ``bound`` scores non-blind dequantization,
which knows the quantization grid, on the same photos (:mod:`src.bench.bound`); ``figure`` draws
streamed-video banding on a procedural 1080p sky and each model's output (:mod:`src.bench.figure`);
``video`` scores ``deband`` and ffmpeg's filter on clips banded like streamed video (:mod:`src.bench.video`).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from src.bench.bound import add_bound_args, run_bound
from src.bench.figure import add_figure_args, run_figure
from src.bench.quality import add_quality_args, run_quality
from src.bench.speed import add_speed_args, run_speed
from src.bench.video import add_video_args, run_video
from src.utils.errors import DebandError
from src.utils.malloc import keep_freed_memory

#: name -> (add its arguments to a subparser, run it)
COMMANDS: dict[str, tuple[Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]] = {
    "speed": (add_speed_args, run_speed),
    "quality": (add_quality_args, run_quality),
    "bound": (add_bound_args, run_bound),
    "figure": (add_figure_args, run_figure),
    "video": (add_video_args, run_video),
}
HELP = {
    "speed": "inference speed (s/frame, MP/s) and peak memory per size and step count",
    "quality": "PSNR, smooth PSNR, SSIM, banding scores (8-bit output, no dither) and s/1080p frame of each "
    "method on held-out photos; with --frames, banding scores of banded frames without a reference",
    "bound": "what knowing the quantization grid is worth: non-blind dequantization on the same photos",
    "figure": "a picture of streamed-video banding on a procedural 1080p sky, restored by each model, "
    "contrast-stretched",
    "video": "flicker, PSNR, frames/s and memory of deband and ffmpeg's deband on clips made from the test photos "
    "and banded like streamed video",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m src.bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (add_args, _) in COMMANDS.items():
        add_args(sub.add_parser(name, help=HELP.get(name)))
    args = parser.parse_args(argv)
    # the benchmarks time what `deband` does, which keeps freed memory for the next frame
    keep_freed_memory()
    try:
        return COMMANDS[args.command][1](args)
    except DebandError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
