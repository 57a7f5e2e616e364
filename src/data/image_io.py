"""Reading and writing images as float arrays, keeping 16-bit precision.

Arrays are ``(H, W, C)`` float32 in [0, 1] with C = 1 (gray), 3 (RGB) or 4 (RGBA).
Pillow decodes most formats, but it truncates 16-bit RGB(A) and gray+alpha PNGs to 8 bits
and cannot decode 16-bit RGB TIFFs, so those go through PyAV (FFmpeg's PNG decoder) and
tifffile. Writing is PNG only: 8-bit via Pillow, 16-bit via a small built-in encoder.
"""

from __future__ import annotations

import io
import os
import struct
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from src.utils.atomic import atomic_output
from src.utils.errors import ConfigError, DataError
from src.utils.threads import usable_cpus

__all__ = ["IMAGE_EXTENSIONS", "encode_png", "read_image", "to_rgb", "write_image", "apply_exif_orientation"]

#: File suffixes (lower case) that folder scans treat as images.
IMAGE_EXTENSIONS: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff")

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_TIFF_SIGNATURES = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
# PNG colour type -> channel count; 4 (gray+alpha) is widened to RGBA on read.
_PNG_CHANNELS = {0: 1, 2: 3, 4: 2, 6: 4}
# Packed 16-bit pixel formats FFmpeg's PNG decoder emits -> (channels, numpy dtype).
_AV_PACKED16 = {
    "gray16be": (1, ">u2"),
    "gray16le": (1, "<u2"),
    "ya16be": (2, ">u2"),
    "ya16le": (2, "<u2"),
    "rgb48be": (3, ">u2"),
    "rgb48le": (3, "<u2"),
    "rgba64be": (4, ">u2"),
    "rgba64le": (4, "<u2"),
}
_EXIF_ORIENTATION_TAG = 0x0112


class _ReadFailure(Exception):
    """Internal: a decoder failed; the message becomes the reason in the DataError."""


def read_image(path: str | os.PathLike) -> tuple[np.ndarray, int]:
    """Read an image file into ``(H, W, C)`` float32 in [0, 1] and its source bit depth (8 or 16).

    C is 1 (gray), 3 (RGB) or 4 (RGBA) as stored; gray+alpha becomes RGBA and palette images
    become RGB (RGBA if the palette has transparency). EXIF orientation is applied.
    Float TIFFs are clipped to [0, 1] and reported as 16-bit.

    Raises:
        DataError: the file is missing, is not an image, or is corrupt.
    """
    p = Path(path)
    if not p.exists():
        raise DataError(f"cannot read image '{p}': file not found")
    if p.is_dir():
        raise DataError(f"cannot read image '{p}': it is a directory, not a file")
    try:
        with open(p, "rb") as f:
            head = f.read(32)
        if head.startswith(_PNG_SIGNATURE) and _png_is_deep(head):
            arr, depth = _read_png16(p)
        elif head[:4] in _TIFF_SIGNATURES:
            arr, depth = _read_tiff(p)
        else:
            arr, depth = _read_pillow(p)
    except DataError:
        raise
    except UnidentifiedImageError as e:
        raise DataError(f"cannot read image '{p}': not a recognised image format") from e
    except Exception as e:  # decoders raise many types (OSError, ValueError, av errors...): all mean unreadable
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise DataError(f"cannot read image '{p}': {reason}") from e
    if arr.ndim != 3 or arr.shape[2] not in (1, 3, 4) or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise DataError(f"cannot read image '{p}': unsupported pixel layout {arr.shape}")
    return np.ascontiguousarray(arr, dtype=np.float32), depth


def to_rgb(arr: np.ndarray) -> np.ndarray:
    """``(H, W, C)`` or ``(H, W)`` -> ``(H, W, 3)``: gray is replicated, alpha is dropped.

    Alpha is dropped rather than composited because the colour values are what carry banding.
    """
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3 or arr.shape[2] not in (1, 2, 3, 4):
        raise DataError(f"expected an (H, W, C) image with C in 1..4, got shape {arr.shape}")
    c = arr.shape[2]
    if c in (1, 2):
        return np.ascontiguousarray(np.repeat(arr[:, :, :1], 3, axis=2))
    return np.ascontiguousarray(arr[:, :, :3])


def write_image(path: str | os.PathLike, arr: np.ndarray, bit_depth: int = 8) -> Path:
    """Write ``arr`` as an 8- or 16-bit PNG, atomically (temp file in the same folder + rename).

    ``arr`` is ``(H, W)`` or ``(H, W, C)`` with C in 1, 3, 4: floats in [0, 1] (clipped, rounded),
    or uint8/uint16 integers written as-is when they match ``bit_depth`` and rescaled otherwise.
    Missing parent folders are created. Returns the written path.
    """
    p = Path(path)
    if bit_depth not in (8, 16):
        raise ConfigError(f"bit_depth must be 8 or 16, got {bit_depth!r}")
    if p.suffix.lower() != ".png":
        raise ConfigError(f"write_image writes PNG only: use a '.png' file name instead of '{p.name}'")
    a = np.asarray(arr)
    if a.ndim == 2:
        a = a[:, :, None]
    if a.ndim != 3 or a.shape[2] not in (1, 3, 4) or a.shape[0] == 0 or a.shape[1] == 0:
        raise DataError(f"cannot write image '{p}': expected (H, W, C) with C in 1, 3, 4, got {a.shape}")
    q = _quantize(a, bit_depth)

    with atomic_output(p) as tmp:
        tmp.write_bytes(encode_png(q))
    return p


def apply_exif_orientation(arr: np.ndarray, orientation: int) -> np.ndarray:
    """Apply EXIF orientation 1..8 to an ``(H, W, C)`` array (same result as ``ImageOps.exif_transpose``)."""
    if orientation == 2:
        return arr[:, ::-1]
    if orientation == 3:
        return arr[::-1, ::-1]
    if orientation == 4:
        return arr[::-1]
    if orientation == 5:
        return arr.transpose(1, 0, 2)
    if orientation == 6:
        return np.rot90(arr, k=-1)
    if orientation == 7:
        return arr[::-1, ::-1].transpose(1, 0, 2)
    if orientation == 8:
        return np.rot90(arr, k=1)
    return arr


# ---------------------------------------------------------------------------------------------
# Decoders


def _png_is_deep(head: bytes) -> bool:
    """True for 16-bit PNGs whose channels Pillow would truncate or cannot represent."""
    if len(head) < 26 or head[12:16] != b"IHDR":
        return False
    bit_depth, colour_type = head[24], head[25]
    return bit_depth == 16 and colour_type in _PNG_CHANNELS


def _read_png16(path: Path) -> tuple[np.ndarray, int]:
    """Decode a 16-bit PNG with PyAV's png_pipe demuxer (exact 16-bit samples)."""
    import av  # local import: only 16-bit PNGs need FFmpeg

    with open(path, "rb") as f, av.open(f, format="png_pipe") as container:
        frame = next(container.decode(video=0), None)
        if frame is None:
            raise _ReadFailure("no image data in PNG")
        name = frame.format.name
        h, w = frame.height, frame.width
        if name in _AV_PACKED16:
            # Read the packed plane directly: exact, and works for ya16 which to_ndarray lacks.
            c, dtype = _AV_PACKED16[name]
            plane = frame.planes[0]
            rows = np.frombuffer(bytes(plane), dtype=dtype).reshape(h, plane.line_size // 2)
            u16 = rows[:, : w * c].reshape(h, w, c).astype(np.uint16)
        else:
            u16 = frame.to_ndarray(format="rgba64le")
    arr = u16.astype(np.float32) / 65535.0
    if arr.shape[2] == 2:  # gray+alpha -> RGBA
        arr = np.concatenate([np.repeat(arr[:, :, :1], 3, axis=2), arr[:, :, 1:]], axis=2)
    return apply_exif_orientation(arr, _header_orientation(path)), 16


def _header_orientation(path: Path) -> int:
    """EXIF orientation from the file header, without decoding pixels (1 = none or unknown)."""
    try:
        with Image.open(path) as im:
            if im.format == "PNG":
                # PngImageFile.getexif() decodes the whole image when eXIf is not in the header.
                raw = im.info.get("exif")
                if not raw:
                    return 1
                exif = Image.Exif()
                exif.load(raw)
            else:
                exif = im.getexif()
            return int(exif.get(_EXIF_ORIENTATION_TAG, 1))
    except Exception:  # the pixels decoded already; a broken tag only means "no rotation"
        return 1


def _read_tiff(path: Path) -> tuple[np.ndarray, int]:
    """Decode a TIFF with tifffile (16-bit RGB, float) where it holds gray or RGB samples that tifffile can
    decompress; Pillow does the rest (palette, CMYK, white-is-zero gray, YCbCr, LZW or JPEG without the
    optional ``imagecodecs``) and anything when tifffile is missing."""
    try:
        import tifffile
    except ImportError:  # tifffile comes with scikit-image, but stay usable without it
        return _read_pillow(path)
    with tifffile.TiffFile(path) as tif:
        page = tif.pages[0]
        # other photometric interpretations store values that are not RGB or gray intensities
        if int(page.photometric) not in (1, 2):  # MINISBLACK, RGB
            return _read_pillow(path)
        try:
            data = page.asarray()
        except ValueError:  # a compression tifffile cannot decode without imagecodecs (LZW, JPEG, ...)
            return _read_pillow(path)
        axes = page.axes
    if axes.startswith("S") and data.ndim == 3:
        data = data.transpose(1, 2, 0)  # planar (C, H, W) storage
    if data.ndim == 2:
        data = data[:, :, None]
    if data.ndim != 3:
        raise _ReadFailure(f"unsupported TIFF layout {data.shape}")
    if data.shape[2] == 2:
        data = np.concatenate([np.repeat(data[:, :, :1], 3, axis=2), data[:, :, 1:]], axis=2)
    arr, depth = _normalize(data)
    return apply_exif_orientation(arr, _header_orientation(path)), depth


def _read_pillow(path: Path) -> tuple[np.ndarray, int]:
    """Decode with Pillow (8-bit formats, 16-bit gray), applying EXIF orientation."""
    with Image.open(path) as im:
        im.load()  # decode now so truncated files fail here
        im = ImageOps.exif_transpose(im)
        mode = im.mode
        if mode in ("L", "RGB", "RGBA"):
            pass
        elif mode == "1":
            im = im.convert("L")
        elif mode == "P":
            im = im.convert("RGBA" if "transparency" in im.info else "RGB")
        elif mode in ("LA", "La", "PA", "RGBa"):
            im = im.convert("RGBA")
        elif mode.startswith("I;16") or mode in ("I", "F"):
            pass
        else:  # CMYK, YCbCr, LAB, HSV, RGBX, ...
            im = im.convert("RGB")
        data = np.asarray(im)
    if data.ndim == 2:
        data = data[:, :, None]
    if data.dtype == np.int32:  # Pillow mode "I": 16-bit gray PNG/TIFF on some versions
        data = np.clip(data, 0, 65535).astype(np.uint16)
    return _normalize(data)


def _normalize(data: np.ndarray) -> tuple[np.ndarray, int]:
    """Integer/float samples -> float32 in [0, 1] plus the bit depth they came from (8 or 16)."""
    if data.dtype == np.bool_:
        return data.astype(np.float32), 8
    if data.dtype == np.uint8:
        return data.astype(np.float32) / 255.0, 8
    if data.dtype == np.uint16:
        return data.astype(np.float32) / 65535.0, 16
    if np.issubdtype(data.dtype, np.integer):
        info = np.iinfo(data.dtype)
        top = float(info.max)
        return (np.clip(data, 0, None).astype(np.float64) / top).astype(np.float32), 16
    if np.issubdtype(data.dtype, np.floating):
        return np.clip(np.nan_to_num(data.astype(np.float32)), 0.0, 1.0), 16
    raise _ReadFailure(f"unsupported sample type {data.dtype}")


# ---------------------------------------------------------------------------------------------
# Encoders


def _quantize(a: np.ndarray, bit_depth: int) -> np.ndarray:
    """Float [0, 1] or uint8/uint16 -> uint8 or uint16 samples for ``bit_depth``."""
    top = 255 if bit_depth == 8 else 65535
    dtype = np.uint8 if bit_depth == 8 else np.uint16
    if a.dtype == dtype:
        return np.ascontiguousarray(a)
    if a.dtype == np.uint8 or a.dtype == np.uint16:
        src_top = 255.0 if a.dtype == np.uint8 else 65535.0
        return np.round(a.astype(np.float64) * (top / src_top)).astype(dtype)
    if a.dtype == np.bool_ or np.issubdtype(a.dtype, np.floating):
        f = np.nan_to_num(a.astype(np.float64), nan=0.0)
        return np.round(np.clip(f, 0.0, 1.0) * top).astype(dtype)
    raise DataError(f"cannot write samples of type {a.dtype}; use float in [0, 1], uint8 or uint16")


#: zlib settings of every PNG the project writes: level 1 with run-length matching only (``Z_RLE``, as fast
#: PNG encoders do: after the row filter, long matches are rare in photos), deflated in up to
#: :data:`PNG_PIECES` pieces on parallel threads (zlib works without the GIL; the pieces are joined by full
#: flushes into one standard zlib stream). On a 2-core Intel Xeon, 2026-12-06: a 16-bit 1080p frame 0.09 s
#: and 6.0 MB against 0.93 s and 5.7 MB at level 6; a dithered 8-bit one 0.03 s and 1.48 MB against 0.13 s
#: and 1.46 MB through Pillow (its per-row adaptive filters, the same zlib settings, one thread).
PNG_ZLIB_LEVEL = 1
PNG_ZLIB_STRATEGY = zlib.Z_RLE
PNG_PIECES = 4
_PNG_COLOUR_TYPE = {1: 0, 3: 2, 4: 6}  # grey, RGB, RGBA


def encode_png(q: np.ndarray) -> bytes:
    """Encode ``(H, W, C)`` uint8 or uint16 (C in 1, 3, 4) as an 8- or 16-bit PNG.

    Every row uses PNG's "Sub" filter (each byte minus the same byte of the pixel to its left: smooth images
    compress several times better than unfiltered), then zlib as :data:`PNG_ZLIB_LEVEL` describes.
    """
    h, w, c = q.shape
    bits = 16 if q.dtype == np.uint16 else 8
    bpp = c * bits // 8
    raw = np.ascontiguousarray(q.astype(">u2") if bits == 16 else q).view(np.uint8).reshape(h, w * bpp)
    rows = np.empty((h, 1 + w * bpp), np.uint8)
    rows[:, 0] = 1  # filter type Sub
    rows[:, 1 : 1 + bpp] = raw[:, :bpp]
    np.subtract(raw[:, bpp:], raw[:, :-bpp], out=rows[:, 1 + bpp :])  # mod 256, as the filter defines
    ihdr = struct.pack(">IIBBBBB", w, h, bits, _PNG_COLOUR_TYPE[c], 0, 0, 0)
    out = io.BytesIO()
    out.write(_PNG_SIGNATURE)
    for tag, payload in ((b"IHDR", ihdr), (b"IDAT", _deflate(rows.reshape(-1))), (b"IEND", b"")):
        out.write(struct.pack(">I", len(payload)) + tag + payload)
        out.write(struct.pack(">I", zlib.crc32(tag + payload) & 0xFFFFFFFF))
    return out.getvalue()


def _deflate(data: np.ndarray) -> bytes:
    """One zlib stream of ``data`` (bytes as a flat uint8 array), deflated in pieces on parallel threads."""
    n = max(1, min(PNG_PIECES, len(usable_cpus()), data.size // (1 << 20)))  # pieces of 1 MB at least

    def piece(i: int) -> bytes:
        part = data[i * data.size // n : (i + 1) * data.size // n]
        z = zlib.compressobj(PNG_ZLIB_LEVEL, zlib.DEFLATED, -15, 9, PNG_ZLIB_STRATEGY)  # raw deflate
        # a full flush ends the piece on a byte boundary with no back-references across it: pieces concatenate
        return z.compress(part) + z.flush(zlib.Z_FINISH if i == n - 1 else zlib.Z_FULL_FLUSH)

    if n == 1:
        parts = [piece(0)]
    else:
        with ThreadPoolExecutor(n) as pool:
            parts = list(pool.map(piece, range(n)))
    # the zlib header (deflate, 32 KB window, fastest level) and the Adler-32 of all the data
    return b"\x78\x01" + b"".join(parts) + struct.pack(">I", zlib.adler32(data) & 0xFFFFFFFF)
