"""Clean sources: embedded photos, smooth generators, folder scan, split, downscale."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch
from PIL import Image

from src.data.degradations import quantize
from src.data.sources import (
    SKIMAGE_PHOTOS,
    Source,
    downscale,
    embedded_default,
    ensure_min_size,
    folder_images,
    list_images,
    skimage_photos,
    smooth_images,
    split_by_photo,
)
from src.utils.errors import ConfigError, DataError


def _save(path, seed=0, size=(40, 50)):
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = np.random.default_rng(seed).integers(0, 256, size + (3,), dtype=np.uint8)
    Image.fromarray(arr).save(path)


def test_skimage_photos_load_offline():
    photos = skimage_photos()
    assert len(photos) == len(SKIMAGE_PHOTOS)
    for s in photos:
        assert s.pixels.ndim == 3 and s.pixels.shape[2] == 3 and s.pixels.dtype == np.uint8
        assert not s.smooth and s.name.startswith("skimage/")


@pytest.mark.parametrize("name", ["camera", "rocket", "clock"])
def test_skimage_files_match_skimage_data(name):
    import skimage.data

    from src.data.sources import _load_skimage_photo, _skimage_data_dir

    ref = np.asarray(getattr(skimage.data, name)())
    ref = ref if ref.ndim == 3 else np.repeat(ref[:, :, None], 3, axis=2)
    np.testing.assert_array_equal(_load_skimage_photo(name, _skimage_data_dir()), ref)
    np.testing.assert_array_equal(_load_skimage_photo(name, None), ref)  # fallback path


def test_skimage_missing_photo_warns():
    with pytest.warns(UserWarning, match="no_such_photo"):
        assert skimage_photos(["no_such_photo"]) == []


def test_smooth_images_deterministic_and_smooth():
    a, b = smooth_images(12, seed=5), smooth_images(12, seed=5)
    assert all(np.array_equal(x.pixels, y.pixels) for x, y in zip(a, b))
    c = smooth_images(12, seed=6)
    assert not all(np.array_equal(x.pixels, y.pixels) for x, y in zip(a, c))
    for s in a:
        assert s.smooth and s.pixels.dtype == np.uint16 and min(s.height, s.width) >= 256
        f = s.to_float()
        # smooth: the median neighbour step is tiny, far below a 6-bit level (1/63)
        assert np.median(np.abs(np.diff(f, axis=1))) < 1 / 63 / 4
        # and 5-bit quantization turns it into few, wide bands (sky_structures also hold textured rooftops)
        q = quantize(torch.from_numpy(f), 5).numpy()
        limit = 0.5 if "sky_structures" in s.name else 0.1
        assert np.mean(np.any(np.diff(q, axis=1) != 0, axis=2)) < limit


def test_embedded_default_fast_and_mixed():
    t = time.perf_counter()
    srcs = embedded_default(seed=0, synthetic=48)
    assert time.perf_counter() - t < 3.0
    n_smooth = sum(s.smooth for s in srcs)
    assert n_smooth == 48 and len(srcs) - n_smooth == len(SKIMAGE_PHOTOS)
    assert len({s.name for s in srcs}) == len(srcs)


def test_list_images_recursive_case_insensitive_sorted(tmp_path):
    for rel in ["b/2.PNG", "a/1.jpg", "c.JpEg", "d.webp", "e.tif", "f.TIFF", ".hidden/x.png", "notes.txt"]:
        p = tmp_path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"x")
    found = [p.relative_to(tmp_path).as_posix() for p in list_images(tmp_path)]
    assert found == ["a/1.jpg", "b/2.PNG", "c.JpEg", "d.webp", "e.tif", "f.TIFF"]


def test_folder_empty_or_missing(tmp_path):
    with pytest.raises(DataError, match="no images found under"):
        folder_images(tmp_path)
    (tmp_path / "readme.txt").write_text("hi")
    with pytest.raises(DataError, match=r"looked for \.jpg"):
        folder_images(tmp_path)
    with pytest.raises(DataError, match="does not exist"):
        folder_images(tmp_path / "nope")


def test_folder_skips_unreadable_with_warning(tmp_path):
    _save(tmp_path / "good1.png", 1)
    _save(tmp_path / "sub" / "good2.jpg", 2)
    (tmp_path / "broken.png").write_text("definitely not a png")
    with pytest.warns(UserWarning, match="broken.png"):
        srcs = folder_images(tmp_path)
    assert [s.name for s in srcs] == ["good1.png", "sub/good2.jpg"]
    assert srcs[0].pixels.shape == (40, 50, 3)


def test_folder_all_unreadable(tmp_path):
    (tmp_path / "a.png").write_text("x")
    (tmp_path / "b.jpg").write_text("y")
    with pytest.warns(UserWarning), pytest.raises(DataError, match="could be read"):
        folder_images(tmp_path)


def test_folder_16bit_source_kept_as_uint16(tmp_path):
    from src.data.image_io import write_image

    write_image(tmp_path / "deep.png", np.random.default_rng(0).random((20, 30, 3)), 16)
    (src,) = folder_images(tmp_path)
    assert src.pixels.dtype == np.uint16


def _fake(name, smooth=False):
    return Source(name=name, pixels=np.zeros((8, 8, 3), np.uint8), smooth=smooth)


def test_split_by_photo_no_overlap_deterministic():
    srcs = [_fake(f"p{i}") for i in range(10)] + [_fake(f"s{i}", smooth=True) for i in range(20)]
    train, val = split_by_photo(srcs, 0.2)
    assert {s.name for s in train}.isdisjoint({s.name for s in val})
    assert len(train) + len(val) == 30
    assert sum(not s.smooth for s in val) == 2 and sum(s.smooth for s in val) == 4
    train2, val2 = split_by_photo(list(reversed(srcs)), 0.2)
    assert {s.name for s in val2} == {s.name for s in val}


def test_split_small_counts():
    assert [len(x) for x in split_by_photo([_fake("a"), _fake("b")], 0.1)] == [1, 1]
    assert [len(x) for x in split_by_photo([_fake("a")], 0.5)] == [1, 0]
    assert [len(x) for x in split_by_photo([_fake("a"), _fake("b")], 0.0)] == [2, 0]
    assert [len(x) for x in split_by_photo([_fake(str(i)) for i in range(3)], 0.99)] == [1, 2]
    with pytest.raises(ConfigError):
        split_by_photo([_fake("a")], 1.0)


def test_downscale_and_min_size():
    rng = np.random.default_rng(0)
    src = Source("x", rng.integers(0, 256, (100, 60, 3), dtype=np.uint8))
    small = downscale(src, 2.0)
    assert small.pixels.shape == (50, 30, 3) and small.pixels.dtype == np.uint16
    # antialiasing averages noise away
    assert small.to_float().std() < src.to_float().std() * 0.7
    assert downscale(src, 1.0) is src
    with pytest.raises(ConfigError):
        downscale(src, 0.5)
    big = ensure_min_size(src, 128)
    assert min(big.height, big.width) >= 128 and big.pixels.dtype == np.uint8
    assert ensure_min_size(src, 32) is src


def test_sky_structures_put_sharp_thin_edges_on_a_smooth_background():
    structured = [s for s in smooth_images(16, seed=3) if "sky_structures" in s.name]
    assert len(structured) == 4
    for s in structured:
        step = np.abs(np.diff(s.to_float(), axis=1)).max(axis=2)
        assert np.median(step) < 1 / 63 / 4  # mostly smooth sky
        assert np.mean(step > 0.1) > 0.002  # with hard edges (wires, masts, branches, rooftops)
