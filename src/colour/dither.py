"""Quantisation of [0, 1] floats to 8 (or 10, 16) bit integers, with blue-noise or triangular dithering.

A debanded gradient rounded back to 8 bits re-creates 1-code steps (the bands we removed, only smaller).
Dithering adds sub-code noise before rounding so the *average* over a small area keeps the smooth value:

- ``blue-noise``: noise that is high-frequency only (a void-and-cluster threshold mask, Ulichney 1993), so
  it is nearly invisible; generated deterministically by this module (the default 64 x 64 mask is stored
  beside it, as generated, so a run does not spend 0.1 s making it), nothing is downloaded. Two things make
  it break bands up for good rather than merely shrink them:
  * *triangular*: the sum of two decorrelated copies of the mask, +-1 code. A single (uniform) mask adds no
    noise where the smooth value sits on an exact code, so flat 1-code plateaus are left between the
    dithered stretches of a ramp (noise modulation); triangular dither makes the error's strength
    independent of the signal (Lipshitz, Wannamaker & Vanderkooy 1992). Within 1 code of black and
    white it fades to the single mask, so pure black and white stay exact.
  * *achromatic*: every colour channel gets the same pattern, so the noise lies along the grey axis: the
    luma, where banding is seen (and where CAMBI looks), gets all of it and the colours none. With a
    different pattern per channel a quarter of it would cancel in the luma.
  Measured on the quality benchmark's held-out photos (`python -m src.bench quality`) against one mask
  shifted per channel: CAMBI (max_log_contrast 5) of the dithered output 0.74 -> 0.04 (YCbCr 6/5), 0.67 -> 0.06
  (RGB 5 + JPEG), 1.17 -> 0.06 (H.264), for 0.02 to 0.08 dB of PSNR. That compares how completely each
  variant breaks CAMBI's equal-neighbour test on the 1-code steps; it is no banding score: banding is scored
  on output rounded without dither (docs/cambi.md), where any dither's remaining bands still count.
- ``tpdf``: triangular noise of +-1 code (sum of two uniforms), the audio-style dither that makes the
  quantisation error independent of the signal; white noise, a little more visible. Seeded, deterministic.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from pathlib import Path

import numpy as np

__all__ = ["DITHER_KINDS", "HeldQuantizer", "blue_noise_mask", "quantize", "void_and_cluster"]

DITHER_KINDS = ("blue-noise", "tpdf", "none")


#: :func:`void_and_cluster` ``(64, 1.5, 0)``, stored: generating it costs 0.1 s, a tenth of a 1080p image's
#: network time, in every ``deband`` process (tests/colour/test_dither.py checks that it is the same mask)
STORED_MASK = Path(__file__).with_name("blue_noise_64.npy")


@lru_cache(maxsize=4)
def blue_noise_mask(size: int = 64, sigma: float = 1.5, seed: int = 0) -> np.ndarray:
    """A ``(size, size)`` float32 blue-noise threshold mask with values ``(rank + 0.5) / size^2`` in (0, 1):
    :func:`void_and_cluster`, read from :data:`STORED_MASK` for the default arguments."""
    if (size, sigma, seed) == (64, 1.5, 0) and STORED_MASK.is_file():
        return np.load(STORED_MASK)
    return void_and_cluster(size, sigma, seed)


def void_and_cluster(size: int = 64, sigma: float = 1.5, seed: int = 0) -> np.ndarray:
    """A ``(size, size)`` float32 blue-noise threshold mask with values ``(rank + 0.5) / size^2`` in (0, 1).

    Void-and-cluster on a torus: the "energy" of a pattern is its convolution with a Gaussian; the tightest
    cluster is the set pixel of highest energy, the largest void the empty pixel of lowest energy.
    Energies are updated incrementally by adding/subtracting a shifted copy of the Gaussian.
    """
    n = size * size
    r = np.arange(size)
    d = np.minimum(r, size - r).astype(np.float64)  # toroidal distance from 0
    kernel = np.exp(-(d[:, None] ** 2 + d[None, :] ** 2) / (2 * sigma**2))

    def shifted(i: int) -> np.ndarray:
        return np.roll(kernel, (i // size, i % size), axis=(0, 1)).ravel()

    def energy_of(pattern: np.ndarray) -> np.ndarray:
        spec = np.fft.fft2(pattern.reshape(size, size)) * np.fft.fft2(kernel)
        return np.real(np.fft.ifft2(spec)).ravel()

    rng = np.random.default_rng(seed)
    proto = np.zeros(n, dtype=bool)
    proto[rng.choice(n, n // 10, replace=False)] = True
    energy = energy_of(proto)
    # 1. relax the random seed pattern: move the tightest cluster into the largest void until stable
    for _ in range(10 * n):
        cluster = int(np.argmax(np.where(proto, energy, -np.inf)))
        proto[cluster] = False
        energy -= shifted(cluster)
        void = int(np.argmin(np.where(proto, np.inf, energy)))
        proto[void] = True
        energy += shifted(void)
        if void == cluster:
            break

    rank = np.zeros(n, dtype=np.int64)
    ones = int(proto.sum())
    # 2. ranks below the prototype: remove tightest clusters one by one
    pat, e = proto.copy(), energy.copy()
    for k in range(ones - 1, -1, -1):
        c = int(np.argmax(np.where(pat, e, -np.inf)))
        pat[c] = False
        e -= shifted(c)
        rank[c] = k
    # 3. ranks up to half: fill the largest voids
    pat, e = proto.copy(), energy.copy()
    for k in range(ones, n // 2):
        v = int(np.argmin(np.where(pat, np.inf, e)))
        pat[v] = True
        e += shifted(v)
        rank[v] = k
    # 4. above half the zeros are the minority: fill the tightest cluster *of zeros*
    e0 = energy_of(~pat)
    for k in range(n // 2, n):
        v = int(np.argmax(np.where(pat, -np.inf, e0)))
        pat[v] = True
        e0 -= shifted(v)
        rank[v] = k
    return ((rank.reshape(size, size) + 0.5) / n).astype(np.float32)


def quantize(
    x: np.ndarray,
    bits: int = 8,
    dither: str = "blue-noise",
    seed: int = 0,
    offset: tuple[int, int] = (0, 0),
    triangular: bool = True,
    ends: tuple[float, float] | None = None,
    parallel: bool = True,
) -> np.ndarray:
    """Floats in [0, 1] ``(H, W)`` or ``(H, W, C)`` -> uint8 (bits <= 8) or uint16 integers in [0, 2^bits - 1].

    ``dither`` is one of :data:`DITHER_KINDS`. ``offset`` shifts the blue-noise mask (video uses one offset
    per plane, so luma and chroma noise do not line up, and the same in every frame, so a still picture's
    dither does not shimmer). Blue noise only: ``triangular=False``
    uses the single mask (no noise on exact codes: video chroma, whose neutral grey should stay exact), and
    ``ends`` are the codes where the triangular part fades out (default ``(0, 2^bits - 1)``; limited-range
    video passes its black and white, 16 and 235 at 8 bits). ``parallel``: large arrays in row blocks on
    threads, one per core (False: on the calling thread, for callers that share the cores with other work,
    such as the video finisher beside the network).
    """
    if dither not in DITHER_KINDS:
        raise ValueError(f"dither must be one of {', '.join(DITHER_KINDS)}; got {dither!r}")
    x = np.asarray(x)
    h = x.shape[0]
    large = parallel and dither != "tpdf" and x.size >= PARALLEL_SAMPLES
    pieces = min(_cores(), h // 256) if large else 1
    if pieces <= 1:
        return _quantize_rows(x, bits, dither, seed, offset, triangular, ends)
    # row blocks on parallel threads (numpy's element-wise work runs without the GIL); the mask's offset
    # follows each block's first row, so the result is the same as in one piece
    out = np.empty(x.shape, np.uint8 if bits <= 8 else np.uint16)
    rows = [(i * h // pieces, (i + 1) * h // pieces) for i in range(pieces)]

    def block(r: tuple[int, int]) -> None:
        shifted = (offset[0] - r[0], offset[1])
        out[r[0] : r[1]] = _quantize_rows(x[r[0] : r[1]], bits, dither, seed, shifted, triangular, ends)

    with ThreadPoolExecutor(pieces) as pool:
        list(pool.map(block, rows))
    return out


#: arrays of at least this many samples are quantized in row blocks on parallel threads (1080p RGB: 6.2 M
#: samples, 63 -> 35 ms on 2 cores)
PARALLEL_SAMPLES = 1 << 20


def _cores() -> int:
    # as src.utils.threads.usable_cpus, which this layer does not import
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _quantize_rows(
    x: np.ndarray,
    bits: int,
    dither: str,
    seed: int,
    offset: tuple[int, int],
    triangular: bool,
    ends: tuple[float, float] | None,
) -> np.ndarray:
    """:func:`quantize` in one piece (``offset`` already includes the block's first row)."""
    top = (1 << bits) - 1
    v = _codes(x, bits)
    if dither == "blue-noise":
        mask = blue_noise_mask()
        h, w = v.shape[:2]
        # the same pattern on every channel; triangular: plus a second, decorrelated field (the transpose)
        m = _tile_mask(mask, h, w, offset[0], offset[1])
        m = m[:, :, None] if v.ndim == 3 else m
        if triangular:
            m2 = _tile_mask(np.ascontiguousarray(mask.T), h, w, offset[0] + 32, offset[1] + 32) - 0.5
            m2 = m2[:, :, None] if v.ndim == 3 else m2
            # its weight: 1 (+-1 code) except within a code of the range's ends, where it fades to 0 (the
            # single mask: black and white stay exact, and nothing is pushed past them)
            lo, hi = ends if ends is not None else (0.0, float(top))
            # in place, a 1080p frame in a third less time: v + (m + weight * m2), as written out
            wgt = np.abs(v - lo) if lo else v.copy()  # v >= 0: |v - 0| is v itself
            np.minimum(wgt, np.abs(hi - v), out=wgt)
            np.minimum(wgt, 1.0, out=wgt)  # and >= 0 already
            wgt *= m2
            wgt += m
            m = wgt
        q = np.floor(np.add(v, m, out=v), out=v)
    elif dither == "tpdf":
        rng = np.random.default_rng(seed)
        noise = rng.random(v.shape, dtype=np.float32) - rng.random(v.shape, dtype=np.float32)
        q = np.round(v + noise)
    else:
        q = np.round(v, out=v)
    return np.clip(q, 0, top, out=q).astype(np.uint8 if bits <= 8 else np.uint16)


class HeldQuantizer:
    """:func:`quantize` for the frames of a video, holding each sample's code while its value stays put.

    A sample keeps the code it was given until its value has moved ``hold`` 8-bit codes (4 times as many codes
    of a 10-bit output: the same change of value at every depth) or more from the value that set that code;
    then it is quantized afresh (and dithered as :func:`quantize` does) and the new value is remembered.
    Still content then gives bit-identical samples from frame to frame, which the encoder codes as unchanged
    instead of re-coding the dither (and the network's own sub-code wobble) as fresh noise in every frame.
    On the video benchmark's 720p drift clips at x264 CRF 16, flicker on flat static pixels went from 0.031
    to 0.021 and from 0.028 to 0.020 codes (the banded input: 0.022 and 0.031), for 0.03 to 0.08 dB of PSNR
    (2-core Intel Xeon, 2026-12-06); at 10 bits, holding 2 codes instead of 0.5 took the hand-held clips'
    flicker from 0.054 to 0.040 and from 0.081 to 0.047 (inputs 0.060 and 0.092) for at most 0.06 dB
    (2026-12-07). The error this adds is below ``hold`` 8-bit codes, and only where the picture changes that
    little.

    ``__call__(key, x, bits, dither, **kwargs)``: :func:`quantize` of ``x`` (any shape, in [0, 1]), held
    against the last call with the same ``key`` (one per plane) when the shape and depth are the same.
    """

    def __init__(self, hold: float = 0.5) -> None:
        if not 0.0 <= hold <= 4.0:
            raise ValueError(f"hold must be in [0, 4] codes, got {hold}")
        self.hold = hold
        self._last: dict[object, tuple[int, np.ndarray, np.ndarray]] = {}  # key -> (bits, values, codes)

    def __call__(self, key: object, x: np.ndarray, bits: int = 8, dither: str = "blue-noise", **kwargs) -> np.ndarray:
        q = quantize(x, bits, dither, parallel=False, **kwargs)  # a video's frames: beside the network
        v = _codes(x, bits)
        last = self._last.get(key)
        if self.hold > 0 and last is not None and last[0] == bits and last[1].shape == v.shape:
            _, ref, codes = last
            held = np.abs(v - ref) < self.hold * 2.0 ** (bits - 8)
            q = np.where(held, codes, q)
            v = np.where(held, ref, v)
        self._last[key] = (bits, v, q)
        return q


def _codes(x: np.ndarray, bits: int) -> np.ndarray:
    """Floats in [0, 1] (NaN as 0, clamped) -> float32 values in codes of a ``bits``-bit integer."""
    # fmax/fmin drop NaNs (to 0) and clamp in two passes; the scaling is done in place on the new array
    v = np.fmax(np.asarray(x, dtype=np.float32), np.float32(0.0))
    np.fmin(v, np.float32(1.0), out=v)
    v *= np.float32((1 << bits) - 1)
    return v


def _tile_mask(mask: np.ndarray, h: int, w: int, dy: int, dx: int) -> np.ndarray:
    """The mask repeated to ``(h, w)``, rolled by ``(dy, dx)``."""
    s = mask.shape[0]
    m = np.roll(mask, (dy % s, dx % s), axis=(0, 1))
    return np.tile(m, (-(-h // s), -(-w // s)))[:h, :w]
