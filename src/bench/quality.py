"""Quality benchmark on held-out photos: ``python -m src.bench quality [options]``.

Each photo is resized (short side = ``--size``) and centre-cropped to ``size x size``, then degraded
(:func:`make_degradations`, choose with ``--degradations``): bit-depth reduction in YCbCr (luma 6 / chroma 5
bits), in RGB (5 bits) followed by JPEG (quality 85), a real codec (libx264 at CRF 35, 8-bit 4:2:0, through
PyAV), and ``stream_1080p``: the photo fit to a 1920x1080 frame (not the square crop) and passed through
:func:`~src.data.degradations.stream_roundtrip` (4:2:0 BT.709, luma 6 / chroma 5 bits, then H.264 at CRF 30),
the banding of low-bit-rate video. Run only when named: ``none`` leaves the crops clean, to show what each
method changes in an image without banding, and ``stream_hevc``, ``stream_vp9``, ``stream_mpeg4``,
``stream_twice`` and ``stream_chroma4`` are ``stream_1080p`` through HEVC, VP9 or MPEG-4 Part 2 instead of
H.264, through H.264 twice, or with its chroma cut to 4 bits instead of 5.
Every method (the banded input itself, ffmpeg's ``deband`` and
``gradfun``, a plain luma-guided filter (``GUIDED``: the classical edge-aware smoother the default model's
blend head draws on, with no network), the original recipe checkpoint at its schedule's steps, the default
model at its default steps) restores every banded image, and the result is compared with the clean one. One
markdown table per degradation goes to stdout and, atomically, to ``--out``.

Every banding score (CAMBI on luma, Cb and Cr, ``flat_noise``; :func:`~src.metrics.banding.banding_scores`)
is taken on the output rounded to 8 bits without dither: CAMBI only counts pixels equal to their neighbours,
so dither or grain hides bands that are still there (docs/cambi.md). The guided filter's and each model's
first row is that output (rounded, no dither), and every column reads it. Each model's second row,
``(dithered)``, is what ``deband`` writes to an 8-bit file by default (blue-noise dither): its PSNR and SSIM
are the file's, and its banding scores show the bands the dither only hides, with its noise in ``flat noise``.
ffmpeg's ``deband`` and ``gradfun`` add noise themselves; their rows show what their 8-bit output scores.

With ``--frames DIR`` it scores banded frames that have no clean reference instead (no-reference mode): per
frame and method the banding scores, ``texture PSNR`` to the input (how much detail is kept) and seconds;
a ``published-*`` file beside a frame (``--published-pattern``) adds a ``published model`` row.

Figures (``--figures DIR``): for each ``stream_1080p`` image and each no-reference frame, contrast-stretched
crops of the input, each model's output, the published model's and the clean image where there is one, around
the input's most banded window (:func:`~src.metrics.panels.save_panels`).

The speed column is seconds per 1920x1080 frame at the method's steps on the machine that runs it: with
``--speed measure`` (default) one 1080p frame is timed after a warm-up; with ``--speed extrapolate`` it is
1080p's 2.07 MP divided by the MP/s measured on the benchmark crops (time is linear in pixels, see
docs/deband.md, but small crops run less efficiently, so this overestimates a little).
"""

from __future__ import annotations

import argparse
import functools
import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from src.utils.errors import ConfigError, DataError

if TYPE_CHECKING:  # torch is imported where used, so `python -m src.bench --help` stays fast
    import torch
    from rich.console import Console
    from rich.progress import Progress

    from src.inference.debander import Debander
    from src.metrics.table import ResultRow

__all__ = [
    "DEFAULT_IMAGES",
    "FRAME_1080P",
    "COLUMNS",
    "FRAME_COLUMNS",
    "DEGRADATIONS",
    "Degradation",
    "Method",
    "ResultRow",
    "PanelCrops",
    "Frame",
    "fit_frame",
    "fit_square",
    "load_images",
    "make_degradations",
    "dither_8bit",
    "LastRun",
    "evaluate",
    "find_frames",
    "evaluate_frames",
    "render_markdown",
    "render_frames",
    "add_quality_args",
    "run_quality",
]

#: where ``python -m src.data.fetch`` puts the held-out test photos
DEFAULT_IMAGES = Path("data/photos/test")
#: (H, W) of the frame the speed column is about
FRAME_1080P = (1080, 1920)
#: metric name (src.metrics.collection / src.metrics.banding) -> column header; arrows say which way is better
#: (flat noise has none: the banded input scores 0, read it against the clean image's own value)
COLUMNS = {
    "psnr": "PSNR ↑",
    "psnr_smooth": "smooth PSNR ↑",
    "ssim": "SSIM ↑",
    "cambi": "CAMBI ↓",
    "cambi_mlc5": "CAMBI mlc5 ↓",
    "cambi_cb_mlc5": "Cb CAMBI mlc5 ↓",
    "cambi_cr_mlc5": "Cr CAMBI mlc5 ↓",
    "flat_noise": "flat noise",
}
#: the columns of the no-reference mode (all from banding_scores)
FRAME_COLUMNS = {
    "cambi_mlc5": "CAMBI mlc5 ↓",
    "cambi_cb_mlc5": "Cb CAMBI mlc5 ↓",
    "cambi_cr_mlc5": "Cr CAMBI mlc5 ↓",
    "cambi": "CAMBI ↓",
    "flat_noise": "flat noise",
    "texture_psnr": "texture PSNR ↑",
}
#: the scores :func:`~src.metrics.banding.banding_scores` gives (the others are torchmetrics to the clean image)
BANDING = ("cambi", "cambi_mlc5", "cambi_cb_mlc5", "cambi_cr_mlc5", "flat_noise", "texture_psnr")
DIGITS = {
    "psnr": 2,
    "psnr_smooth": 2,
    "ssim": 4,
    "cambi": 3,
    "cambi_mlc5": 3,
    "cambi_cb_mlc5": 3,
    "cambi_cr_mlc5": 3,
    "flat_noise": 3,
    "texture_psnr": 2,
}
SPEED_COLUMN = "s / 1080p frame"
#: every degradation's name, in table order (``--degradations`` picks some)
DEGRADATIONS = ("ycbcr_6_5", "rgb_jpeg", "h264", "stream_1080p")
#: the optional ``stream_*`` degradations: name suffix, codec, its quality, encodes, chroma bits, description
STREAM_VARIANTS = (
    ("hevc", "hevc", 30, 1, 5, "encoded with HEVC (libx265, CRF 30) instead of H.264"),
    ("vp9", "vp9", 45, 1, 5, "encoded with VP9 (libvpx-vp9, CRF 45) instead of H.264"),
    ("mpeg4", "mpeg4", 10, 1, 5, "encoded with MPEG-4 Part 2 (quantizer 10) instead of H.264"),
    ("twice", "h264", 30, 2, 5, "encoded with H.264 at CRF 30 twice (a re-published video)"),
    ("chroma4", "h264", 30, 1, 4, "with chroma cut to 4 bits (steps of 16 codes: the coarsest colour blotches)"),
)
#: run only when named: ``none`` passes the clean crops through, to show what each method changes in an
#: image without banding (the input row's PSNR is then infinite), and the ``stream_*`` variants above
OPTIONAL_DEGRADATIONS = ("none", *(f"stream_{v[0]}" for v in STREAM_VARIANTS))
#: the published model's row in the no-reference mode
PUBLISHED = "published model"


# --------------------------------------------------------------------------------------------------- images
def fit_frame(img: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """``(3, H, W)`` in [0, 1] -> ``(3, height, width)``: resized to cover the frame (the short side of a photo
    of the same shape lands on the frame's; antialiased bilinear when shrinking, an area-like average that also
    smooths away a JPEG's noise), then the centre crop."""
    import torch.nn.functional as F

    h, w = img.shape[-2:]
    scale = max(height / h, width / w)
    nh, nw = max(height, round(h * scale)), max(width, round(w * scale))
    if (nh, nw) != (h, w):
        img = F.interpolate(
            img[None].float(), size=(nh, nw), mode="bilinear", align_corners=False, antialias=scale < 1
        )[0].clamp(0.0, 1.0)
    top, left = (nh - height) // 2, (nw - width) // 2
    return img[:, top : top + height, left : left + width].contiguous()


def fit_square(img: torch.Tensor, size: int) -> torch.Tensor:
    """``(3, H, W)`` in [0, 1] -> ``(3, size, size)``: short side resized to ``size`` (antialiased bilinear
    when shrinking, which also averages away a JPEG's noise), then the centre crop."""
    return fit_frame(img, size, size)


def load_images(folder: Path, size: int | tuple[int, int], limit: int | None = None) -> list[tuple[str, torch.Tensor]]:
    """The first ``limit`` images under ``folder`` (sorted by path) as ``(name, (3, size, size) float32)``
    (:func:`fit_square`), or fit to a ``(height, width)`` frame when ``size`` is a pair (:func:`fit_frame`).

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
        fitted = fit_square(img, size) if isinstance(size, int) else fit_frame(img, *size)
        out.append((p.relative_to(folder).as_posix(), fitted))
    return out


# --------------------------------------------------------------------------------------------------- degradations
@dataclass(frozen=True)
class Degradation:
    """``apply``: clean ``(3, H, W)`` -> banded ``(3, H, W)``, both float32 in [0, 1].

    ``frame``: ``(height, width)`` its clean images are fit to (:func:`fit_frame`) instead of the square crops;
    ``figure``: draw a crop panel of each of its images (:class:`PanelCrops`).
    """

    name: str
    description: str
    apply: Callable[[torch.Tensor], torch.Tensor]
    frame: tuple[int, int] | None = None
    figure: bool = False


def make_degradations(
    crf: int = 35, stream_frame: tuple[int, int] = FRAME_1080P, names: Sequence[str] = DEGRADATIONS
) -> list[Degradation]:
    """The benchmark degradations named in ``names`` (see the module docstring), in table order.

    ``stream_frame`` is the ``(height, width)`` of ``stream_1080p``'s frames (1080p; smaller in tests).
    """
    from src.data.degradations import h264_roundtrip, jpeg_compress, quantize, quantize_ycbcr, stream_roundtrip

    h, w = stream_frame
    all_ = [
        Degradation(
            "ycbcr_6_5", "bit-depth reduction in YCbCr: luma 6 bits, chroma 5 bits", lambda x: quantize_ycbcr(x, 6, 5)
        ),
        Degradation(
            "rgb_jpeg",
            "bit-depth reduction in RGB to 5 bits, then JPEG quality 85 (4:2:0)",
            lambda x: jpeg_compress(quantize(x, 5), 85),
        ),
        Degradation(
            "h264",
            f"H.264 (libx264, CRF {crf}, preset medium, 8-bit 4:2:0), one intra frame per photo",
            lambda x: h264_roundtrip(x, crf),
        ),
        Degradation(
            "stream_1080p",
            f"each photo fit to a {w}x{h} frame, 4:2:0 BT.709 limited range, luma 6 bits, "
            "chroma 5 bits, then H.264 (libx264, CRF 30): streamed-video banding",
            lambda x: stream_roundtrip(x, luma_bits=6, chroma_bits=5, codec="h264", quality=30),
            frame=stream_frame,
            figure=True,
        ),
        # the same banding through other codecs, published twice, or with coarser chroma: does what is tuned on
        # H.264 at 5-bit chroma carry over?
        *(
            Degradation(
                f"stream_{tag}",
                f"as stream_1080p, but {desc}",
                functools.partial(stream_roundtrip, luma_bits=6, chroma_bits=cb, codec=codec, quality=q, passes=n),
                frame=stream_frame,
            )
            for tag, codec, q, n, cb, desc in STREAM_VARIANTS
        ),
        Degradation(
            "none",
            "the clean crops themselves, not degraded (what each method changes in an image without banding)",
            lambda x: x.clone(),
        ),
    ]
    return [d for d in all_ if d.name in names]


# --------------------------------------------------------------------------------------------------- methods
@dataclass
class Method:
    """A restoration method: ``run`` maps banded ``(1, 3, H, W)`` to restored ``(1, 3, H, W)`` in [0, 1]."""

    name: str
    run: Callable[[torch.Tensor], torch.Tensor]
    steps: int | None = None  # INDI steps (models only)
    timed: bool = True  # False for the input row: nothing to time
    speed_from: str | None = None  # show this other method's s / 1080p frame (same model, other output)
    figure: bool = False  # a column of the crop panels (the models' undithered outputs)


def _filter_method(name: str) -> Method:
    from src.baselines.ffmpeg_filters import ffmpeg_filter

    return Method(f"ffmpeg {name}", lambda x: ffmpeg_filter(x, name))


def dither_8bit(x: torch.Tensor) -> torch.Tensor:
    """``(B, 3, H, W)`` in [0, 1] -> the same rounded to 8 bits with blue-noise dither, as ``deband`` writes
    8-bit files by default (:mod:`src.colour.dither`), back as floats."""
    import numpy as np
    import torch

    from src.colour.dither import quantize

    arr = x.detach().float().clamp(0, 1).permute(0, 2, 3, 1).cpu().numpy()
    q = np.stack([quantize(a, 8, "blue-noise") for a in arr]).astype(np.float32) / 255.0
    return torch.from_numpy(q).permute(0, 3, 1, 2).contiguous()


class LastRun:
    """``fn`` with a one-entry cache keyed by the input tensor object: two rows that show two outputs of the
    same model run (rounded, dithered) restore each banded image once."""

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
    explicit step count would replace by a uniform one): its output rounded to 8 bits without dither (what
    every banding score reads), then ``(dithered)``: as ``deband`` writes an 8-bit file by default (blue-noise
    dither), the same model run."""
    from src.metrics.banding import round_8bit

    steps = debander.default_steps
    name = f"{label} ({steps} step{'s' if steps != 1 else ''})"
    run = LastRun(lambda x: debander.deband_batch(x, steps=None))
    return [
        Method(name, lambda x: round_8bit(run(x)), steps=steps, figure=True),
        Method(f"{name} (dithered)", lambda x: dither_8bit(run(x)), steps=steps, speed_from=name),
    ]


def _load_model_method(
    label: str,
    path: str,
    device: str | None,
    dtype: str | None,
    notes: list[str],
    describe: list[str],
    schedule_steps: bool = False,
    network_only: bool = False,
) -> list[Method]:
    """The model's rows (as ``deband`` runs it: the network, then contour interpolation), or ``[]`` with a
    note when its weights do not load; ``network_only`` adds the rows of the network without the contour
    pass (the same weights)."""
    from src.inference.debander import Debander

    try:
        d = Debander.from_checkpoint(path, device=device, dtype=dtype)
    except DataError as e:
        notes.append(f"{label}: skipped ({e})")
        return []
    if schedule_steps:
        d.weights = replace(d.weights, deband_steps=None)
    describe.append(f"{label}: {d.describe()}")
    rows = _model_methods(label, d)
    if network_only:
        net = Debander(d.weights, d.device, d.dtype, contour=None)
        rows += _model_methods(f"{label}, network only", net)
    return rows


GUIDED = (4, 1e-4)  # radius, eps of the guided-filter baseline: the best of a small grid on the test photos


def _guided_method() -> Method:
    from src.baselines.guided import guided_filter, guided_scale
    from src.metrics.banding import round_8bit

    r, eps = GUIDED
    # rounded to 8 bits without dither like the models' first rows: the 8-bit footing of every other row
    return Method(
        f"guided filter (r {r}, eps {eps:g})",
        lambda x: round_8bit(guided_filter(x.float(), r, eps, scale=guided_scale(r))),
    )


def build_methods(
    checkpoint: str | None,
    recipe: str | None,
    device: str | None,
    dtype: str | None,
    notes: list[str],
    describe: list[str],
) -> list[Method]:
    """Input, the ffmpeg filters, the guided filter, and the models whose weights load; skipped ones get a
    line in ``notes``."""
    methods = [
        Method("input (banded)", lambda x: x, timed=False),
        _filter_method("deband"),
        _filter_method("gradfun"),
        _guided_method(),
    ]
    if recipe is None:
        notes.append("recipe: skipped (pass --recipe PATH to an `experiment=fft_indi` checkpoint)")
    else:
        # the recipe runs its training schedule (typically 30 steps), not a shorter deband_steps
        methods += _load_model_method("recipe", recipe, device, dtype, notes, describe, schedule_steps=True)
    if checkpoint is None:
        notes.append("default model: skipped (--checkpoint none)")
    else:
        methods += _load_model_method("default model", checkpoint, device, dtype, notes, describe, network_only=True)
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


class PanelCrops:
    """Crops for the figures, kept while the benchmark runs (whole 1080p outputs of every method would not fit).

    ``start`` fixes the window of one scene, the ``size`` x ``size`` one with the most banding in the input's
    CAMBI heatmap (max_log_contrast 5: 6-bit bands are steps of 4 codes), ``add`` keeps a method's crop there,
    ``save`` writes one PNG per scene: input, the methods, the clean image last (:func:`save_panels`).
    """

    def __init__(self, size: int = 256) -> None:
        self.size = size
        self.scenes: list[dict] = []

    def start(self, key: str, banded: torch.Tensor, clean: torch.Tensor | None = None) -> None:
        """A new scene ``key`` (a file name stem): ``banded`` and ``clean`` ``(3, H, W)``."""
        from src.metrics.panels import cambi_heatmap, most_banded_window

        window = most_banded_window(cambi_heatmap(banded, max_log_contrast=5), self.size)
        self.scenes.append({"key": key, "window": window, "panels": [], "clean": None})
        self.add("input (banded)", banded)
        if clean is not None:
            self.scenes[-1]["clean"] = self._crop(clean)

    def _crop(self, img: torch.Tensor) -> torch.Tensor:
        from src.metrics.panels import crop_window

        return crop_window(img.detach().float().cpu(), self.scenes[-1]["window"], self.size).clone()

    def add(self, name: str, img: torch.Tensor) -> None:
        """Keep the crop of ``img`` ``(3, H, W)`` (method ``name``) of the current scene."""
        self.scenes[-1]["panels"].append((name, self._crop(img)))

    def save(self, folder: Path) -> list[Path]:
        """One PNG per scene under ``folder``, stretched to the clean crop's range (the input's without one)."""
        from src.metrics.panels import save_panels

        paths = []
        for sc in self.scenes:
            panels = list(sc["panels"]) + ([("clean", sc["clean"])] if sc["clean"] is not None else [])
            y, x = sc["window"]
            paths.append(
                save_panels(
                    panels,
                    self.size,
                    folder / f"{sc['key']}.png",
                    window=(0, 0),
                    ref=sc["clean"],
                    title=f"{sc['key']}: crop at x {x}, y {y}",
                )
            )
        return paths


def _safe_stem(name: str) -> str:
    """A file-name stem from an image's relative path."""
    import re

    return re.sub(r"[^A-Za-z0-9._-]+", "_", Path(name).with_suffix("").as_posix())


def _score_into(r: ResultRow, names: Sequence[str], out: torch.Tensor, banded: torch.Tensor) -> None:
    """Append ``banding_scores`` of ``out`` ``(3, H, W)`` (restored from ``banded``) to ``r.scores[names]``."""
    from src.metrics.banding import banding_scores

    if names:
        r.add_scores(banding_scores(out, banded), names)


def evaluate(
    images: Sequence[tuple[str, torch.Tensor]],
    degradations: Sequence[Degradation],
    methods: Sequence[Method],
    metric_names: Sequence[str] = tuple(COLUMNS),
    advance: Callable[[str], None] | None = None,
    frame_images: Sequence[tuple[str, torch.Tensor]] | None = None,
    panels: PanelCrops | None = None,
) -> dict[str, dict[str, ResultRow]]:
    """Every method on every degraded image: ``results[degradation][method] -> ResultRow``.

    ``metric_names`` from :data:`BANDING` come from :func:`~src.metrics.banding.banding_scores` (8-bit output,
    no dither), the others are :mod:`src.metrics.collection` metrics against the clean image. Degradations with
    a ``frame`` run on ``frame_images`` (the photos fit to that frame) instead of ``images``; for those with
    ``figure``, ``panels`` keeps the crops of the input, the ``figure`` methods and the clean image.
    ``advance(description)`` is called after each (degradation, image, method) run, for a progress bar.
    """
    from src.metrics.table import ResultRow

    reference = [k for k in metric_names if k not in BANDING]
    banding = [k for k in metric_names if k in BANDING]
    results: dict[str, dict[str, ResultRow]] = {}
    for deg in degradations:
        per = {m.name: ResultRow.of(reference) for m in methods}
        results[deg.name] = per
        # BoundCase (src.bench.bound) comes here too: it has a name and apply, and no frame or figure
        framed = getattr(deg, "frame", None) is not None and frame_images is not None
        imgs = frame_images if framed else images
        for i, (name, clean) in enumerate(imgs):
            clean_b = clean[None]
            banded = deg.apply(clean).float()[None]
            keep = panels is not None and getattr(deg, "figure", False)
            if keep:
                panels.start(f"{deg.name}_{i:02d}_{_safe_stem(name)}", banded[0], clean)
            for m in methods:
                t0 = time.perf_counter()
                out = m.run(banded).float().clamp(0, 1)
                r = per[m.name]
                r.update(out, clean_b, seconds=time.perf_counter() - t0)
                _score_into(r, banding, out[0], banded[0])
                if keep and m.figure:
                    panels.add(m.name, out[0])
                if advance is not None:
                    advance(f"{deg.name} · {m.name} · image {i + 1}/{len(imgs)}")
    return results


def _clean_cambi(images: Sequence[tuple[str, torch.Tensor]]) -> str:
    """``"CAMBI x, CAMBI mlc5 y, Cb CAMBI mlc5 z, Cr CAMBI mlc5 w"``: the means over the clean images (rounded
    to 8 bits like every output), since photos can carry their own banding."""
    from src.metrics.banding import banding_scores
    from src.metrics.table import nanmean

    names = ("cambi", "cambi_mlc5", "cambi_cb_mlc5", "cambi_cr_mlc5")
    scores = [banding_scores(clean) for _, clean in images]
    return ", ".join(f"{COLUMNS[k].rstrip(' ↓')} {nanmean([s[k] for s in scores]):.3f}" for k in names)


#: the Gaussian sigma (px) of :func:`_grain_free_note`: enough to remove a photo's grain, little else
GRAIN_FREE_SIGMA = 2.0


def _grain_free_note(images: Sequence[tuple[str, torch.Tensor]], sigma: float = GRAIN_FREE_SIGMA) -> str:
    """The clean images smoothed by a Gaussian of ``sigma`` px, scored like an output: their smooth-region PSNR
    to the clean images and :func:`_clean_cambi`. A restoration can bring back the bands' ramps but not the
    grain a codec removed, and without grain an 8-bit gradient is a staircase of 1-code steps, which CAMBI
    counts: this is about the CAMBI of a near-perfect restoration that has no grain."""
    import kornia

    from src.metrics.banding import round_8bit
    from src.metrics.smooth_psnr import smooth_psnr

    k = 2 * math.ceil(3 * sigma) + 1
    smoothed = [
        (name, round_8bit(kornia.filters.gaussian_blur2d(clean[None], (k, k), (sigma, sigma), "reflect")[0]))
        for name, clean in images
    ]
    psnr = [float(smooth_psnr(s[None], c[None])[0]) for (_, s), (_, c) in zip(smoothed, images)]
    finite = [v for v in psnr if math.isfinite(v)]
    fidelity = f"smooth-region PSNR {sum(finite) / len(finite):.2f} dB" if finite else "no smooth pixels"
    return f"smoothed by a Gaussian of sigma {sigma:g} px (grain removed; {fidelity}): {_clean_cambi(smoothed)}"


def _fmt(v: float | None, digits: int) -> str:
    if v is None:
        return "–"
    if v == math.inf:  # PSNR of an output identical to the reference (the input row of ``none``)
        return "inf"
    return "n/a" if not math.isfinite(v) else f"{v:.{digits}f}"


def render_markdown(
    results: dict[str, dict[str, ResultRow]],
    degradations: Sequence[Degradation],
    methods: Sequence[Method],
    header: Sequence[str],
    speed_note: str,
) -> str:
    """The report: a bullet list of settings, then one table per degradation (rows = methods)."""
    lines = ["# Quality benchmark", "", *[f"- {h}" for h in header], f"- {SPEED_COLUMN}: {speed_note}", ""]
    for deg in degradations:
        lines += [
            f"## {deg.name}: {deg.description}",
            "",
            "| method | " + " | ".join(COLUMNS.values()) + f" | {SPEED_COLUMN} |",
            "|---" * (len(COLUMNS) + 2) + "|",
        ]
        for m in methods:
            r = results[deg.name][m.name]
            vals = r.values()
            cells = [_fmt(vals[k], DIGITS[k]) for k in COLUMNS] + [_fmt(r.s_per_1080p, 2)]
            lines.append(f"| {m.name} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------------- no reference
@dataclass(frozen=True)
class Frame:
    """A banded frame without a clean reference, and the published model's restoration of it if any."""

    path: Path
    published: Path | None = None

    @property
    def name(self) -> str:
        return self.path.name


def _pair_key(stem: str) -> str:
    """What pairs a frame with its published restoration: the stem after its last ``-`` (``banded-2`` -> ``2``)."""
    return stem.rsplit("-", 1)[-1]


def find_frames(source: Path, published_pattern: str = "published-*") -> list[Frame]:
    """The banded frames of ``source`` (a folder, or a glob such as ``DIR/banded-*.png``), sorted by name.

    In a folder, every image except those matching ``published_pattern`` is a frame. A file matching the pattern
    beside a frame whose stem ends with the frame's key (:func:`_pair_key`: ``published-indi-2.png`` for
    ``banded-2.png``) is the published model's output for it.

    Raises:
        DataError: nothing matches, or no frame is left.
    """
    import fnmatch
    import glob

    from src.data.sources import IMAGE_EXTENSIONS

    if source.is_dir():
        folder, files = source, sorted(p for p in source.iterdir() if p.is_file())
    elif glob.has_magic(str(source)):
        files = sorted(Path(p) for p in glob.glob(str(source)) if Path(p).is_file())
        folder = source.parent
    else:
        raise DataError(f"--frames: '{source}' is not a folder (nor a glob such as DIR/banded-*.png)")
    images = [p for p in files if p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".")]
    frames = [p for p in images if not fnmatch.fnmatch(p.name, published_pattern)]
    if not frames:
        raise DataError(f"--frames: no banded frames in '{source}'")
    candidates = (
        sorted(
            p
            for p in folder.iterdir()
            if p.is_file() and fnmatch.fnmatch(p.name, published_pattern) and p.suffix.lower() in IMAGE_EXTENSIONS
        )
        if folder.is_dir()
        else []
    )
    out = []
    for f in frames:
        key = _pair_key(f.stem)
        match = [c for c in candidates if c != f and (c.stem == key or c.stem.endswith(f"-{key}"))]
        out.append(Frame(f, match[0] if match else None))
    return out


def _read_rgb(path: Path) -> torch.Tensor:
    """An image file as ``(3, H, W)`` float32 in [0, 1]."""
    import numpy as np
    import torch

    from src.data.image_io import read_image, to_rgb

    arr, _ = read_image(path)
    return torch.from_numpy(np.ascontiguousarray(to_rgb(arr).transpose(2, 0, 1))).float()


def evaluate_frames(
    frames: Sequence[Frame],
    methods: Sequence[Method],
    notes: list[str],
    advance: Callable[[str], None] | None = None,
    panels: PanelCrops | None = None,
) -> dict[str, dict[str, ResultRow]]:
    """Every method (and the published model where a frame has it) on every frame, scored without a reference:
    ``results[frame name][method] -> ResultRow`` with one image each (``scores`` of
    :data:`FRAME_COLUMNS`, ``seconds`` of the run). A published file of another size gets a line in ``notes``.
    """
    from src.metrics.table import ResultRow

    names = list(FRAME_COLUMNS)
    results: dict[str, dict[str, ResultRow]] = {}
    for frame in frames:
        banded = _read_rgb(frame.path)
        per: dict[str, ResultRow] = {}
        results[frame.name] = per
        if panels is not None:
            panels.start(_safe_stem(frame.name), banded)
        for m in methods:
            t0 = time.perf_counter()
            out = m.run(banded[None]).float().clamp(0, 1)[0]
            r = per[m.name] = ResultRow(seconds=time.perf_counter() - t0)
            r.megapixels = banded.shape[-1] * banded.shape[-2] / 1e6
            _score_into(r, names, out, banded)
            if panels is not None and m.figure:
                panels.add(m.name, out)
            if advance is not None:
                advance(f"{frame.name} · {m.name}")
        for m in methods:  # rows that show another output of one run show that run's time
            if m.speed_from is not None:
                per[m.name].seconds = per[m.speed_from].seconds
        if frame.published is not None:
            pub = _read_rgb(frame.published)
            if pub.shape != banded.shape:
                notes.append(
                    f"{PUBLISHED}: `{frame.published.name}` is {pub.shape[-1]}x{pub.shape[-2]}, "
                    f"`{frame.name}` {banded.shape[-1]}x{banded.shape[-2]}: left out"
                )
            else:
                r = per[PUBLISHED] = ResultRow()
                _score_into(r, names, pub, banded)
                if panels is not None:
                    panels.add(PUBLISHED, pub)
    return results


def render_frames(results: dict[str, dict[str, ResultRow]], methods: Sequence[Method], header: Sequence[str]) -> str:
    """The no-reference report: settings, one table of every (frame, method), then the mean per method."""
    from src.metrics.table import nanmean

    cols = list(FRAME_COLUMNS.values()) + ["seconds"]
    order = [m.name for m in methods] + [PUBLISHED]
    lines = [
        "# Quality benchmark: banded frames without a reference",
        "",
        *[f"- {h}" for h in header],
        "",
        "## Per frame",
        "",
        "| frame | method | " + " | ".join(cols) + " |",
        "|---" * (len(cols) + 2) + "|",
    ]
    timed = {m.name: m.timed for m in methods}
    for frame, per in results.items():
        for name in (n for n in order if n in per):
            vals = per[name].values()
            secs = per[name].seconds if timed.get(name, False) else None
            cells = [_fmt(vals[k], DIGITS[k]) for k in FRAME_COLUMNS] + [_fmt(secs, 2)]
            lines.append(f"| {frame} | {name} | " + " | ".join(cells) + " |")
    lines += [
        "",
        f"## Mean over frames ({len(results)})",
        "",
        "| method | " + " | ".join(cols) + " | frames |",
        "|---" * (len(cols) + 2) + "|",
    ]
    for name in order:
        rows = [per[name] for per in results.values() if name in per]
        if not rows:
            continue
        per_frame = [r.values() for r in rows]
        cells = [_fmt(nanmean([v[k] for v in per_frame]), DIGITS[k]) for k in FRAME_COLUMNS]
        secs = sum(r.seconds for r in rows) / len(rows) if timed.get(name, False) else None
        lines.append(f"| {name} | " + " | ".join(cells + [_fmt(secs, 2)]) + f" | {len(rows)} |")
    lines.append("")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------------- CLI
def frame_size(text: str) -> tuple[int, int]:
    """``WIDTHxHEIGHT`` -> ``(height, width)``."""
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT such as 1920x1080, got {text!r}") from None
    return h, w


def add_quality_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--checkpoint",
        default="default",
        help="the default model's weights (.ckpt, .pt, .onnx, 'default' or 'none' to skip)",
    )
    p.add_argument(
        "--recipe",
        default=None,
        help="the original recipe's checkpoint (experiment=fft_indi), "
        "run at its schedule's steps (typically 30); skipped when not given",
    )
    p.add_argument(
        "--images",
        type=Path,
        default=None,
        help=f"folder of clean photos (default: {DEFAULT_IMAGES}, the test split of src.data.fetch)",
    )
    p.add_argument("--size", type=int, default=512, help="crop size: short side resized to it, then centre crop")
    p.add_argument("--limit", type=int, default=None, help="use only the first N images (or frames)")
    p.add_argument("--crf", type=int, default=35, help="libx264 CRF of the h264 degradation (default 35)")
    p.add_argument(
        "--degradations",
        default=",".join(DEGRADATIONS),
        help=f"comma-separated degradations to run (default: all of {', '.join(DEGRADATIONS)}; "
        "stream_1080p works on whole 1080p frames and is the slow one on a CPU; run only when named: 'none' "
        "runs on the clean crops, to see what each method changes where there is no banding, and "
        f"{', '.join('stream_' + v[0] for v in STREAM_VARIANTS)} are stream_1080p through other codecs, "
        "encoded twice, or with 4-bit chroma)",
    )
    p.add_argument(
        "--stream-size",
        type=frame_size,
        default=FRAME_1080P,
        metavar="WxH",
        help="frame size of stream_1080p (default 1920x1080)",
    )
    p.add_argument(
        "--frames",
        type=Path,
        default=None,
        metavar="DIR",
        help="no-reference mode: score the banded frames in DIR (or a glob, DIR/banded-*.png) instead "
        "of degraded photos",
    )
    p.add_argument(
        "--published-pattern",
        default="published-*",
        metavar="GLOB",
        help="in --frames DIR, files matching GLOB are another model's outputs, paired with the frame "
        "whose name ends with the same '-KEY' (published-indi-2.png with banded-2.png); default "
        "'published-*'",
    )
    p.add_argument(
        "--figures",
        type=Path,
        default=None,
        metavar="DIR",
        help="where the crop panels go (default: bench_figures/ beside --out)",
    )
    p.add_argument("--figure-crop", type=int, default=256, metavar="N", help="crop size of the panels (default 256)")
    p.add_argument(
        "--speed",
        choices=["measure", "extrapolate"],
        default="measure",
        help="s / 1080p frame: time one 1920x1080 frame (default), or extrapolate from the crops' MP/s",
    )
    p.add_argument("--out", type=Path, default=Path("logs/benchmark/quality.md"), help="markdown report")
    p.add_argument("--device", default=None)
    p.add_argument("--dtype", choices=["float32", "bfloat16"], default=None)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: the idle cores)")


def _degradation_names(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    known = DEGRADATIONS + OPTIONAL_DEGRADATIONS
    unknown = [n for n in names if n not in known]
    if not names or unknown:
        raise ConfigError(
            f"--degradations: unknown {', '.join(unknown) or '(none given)'}; choose from {', '.join(known)}"
        )
    return names


def _check_args(args: argparse.Namespace) -> None:
    if args.size < 16 or args.size % 2:
        raise ConfigError(f"--size must be an even number >= 16 (H.264 4:2:0 needs even sizes), got {args.size}")
    if args.limit is not None and args.limit < 1:
        raise ConfigError(f"--limit must be >= 1, got {args.limit}")
    if not 0 <= args.crf <= 51:
        raise ConfigError(f"--crf must be in 0..51, got {args.crf}")
    h, w = args.stream_size
    if h < 16 or w < 16 or h % 2 or w % 2:
        raise ConfigError(f"--stream-size must be even and at least 16x16, got {w}x{h}")
    if args.figure_crop < 16:
        raise ConfigError(f"--figure-crop must be >= 16, got {args.figure_crop}")
    _degradation_names(args.degradations)


def _figures_dir(args: argparse.Namespace) -> Path:
    return args.figures if args.figures is not None else args.out.parent / "bench_figures"


def _write_report(report: str, args: argparse.Namespace, panels: PanelCrops, console: Console) -> None:
    """Print the report, write it atomically to ``--out``, and the crop panels under ``--figures``."""
    from src.utils.atomic import atomic_output

    print(report)
    with atomic_output(args.out) as tmp:
        tmp.write_text(report, encoding="utf-8")
    console.print(f"wrote {args.out}")
    if panels.scenes:
        paths = panels.save(_figures_dir(args))
        console.print(f"wrote {len(paths)} figure{'s' if len(paths) != 1 else ''} to {_figures_dir(args)}")


def _run_frames(
    args: argparse.Namespace,
    methods: list[Method],
    described: list[str],
    notes: list[str],
    console: Console,
    progress_cls: Callable[[], Progress],
) -> int:
    """The no-reference mode (``--frames``)."""
    import torch

    frames = find_frames(args.frames, args.published_pattern)[: args.limit]
    panels = PanelCrops(args.figure_crop)
    with progress_cls() as progress:
        task = progress.add_task("frames", total=len(frames) * len(methods))
        results = evaluate_frames(
            frames, methods, notes, panels=panels, advance=lambda d: progress.update(task, advance=1, description=d)
        )
    load = os.getloadavg()
    threads = torch.get_num_threads()
    n_pub = sum(f.published is not None for f in frames)
    header = [
        f"frames: {len(frames)} from `{args.frames}`: " + ", ".join(f"`{f.name}`" for f in frames),
        f"`{PUBLISHED}`: files matching `{args.published_pattern}` beside {n_pub} of the frames, scored as they are",
        "every score is on the output rounded to 8 bits without dither; texture PSNR is to the banded input over "
        "its textured pixels (9x9 luma std >= 6 codes): the detail a method keeps; seconds: this frame's run",
        f"torch {torch.__version__}, {threads} CPU thread{'s' if threads != 1 else ''}; load average at the end "
        f"{load[0]:.2f} (timings are only comparable at low load)",
        *described,
        *notes,
    ]
    _write_report(render_frames(results, methods, header), args, panels, console)
    return 0


def run_quality(args: argparse.Namespace) -> int:
    """The ``quality`` subcommand: evaluate, print the tables, write ``--out`` (and the figures)."""
    import torch
    from rich.console import Console

    from src.utils.progress import progress_bar
    from src.utils.threads import set_torch_threads

    _check_args(args)
    console = Console(file=sys.stderr)
    progress_cls = functools.partial(progress_bar, console)
    folder = args.images
    if args.frames is None and folder is None:
        folder = DEFAULT_IMAGES
        if not folder.is_dir():
            raise DataError(
                f"no test photos at '{folder}': run `python -m src.data.fetch` first (or pass --images FOLDER)"
            )
    set_torch_threads(args.threads)
    notes: list[str] = []
    described: list[str] = []
    checkpoint = None if str(args.checkpoint).lower() == "none" else args.checkpoint
    methods = build_methods(checkpoint, args.recipe, args.device, args.dtype, notes, described)
    for line in described + notes:
        console.print(line)
    if args.frames is not None:
        return _run_frames(args, methods, described, notes, console, progress_cls)

    degradations = make_degradations(args.crf, args.stream_size, _degradation_names(args.degradations))
    squares = [d for d in degradations if d.frame is None]
    framed = [d for d in degradations if d.frame is not None]
    images = load_images(folder, args.size, args.limit) if squares else []
    frame_images = load_images(folder, args.stream_size, args.limit) if framed else []
    panels = PanelCrops(args.figure_crop)

    runs = len(squares) * len(images) * len(methods) + len(framed) * len(frame_images) * len(methods)
    with progress_cls() as progress:
        task = progress.add_task("quality", total=runs)
        results = evaluate(
            images,
            degradations,
            methods,
            frame_images=frame_images,
            panels=panels,
            advance=lambda d: progress.update(task, advance=1, description=d),
        )
        timed = [m for m in methods if m.timed and m.speed_from is None]
        if args.speed == "measure":
            speed_note = (
                f"measured: one {FRAME_1080P[1]}x{FRAME_1080P[0]} frame per method at its steps, after a warm-up"
            )
            t2 = progress.add_task("timing 1080p frames", total=len(timed))
            for m in timed:
                progress.update(t2, description=f"timing a 1080p frame · {m.name}")
                seconds = time_frame(m)
                for per in results.values():
                    per[m.name].s_per_1080p = seconds
                progress.update(t2, advance=1)
        else:
            speed_note = (
                "extrapolated: 2.07 MP / the MP/s measured on the benchmark images "
                "(small crops run less efficiently, so a little pessimistic)"
            )
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
    header = []
    if squares:
        header += [
            f"images: {len(images)} from `{folder}` (short side resized to {args.size}, centre crop "
            f"{args.size}x{args.size}): " + ", ".join(f"`{name}`" for name, _ in images),
            f"CAMBI of the clean crops themselves (the floor a method can reach): {_clean_cambi(images)}",
            f"the same crops {_grain_free_note(images)}",
        ]
    if framed:
        h, w = args.stream_size
        header += [
            f"{', '.join(d.name for d in framed)}: {len(frame_images)} photos from `{folder}` resized to "
            f"cover {w}x{h}, centre crop",
            f"CAMBI of those clean {w}x{h} frames themselves: {_clean_cambi(frame_images)}",
            f"the same frames {_grain_free_note(frame_images)}",
        ]
    header += [
        "banding scores (CAMBI, flat noise) are on each output rounded to 8 bits without dither; flat noise: "
        "mean |Y - 3x3 mean| in luma codes over the pixels flat in the banded input",
        f"torch {torch.__version__}, {threads} CPU thread{'s' if threads != 1 else ''}; load average at the end "
        f"{load[0]:.2f} (timings are only comparable at low load)",
        *described,
        *notes,
    ]
    _write_report(render_markdown(results, degradations, methods, header, speed_note), args, panels, console)
    return 0
