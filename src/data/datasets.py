"""Datasets yielding ``{"banded": (3, P, P), "clean": (3, P, P)}`` float32 tensors in [0, 1].

- :class:`SyntheticBandingDataset` (train): random crops of clean sources, degraded on the fly.
- :class:`FixedBandingDataset` (val/test): the same deterministic crops and degradations every time.
- :class:`PairedDataset`: existing (banded, clean) image pairs.

Randomness in training: each ``__getitem__`` draws a seed from torch's global RNG and runs a numpy
Generator from it. PyTorch seeds every DataLoader worker differently each epoch from the main
process RNG (and with ``num_workers=0`` the global RNG simply advances), so samples differ across
workers and epochs yet are reproducible under ``lightning.seed_everything``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from src.data.degradations import Degradation, StreamConfig, stream_roundtrip
from src.data.image_io import read_image, to_rgb
from src.data.pairs import Pair
from src.data.sources import Source, _from_float, _resize, ensure_min_size
from src.utils.errors import ConfigError, DataError
from src.utils.threads import one_torch_thread
from src.utils.validate import check_int

__all__ = ["SyntheticBandingDataset", "FixedBandingDataset", "PairedDataset", "FullFrames", "Sample"]

#: What every dataset item looks like.
Sample = dict[str, torch.Tensor]


def _as_degradation(d: Degradation | Mapping[str, Any] | None) -> Degradation:
    return d if isinstance(d, Degradation) else Degradation.from_config(d)


def _torch_seed() -> int:
    """A fresh 63-bit seed from torch's global RNG (per-worker seeded by the DataLoader)."""
    return int(torch.randint(0, 2**63 - 1, (1,), dtype=torch.int64).item())


def _to_chw(patch: np.ndarray, scale: float) -> torch.Tensor:
    """``(P, P, 3)`` uint view (any strides) -> contiguous ``(3, P, P)`` float32 in [0, 1]."""
    out = np.ascontiguousarray(patch.transpose(2, 0, 1), dtype=np.float32)
    out *= np.float32(scale)
    return torch.from_numpy(out)


def _augment(patch: np.ndarray, k: int, flip: bool) -> np.ndarray:
    """Rotate by ``k`` * 90 degrees and optionally mirror (views, no copies)."""
    if flip:
        patch = patch[:, ::-1]
    return np.rot90(patch, k) if k else patch


def _kind_weights(sources: Sequence[Source], smooth_fraction: float | None) -> np.ndarray:
    """Per-source sampling probability: smooth images share ``smooth_fraction`` of the draws
    (when both kinds are present), uniform within each kind."""
    smooth = np.array([s.smooth for s in sources])
    n_s, n_p = int(smooth.sum()), int((~smooth).sum())
    if smooth_fraction is None or n_s == 0 or n_p == 0:
        return np.full(len(sources), 1.0 / len(sources))
    return np.where(smooth, smooth_fraction / max(n_s, 1), (1.0 - smooth_fraction) / max(n_p, 1))


def _check_fraction(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
        raise ConfigError(f"smooth_fraction must be in [0, 1] or null, got {value!r}")
    return float(value)


class FullFrames:
    """Whole images banded at full resolution by the stream stage, then cropped: bands as wide as a real
    frame's (50-500 px at 1080p), which no crop-first degradation can make.

    Each source is resized so its short side is ``short_side`` (the scale of a 1080p frame), and degraded
    ``variants`` times, each with its own stream parameters (:class:`~src.data.degradations.StreamConfig`,
    always applied) and, with probability ``dark_p``, darkened first (a dark scene: gain 0.2-0.6) so the
    bands sit where the eye sees them best. Pairs are made on first use and kept in memory (a 1080p pair
    is 18 MB), deterministic in ``seed``.
    """

    def __init__(
        self,
        sources: Sequence[Source],
        stream: StreamConfig,
        variants: int = 3,
        short_side: int = 1080,
        dark_p: float = 0.25,
        seed: int = 0,
    ) -> None:
        if not sources:
            raise DataError("no images for the full-frame stream pairs")
        self.sources = list(sources)
        self.stream = stream
        self.variants = check_int("full_frame.variants", variants, 1)
        self.short_side = check_int("full_frame.short_side", short_side, 16)
        self.dark_p = float(dark_p)
        self.seed = int(seed)
        self._cache: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}

    def __len__(self) -> int:
        return len(self.sources) * self.variants

    def pair(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """``(banded uint8, clean uint16)`` ``(H, W, 3)`` arrays of pair ``index`` (made once)."""
        key = divmod(index, self.variants)
        if key not in self._cache:
            self._cache[key] = self._make(*key)
        return self._cache[key]

    def _make(self, si: int, variant: int) -> tuple[np.ndarray, np.ndarray]:
        src = self.sources[si]
        rng = np.random.default_rng([self.seed & 0xFFFFFFFF, si, variant, 0xF11])
        f = self.short_side / min(src.height, src.width)
        h, w = max(2, round(src.height * f)), max(2, round(src.width * f))
        with one_torch_thread():
            img = _resize(src.to_float(), h, w, antialias=f < 1)
            if rng.random() < self.dark_p:
                img = img * np.float32(rng.uniform(0.2, 0.6))
            clean = _from_float(img, src.name).pixels
            banded = stream_roundtrip(torch.from_numpy(img).permute(2, 0, 1), **self.stream.draw(rng))
        banded = np.round(banded.permute(1, 2, 0).numpy() * 255.0).astype(np.uint8)
        return np.ascontiguousarray(banded), clean

    def sample(self, rng: np.random.Generator, p: int, augment: bool = True) -> Sample:
        """A random ``p`` x ``p`` crop of a random pair (the same window, flip and rotation in both)."""
        banded, clean = self.pair(int(rng.integers(len(self))))
        p_eff = min(p, banded.shape[0], banded.shape[1])
        y = int(rng.integers(0, banded.shape[0] - p_eff + 1))
        x = int(rng.integers(0, banded.shape[1] - p_eff + 1))
        k, flip = (int(rng.integers(4)), bool(rng.random() < 0.5)) if augment else (0, False)
        b = _to_chw(_augment(banded[y : y + p_eff, x : x + p_eff], k, flip), 1.0 / 255.0)
        c = _to_chw(_augment(clean[y : y + p_eff, x : x + p_eff], k, flip), 1.0 / 65535.0)
        if p_eff < p:  # an image smaller than the crop: pad both the same way
            pad = (0, p - p_eff, 0, p - p_eff)
            b = torch.nn.functional.pad(b[None], pad, mode="replicate")[0]
            c = torch.nn.functional.pad(c[None], pad, mode="replicate")[0]
        return {"banded": b, "clean": c}


class SyntheticBandingDataset(Dataset):
    """Random ``patch_size`` crops of clean sources (random flips and 90-degree rotations), then the
    :class:`Degradation`. Length is ``samples_per_epoch``; the index only bounds the epoch.

    Sources smaller than the patch are upscaled once at construction, so any image size works.
    """

    def __init__(
        self,
        sources: Sequence[Source],
        patch_size: int = 64,
        samples_per_epoch: int = 2048,
        degradation: Degradation | Mapping[str, Any] | None = None,
        smooth_fraction: float | None = 0.5,
        augment: bool = True,
        full_frames: FullFrames | None = None,
        full_frame_fraction: float = 0.0,
    ) -> None:
        if not sources:
            raise DataError("no training images: the training split is empty")
        self.full_frames = full_frames
        self.full_frame_fraction = float(full_frame_fraction) if full_frames is not None else 0.0
        self.patch_size = check_int("patch_size", patch_size, 1)
        self.samples_per_epoch = check_int("samples_per_epoch", samples_per_epoch, 1)
        self.degradation = _as_degradation(degradation)
        self.augment = bool(augment)
        self.sources = [ensure_min_size(s, self.patch_size) for s in sources]
        # Cumulative weights + searchsorted is ~10x faster per draw than rng.choice(p=...).
        self._cum = np.cumsum(_kind_weights(self.sources, _check_fraction(smooth_fraction)))
        self._cum /= self._cum[-1]

    def __len__(self) -> int:
        return self.samples_per_epoch

    def __getitem__(self, index: int) -> Sample:
        if not 0 <= index < self.samples_per_epoch:
            raise IndexError(index)
        rng = np.random.default_rng(_torch_seed())
        with one_torch_thread():
            return self.sample(rng)

    def sample(self, rng: np.random.Generator) -> Sample:
        """One (banded, clean) pair drawn entirely from ``rng``: a crop of a full-frame stream pair with
        probability ``full_frame_fraction``, else a crop of a clean source degraded on the fly."""
        if self.full_frames is not None and rng.random() < self.full_frame_fraction:
            return self.full_frames.sample(rng, self.patch_size, self.augment)
        src = self.sources[min(int(np.searchsorted(self._cum, rng.random(), side="right")), len(self.sources) - 1)]
        p = self.patch_size
        y = int(rng.integers(0, src.height - p + 1))
        x = int(rng.integers(0, src.width - p + 1))
        k, flip = (int(rng.integers(4)), bool(rng.random() < 0.5)) if self.augment else (0, False)
        clean = _to_chw(_augment(src.pixels[y : y + p, x : x + p], k, flip), src.scale)
        banded = self.degradation(clean, rng)
        return {"banded": banded, "clean": clean}


class FixedBandingDataset(Dataset):
    """Deterministic validation/test crops: ``num_samples`` items of ``patch_size`` made from ``seed``.

    The crop positions and each item's degradation seed are fixed at construction, so every epoch
    and every run sees the same items. Items cycle through the sources (smooth ones get about
    ``smooth_fraction`` of the slots) so every held-out image is used.
    """

    def __init__(
        self,
        sources: Sequence[Source],
        patch_size: int = 256,
        num_samples: int = 16,
        degradation: Degradation | Mapping[str, Any] | None = None,
        seed: int = 0,
        smooth_fraction: float | None = 0.5,
    ) -> None:
        if not sources:
            raise DataError("no validation images: the validation split is empty")
        self.patch_size = check_int("val_patch_size", patch_size, 1)
        self.num_samples = check_int("val_samples", num_samples, 1)
        self.degradation = _as_degradation(degradation)
        self.sources = [ensure_min_size(s, self.patch_size) for s in sources]
        frac = _check_fraction(smooth_fraction)
        smooth_idx = [i for i, s in enumerate(self.sources) if s.smooth]
        photo_idx = [i for i, s in enumerate(self.sources) if not s.smooth]
        if frac is None or not smooth_idx or not photo_idx:
            frac, smooth_idx, photo_idx = 0.0, [], list(range(len(self.sources)))
        rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, 0x7A1])
        self.items: list[tuple[int, int, int, int]] = []  # (source index, y, x, degradation seed)
        n_smooth = n_photo = 0
        for i in range(self.num_samples):
            # Spread the smooth slots evenly: item i is smooth when floor((i+1)f) > floor(i f).
            if int((i + 1) * frac) > int(i * frac):
                si, n_smooth = smooth_idx[n_smooth % len(smooth_idx)], n_smooth + 1
            else:
                si, n_photo = photo_idx[n_photo % len(photo_idx)], n_photo + 1
            s = self.sources[si]
            y = int(rng.integers(0, s.height - self.patch_size + 1))
            x = int(rng.integers(0, s.width - self.patch_size + 1))
            self.items.append((si, y, x, int(rng.integers(0, 2**63 - 1))))

    def __len__(self) -> int:
        return self.num_samples

    def __getitem__(self, index: int) -> Sample:
        if not 0 <= index < self.num_samples:
            raise IndexError(index)
        si, y, x, seed = self.items[index]
        s, p = self.sources[si], self.patch_size
        clean = _to_chw(s.pixels[y : y + p, x : x + p], s.scale)
        with one_torch_thread():
            banded = self.degradation(clean, np.random.default_rng(seed))
        return {"banded": banded, "clean": clean}


class PairedDataset(Dataset):
    """Existing (banded, clean) pairs, loaded into memory once.

    ``train=True``: item ``i`` is a random aligned ``patch_size`` crop (with the same random
    flip/rotation on both) of pair ``i % len(pairs)``; length ``samples_per_epoch`` (default: one
    per pair). ``train=False``: a center crop of ``patch_size``, or the full image when
    ``patch_size`` is None (use batch size 1 if sizes differ). Pairs smaller than the patch are
    reflection-padded identically on both sides.
    """

    def __init__(
        self,
        pairs: Sequence[Pair],
        patch_size: int | None = 64,
        train: bool = True,
        samples_per_epoch: int | None = None,
        augment: bool = True,
    ) -> None:
        if not pairs:
            raise DataError("no image pairs: the paired split is empty")
        self.patch_size = None if patch_size is None else check_int("patch_size", patch_size, 1)
        if train and self.patch_size is None:
            raise ConfigError("paired training needs a patch_size (full images cannot be batched)")
        self.train = bool(train)
        self.augment = bool(augment)
        self.keys = [k for k, _, _ in pairs]
        self.images: list[tuple[np.ndarray, np.ndarray]] = [self._load(b, c) for _, b, c in pairs]
        n = len(pairs) if samples_per_epoch is None else check_int("samples_per_epoch", samples_per_epoch, 1)
        self.length = n if train else len(pairs)

    @staticmethod
    def _load(banded: Path, clean: Path) -> tuple[np.ndarray, np.ndarray]:
        b, _ = read_image(banded)
        c, _ = read_image(clean)
        if b.shape[:2] != c.shape[:2]:
            raise DataError(
                f"pair size mismatch: '{banded}' is {b.shape[1]}x{b.shape[0]} but '{clean}' is "
                f"{c.shape[1]}x{c.shape[0]} (width x height); pairs must be pixel-aligned"
            )
        # float32 keeps 16-bit sources exact; paired sets are usually small.
        return to_rgb(b), to_rgb(c)

    def __len__(self) -> int:
        return self.length

    def _padded(self, arr: np.ndarray, p: int) -> np.ndarray:
        h, w = arr.shape[:2]
        if h >= p and w >= p:
            return arr
        ph, pw = max(0, p - h), max(0, p - w)
        return np.pad(arr, ((ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2), (0, 0)), mode="symmetric")

    def __getitem__(self, index: int) -> Sample:
        if not 0 <= index < self.length:
            raise IndexError(index)
        b, c = self.images[index % len(self.images)]
        p = self.patch_size
        if p is None:
            return {"banded": _to_chw(b, 1.0), "clean": _to_chw(c, 1.0)}
        b, c = self._padded(b, p), self._padded(c, p)
        h, w = b.shape[:2]
        if self.train:
            rng = np.random.default_rng(_torch_seed())
            y, x = int(rng.integers(0, h - p + 1)), int(rng.integers(0, w - p + 1))
            k, flip = (int(rng.integers(4)), bool(rng.random() < 0.5)) if self.augment else (0, False)
        else:
            y, x, k, flip = (h - p) // 2, (w - p) // 2, 0, False
        bp = _augment(b[y : y + p, x : x + p], k, flip)
        cp = _augment(c[y : y + p, x : x + p], k, flip)
        return {"banded": _to_chw(bp, 1.0), "clean": _to_chw(cp, 1.0)}
