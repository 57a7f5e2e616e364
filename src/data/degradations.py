"""Synthetic banding: turn a clean image into a banded one.

Tensors are ``(3, H, W)`` or ``(B, 3, H, W)`` float32 RGB in [0, 1]. The pure functions take
explicit parameters; :class:`Degradation` draws those parameters from a caller-supplied
``numpy.random.Generator`` so the same generator state always gives the same banded image.

Stage order inside :class:`Degradation`: noise -> bit-depth reduction -> JPEG -> H.264. Noise goes
first so it dithers the bands (as camera noise does before 8-bit quantization); the codecs go last, as
when an already banded image is published or streamed.
"""

from __future__ import annotations

import fractions
import io
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from kornia.color import rgb_to_ycbcr, ycbcr_to_rgb
from PIL import Image

from src.utils.config import to_plain
from src.utils.errors import ConfigError, DataError
from src.utils.validate import check_int, check_prob, float_range, int_range

__all__ = [
    "quantize",
    "quantize_ycbcr",
    "quantize_chroma",
    "jpeg_compress",
    "add_noise",
    "h264_roundtrip",
    "stream_roundtrip",
    "stream_clip",
    "STREAM_CODECS",
    "BitDepthConfig",
    "JpegConfig",
    "NoiseConfig",
    "H264Config",
    "StreamConfig",
    "STREAM_QUALITY",
    "Degradation",
    "DEFAULT_DEGRADATION",
]

#: The default recipe (mirrors ``conf/data/default.yaml``).
DEFAULT_DEGRADATION: dict[str, dict[str, Any] | None] = {
    "bit_depth": {
        "p": 1.0,
        "space": "rgb",
        "bits": [4, 6],
        "luma_bits": [5, 6],
        "chroma_bits": [4, 6],
        "ycbcr_p": 0.5,
    },
    "jpeg": {"p": 0.3, "quality": [70, 95]},
    "noise": {"p": 0.2, "sigma": [0.0, 0.004]},
    "h264": None,  # off by default (on in experiment=default_model)
}


# ---------------------------------------------------------------------------------------------
# Pure functions


def _round(x: torch.Tensor) -> torch.Tensor:
    """Round half to even, like ``torch.round``.

    On CPU, ``torch.round``/``floor`` of even a 64x64 patch can stall ~8 ms when torch's intra-op
    threads compete with another busy process for the cores (measured on a 2-core machine);
    numpy's single-threaded round takes microseconds, so CPU tensors without grad go through it.
    """
    if x.device.type == "cpu" and not x.requires_grad:
        return torch.from_numpy(np.round(x.numpy()))
    return torch.round(x)


def quantize(x: torch.Tensor, bits: int) -> torch.Tensor:
    """Quantize every channel to ``2**bits`` levels: ``round(x * (2^b - 1)) / (2^b - 1)``.

    ``x``: any shape, float in [0, 1]; values outside are clamped first. Returns the same shape.
    """
    check_int("bits", bits, 1, 16)
    levels = float(2**bits - 1)
    return _round(x.clamp(0.0, 1.0) * levels) / levels


def quantize_ycbcr(x: torch.Tensor, luma_bits: int, chroma_bits: int) -> torch.Tensor:
    """Quantize in full-range YCbCr (kornia): Y to ``luma_bits``, Cb/Cr to ``chroma_bits``.

    ``x``: ``(3, H, W)`` or ``(B, 3, H, W)`` RGB in [0, 1]. Returns RGB of the same shape, clamped
    to [0, 1] (YCbCr's gamut is larger than RGB's, so a few round trips land slightly outside).
    """
    check_int("luma_bits", luma_bits, 1, 16)
    check_int("chroma_bits", chroma_bits, 1, 16)
    ycc = rgb_to_ycbcr(x.clamp(0.0, 1.0))
    y = quantize(ycc[..., :1, :, :], luma_bits)
    c = quantize_chroma(ycc[..., 1:, :, :], chroma_bits)
    return ycbcr_to_rgb(torch.cat([y, c], dim=-3)).clamp(0.0, 1.0)


def quantize_chroma(c: torch.Tensor, bits: int) -> torch.Tensor:
    """Quantize chroma (kornia's Cb/Cr: 0.5 = neutral) to ``bits`` as digital Y'CbCr stores it: ``2^b - 1``
    steps per unit around the neutral code ``2^(b-1)`` (JPEG's 128 at 8 bits), ``code = round((c - 0.5)
    * (2^b - 1)) + 2^(b-1)``, clamped to ``[0, 2^b - 1]``.

    Why not :func:`quantize`: on its grid ``k / (2^b - 1)`` neutral (0.5) falls exactly between two codes, so
    every grey, white cloud and lamp would get a colour cast of half a chroma step (at 5 bits, 7 codes of
    blue in 8-bit RGB), an error no real format makes.
    """
    check_int("bits", bits, 1, 16)
    levels = float(2**bits - 1)
    mid = float(2 ** (bits - 1))
    code = (_round((c - 0.5) * levels) + mid).clamp(0.0, levels)
    return (code - mid) / levels + 0.5


def jpeg_compress(x: torch.Tensor, quality: int) -> torch.Tensor:
    """JPEG-encode and decode with Pillow at ``quality`` (1..100), 4:2:0 chroma as most encoders.

    ``x``: ``(3, H, W)`` or ``(B, 3, H, W)`` in [0, 1]. Output is 8-bit valued, same shape, float32.
    """
    check_int("quality", quality, 1, 100)
    if x.dim() == 4:
        return torch.stack([jpeg_compress(img, quality) for img in x])
    if x.dim() != 3 or x.shape[0] != 3:
        raise ValueError(f"jpeg_compress expects (3, H, W) or (B, 3, H, W), got {tuple(x.shape)}")
    u8 = np.round(x.detach().cpu().clamp(0.0, 1.0).numpy() * 255.0).astype(np.uint8).transpose(1, 2, 0)
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(u8), mode="RGB").save(buf, format="JPEG", quality=int(quality))
    buf.seek(0)
    with Image.open(buf) as im:
        out = np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(np.ascontiguousarray(out.transpose(2, 0, 1))).to(x.device)


def h264_roundtrip(x: torch.Tensor, crf: int = 35, preset: str = "medium") -> torch.Tensor:
    """Encode ``(3, H, W)`` in [0, 1] as one 8-bit 4:2:0 H.264 intra frame with libx264 at ``crf`` and
    decode it back; returns ``(3, H, W)`` float32 with 8-bit values. Odd sizes are padded (edge
    replicate) to the even size 4:2:0 needs and cropped back."""
    import av

    from src.colour.yuv import frame_to_rgb, matrix_for, rgb_to_frame

    if "libx264" not in av.codecs_available:
        raise DataError("the h264 degradation needs PyAV built with libx264 (pip install av: the wheels have it)")
    h, w = x.shape[-2:]
    xp = x.detach().float().cpu().clamp(0, 1)
    if h % 2 or w % 2:
        xp = torch.nn.functional.pad(xp[None], (0, w % 2, 0, h % 2), mode="replicate")[0]
    hp, wp = xp.shape[-2:]
    # the Y'CbCr conversion is deband's own (src.colour.yuv), not swscale's: swscale's yuv420p -> rgb24
    # reads 1 to 1.5 codes dark (mean luma -0.003 to -0.005 on photos, even at CRF 0), a bias that is not
    # banding and that deband's video path, which reads the planes itself, never sees
    matrix = matrix_for(2, hp)  # what an untagged stream decodes as (BT.601 below 720 lines), limited range
    frame = rgb_to_frame(xp.permute(1, 2, 0).numpy(), 8, matrix, full_range=False, dither="none")
    enc = av.CodecContext.create("libx264", "w")
    enc.width, enc.height, enc.pix_fmt = wp, hp, "yuv420p"
    enc.time_base = fractions.Fraction(1, 25)
    # one thread: deterministic output, and no competition with the other work on the machine
    enc.options = {"crf": str(crf), "preset": preset, "threads": "1"}
    frame.pts = 0
    packets = list(enc.encode(frame)) + list(enc.encode(None))
    dec = av.CodecContext.create("h264", "r")
    decoded = [f for p in packets for f in dec.decode(p)] + list(dec.decode(None))
    if len(decoded) != 1:
        raise DataError(f"h264 round trip returned {len(decoded)} frames instead of 1")
    out = np.round(frame_to_rgb(decoded[0])[:h, :w] * 255.0) / 255.0  # as a decoded frame saved to 8-bit RGB
    return torch.from_numpy(np.ascontiguousarray(out.transpose(2, 0, 1)))


#: codec name -> (PyAV encoder, decoder, the encoder's quality scale [min, max], coarsest last)
STREAM_CODECS: dict[str, tuple[str, str, tuple[int, int]]] = {
    "h264": ("libx264", "h264", (0, 51)),  # CRF
    "hevc": ("libx265", "hevc", (0, 51)),  # CRF
    "mpeg4": ("mpeg4", "mpeg4", (1, 31)),  # fixed quantizer (MPEG-4 Part 2)
    "vp9": ("libvpx-vp9", "libvpx-vp9", (0, 63)),  # CRF (constant quality, no bit-rate target)
}


def _quantize_plane(code: np.ndarray, bits: int, neutral: float | None) -> np.ndarray:
    """8-bit code plane (float) -> a coarser grid of ``2^(8 - bits)`` codes, around ``neutral`` for chroma."""
    step = float(1 << (8 - bits))
    base = 0.0 if neutral is None else neutral
    return np.clip(np.round((code - base) / step) * step + base, 0.0, 255.0)


def _codec_options(codec: str, quality: int) -> dict[str, str]:
    # one thread: deterministic output, and no competition with the other work on the machine
    if codec == "h264":
        return {"crf": str(quality), "preset": "medium", "threads": "1"}
    if codec == "hevc":
        return {"crf": str(quality), "preset": "fast", "threads": "1", "x265-params": "log-level=none:pools=1"}
    if codec == "mpeg4":
        return {"qmin": str(quality), "qmax": str(quality), "threads": "1"}
    return {"crf": str(quality), "b": "0", "deadline": "realtime", "cpu-used": "8", "threads": "1"}


def _yuv420_frame(planes: list[np.ndarray]):  # noqa: ANN202 - av.VideoFrame
    """8-bit 4:2:0 planes ``[Y (H, W), Cb, Cr (H/2, W/2)]``, integer-valued floats -> a ``yuv420p`` frame."""
    from av.video.frame import VideoFrame

    h, w = planes[0].shape
    frame = VideoFrame(w, h, "yuv420p")
    for plane, data in zip(frame.planes, planes):
        buf = np.frombuffer(plane, dtype=np.uint8).reshape(plane.height, plane.line_size)
        buf[:, : data.shape[1]] = data.astype(np.uint8)
    return frame


def _codec_roundtrip(planes: list[np.ndarray], codec: str, quality: int):  # noqa: ANN202 - av.VideoFrame
    """Encode 8-bit 4:2:0 planes ``[Y (H, W), Cb, Cr (H/2, W/2)]`` as one intra frame and decode it."""
    import av

    encoder, decoder, _ = STREAM_CODECS[codec]
    if encoder not in av.codecs_available:
        raise DataError(
            f"the stream degradation's {codec} needs PyAV built with {encoder} (pip install av: the wheels have it)"
        )
    h, w = planes[0].shape
    frame = _yuv420_frame(planes)
    enc = av.CodecContext.create(encoder, "w")
    enc.width, enc.height, enc.pix_fmt = w, h, "yuv420p"
    enc.time_base = fractions.Fraction(1, 25)
    enc.options = _codec_options(codec, quality)
    frame.pts = 0
    packets = list(enc.encode(frame)) + list(enc.encode(None))
    dec = av.CodecContext.create(decoder, "r")
    decoded = [f for p in packets for f in dec.decode(p)] + list(dec.decode(None))
    if len(decoded) != 1:
        raise DataError(f"{codec} round trip returned {len(decoded)} frames instead of 1")
    return decoded[0]


def _stream_planes(x: torch.Tensor, luma_bits: int, chroma_bits: int) -> list[np.ndarray]:
    """``(3, H, W)`` RGB in [0, 1], H and W even -> 4:2:0 BT.709 limited-range planes ``[Y, Cb, Cr]`` (float
    8-bit codes) with luma cut to ``luma_bits`` and chroma (2 x 2 means) to ``chroma_bits``."""
    rgb = x.permute(1, 2, 0).numpy().astype(np.float64)
    kr, kb = 0.2126, 0.0722  # BT.709: what players assume for untagged HD
    y = kr * rgb[..., 0] + (1 - kr - kb) * rgb[..., 1] + kb * rgb[..., 2]
    hp, wp = y.shape

    def down(c: np.ndarray) -> np.ndarray:
        return c.reshape(hp // 2, 2, wp // 2, 2).mean(axis=(1, 3))

    cb = down((rgb[..., 2] - y) / (2 * (1 - kb)))
    cr = down((rgb[..., 0] - y) / (2 * (1 - kr)))
    return [
        _quantize_plane(16 + 219 * y, luma_bits, None),
        _quantize_plane(128 + 224 * cb, chroma_bits, 128.0),
        _quantize_plane(128 + 224 * cr, chroma_bits, 128.0),
    ]


def stream_clip(
    frames: list[torch.Tensor],
    path: str | os.PathLike,
    luma_bits: int = 6,
    chroma_bits: int = 5,
    crf: int = 30,
    fps: int = 24,
) -> None:
    """Write ``frames`` (each ``(3, H, W)`` RGB in [0, 1], H and W even) as an H.264 clip banded like streamed
    video: each frame cut to 4:2:0 with ``luma_bits`` / ``chroma_bits`` as :func:`stream_roundtrip` does, then
    the whole clip through libx264 at ``crf`` (preset medium, so P and B frames carry the banding from frame to
    frame as in a real stream), BT.709 tagged, into an MP4 at ``path``.
    """
    import av

    check_int("luma_bits", luma_bits, 1, 8)
    check_int("chroma_bits", chroma_bits, 1, 8)
    check_int("crf", crf, 0, 51)
    if not frames:
        raise ConfigError("stream_clip needs at least one frame")
    h, w = frames[0].shape[-2:]
    if h % 2 or w % 2:
        raise ConfigError(f"stream_clip needs an even frame size, got {w}x{h}")
    with av.open(str(path), "w", format="mp4") as out:
        st = out.add_stream("libx264", rate=fps)
        st.width, st.height, st.pix_fmt = w, h, "yuv420p"
        st.options = {"crf": str(crf), "preset": "medium", "threads": "1"}
        st.codec_context.colorspace = 1  # BT.709
        for i, x in enumerate(frames):
            frame = _yuv420_frame(_stream_planes(x.detach().float().cpu().clamp(0, 1), luma_bits, chroma_bits))
            frame.pts = i
            frame.colorspace = 1
            for packet in st.encode(frame):
                out.mux(packet)
        for packet in st.encode(None):
            out.mux(packet)


def stream_roundtrip(
    x: torch.Tensor, luma_bits: int = 6, chroma_bits: int = 5, codec: str = "h264", quality: int = 30, passes: int = 1
) -> torch.Tensor:
    """Banding as low-bit-rate video makes it: ``(3, H, W)`` RGB in [0, 1] -> the same, 8-bit valued, float32.

    The image goes to 4:2:0 BT.709 limited-range Y'CbCr (2 x 2 chroma means), its luma is cut to
    ``luma_bits`` and its chroma to ``chroma_bits`` (on the 8-bit code grid, chroma around the neutral 128, so
    greys stay grey), then one intra frame of a real codec (``codec`` in :data:`STREAM_CODECS`, at ``quality``
    on that codec's own scale) encodes and decodes it; ``passes`` > 1 re-encodes the decoded frame (a
    re-published video). Coarse grids under a codec at high QP leave plateaus a few codes apart and as wide
    as the smooth area, with chroma blotches twice as coarse: the banding of real streamed frames.
    Odd sizes are padded (edge replicate) and cropped back.
    """
    from src.colour.yuv import frame_to_rgb

    check_int("luma_bits", luma_bits, 1, 8)
    check_int("chroma_bits", chroma_bits, 1, 8)
    check_int("passes", passes, 1, 4)
    if codec not in STREAM_CODECS:
        raise ConfigError(f"stream codec must be one of {', '.join(STREAM_CODECS)}; got {codec!r}")
    check_int(f"{codec} quality", quality, *STREAM_CODECS[codec][2])
    h, w = x.shape[-2:]
    xp = x.detach().float().cpu().clamp(0, 1)
    if h % 2 or w % 2:
        xp = torch.nn.functional.pad(xp[None], (0, w % 2, 0, h % 2), mode="replicate")[0]
    planes = _stream_planes(xp, luma_bits, chroma_bits)
    frame = None
    for _ in range(passes):
        frame = _codec_roundtrip(planes, codec, quality)
        planes = [
            np.frombuffer(p, np.uint8).reshape(p.height, p.line_size)[:, : p.width].astype(np.float64)
            for p in frame.planes[:3]
        ]
    frame.colorspace = 1  # decode with BT.709 whatever the size (frame_to_rgb reads the tag)
    out = np.round(frame_to_rgb(frame)[:h, :w] * 255.0) / 255.0
    return torch.from_numpy(np.ascontiguousarray(out.transpose(2, 0, 1), dtype=np.float32))


def add_noise(x: torch.Tensor, sigma: float, rng: np.random.Generator) -> torch.Tensor:
    """Add i.i.d. Gaussian noise of std ``sigma`` (drawn from ``rng``) and clamp to [0, 1]."""
    if sigma <= 0:
        return x.clone()
    noise = rng.standard_normal(tuple(x.shape), dtype=np.float32) * np.float32(sigma)
    return (x + torch.from_numpy(noise).to(x.device, x.dtype)).clamp(0.0, 1.0)


# ---------------------------------------------------------------------------------------------
# Config


@dataclass(frozen=True)
class BitDepthConfig:
    """Bit-depth reduction. ``space``: ``rgb`` (``bits``), ``ycbcr`` (``luma_bits``/``chroma_bits``)
    or ``mixed`` (YCbCr with probability ``ycbcr_p``, else RGB). Bit ranges are inclusive."""

    p: float = 1.0
    space: str = "rgb"
    bits: tuple[int, int] = (4, 6)
    luma_bits: tuple[int, int] = (5, 6)
    chroma_bits: tuple[int, int] = (4, 6)
    ycbcr_p: float = 0.5


@dataclass(frozen=True)
class JpegConfig:
    """JPEG compression with probability ``p`` at a quality drawn from ``quality`` (inclusive)."""

    p: float = 0.3
    quality: tuple[int, int] = (70, 95)


@dataclass(frozen=True)
class NoiseConfig:
    """Gaussian noise before quantization with probability ``p``, std uniform in ``sigma``."""

    p: float = 0.2
    sigma: tuple[float, float] = (0.0, 0.004)


@dataclass(frozen=True)
class H264Config:
    """A real codec: one libx264 intra frame (8-bit 4:2:0) with probability ``p`` at a CRF drawn from
    ``crf`` (inclusive; 51 is the coarsest). Off unless configured: it costs a few ms per crop."""

    p: float = 0.3
    crf: tuple[int, int] = (28, 40)
    preset: str = "medium"


#: the stream stage's default quality ranges, each codec's own scale (high QP: visible plateaus)
STREAM_QUALITY: dict[str, tuple[int, int]] = {"h264": (26, 38), "hevc": (28, 40), "mpeg4": (6, 16), "vp9": (40, 58)}


@dataclass(frozen=True)
class StreamConfig:
    """Stream-like banding (:func:`stream_roundtrip`) with probability ``p``: luma and chroma bit depths drawn
    from their ranges, a codec drawn uniformly from ``codecs`` (name -> quality range on its own scale), and
    with probability ``twice_p`` a second encode of the decoded frame."""

    p: float = 0.5
    luma_bits: tuple[int, int] = (5, 7)
    chroma_bits: tuple[int, int] = (4, 6)
    codecs: dict[str, tuple[int, int]] = field(default_factory=lambda: dict(STREAM_QUALITY))
    twice_p: float = 0.2

    def draw(self, rng: np.random.Generator) -> dict[str, Any]:
        """The parameters of one application (always the same number of draws)."""
        names = sorted(self.codecs)
        codec = names[int(rng.integers(len(names)))]
        lo, hi = self.codecs[codec]
        return {
            "luma_bits": int(rng.integers(self.luma_bits[0], self.luma_bits[1] + 1)),
            "chroma_bits": int(rng.integers(self.chroma_bits[0], self.chroma_bits[1] + 1)),
            "codec": codec,
            "quality": int(rng.integers(lo, hi + 1)),
            "passes": 2 if rng.random() < self.twice_p else 1,
        }


@dataclass(frozen=True)
class Degradation:
    """Composed noise -> bit-depth -> JPEG -> H.264 -> stream degradation; ``None`` disables a stage.

    Build it from a config mapping with :meth:`from_config`. Call it as
    ``banded = degradation(clean, rng)`` with ``clean`` ``(3, H, W)`` or ``(B, 3, H, W)`` in [0, 1];
    each batch item gets its own parameters.
    """

    bit_depth: BitDepthConfig | None = field(default_factory=BitDepthConfig)
    jpeg: JpegConfig | None = field(default_factory=JpegConfig)
    noise: NoiseConfig | None = field(default_factory=NoiseConfig)
    h264: H264Config | None = None
    stream: StreamConfig | None = None

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any] | None = None) -> Degradation:
        """Build from ``{bit_depth: {...}, jpeg: {...}, noise: {...}, h264: {...}}`` (dict or DictConfig).

        ``cfg=None`` gives :data:`DEFAULT_DEGRADATION`. A stage that is missing or ``null`` is off;
        keys missing inside a stage take the dataclass defaults. Bad values raise ConfigError.
        """
        cfg = to_plain(DEFAULT_DEGRADATION if cfg is None else cfg)
        if not isinstance(cfg, Mapping):
            raise ConfigError(f"degradation must be a mapping of stages, got {type(cfg).__name__}")
        unknown = set(cfg) - {"bit_depth", "jpeg", "noise", "h264", "stream"}
        if unknown:
            raise ConfigError(
                f"unknown degradation stage(s) {sorted(unknown)}; expected bit_depth, jpeg, noise, h264, stream"
            )
        return cls(
            bit_depth=_parse_bit_depth(cfg.get("bit_depth")),
            jpeg=_parse_jpeg(cfg.get("jpeg")),
            noise=_parse_noise(cfg.get("noise")),
            h264=_parse_h264(cfg.get("h264")),
            stream=_parse_stream(cfg.get("stream")),
        )

    def __call__(self, clean: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        """``clean`` ``(3, H, W)`` or ``(B, 3, H, W)`` in [0, 1] -> banded, same shape, float32."""
        return self.apply(clean, rng)[0]

    def apply(
        self, clean: torch.Tensor, rng: np.random.Generator
    ) -> tuple[torch.Tensor, dict[str, Any] | list[dict[str, Any]]]:
        """Like ``__call__`` but also returns the parameters used (a list of dicts for batches)."""
        if clean.dim() == 4:
            outs, params = zip(*(self._apply_one(img, rng) for img in clean))
            return torch.stack(list(outs)), list(params)
        if clean.dim() != 3 or clean.shape[0] != 3:
            raise ValueError(f"Degradation expects (3, H, W) or (B, 3, H, W), got {tuple(clean.shape)}")
        return self._apply_one(clean, rng)

    def _apply_one(self, x: torch.Tensor, rng: np.random.Generator) -> tuple[torch.Tensor, dict[str, Any]]:
        # Every stage consumes the same number of draws whether or not it fires, so changing
        # one stage's probability does not reshuffle the others' parameters.
        x = x.to(torch.float32)
        params: dict[str, Any] = {}
        if self.noise is not None:
            fire, sigma = rng.random() < self.noise.p, rng.uniform(*self.noise.sigma)
            if fire and sigma > 0:
                x = add_noise(x, sigma, rng)
                params["noise_sigma"] = float(sigma)
        if self.bit_depth is not None:
            c = self.bit_depth
            fire = rng.random() < c.p
            use_ycbcr = c.space == "ycbcr" or (c.space == "mixed" and rng.random() < c.ycbcr_p)
            bits = int(rng.integers(c.bits[0], c.bits[1] + 1))
            luma = int(rng.integers(c.luma_bits[0], c.luma_bits[1] + 1))
            chroma = int(rng.integers(c.chroma_bits[0], c.chroma_bits[1] + 1))
            if fire:
                if use_ycbcr:
                    x = quantize_ycbcr(x, luma, chroma)
                    params.update(space="ycbcr", luma_bits=luma, chroma_bits=chroma)
                else:
                    x = quantize(x, bits)
                    params.update(space="rgb", bits=bits)
        if self.jpeg is not None:
            fire = rng.random() < self.jpeg.p
            quality = int(rng.integers(self.jpeg.quality[0], self.jpeg.quality[1] + 1))
            if fire:
                x = jpeg_compress(x, quality)
                params["jpeg_quality"] = quality
        if self.h264 is not None:
            fire = rng.random() < self.h264.p
            crf = int(rng.integers(self.h264.crf[0], self.h264.crf[1] + 1))
            if fire:
                x = h264_roundtrip(x, crf, self.h264.preset)
                params["h264_crf"] = crf
        if self.stream is not None:
            fire, drawn = rng.random() < self.stream.p, self.stream.draw(rng)
            if fire:
                x = stream_roundtrip(x, **drawn)
                params["stream"] = drawn
        return x.contiguous(), params


# ---------------------------------------------------------------------------------------------
# Parsing helpers


def _stage(name: str, cfg: Any, allowed: set[str]) -> dict[str, Any] | None:
    cfg = to_plain(cfg)
    if cfg is None or cfg is False:
        return None
    if not isinstance(cfg, Mapping):
        raise ConfigError(f"degradation.{name} must be a mapping or null, got {cfg!r}")
    unknown = set(cfg) - allowed
    if unknown:
        raise ConfigError(f"unknown key(s) {sorted(unknown)} in degradation.{name}; allowed: {sorted(allowed)}")
    return dict(cfg)


def _parse_bit_depth(cfg: Any) -> BitDepthConfig | None:
    d = _stage("bit_depth", cfg, {"p", "space", "bits", "luma_bits", "chroma_bits", "ycbcr_p"})
    if d is None:
        return None
    base = BitDepthConfig()
    space = str(d.get("space", base.space)).lower()
    if space not in ("rgb", "ycbcr", "mixed"):
        raise ConfigError(f"degradation.bit_depth.space must be rgb, ycbcr or mixed, got {d.get('space')!r}")
    return BitDepthConfig(
        p=check_prob("degradation.bit_depth.p", d.get("p", base.p)),
        space=space,
        bits=int_range("degradation.bit_depth.bits", d.get("bits", base.bits), 1, 16),
        luma_bits=int_range("degradation.bit_depth.luma_bits", d.get("luma_bits", base.luma_bits), 1, 16),
        chroma_bits=int_range("degradation.bit_depth.chroma_bits", d.get("chroma_bits", base.chroma_bits), 1, 16),
        ycbcr_p=check_prob("degradation.bit_depth.ycbcr_p", d.get("ycbcr_p", base.ycbcr_p)),
    )


def _parse_jpeg(cfg: Any) -> JpegConfig | None:
    d = _stage("jpeg", cfg, {"p", "quality"})
    if d is None:
        return None
    base = JpegConfig()
    return JpegConfig(
        p=check_prob("degradation.jpeg.p", d.get("p", base.p)),
        quality=int_range("degradation.jpeg.quality", d.get("quality", base.quality), 1, 100),
    )


def _parse_noise(cfg: Any) -> NoiseConfig | None:
    d = _stage("noise", cfg, {"p", "sigma"})
    if d is None:
        return None
    base = NoiseConfig()
    return NoiseConfig(
        p=check_prob("degradation.noise.p", d.get("p", base.p)),
        sigma=float_range("degradation.noise.sigma", d.get("sigma", base.sigma), 0.0, 1.0),
    )


_X264_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow")


def _parse_h264(cfg: Any) -> H264Config | None:
    d = _stage("h264", cfg, {"p", "crf", "preset"})
    if d is None:
        return None
    base = H264Config()
    preset = str(d.get("preset", base.preset))
    if preset not in _X264_PRESETS:
        raise ConfigError(f"degradation.h264.preset must be one of {', '.join(_X264_PRESETS)}; got {preset!r}")
    return H264Config(
        p=check_prob("degradation.h264.p", d.get("p", base.p)),
        crf=int_range("degradation.h264.crf", d.get("crf", base.crf), 0, 51),
        preset=preset,
    )


def _parse_stream(cfg: Any) -> StreamConfig | None:
    d = _stage("stream", cfg, {"p", "luma_bits", "chroma_bits", "codecs", "twice_p"})
    if d is None:
        return None
    base = StreamConfig()
    codecs = to_plain(d.get("codecs", base.codecs))
    if isinstance(codecs, (list, tuple)):  # names only: each codec's default range
        codecs = {str(c): STREAM_QUALITY.get(str(c)) for c in codecs}
    if not isinstance(codecs, Mapping) or not codecs:
        raise ConfigError(
            f"degradation.stream.codecs must be a non-empty mapping codec -> [min, max] quality "
            f"(codecs: {', '.join(STREAM_CODECS)}), got {codecs!r}"
        )
    ranges = {}
    for name, rng in codecs.items():
        if name not in STREAM_CODECS:
            raise ConfigError(
                f"degradation.stream.codecs: unknown codec {name!r}; choose from {', '.join(STREAM_CODECS)}"
            )
        ranges[name] = int_range(f"degradation.stream.codecs.{name}", rng, *STREAM_CODECS[name][2])
    return StreamConfig(
        p=check_prob("degradation.stream.p", d.get("p", base.p)),
        luma_bits=int_range("degradation.stream.luma_bits", d.get("luma_bits", base.luma_bits), 1, 8),
        chroma_bits=int_range("degradation.stream.chroma_bits", d.get("chroma_bits", base.chroma_bits), 1, 8),
        codecs=ranges,
        twice_p=check_prob("degradation.stream.twice_p", d.get("twice_p", base.twice_p)),
    )
