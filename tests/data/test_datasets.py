"""Datasets: item format, randomness/seeding, fixed validation items, paired crops, speed."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from src.data.datasets import FixedBandingDataset, PairedDataset, SyntheticBandingDataset
from src.data.image_io import write_image
from src.data.sources import Source, smooth_images


@pytest.fixture(scope="module")
def sources() -> list[Source]:
    rng = np.random.default_rng(0)
    photos = [Source(f"p{i}", rng.integers(0, 256, (300, 280, 3), dtype=np.uint8)) for i in range(2)]
    return photos + smooth_images(4, seed=0)


def _check(item, p):
    assert set(item) == {"banded", "clean"}
    for v in item.values():
        assert v.shape == (3, p, p) and v.dtype == torch.float32 and v.is_contiguous()
        assert float(v.min()) >= 0.0 and float(v.max()) <= 1.0


def test_synthetic_item_format_and_banding(sources):
    ds = SyntheticBandingDataset(sources, 48, 10, {"bit_depth": {"p": 1.0, "bits": 4}})
    assert len(ds) == 10
    torch.manual_seed(0)
    item = ds[3]
    _check(item, 48)
    for c in range(3):
        assert len(torch.unique(item["banded"][c])) <= 16
    with pytest.raises(IndexError):
        ds[10]


def test_synthetic_seeded_by_torch_global_rng(sources):
    ds = SyntheticBandingDataset(sources, 32, 100)
    torch.manual_seed(7)
    a = [ds[0] for _ in range(5)]
    torch.manual_seed(7)
    b = [ds[0] for _ in range(5)]
    for x, y in zip(a, b):
        assert torch.equal(x["clean"], y["clean"]) and torch.equal(x["banded"], y["banded"])
    # the global RNG advances, so repeated calls give different crops
    assert len({tuple(x["clean"].flatten()[:64].tolist()) for x in a}) == 5


def test_synthetic_smooth_fraction(sources):
    ds = SyntheticBandingDataset(sources, 32, 100, smooth_fraction=0.5)
    rng = np.random.default_rng(0)
    picks = np.searchsorted(ds._cum, rng.random(4000), side="right")
    frac = np.mean([ds.sources[i].smooth for i in picks])
    assert 0.45 < frac < 0.55


def test_small_sources_do_not_crash():
    tiny = [Source("t", np.random.default_rng(0).integers(0, 256, (10, 7, 3), dtype=np.uint8))]
    torch.manual_seed(0)
    _check(SyntheticBandingDataset(tiny, 64, 2)[0], 64)
    _check(FixedBandingDataset(tiny, 256, 2)[1], 256)


def test_fixed_dataset_deterministic(sources):
    a = FixedBandingDataset(sources, 256, 8, seed=3)
    b = FixedBandingDataset(sources, 256, 8, seed=3)
    for i in range(8):
        _check(a[i], 256)
        assert torch.equal(a[i]["banded"], b[i]["banded"]) and torch.equal(a[i]["clean"], b[i]["clean"])
        assert torch.equal(a[i]["banded"], a[i]["banded"])  # same on every access (epoch)
    assert sum(a.sources[si].smooth for si, *_ in a.items) == 4  # half the slots are smooth
    assert len({si for si, *_ in a.items}) == len(sources)  # every held-out image is used
    c = FixedBandingDataset(sources, 256, 8, seed=4)
    assert any(not torch.equal(a[i]["clean"], c[i]["clean"]) for i in range(8))


def _pairs(tmp_path, n=3, size=(80, 90)):
    rng = np.random.default_rng(0)
    pairs = []
    for i in range(n):
        clean = rng.random(size + (3,)).astype(np.float32)
        banded = np.round(clean * 15) / 15
        write_image(tmp_path / f"c{i}.png", clean, 16)
        write_image(tmp_path / f"b{i}.png", banded, 8)
        pairs.append((f"k{i}", tmp_path / f"b{i}.png", tmp_path / f"c{i}.png"))
    return pairs


def test_paired_train_aligned_crops(tmp_path):
    ds = PairedDataset(_pairs(tmp_path), 32, train=True, samples_per_epoch=12)
    assert len(ds) == 12
    torch.manual_seed(0)
    for i in range(12):
        item = ds[i]
        _check(item, 32)
        # banded = round(clean * 15) / 15 pixel-wise, so alignment (incl. flips) is exact
        expected = torch.round(item["clean"] * 15) / 15
        assert (item["banded"] - expected).abs().max() < 1 / 255 + 1e-4


def test_paired_val_center_and_full(tmp_path):
    pairs = _pairs(tmp_path, 2)
    ds = PairedDataset(pairs, 64, train=False)
    assert len(ds) == 2
    _check(ds[0], 64)
    assert torch.equal(ds[0]["clean"], ds[0]["clean"])
    full = PairedDataset(pairs, None, train=False)[1]
    assert full["clean"].shape == (3, 80, 90)
    padded = PairedDataset(pairs, 128, train=False)[0]  # smaller than the patch: symmetric padding
    _check(padded, 128)


def test_paired_size_mismatch(tmp_path):
    from src.utils.errors import DataError

    write_image(tmp_path / "b.png", np.zeros((10, 12, 3)), 8)
    write_image(tmp_path / "c.png", np.zeros((12, 10, 3)), 8)
    with pytest.raises(DataError, match="size mismatch"):
        PairedDataset([("k", tmp_path / "b.png", tmp_path / "c.png")], 8)


def test_getitem_speed(sources):
    """64x64 training items must be cheap: training runs on 2 CPU cores."""
    ds = SyntheticBandingDataset(sources, 64, 1000)  # default degradation recipe
    torch.manual_seed(0)
    for i in range(20):
        ds[i]
    n = 300
    t = time.perf_counter()
    for i in range(n):
        ds[i]
    per_item = (time.perf_counter() - t) / n
    assert per_item < 0.005, f"{per_item * 1e3:.2f} ms per item"


def test_getitem_restores_torch_threads(sources):
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        torch.manual_seed(0)
        SyntheticBandingDataset(sources, 32, 2)[0]
        FixedBandingDataset(sources, 256, 1)[0]
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
