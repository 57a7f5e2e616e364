"""Image files for the CLI: reading pixels plus ICC profile and EXIF, writing PNG/JPEG/WebP/TIFF at 8 or 16 bits.

Pixels are read by :func:`src.data.image_io.read_image` (16-bit exact, EXIF orientation applied); this module
adds the metadata and the writers. Since the pixels come out upright, the written EXIF has its orientation
reset to 1, or viewers would rotate the image a second time.
"""

from __future__ import annotations

import io
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from src.data.image_io import IMAGE_EXTENSIONS, encode_png, read_image
from src.utils.atomic import atomic_output
from src.utils.errors import DataError

__all__ = ["IMAGE_EXTENSIONS", "ImageFile", "read_image_file", "write_image_file", "supports_16bit", "FORMAT_BY_SUFFIX"]

FORMAT_BY_SUFFIX = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP", ".tif": "TIFF", ".tiff": "TIFF"}
_EXIF_ORIENTATION = 0x0112


@dataclass
class ImageFile:
    """A decoded image: ``pixels`` ``(H, W, C)`` float32 in [0, 1], C in 1, 3, 4; its bit depth (8 or 16);
    the ICC profile and EXIF bytes (orientation reset to 1), None when absent; ``frames``: the frames or
    pages the file holds (animated PNG/WebP, multi-page TIFF), of which ``pixels`` is the first."""

    pixels: np.ndarray
    bit_depth: int
    icc_profile: bytes | None = None
    exif: bytes | None = None
    frames: int = 1


def supports_16bit(path: Path) -> bool:
    return path.suffix.lower() in (".png", ".tif", ".tiff")


def read_image_file(path: Path) -> ImageFile:
    """Read pixels and metadata. Raises :class:`DataError` for a missing, corrupt or unsupported file."""
    if path.suffix.lower() not in IMAGE_EXTENSIONS:
        raise DataError(
            f"cannot read '{path}': unsupported format '{path.suffix}' (images: {', '.join(IMAGE_EXTENSIONS)})"
        )
    pixels, depth = read_image(path)
    icc, exif, frames = _read_metadata(path)
    space = icc[16:20] if icc is not None and icc[36:40] == b"acsp" else None  # an ICC header's colour space
    if space is not None and space != (b"GRAY" if pixels.shape[2] == 1 else b"RGB "):
        # a CMYK (or other) profile describes the file's samples, not the RGB they were converted to
        icc = None
    return ImageFile(pixels, depth, icc, exif, frames)


def write_image_file(path: Path, q: np.ndarray, icc_profile: bytes | None = None, exif: bytes | None = None) -> None:
    """Write integer pixels ``q`` ``(H, W, C)`` (uint8 or uint16; C in 1, 3, 4) atomically in the format of
    ``path``'s extension. 16 bits: PNG and TIFF only. JPEG cannot hold alpha."""
    suffix = path.suffix.lower()
    fmt = FORMAT_BY_SUFFIX.get(suffix)
    if fmt is None:
        raise DataError(
            f"cannot write '{path}': unsupported output format '{path.suffix}' (use {', '.join(FORMAT_BY_SUFFIX)})"
        )
    deep = q.dtype == np.uint16
    if deep and fmt in ("JPEG", "WEBP"):
        raise DataError(
            f"cannot write '{path}': {fmt} stores 8 bits only; use .png or .tif for 16-bit output or pass --bit-depth 8"
        )
    if fmt == "JPEG" and q.shape[2] == 4:
        raise DataError(f"cannot write '{path}': JPEG has no alpha channel; use .png, .webp or .tif")
    with atomic_output(path) as tmp:
        if fmt == "TIFF":
            _write_tiff(tmp, q, icc_profile)
        elif fmt == "PNG":
            tmp.write_bytes(_png_with_metadata(q, icc_profile, exif))
        else:
            _write_pillow(tmp, q, fmt, icc_profile, exif)


# --------------------------------------------------------------------------------------------------- metadata
def _read_metadata(path: Path) -> tuple[bytes | None, bytes | None, int]:
    """ICC profile, EXIF (orientation reset) and the number of frames from the file header; (None, None, 1)
    when unreadable."""
    icc = exif_bytes = None
    frames = 1
    try:
        with Image.open(path) as im:
            icc = im.info.get("icc_profile") or None
            frames = int(getattr(im, "n_frames", 1) or 1)
            if im.format == "PNG":  # getexif() on a PNG would decode the pixels when eXIf is after IDAT
                raw = im.info.get("exif")
                exif = Image.Exif()
                if raw:
                    exif.load(raw)
            else:
                exif = im.getexif()
            if len(exif):
                if _EXIF_ORIENTATION in exif:
                    exif[_EXIF_ORIENTATION] = 1
                exif_bytes = exif.tobytes()
    except Exception:  # noqa: BLE001 - the pixels decoded; metadata is best effort
        pass
    if icc is None and path.suffix.lower() in (".tif", ".tiff"):
        icc = _tiff_icc(path)
    return icc, exif_bytes, frames


def _tiff_icc(path: Path) -> bytes | None:
    """ICC profile of a TIFF Pillow cannot open (16-bit RGB), from tag 34675."""
    try:
        import tifffile

        with tifffile.TiffFile(path) as tf:
            tag = tf.pages[0].tags.get(34675)
            return bytes(tag.value) if tag is not None else None
    except Exception:  # noqa: BLE001
        return None


# --------------------------------------------------------------------------------------------------- writers
_JPEG_EXIF_MAX = 65533 - 6  # the APP1 segment's length field, less its "Exif\0\0" header


def _write_pillow(tmp: Path, q: np.ndarray, fmt: str, icc: bytes | None, exif: bytes | None) -> None:
    im = Image.fromarray(q[:, :, 0] if q.shape[2] == 1 else q)
    kwargs: dict = {}
    if icc:
        kwargs["icc_profile"] = icc
    if exif and not (fmt == "JPEG" and len(exif) > _JPEG_EXIF_MAX):
        kwargs["exif"] = exif  # a JPEG's APP1 segment holds 64 kB: larger EXIF is dropped, not the image
    if fmt == "JPEG":
        # 4:4:4 and high quality: chroma subsampling and coarse quantisation would smear the smooth result
        kwargs.update(quality=95, subsampling=0)
    elif fmt == "WEBP":
        # lossy WebP bands smooth gradients itself; lossless keeps what we restored (exact: keep RGB under alpha)
        kwargs.update(lossless=True, quality=100, exact=True)
    im.save(tmp, format=fmt, **kwargs)


def _write_tiff(tmp: Path, q: np.ndarray, icc: bytes | None) -> None:
    import tifffile

    c = q.shape[2]
    data = q[:, :, 0] if c == 1 else q
    tifffile.imwrite(
        tmp,
        data,
        photometric="minisblack" if c == 1 else "rgb",
        extrasamples=("unassalpha",) if c == 4 else None,
        compression="zlib",
        predictor=True,
        iccprofile=icc,
    )


def _png_chunk(tag: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + tag + payload + struct.pack(">I", zlib.crc32(tag + payload) & 0xFFFFFFFF)


def _png_with_metadata(q: np.ndarray, icc: bytes | None, exif: bytes | None) -> bytes:
    """:func:`~src.data.image_io.encode_png` (8 or 16 bits; Pillow cannot write 16-bit RGB, and deflates on
    one thread) with iCCP and eXIf chunks spliced in after IHDR."""
    png = encode_png(q)
    ihdr_end = 8 + 4 + 4 + 13 + 4  # signature + IHDR chunk (length, type, 13 data bytes, CRC)
    extra = io.BytesIO()
    if icc:
        extra.write(_png_chunk(b"iCCP", b"ICC Profile\x00\x00" + zlib.compress(icc)))
    if exif:
        raw = exif[6:] if exif.startswith(b"Exif\x00\x00") else exif  # the eXIf chunk holds bare TIFF data
        extra.write(_png_chunk(b"eXIf", raw))
    return png[:ihdr_end] + extra.getvalue() + png[ihdr_end:]
