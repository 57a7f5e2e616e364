"""read_image / to_rgb / write_image: bit depths, channel layouts, EXIF, errors."""

from __future__ import annotations

import os
import struct
import zlib

import numpy as np
import pytest
from PIL import Image, ImageOps

from src.data.image_io import PNG_PIECES, apply_exif_orientation, encode_png, read_image, to_rgb, write_image
from src.utils.errors import ConfigError, DataError


def _png16_reference(path, u16: np.ndarray) -> None:
    """Independent minimal 16-bit PNG writer (filter 0) so the reader is not tested against itself."""
    h, w = u16.shape[:2]
    c = 1 if u16.ndim == 2 else u16.shape[2]
    colour_type = {1: 0, 2: 4, 3: 2, 4: 6}[c]
    raw = u16.astype(">u2").reshape(h, -1).view(np.uint8)
    data = np.concatenate([np.zeros((h, 1), np.uint8), raw], axis=1).tobytes()

    def chunk(tag: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + tag + payload + struct.pack(">I", zlib.crc32(tag + payload))

    ihdr = struct.pack(">IIBBBBB", w, h, 16, colour_type, 0, 0, 0)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(data)) + chunk(b"IEND", b""))


def _u16(shape, seed=0):
    return np.random.default_rng(seed).integers(0, 65536, shape).astype(np.uint16)


def test_16bit_rgb_png_keeps_full_precision(tmp_path):
    u = _u16((17, 23, 3))
    _png16_reference(tmp_path / "a.png", u)
    arr, depth = read_image(tmp_path / "a.png")
    assert depth == 16 and arr.dtype == np.float32 and arr.shape == (17, 23, 3)
    np.testing.assert_array_equal(np.round(arr * 65535).astype(np.uint16), u)
    # Pillow alone would have truncated: prove the low byte survived.
    assert np.any(np.round(arr * 65535).astype(np.uint16) & 0xFF)


@pytest.mark.parametrize("channels", [1, 2, 4])
def test_16bit_gray_graya_rgba_png(tmp_path, channels):
    u = _u16((9, 11) if channels == 1 else (9, 11, channels), seed=channels)
    _png16_reference(tmp_path / "a.png", u)
    arr, depth = read_image(tmp_path / "a.png")
    assert depth == 16
    got = np.round(arr * 65535).astype(np.uint16)
    if channels == 1:
        np.testing.assert_array_equal(got[:, :, 0], u)
    elif channels == 2:  # gray+alpha -> RGBA with gray replicated
        assert got.shape == (9, 11, 4)
        for ch in range(3):
            np.testing.assert_array_equal(got[:, :, ch], u[:, :, 0])
        np.testing.assert_array_equal(got[:, :, 3], u[:, :, 1])
    else:
        np.testing.assert_array_equal(got, u)


def test_8bit_rgb_gray_rgba_palette(tmp_path):
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, (12, 10, 3), dtype=np.uint8)
    Image.fromarray(rgb, "RGB").save(tmp_path / "rgb.png")
    Image.fromarray(rgb[:, :, 0], "L").save(tmp_path / "gray.png")
    rgba = np.concatenate([rgb, rng.integers(0, 256, (12, 10, 1), dtype=np.uint8)], axis=2)
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
    Image.fromarray(rgb, "RGB").convert("P", palette=Image.Palette.ADAPTIVE, colors=8).save(tmp_path / "pal.png")
    Image.fromarray(rgba[:, :, [0, 3]], "LA").save(tmp_path / "la.png")

    a, d = read_image(tmp_path / "rgb.png")
    assert d == 8 and a.shape == (12, 10, 3)
    np.testing.assert_array_equal(np.round(a * 255).astype(np.uint8), rgb)
    g, _ = read_image(tmp_path / "gray.png")
    assert g.shape == (12, 10, 1)
    np.testing.assert_array_equal(np.round(g[:, :, 0] * 255).astype(np.uint8), rgb[:, :, 0])
    r, _ = read_image(tmp_path / "rgba.png")
    assert r.shape == (12, 10, 4)
    np.testing.assert_array_equal(np.round(r * 255).astype(np.uint8), rgba)
    p, d = read_image(tmp_path / "pal.png")
    assert p.shape == (12, 10, 3) and d == 8 and len(np.unique(p.reshape(-1, 3), axis=0)) <= 8
    la, _ = read_image(tmp_path / "la.png")
    assert la.shape == (12, 10, 4)
    for x in (a, g, r, p, la):
        assert x.dtype == np.float32 and 0.0 <= x.min() and x.max() <= 1.0


def test_jpeg_webp_tiff(tmp_path):
    import tifffile

    rgb = np.random.default_rng(2).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "a.jpg", quality=95)
    Image.fromarray(rgb).save(tmp_path / "a.webp", lossless=True)
    u = _u16((8, 9, 3))
    tifffile.imwrite(tmp_path / "a16.tif", u)
    assert read_image(tmp_path / "a.jpg")[0].shape == (16, 16, 3)
    w, _ = read_image(tmp_path / "a.webp")
    np.testing.assert_array_equal(np.round(w * 255).astype(np.uint8), rgb)
    t, d = read_image(tmp_path / "a16.tif")
    assert d == 16
    np.testing.assert_array_equal(np.round(t * 65535).astype(np.uint16), u)


def test_jpeg_exif_orientation_applied(tmp_path):
    img = np.zeros((20, 40, 3), np.uint8)
    img[:, :20] = 255  # left half white
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    Image.fromarray(img).save(tmp_path / "o.jpg", exif=exif, quality=95)
    arr, _ = read_image(tmp_path / "o.jpg")
    assert arr.shape == (40, 20, 3)
    assert arr[:10].mean() > 0.9 and arr[-10:].mean() < 0.1  # white half is now on top


@pytest.mark.parametrize("orientation", range(1, 9))
def test_apply_exif_orientation_matches_pillow(orientation):
    a = np.arange(3 * 5 * 3, dtype=np.uint8).reshape(3, 5, 3)
    im = Image.fromarray(a)
    exif = im.getexif()
    exif[0x0112] = orientation
    im.info["exif"] = exif.tobytes()
    expected = np.asarray(ImageOps.exif_transpose(im))
    np.testing.assert_array_equal(apply_exif_orientation(a, orientation), expected)


def test_errors_are_dataerror(tmp_path):
    (tmp_path / "text.png").write_text("not an image")
    with pytest.raises(DataError, match="cannot read image .*text.png"):
        read_image(tmp_path / "text.png")
    with pytest.raises(DataError, match="file not found"):
        read_image(tmp_path / "missing.png")
    with pytest.raises(DataError, match="directory"):
        read_image(tmp_path)
    good = tmp_path / "good.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(good)
    (tmp_path / "trunc.png").write_bytes(good.read_bytes()[:200])
    with pytest.raises(DataError, match="trunc.png"):
        read_image(tmp_path / "trunc.png")
    _png16_reference(tmp_path / "deep.png", _u16((32, 32, 3)))
    (tmp_path / "trunc16.png").write_bytes((tmp_path / "deep.png").read_bytes()[:100])
    with pytest.raises(DataError, match="trunc16.png"):
        read_image(tmp_path / "trunc16.png")


def test_to_rgb():
    g = np.random.default_rng(0).random((4, 5, 1)).astype(np.float32)
    assert to_rgb(g).shape == (4, 5, 3) and np.all(to_rgb(g)[:, :, 2] == g[:, :, 0])
    assert to_rgb(g[:, :, 0]).shape == (4, 5, 3)
    rgba = np.random.default_rng(1).random((4, 5, 4)).astype(np.float32)
    np.testing.assert_array_equal(to_rgb(rgba), rgba[:, :, :3])


@pytest.mark.parametrize("channels", [1, 3, 4])
@pytest.mark.parametrize("bits", [8, 16])
def test_write_read_roundtrip(tmp_path, channels, bits):
    a = np.random.default_rng(channels).random((13, 21, channels)).astype(np.float32)
    out = write_image(tmp_path / "sub" / "x.png", a, bits)
    back, depth = read_image(out)
    assert depth == bits and back.shape == a.shape
    assert np.abs(back - a).max() <= 0.5 / (2**bits - 1) + 1e-6
    assert [p.name for p in out.parent.iterdir()] == ["x.png"]  # no temp file left behind


def test_write_16bit_rgb_readable_by_independent_decoder(tmp_path):
    av = pytest.importorskip("av")
    u = _u16((10, 12, 3))
    write_image(tmp_path / "x.png", u, 16)
    with av.open(str(tmp_path / "x.png")) as c:
        frame = next(c.decode(video=0))
        np.testing.assert_array_equal(frame.to_ndarray(format="rgb48le"), u)


@pytest.mark.parametrize("bits", [8, 16])
def test_png_deflated_in_pieces_is_one_standard_stream(tmp_path, monkeypatch, bits):
    """A frame large enough to be deflated on several threads still decodes, bit for bit, with PyAV's
    (ffmpeg's) PNG decoder and with plain zlib."""
    av = pytest.importorskip("av")
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(8)), raising=False)
    dtype, top = (np.uint8, 255) if bits == 8 else (np.uint16, 65535)
    ramp = np.linspace(0, top, 1100)[None, :, None] * np.linspace(0.2, 1, 1024)[:, None, None]
    q = np.round(ramp * np.array([1.0, 0.7, 0.4])).astype(dtype)  # 1024 x 1100 RGB: 3.4 / 6.8 MB of rows
    q[::7, ::5] = top // 3  # and some detail
    png = encode_png(q)
    idat = png[8 + 25 + 8 : -12 - 4]  # the single IDAT chunk's payload
    assert PNG_PIECES > 1 and idat.count(b"\x00\x00\xff\xff") >= 2  # the full flushes between pieces
    rows = zlib.decompress(idat)
    assert len(rows) == q.shape[0] * (1 + q.nbytes // q.shape[0])
    (tmp_path / "x.png").write_bytes(png)
    with av.open(str(tmp_path / "x.png")) as c:
        frame = next(c.decode(video=0))
        got = frame.to_ndarray(format="rgb24" if bits == 8 else "rgb48le")
    np.testing.assert_array_equal(got, q)


def test_write_is_atomic_on_failure(tmp_path, monkeypatch):
    target = tmp_path / "x.png"
    write_image(target, np.zeros((4, 4, 3), np.float32), 8)
    before = target.read_bytes()

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        write_image(target, np.ones((4, 4, 3), np.float32), 8)
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.png"]


def test_write_rejects_bad_args(tmp_path):
    with pytest.raises(ConfigError):
        write_image(tmp_path / "x.png", np.zeros((4, 4, 3)), 12)
    with pytest.raises(ConfigError):
        write_image(tmp_path / "x.jpg", np.zeros((4, 4, 3)), 8)
    with pytest.raises(DataError):
        write_image(tmp_path / "x.png", np.zeros((4, 4, 2)), 8)


def _ramp_rgb() -> np.ndarray:
    g = np.tile(np.linspace(0, 255, 40).astype(np.uint8), (30, 1))
    return np.stack([g, g // 2, 255 - g], 2)


def test_tiff_photometric_and_layouts(tmp_path):
    """TIFFs whose samples are not plain RGB/gray (CMYK, palette, white-is-zero), LZW without imagecodecs,
    and small planar or gray+alpha ones all decode to the same RGB (or gray) values Pillow shows."""
    tifffile = pytest.importorskip("tifffile")
    rgb = _ramp_rgb()
    g = rgb[:, :, 0]
    Image.fromarray(rgb).convert("CMYK").save(tmp_path / "cmyk.tif")
    Image.fromarray(rgb).save(tmp_path / "lzw.tif", compression="tiff_lzw")
    for name in ("cmyk", "lzw"):
        arr, depth = read_image(tmp_path / f"{name}.tif")
        assert arr.shape == (30, 40, 3) and depth == 8
        np.testing.assert_allclose(arr * 255, rgb, atol=1.5)
    pal = Image.fromarray(rgb).quantize(16)
    pal.save(tmp_path / "pal.tif")
    arr, _ = read_image(tmp_path / "pal.tif")
    np.testing.assert_allclose(arr * 255, np.asarray(pal.convert("RGB")), atol=0.5)
    tifffile.imwrite(tmp_path / "white.tif", 255 - g, photometric="miniswhite")
    arr, _ = read_image(tmp_path / "white.tif")
    np.testing.assert_allclose(arr[:, :, 0] * 255, g, atol=0.5)
    alpha = np.full((3, 40), 200, np.uint8)
    ga = np.stack([g[:3], alpha], 2)
    tifffile.imwrite(tmp_path / "ga.tif", ga, photometric="minisblack", extrasamples=["unassalpha"])
    arr, _ = read_image(tmp_path / "ga.tif")
    assert arr.shape == (3, 40, 4)
    np.testing.assert_allclose(arr[:, :, 3] * 255, alpha, atol=0.5)
    planar = np.ascontiguousarray(rgb[:, :4].transpose(2, 0, 1))
    tifffile.imwrite(tmp_path / "planar.tif", planar, photometric="rgb", planarconfig="separate")
    arr, _ = read_image(tmp_path / "planar.tif")
    assert arr.shape == (30, 4, 3)
    np.testing.assert_allclose(arr * 255, rgb[:, :4], atol=0.5)
