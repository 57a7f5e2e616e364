"""The CAMBI command line: ``python -m src.cambi [options] IMAGE_OR_FOLDER...`` prints ``<score>\t<path>`` per image.

The metric itself is :mod:`src.metrics.cambi`; this module reads image files into luma codes and loops over them.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from src.data.image_io import IMAGE_EXTENSIONS
from src.metrics.cambi import LUMA_METHODS, cambi, rgb_to_luma_codes

__all__ = ["load_luma_codes", "main"]


def _expand_paths(paths: Iterable[str]) -> list[tuple[Path, str | None]]:
    """Files as given, folders expanded recursively to image files; (path, error or None)."""
    out: list[tuple[Path, str | None]] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS)
            out.extend((f, None) for f in found)
            if not found:
                out.append((p, "no images found in folder"))
        elif p.exists():
            out.append((p, None))
        else:
            out.append((p, "no such file"))
    return out


def load_luma_codes(
    path: Path, bit_depth: int = 8, raw_luma: bool = False, method: str = "ffmpeg"
) -> tuple[Tensor, int]:
    """Read an image as (H, W) luma codes; returns (codes, bit depth of the codes).

    RGB: BT.709 limited range via ``rgb_to_luma_codes`` (``method``: ``ffmpeg`` as the shared reference's
    default pipeline converts 8-bit images, or ``exact``; above 8 bits always ``exact``). Gray (L, I;16, I):
    Y' = gray / max, then the same limited-range mapping; with ``raw_luma`` gray values are used as codes
    unchanged (8 bits for L, ``bit_depth`` for 16-bit PNGs).
    """
    method = method if bit_depth == 8 else "exact"
    with Image.open(path) as im:
        im.load()
        if im.mode in ("L", "I;16", "I;16B", "I;16L", "I"):
            arr = np.asarray(im).astype(np.int64)
            in_bits = 8 if im.mode == "L" else 16
            if raw_luma:
                bits = 8 if im.mode == "L" else bit_depth
                return torch.from_numpy(arr), bits
            gray = torch.from_numpy(arr).double() / ((1 << in_bits) - 1)
            return rgb_to_luma_codes(gray.expand(3, *gray.shape), bit_depth, method), bit_depth
        rgb = np.asarray(im.convert("RGB")).astype(np.float64) / 255.0
    return rgb_to_luma_codes(torch.from_numpy(rgb).permute(2, 0, 1), bit_depth, method), bit_depth


def main(argv: Sequence[str] | None = None) -> int:
    """Print ``<score>\\t<path>`` per image; errors go to stderr; returns 1 if any image failed."""
    parser = argparse.ArgumentParser(
        prog="python -m src.cambi", description="CAMBI banding score (libvmaf 3.2.0 port)."
    )
    parser.add_argument("paths", nargs="+", metavar="IMAGE_OR_FOLDER")
    parser.add_argument("--max-log-contrast", type=int, default=2)
    parser.add_argument("--bit-depth", type=int, default=8, help="bit depth of the luma codes (default 8)")
    parser.add_argument("--window-size", type=int, default=65)
    parser.add_argument("--topk", type=float, default=0.6)
    parser.add_argument("--raw-luma", action="store_true", help="take gray images as luma codes, without range mapping")
    parser.add_argument("--strict", action="store_true", help="fail on frames below libvmaf's minimum size")
    parser.add_argument(
        "--luma",
        choices=LUMA_METHODS,
        default="ffmpeg",
        help="RGB -> luma at 8 bits: 'ffmpeg' (default) reproduces ffmpeg's fixed-point conversion "
        "that libvmaf users feed CAMBI; 'exact' rounds the real-valued BT.709 luma",
    )
    args = parser.parse_args(argv)

    failed = False
    try:
        for path, error in _expand_paths(args.paths):
            if error is None:
                try:
                    codes, bits = load_luma_codes(path, args.bit_depth, args.raw_luma, args.luma)
                    score = cambi(
                        codes,
                        bit_depth=bits,
                        window_size=args.window_size,
                        topk=args.topk,
                        max_log_contrast=args.max_log_contrast,
                        strict=args.strict,
                    )
                except Exception as exc:  # one bad file must not stop the others
                    error = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                else:
                    print(f"{score:.6f}\t{path}", flush=True)
                    continue
            print(f"error: {path}: {error}", file=sys.stderr, flush=True)
            failed = True
    except BrokenPipeError:  # e.g. piped into `head`: stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
