"""``python -m src.bench figure``: one picture of streamed-video banding and what each model makes of it.

A procedurally generated 1080p scene (a sky behind wires, masts or branches: nothing third-party) is banded
the way the quality benchmark's ``stream_1080p`` bands photos (4:2:0, luma 6 / chroma 5 bits, x264 CRF 30),
restored by each ``--checkpoint``, rounded to 8 bits without dither, and drawn as contrast-stretched crops of
input / outputs / clean around the input's worst band. Prints each output's PSNR, smooth-region PSNR and CAMBI.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from src.bench.quality import frame_size
from src.utils.errors import ConfigError


def add_figure_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--checkpoint",
        action="append",
        metavar="[NAME=]PATH",
        help="a model to show (repeatable; default: the shipped model, 'default')",
    )
    p.add_argument("--kind", default="sky_structures", help="procedural scene (src.data.sources.smooth_image)")
    p.add_argument("--seed", type=int, default=3)
    p.add_argument("--size", type=frame_size, default=(1080, 1920), metavar="WxH", help="default 1920x1080")
    p.add_argument("--crop", type=int, default=320, help="crop size in pixels")
    p.add_argument("--out", type=Path, default=Path("logs/benchmark/stream_figure.png"))
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: the idle cores)")


def _named(spec: str) -> tuple[str, str]:
    name, sep, path = spec.partition("=")
    return (name, path) if sep else (Path(spec).stem if spec != "default" else "shipped model", spec)


def run_figure(args: argparse.Namespace) -> int:
    import torch

    from src.data.degradations import stream_roundtrip
    from src.data.sources import smooth_image
    from src.inference.debander import Debander
    from src.metrics.banding import banding_scores
    from src.metrics.panels import save_panels
    from src.utils.threads import set_torch_threads

    h, w = args.size
    if min(h, w) < 64:
        raise ConfigError(f"--size must be WxH with both at least 64, got {w}x{h}")
    if not 64 <= args.crop <= min(h, w):
        raise ConfigError(f"--crop must be between 64 and the frame's short side, got {args.crop}")
    set_torch_threads(args.threads)
    models = [_named(s) for s in (args.checkpoint or ["default"])]
    src = smooth_image(args.kind, args.seed, (h, w))
    clean = torch.from_numpy(src.to_float()).permute(2, 0, 1).contiguous()
    banded = stream_roundtrip(clean, luma_bits=6, chroma_bits=5, codec="h264", quality=30)
    panels = [("banded input", banded)]
    rows = [("banded input", banding_scores(banded, banded, clean))]
    for name, path in models:
        out = Debander.from_checkpoint(path).deband_batch(banded[None])[0]
        out = (out.clamp(0, 1) * 255).round() / 255  # 8 bits, no dither: what the banding scores see
        panels.append((name, out))
        rows.append((name, banding_scores(out, banded, clean)))
    panels.append(("clean", clean))
    rows.append(("clean", banding_scores(clean, banded, clean)))
    save_panels(panels, args.crop, args.out, ref=clean, plain=False, heat_kw={"max_log_contrast": 5})
    print(f"| {args.kind} (seed {args.seed}), {w}x{h} | PSNR | smooth PSNR | CAMBI mlc5 | Cb / Cr CAMBI mlc5 |")
    print("|---|---|---|---|---|")
    for name, s in rows:
        print(
            f"| {name} | {s['psnr']:.2f} | {s['psnr_smooth']:.2f} | {s['cambi_mlc5']:.2f} | "
            f"{s['cambi_cb_mlc5']:.2f} / {s['cambi_cr_mlc5']:.2f} |"
        )
    print(f"figure: {args.out}")
    return 0
