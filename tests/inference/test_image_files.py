"""Image files: formats and depths written exactly, ICC profile and EXIF kept, atomic writes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from src.data.image_io import read_image
from src.inference.image_files import read_image_file, write_image_file
from src.utils.errors import DataError

ICC = b"\x00\x00\x02\x0cfake-icc-profile" + bytes(range(200))


def _exif(orientation: int = 1) -> bytes:
    e = Image.Exif()
    e[0x0112] = orientation
    e[0x010F] = "TestCam"  # Make
    return e.tobytes()


@pytest.mark.parametrize(
    "name,dtype,channels",
    [
        ("a.png", np.uint8, 3),
        ("a.png", np.uint16, 3),
        ("a.png", np.uint16, 4),
        ("a.png", np.uint16, 1),
        ("a.tif", np.uint16, 3),
        ("a.tif", np.uint8, 4),
        ("a.tif", np.uint16, 1),
        ("a.webp", np.uint8, 4),
        ("a.png", np.uint8, 1),
    ],
)
def test_lossless_formats_round_trip(tmp_path: Path, name: str, dtype: type, channels: int) -> None:
    top = np.iinfo(dtype).max
    q = np.random.default_rng(0).integers(0, top + 1, (9, 13, channels), dtype=np.int64).astype(dtype)
    if name.endswith(".webp") and channels == 4:
        q[:, :, 3] = np.maximum(q[:, :, 3], 1)  # WebP may drop RGB under alpha 0 even with exact
    p = tmp_path / name
    write_image_file(p, q, ICC, _exif())
    arr, depth = read_image(p)
    assert depth == (16 if dtype == np.uint16 else 8)
    assert np.array_equal(np.round(arr * top).astype(dtype), q)
    img = read_image_file(p)
    assert img.icc_profile == ICC
    assert list(tmp_path.iterdir()) == [p]  # no temporary file left


@pytest.mark.parametrize("name", ["a.png", "a.jpg", "a.webp"])
def test_exif_kept_with_orientation_reset(tmp_path: Path, name: str) -> None:
    src = tmp_path / f"src_{name}"
    Image.fromarray(np.zeros((4, 6, 3), np.uint8)).save(src, exif=_exif(6), icc_profile=ICC)
    img = read_image_file(src)
    assert img.pixels.shape[:2] == (6, 4)  # rotated upright on read
    out = tmp_path / f"out_{name}"
    write_image_file(out, np.zeros((6, 4, 3), np.uint8), img.icc_profile, img.exif)
    with Image.open(out) as im:
        exif = im.getexif()
        assert exif[0x010F] == "TestCam" and exif.get(0x0112, 1) == 1
        assert im.info.get("icc_profile") == ICC


def test_16bit_png_keeps_exif(tmp_path: Path) -> None:
    p = tmp_path / "deep.png"
    write_image_file(p, np.full((3, 3, 3), 1234, np.uint16), ICC, _exif())
    with Image.open(p) as im:
        assert im.info.get("icc_profile") == ICC
        assert im.getexif()[0x010F] == "TestCam"
    assert read_image_file(p).exif is not None


def test_refusals(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="8 bits"):
        write_image_file(tmp_path / "a.jpg", np.zeros((2, 2, 3), np.uint16))
    with pytest.raises(DataError, match="alpha"):
        write_image_file(tmp_path / "a.jpg", np.zeros((2, 2, 4), np.uint8))
    with pytest.raises(DataError, match="unsupported"):
        write_image_file(tmp_path / "a.bmp", np.zeros((2, 2, 3), np.uint8))
    with pytest.raises(DataError, match="unsupported"):
        read_image_file(tmp_path / "a.gif")
    assert list(tmp_path.iterdir()) == []


def test_foreign_icc_dropped_frames_counted_big_exif_dropped_for_jpeg(tmp_path: Path) -> None:
    """A CMYK profile does not travel with the RGB pixels converted from CMYK; animated files report their
    frames; EXIF larger than a JPEG segment is left out of a JPEG output instead of failing it."""
    from PIL import ImageCms

    g = np.tile(np.linspace(0, 255, 40).astype(np.uint8), (30, 1))
    rgb = np.stack([g, g // 2, 255 - g], 2)
    prof = bytearray(ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())
    Image.fromarray(rgb).save(tmp_path / "srgb.png", icc_profile=bytes(prof))
    assert read_image_file(tmp_path / "srgb.png").icc_profile == bytes(prof)
    prof[16:20] = b"CMYK"
    Image.fromarray(rgb).convert("CMYK").save(tmp_path / "cmyk.jpg", icc_profile=bytes(prof))
    f = read_image_file(tmp_path / "cmyk.jpg")
    assert f.pixels.shape == (30, 40, 3) and f.icc_profile is None

    frames = [Image.fromarray(np.roll(rgb, 5 * i, 1)) for i in range(3)]
    frames[0].save(tmp_path / "anim.png", save_all=True, append_images=frames[1:])
    assert read_image_file(tmp_path / "anim.png").frames == 3
    assert read_image_file(tmp_path / "srgb.png").frames == 1

    exif = Image.Exif()
    exif[0x010E] = "x" * 70000
    Image.fromarray(rgb).save(tmp_path / "big.png", exif=exif.tobytes())
    f = read_image_file(tmp_path / "big.png")
    assert len(f.exif) > 65535
    write_image_file(tmp_path / "out.jpg", rgb, f.icc_profile, f.exif)
    with Image.open(tmp_path / "out.jpg") as im:
        assert im.size == (40, 30) and not im.getexif()
    write_image_file(tmp_path / "out.png", rgb, f.icc_profile, f.exif)
    with Image.open(tmp_path / "out.png") as im:
        assert im.getexif()[0x010E] == "x" * 70000
