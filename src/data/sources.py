"""Where clean images come from: embedded photos, procedural smooth content, or a folder.

A :class:`Source` holds one clean image as ``(H, W, 3)`` uint8 or uint16 (not float32, to keep
memory 2-4x lower; crops are converted to float on the fly). Splits are made per source image so
crops of one photo never land on both the train and the validation side.
"""

from __future__ import annotations

import colorsys
import hashlib
import importlib.util
import os
import warnings
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from src.data.image_io import IMAGE_EXTENSIONS, read_image, to_rgb
from src.utils.errors import ConfigError, DataError
from src.utils.threads import one_torch_thread
from src.utils.validate import check_int

__all__ = [
    "Source",
    "SKIMAGE_PHOTOS",
    "embedded_default",
    "skimage_photos",
    "smooth_images",
    "list_images",
    "folder_images",
    "split_by_photo",
    "val_names",
    "downscale",
    "ensure_min_size",
]

#: scikit-image sample photos that ship inside its wheel (no pooch download) and are CC0 or
#: public domain / without known copyright restrictions, mapped to their file in ``skimage/data``
#: (checked offline with scikit-image 0.26: identical to the ``skimage.data.<name>()`` arrays).
SKIMAGE_PHOTOS: dict[str, str] = {
    "astronaut": "astronaut.png",
    "camera": "camera.png",
    "coffee": "coffee.png",
    "chelsea": "chelsea.png",
    "rocket": "rocket.jpg",
    "hubble_deep_field": "hubble_deep_field.jpg",
    "retina": "retina.jpg",
    "clock": "clock_motion.png",
    "coins": "coins.png",
    "immunohistochemistry": "ihc.png",
    "brick": "brick.png",
    "grass": "grass.png",
    "gravel": "gravel.png",
    "cell": "cell.png",
}


@dataclass(frozen=True, eq=False)
class Source:
    """One clean image.

    Attributes:
        name: stable identifier used for the split (relative path, ``skimage/<name>``, ``smooth/<i>``).
        pixels: ``(H, W, 3)`` uint8 or uint16, C-contiguous.
        smooth: True for procedurally generated smooth content (gradients, sky, soft shapes).
    """

    name: str
    pixels: np.ndarray
    smooth: bool = False

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])

    @property
    def scale(self) -> float:
        """Multiplier taking stored integers to [0, 1]."""
        return 1.0 / 255.0 if self.pixels.dtype == np.uint8 else 1.0 / 65535.0

    def to_float(self) -> np.ndarray:
        """Whole image as ``(H, W, 3)`` float32 in [0, 1]."""
        return self.pixels.astype(np.float32) * np.float32(self.scale)


# ---------------------------------------------------------------------------------------------
# Storage helpers


def _from_float(arr: np.ndarray, name: str, smooth: bool = False, bit_depth: int = 16) -> Source:
    """Float ``(H, W, C)`` in [0, 1] -> Source with RGB uint8 (8-bit sources) or uint16 pixels."""
    rgb = to_rgb(arr)
    if bit_depth <= 8:
        pix = np.round(np.clip(rgb, 0.0, 1.0) * 255.0).astype(np.uint8)
    else:
        pix = np.round(np.clip(rgb, 0.0, 1.0) * 65535.0).astype(np.uint16)
    return Source(name=name, pixels=np.ascontiguousarray(pix), smooth=smooth)


def _resize(arr: np.ndarray, h: int, w: int, antialias: bool) -> np.ndarray:
    """Resize float ``(H, W, C)`` with torch bilinear (fast; antialias=True when shrinking)."""
    t = torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32)).permute(2, 0, 1)[None]
    with one_torch_thread():
        out = F.interpolate(t, size=(h, w), mode="bilinear", align_corners=False, antialias=antialias)
        return out[0].permute(1, 2, 0).clamp(0.0, 1.0).numpy()


def downscale(source: Source, factor: float) -> Source:
    """Shrink a source by ``factor`` >= 1 with antialiasing (averages away the source's own JPEG
    noise and 8-bit steps). The result is stored as uint16 since averaging adds precision."""
    if isinstance(factor, bool) or not isinstance(factor, (int, float)) or factor < 1.0:
        raise ConfigError(f"downscale must be a number >= 1 (1 = keep size), got {factor!r}")
    if factor == 1.0:
        return source
    h = max(1, int(round(source.height / factor)))
    w = max(1, int(round(source.width / factor)))
    small = _resize(source.to_float(), h, w, antialias=True)
    return _from_float(small, source.name, source.smooth, bit_depth=16)


def ensure_min_size(source: Source, size: int) -> Source:
    """Upscale (bilinear, aspect kept) so both sides are >= ``size``; unchanged if already big enough."""
    short = min(source.height, source.width)
    if short >= size:
        return source
    f = size / short
    h = max(size, int(np.ceil(source.height * f)))
    w = max(size, int(np.ceil(source.width * f)))
    big = _resize(source.to_float(), h, w, antialias=False)
    bits = 8 if source.pixels.dtype == np.uint8 else 16
    return _from_float(big, source.name, source.smooth, bit_depth=bits)


# ---------------------------------------------------------------------------------------------
# Embedded photos


def _skimage_data_dir() -> Path | None:
    """``site-packages/skimage/data`` without importing skimage (its io stack costs ~0.4 s)."""
    spec = importlib.util.find_spec("skimage")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0]) / "data"


def _load_skimage_photo(name: str, data_dir: Path | None) -> np.ndarray:
    """``(H, W, 3)`` uint8: the wheel's file read with Pillow, else ``skimage.data.<name>()``."""
    path = data_dir / SKIMAGE_PHOTOS[name] if data_dir is not None and name in SKIMAGE_PHOTOS else None
    if path is not None and path.is_file():
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))
    import skimage.data

    img = np.asarray(getattr(skimage.data, name)())
    if img.dtype != np.uint8:
        raise DataError(f"skimage.data.{name} is {img.dtype}, expected uint8")
    pix = img if img.ndim == 3 else img[:, :, None]
    return np.repeat(pix, 3, axis=2) if pix.shape[2] == 1 else pix[:, :, :3]


def skimage_photos(names: Iterable[str] = tuple(SKIMAGE_PHOTOS)) -> list[Source]:
    """Load the named scikit-image sample photos as RGB uint8 Sources; any that fail are skipped
    with a warning (e.g. a trimmed install without the data files)."""
    data_dir = _skimage_data_dir()
    out: list[Source] = []
    for name in names:
        try:
            pix = _load_skimage_photo(name, data_dir)
        except Exception as e:  # not fatal: the remaining photos and the smooth images still work
            warnings.warn(f"skipping scikit-image photo '{name}': {type(e).__name__}: {e}", stacklevel=2)
            continue
        out.append(Source(name=f"skimage/{name}", pixels=np.ascontiguousarray(pix), smooth=False))
    return out


# ---------------------------------------------------------------------------------------------
# Procedural smooth content


def _smoothstep(t: np.ndarray) -> np.ndarray:
    t = np.clip(t, 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def _hsv(h: float, s: float, v: float) -> np.ndarray:
    return np.array(colorsys.hsv_to_rgb(h, s, v), dtype=np.float32)


def _color(rng: np.random.Generator, s: tuple[float, float] = (0.1, 0.8), v: tuple[float, float] = (0.15, 0.95)):
    """A random RGB colour picked in HSV so saturation/brightness stay natural."""
    return _hsv(rng.random(), rng.uniform(*s), rng.uniform(*v))


def _near(rng: np.random.Generator, c: np.ndarray, spread: float) -> np.ndarray:
    """A colour close to ``c``: small colour distance means few, wide bands after quantization."""
    return np.clip(c + rng.uniform(-spread, spread, 3).astype(np.float32), 0.0, 1.0)


def _lowfreq(rng: np.random.Generator, h: int, w: int, cells: int) -> np.ndarray:
    """``(H, W)`` smooth noise in about [0, 1]: a coarse random grid upsampled bicubically."""
    gh = max(2, int(round(cells * h / max(h, w)))) + 2
    gw = max(2, int(round(cells * w / max(h, w)))) + 2
    grid = torch.from_numpy(rng.random((1, 1, gh, gw), dtype=np.float32))
    up = F.interpolate(grid, size=(h, w), mode="bicubic", align_corners=True)[0, 0].numpy()
    return np.clip(up, 0.0, 1.0)


def _fbm(rng: np.random.Generator, h: int, w: int, base: int, octaves: int = 3) -> np.ndarray:
    """Fractal sum of a few low-frequency octaves, normalised to [0, 1] (cloud-like)."""
    acc = np.zeros((h, w), np.float32)
    amp, total = 1.0, 0.0
    for o in range(octaves):
        acc += amp * _lowfreq(rng, h, w, base * 2**o)
        total += amp
        amp *= 0.5
    acc /= total
    lo, hi = float(acc.min()), float(acc.max())
    return (acc - lo) / max(hi - lo, 1e-6)


def _grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Normalised coordinates: y in [0, 1] ``(H, 1)``, x in [0, W/H] ``(1, W)`` (isotropic units)."""
    y = (np.arange(h, dtype=np.float32) / max(h - 1, 1))[:, None]
    x = (np.arange(w, dtype=np.float32) / max(h - 1, 1))[None, :]
    return y, x


def _ramp(t: np.ndarray, stops: list[np.ndarray]) -> np.ndarray:
    """Piecewise smoothstep blend of colour ``stops`` over ``t`` in [0, 1] -> ``(H, W, 3)``."""
    t = np.clip(t, 0.0, 1.0)[..., None]
    n = len(stops) - 1
    out = np.zeros(t.shape[:-1] + (3,), np.float32) + stops[0]
    for i in range(n):
        seg = _smoothstep((t - i / n) * n)
        out = out + seg * (stops[i + 1] - stops[i])
    return out


def _linear(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    y, x = _grid(h, w)
    a = rng.uniform(0, 2 * np.pi)
    d = np.cos(a) * x + np.sin(a) * y
    t = (d - d.min()) / max(float(d.max() - d.min()), 1e-6)
    t = t ** rng.uniform(0.6, 1.6)
    c0 = _color(rng)
    stops = [c0] + [_near(rng, c0, rng.uniform(0.08, 0.35)) for _ in range(rng.integers(1, 3))]
    return _ramp(t, stops)


def _radial(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    y, x = _grid(h, w)
    cy, cx = rng.uniform(-0.3, 1.3), rng.uniform(-0.3, 1.3) * w / h
    r = np.sqrt((y - cy) ** 2 + ((x - cx) * rng.uniform(0.7, 1.4)) ** 2)
    t = r / rng.uniform(0.6, 1.8)
    c0 = _color(rng)
    return _ramp(t, [c0, _near(rng, c0, rng.uniform(0.1, 0.4))])


def _sky(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    y, x = _grid(h, w)
    top = _hsv(rng.uniform(0.55, 0.66), rng.uniform(0.35, 0.8), rng.uniform(0.45, 0.85))  # blue
    if rng.random() < 0.35:  # sunset: warm horizon
        horizon = _hsv(rng.uniform(0.02, 0.12), rng.uniform(0.3, 0.7), rng.uniform(0.75, 1.0))
    else:
        horizon = np.clip(top + np.float32(rng.uniform(0.15, 0.35)), 0.0, 1.0)
    img = _ramp(np.broadcast_to(y ** rng.uniform(0.7, 2.0), (h, w)), [top, horizon])
    if rng.random() < 0.5:  # sun glow: soft radial brightening
        sy, sx = rng.uniform(0.2, 1.0), rng.uniform(0, w / h)
        glow = np.exp(-((y - sy) ** 2 + (x - sx) ** 2) / rng.uniform(0.02, 0.15))[..., None]
        img = img + glow * rng.uniform(0.1, 0.3) * np.array([1.0, 0.9, 0.7], np.float32)
    if rng.random() < 0.7:  # soft clouds from thresholded low-frequency noise
        n = _fbm(rng, h, w, base=int(rng.integers(2, 5)))
        thr = rng.uniform(0.4, 0.7)
        mask = _smoothstep((n - thr) / rng.uniform(0.2, 0.5))[..., None] * rng.uniform(0.3, 0.8)
        cloud = np.float32(rng.uniform(0.8, 1.0)) * np.ones(3, np.float32)
        img = img * (1 - mask) + cloud * mask
    return img


def _soft_shapes(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    img = _linear(rng, h, w) if rng.random() < 0.5 else _radial(rng, h, w)
    y, x = _grid(h, w)
    for _ in range(int(rng.integers(1, 5))):
        cy, cx = rng.uniform(0, 1), rng.uniform(0, w / h)
        ry, rx = rng.uniform(0.08, 0.45), rng.uniform(0.08, 0.45)
        if rng.random() < 0.5:  # ellipse
            dist = np.sqrt(((y - cy) / ry) ** 2 + ((x - cx) / rx) ** 2) - 1.0
        else:  # rectangle (Chebyshev distance)
            dist = np.maximum(np.abs(y - cy) / ry, np.abs(x - cx) / rx) - 1.0
        # Mostly very soft edges (shadows, blurred objects); occasionally a sharp one so the model
        # also sees real edges next to smooth areas and learns not to blur them.
        soft = rng.uniform(0.15, 1.0) if rng.random() < 0.8 else rng.uniform(0.002, 0.01)
        mask = _smoothstep(0.5 - dist / soft)[..., None]
        if rng.random() < 0.5:  # shadow: darken
            img = img * (1.0 - mask * rng.uniform(0.1, 0.45))
        else:  # tinted object
            a = rng.uniform(0.3, 1.0)
            centre = img[int(cy * (h - 1)), min(w - 1, int(cx * (h - 1)))]  # colour near the background
            img = img * (1 - mask * a) + _near(rng, centre, 0.25) * mask * a
    return img


def _noise_field(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    base = _color(rng, v=(0.2, 0.85))
    amp = rng.uniform(0.05, 0.25)
    cells = int(rng.integers(2, 5))
    n = np.stack([_fbm(rng, h, w, cells, octaves=2) for _ in range(3)], axis=-1)
    if rng.random() < 0.5:  # mostly luminance variation, like uneven lighting
        n = n[..., :1] * 0.8 + n * 0.2
    return base + (n - 0.5) * amp


def _segment_distance(h: int, w: int, segs: np.ndarray, reach: float) -> np.ndarray:
    """Distance (px) from every pixel of an ``(h, w)`` grid to the nearest of ``segs`` ``(N, 4)`` =
    (y0, x0, y1, x1), exact up to ``reach`` px (each segment only updates its bounding box, so many short
    segments stay cheap); farther pixels read ``reach``."""
    best = np.full((h, w), reach, np.float32)
    for y0, x0, y1, x1 in segs:
        ya, yb = int(max(0, np.floor(min(y0, y1) - reach))), int(min(h, np.ceil(max(y0, y1) + reach) + 1))
        xa, xb = int(max(0, np.floor(min(x0, x1) - reach))), int(min(w, np.ceil(max(x0, x1) + reach) + 1))
        if ya >= yb or xa >= xb:
            continue
        py = np.arange(ya, yb, dtype=np.float32)[:, None]
        px = np.arange(xa, xb, dtype=np.float32)[None, :]
        dy, dx = y1 - y0, x1 - x0
        u = np.clip(((py - y0) * dy + (px - x0) * dx) / max(dy * dy + dx * dx, 1e-6), 0.0, 1.0)
        d = np.hypot(py - y0 - u * dy, px - x0 - u * dx)
        np.minimum(best[ya:yb, xa:xb], d, out=best[ya:yb, xa:xb])
    return best


def _paint(img: np.ndarray, mask: np.ndarray, colour: np.ndarray) -> np.ndarray:
    return img * (1.0 - mask[..., None]) + colour * mask[..., None]


def _stroke_colour(rng: np.random.Generator) -> np.ndarray:
    """Mostly dark silhouettes, sometimes bright (lit wires, white masts)."""
    if rng.random() < 0.75:
        return _color(rng, s=(0.0, 0.5), v=(0.02, 0.3))
    return _color(rng, s=(0.0, 0.3), v=(0.8, 1.0))


def _stroke(img: np.ndarray, segs: list, width: float, colour: np.ndarray) -> np.ndarray:
    """Paint antialiased strokes ``width`` px wide along ``segs`` ((y0, x0, y1, x1) each) in ``colour``."""
    d = _segment_distance(img.shape[0], img.shape[1], np.asarray(segs, np.float32), width / 2.0 + 1.0)
    return _paint(img, np.clip(width / 2.0 - d + 0.5, 0.0, 1.0), colour)


def _wires(rng: np.random.Generator, img: np.ndarray) -> np.ndarray:
    """Power lines: a few long, slightly sagging thin curves across the frame."""
    h, w = img.shape[:2]
    segs = []
    for _ in range(int(rng.integers(1, 5))):
        y0, y1, sag = rng.uniform(0, h), rng.uniform(0, h), rng.uniform(0, 0.15 * h)
        xs = np.linspace(-5, w + 5, 17)
        ys = y0 + (y1 - y0) * xs / w + sag * (1 - (2 * xs / w - 1) ** 2)
        segs += [(ys[i], xs[i], ys[i + 1], xs[i + 1]) for i in range(len(xs) - 1)]
    return _stroke(img, segs, rng.uniform(0.8, 3.5), _stroke_colour(rng))


def _mast(rng: np.random.Generator, img: np.ndarray) -> np.ndarray:
    """A lattice tower: two tapering legs joined by zig-zag braces, as on masts and cranes."""
    h, w = img.shape[:2]
    cx, half_bottom = rng.uniform(0.1, 0.9) * w, rng.uniform(0.04, 0.15) * w
    top, half_top = rng.uniform(-0.2, 0.5) * h, half_bottom * rng.uniform(0.2, 0.8)
    n = int(rng.integers(5, 16))
    ys = np.linspace(top, h + 5, n + 1)
    half = half_top + (half_bottom - half_top) * (ys - top) / max(h + 5 - top, 1.0)
    left, right = cx - half, cx + half
    segs = [(ys[0], left[0], ys[-1], left[-1]), (ys[0], right[0], ys[-1], right[-1])]
    for i in range(n):
        segs += [
            (ys[i], left[i], ys[i + 1], right[i + 1]),
            (ys[i], right[i], ys[i + 1], left[i + 1]),
            (ys[i], left[i], ys[i], right[i]),
        ]
    return _stroke(img, segs, rng.uniform(1.0, 3.0), _stroke_colour(rng))


def _branches(rng: np.random.Generator, img: np.ndarray) -> np.ndarray:
    """Bare tree branches: a random recursive fork from one edge, thinning as it goes."""
    h, w = img.shape[:2]
    stack = [
        (
            h + 2.0,
            rng.uniform(0, w),
            -np.pi / 2 + rng.uniform(-0.4, 0.4),
            rng.uniform(0.25, 0.5) * h,
            rng.uniform(3.0, 7.0),
            0,
        )
    ]
    groups: dict[float, list] = {}
    while stack:
        y, x, ang, length, width, depth = stack.pop()
        y1, x1 = y + np.sin(ang) * length, x + np.cos(ang) * length
        groups.setdefault(round(width, 1), []).append((y, x, y1, x1))
        if depth < 5 and width > 0.9:
            for _ in range(int(rng.integers(2, 4))):
                stack.append(
                    (y1, x1, ang + rng.uniform(-0.8, 0.8), length * rng.uniform(0.5, 0.8), width * 0.65, depth + 1)
                )
    colour = _stroke_colour(rng)
    for width, segs in groups.items():
        img = _stroke(img, segs, width, colour)
    return img


def _skyline(rng: np.random.Generator, img: np.ndarray) -> np.ndarray:
    """Hard-edged buildings along the bottom, with a textured (noisy, windowed) fill."""
    h, w = img.shape[:2]
    py, px = np.arange(h, dtype=np.float32)[:, None], np.arange(w, dtype=np.float32)[None, :]
    base = _color(rng, s=(0.0, 0.4), v=(0.05, 0.45))
    x = -rng.uniform(0, 40)
    out = img
    while x < w:
        bw, top = rng.uniform(0.06, 0.25) * w, rng.uniform(0.45, 0.9) * h
        inside = (px >= x) & (px < x + bw) & (py >= top)
        tex = rng.uniform(-1, 1, (h, w)).astype(np.float32) * rng.uniform(0.02, 0.12)
        fill = np.clip(_near(rng, base, 0.1)[None, None, :] + tex[..., None], 0.0, 1.0)
        out = np.where(inside[..., None], fill, out)
        x += bw
    return out


def _sky_structures(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A smooth sky or gradient behind sharp, thin structures (wires, masts, branches, rooftops): the
    scenes where banding shows most, and where a debander must smooth right up to an edge and not across it."""
    img = _sky(rng, h, w) if rng.random() < 0.7 else _linear(rng, h, w)
    painters = [_wires, _mast, _branches, _skyline]
    for k in rng.permutation(len(painters))[: int(rng.integers(1, 3))]:
        img = painters[k](rng, img)
    return img


def _vignette(rng: np.random.Generator, img: np.ndarray) -> np.ndarray:
    h, w = img.shape[:2]
    y, x = _grid(h, w)
    r2 = ((y - 0.5) ** 2 + (x - 0.5 * w / h) ** 2) / (0.25 + 0.25 * (w / h) ** 2)
    return img * (1.0 - rng.uniform(0.1, 0.5) * r2 ** rng.uniform(0.8, 2.0))[..., None]


_GENERATORS: tuple[Callable[[np.random.Generator, int, int], np.ndarray], ...] = (
    _linear,
    _radial,
    _sky,
    _sky,  # skies are the classic banding case: weight them double
    _soft_shapes,
    _noise_field,
    _sky_structures,
    _sky_structures,  # thin structures against the sky: the case where blurring across an edge costs most
)
_SIZES = ((320, 480), (384, 384), (480, 320), (288, 512), (352, 448))


def smooth_images(count: int, seed: int = 0, size: tuple[int, int] | None = None) -> list[Source]:
    """``count`` procedurally generated smooth images (gradients, skies, vignettes, soft shapes,
    low-frequency noise), deterministic in ``seed``; each is 288..512 px per side (or ``size`` = (H, W)),
    stored uint16.

    The colour changes are small over large distances, so 4-6 bit quantization gives wide,
    obvious bands.
    """
    check_int("synthetic image count", count, 0)
    out = []
    with one_torch_thread():  # many small bicubic upsamples
        for i in range(count):
            rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, i, 0x5EED])
            h, w = _SIZES[int(rng.integers(len(_SIZES)))]
            if size is not None:
                h, w = size
            kind = _GENERATORS[i % len(_GENERATORS)]  # cycle kinds so every count has a balanced mix
            img = kind(rng, h, w)
            if rng.random() < 0.4:
                img = _vignette(rng, img)
            name = f"smooth/{i:03d}_{kind.__name__.strip('_')}"
            out.append(_from_float(img.astype(np.float32), name, smooth=True))
    return out


def smooth_image(kind: str, seed: int = 0, size: tuple[int, int] = (1080, 1920)) -> Source:
    """One procedurally generated smooth image of ``kind`` (``linear``, ``radial``, ``sky``, ``soft_shapes``,
    ``noise_field``, ``sky_structures``), ``size`` = (H, W), deterministic in ``seed``."""
    kinds = {g.__name__.strip("_"): g for g in _GENERATORS}
    if kind not in kinds:
        raise ConfigError(f"smooth image kind must be one of {', '.join(kinds)}; got {kind!r}")
    rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, 0x5EED])
    with one_torch_thread():
        img = kinds[kind](rng, *size)
    return _from_float(img.astype(np.float32), f"smooth/{kind}_{seed}", smooth=True)


def embedded_default(seed: int = 0, synthetic: int = 48, downscale_factor: float = 1.0) -> list[Source]:
    """The built-in training set: :data:`SKIMAGE_PHOTOS` plus ``synthetic`` smooth images.

    ``downscale_factor`` applies to the photos only (the smooth images are generated clean).
    """
    photos = [downscale(s, downscale_factor) for s in skimage_photos()]
    return photos + smooth_images(synthetic, seed)


# ---------------------------------------------------------------------------------------------
# Folder of images


def list_images(root: str | os.PathLike) -> list[Path]:
    """All image files under ``root`` (recursive, suffix case-insensitive, hidden entries skipped), sorted.

    Raises:
        DataError: ``root`` is missing, not a folder, or holds no images.
    """
    r = Path(root).expanduser()
    looked = ", ".join(IMAGE_EXTENSIONS)
    if not r.exists():
        raise DataError(f"no images found under '{r}': the folder does not exist")
    if not r.is_dir():
        raise DataError(f"no images found under '{r}': it is a file, not a folder")
    files = [
        p
        for p in r.rglob("*")
        if p.suffix.lower() in IMAGE_EXTENSIONS
        and p.is_file()
        # hidden files/folders (.git, .ipynb_checkpoints, macOS "._x.jpg") are never training data
        and not any(part.startswith(".") for part in p.relative_to(r).parts)
    ]
    if not files:
        raise DataError(f"no images found under '{r}' (looked for {looked}, recursively)")
    return sorted(files, key=lambda p: p.relative_to(r).as_posix())


def folder_images(root: str | os.PathLike, downscale_factor: float = 1.0, workers: int = 4) -> list[Source]:
    """Load every image under ``root`` as an RGB Source named by its relative path.

    Unreadable files are skipped with a warning naming them; ``downscale_factor`` >= 1 shrinks each
    image with antialiasing. Raises DataError if nothing is found or nothing can be read.
    """
    r = Path(root).expanduser()
    paths = list_images(r)
    if isinstance(downscale_factor, bool) or not isinstance(downscale_factor, (int, float)) or downscale_factor < 1:
        raise ConfigError(f"downscale must be a number >= 1 (1 = keep size), got {downscale_factor!r}")

    def load(p: Path) -> Source | str:
        try:
            arr, depth = read_image(p)
        except DataError as e:
            return str(e)
        return _from_float(arr, p.relative_to(r).as_posix(), smooth=False, bit_depth=depth)

    # Decoding releases the GIL, so a few threads speed up large folders. Resizing stays in this
    # thread: it switches torch's (process-wide) thread count, which must not race.
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(paths)))) as pool:
        results = list(pool.map(load, paths))
    sources = [downscale(s, downscale_factor) for s in results if isinstance(s, Source)]
    for msg in (m for m in results if isinstance(m, str)):
        warnings.warn(f"skipping unreadable file: {msg}", stacklevel=2)
    if not sources:
        raise DataError(f"none of the {len(paths)} image file(s) under '{r}' could be read (see warnings above)")
    return sources


# ---------------------------------------------------------------------------------------------
# Split


def _rank(name: str) -> str:
    # A hash of the name (not a seeded shuffle) keeps the split stable across seeds, runs and
    # machines, and mostly stable when images are added to the folder.
    return hashlib.sha1(name.encode("utf-8")).hexdigest()


def val_names(names: Sequence[str], val_fraction: float) -> set[str]:
    """Names that go to validation: ``round(n * val_fraction)`` of them, at least 1 when n >= 2 and
    ``val_fraction > 0``, never all of them. Chosen by a hash of the name, so deterministic."""
    if isinstance(val_fraction, bool) or not isinstance(val_fraction, (int, float)) or not 0.0 <= val_fraction < 1.0:
        raise ConfigError(f"val_fraction must be in [0, 1), got {val_fraction!r}")
    unique = sorted(set(names), key=_rank)
    n = len(unique)
    if n < 2 or val_fraction == 0:
        return set()
    k = min(n - 1, max(1, int(round(n * val_fraction))))
    return set(unique[:k])


def split_by_photo(sources: Sequence[Source], val_fraction: float) -> tuple[list[Source], list[Source]]:
    """Deterministic split of whole images into (train, val), stratified by ``smooth``.

    Each group (photos, smooth images) sends :func:`val_names` of its images to val, so val has
    both kinds and crops of one image never appear on both sides. A single image goes to train
    (val is then empty). Order within each side follows ``sources``.
    """
    chosen: set[str] = set()
    for smooth in (False, True):
        chosen |= val_names([s.name for s in sources if s.smooth == smooth], val_fraction)
    train = [s for s in sources if s.name not in chosen]
    val = [s for s in sources if s.name in chosen]
    return train, val
