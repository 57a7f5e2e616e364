"""LightningDataModule for debanding: embedded default images, a folder, or existing pairs.

Batches are ``{"banded": (B, 3, P, P), "clean": (B, 3, P, P)}`` float32 in [0, 1].
Constructor arguments are plain values so ``hydra.utils.instantiate(cfg.data)`` works directly
(nested mappings may arrive as dicts or DictConfigs).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import lightning as L
from torch.utils.data import DataLoader, Dataset

from src.data.datasets import FixedBandingDataset, FullFrames, PairedDataset, SyntheticBandingDataset
from src.data.degradations import Degradation, StreamConfig
from src.data.pairs import Pair, pairs_from_csv, pairs_from_folders
from src.data.resumable import ResumableLoader
from src.data.sources import (
    Source,
    embedded_default,
    folder_images,
    smooth_images,
    split_by_photo,
    val_names,
)
from src.utils.config import to_plain
from src.utils.errors import ConfigError
from src.utils.validate import check_int

__all__ = ["BandingDataModule"]


def _int(name: str, value: Any, minimum: int) -> int:
    return check_int(f"data.{name}", value, minimum)


def _number(name: str, value: Any, lo: float, hi: float, hi_open: bool = False) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not ok or value < lo or value > hi or (hi_open and value == hi):
        bound = f"[{lo}, {hi})" if hi_open else f"[{lo}, {hi}]"
        raise ConfigError(f"data.{name} must be a number in {bound}, got {value!r}")
    return float(value)


def _pair_spec(name: str, spec: Any) -> dict[str, str] | None:
    """Validate ``{banded_dir, clean_dir}`` / ``{csv}`` / ``{root}`` specs (``root`` only for test)."""
    spec = to_plain(spec)
    if spec is None:
        return None
    if not isinstance(spec, Mapping):
        raise ConfigError(f"data.{name} must be a mapping like {{banded_dir: ..., clean_dir: ...}} or {{csv: ...}}")
    spec = {k: v for k, v in spec.items() if v is not None}
    keys = set(spec)
    allowed = [{"banded_dir", "clean_dir"}, {"csv"}] + ([{"root"}] if name == "test" else [])
    if keys not in allowed:
        forms = " or ".join("{" + ", ".join(sorted(a)) + "}" for a in allowed)
        raise ConfigError(f"data.{name} must set exactly {forms}; got keys {sorted(keys)}")
    return {k: str(v) for k, v in spec.items()}


_FULL_FRAME_DEFAULTS = {"fraction": 0.5, "variants": 3, "short_side": 1080, "dark_p": 0.25, "smooth_images": 4}


def _full_frame_spec(spec: Any) -> dict[str, Any] | None:
    """Validate ``data.full_frame``: null, or a mapping of :data:`_FULL_FRAME_DEFAULTS`' keys."""
    spec = to_plain(spec)
    if spec is None:
        return None
    if not isinstance(spec, Mapping):
        raise ConfigError(f"data.full_frame must be a mapping or null, got {spec!r}")
    unknown = set(spec) - set(_FULL_FRAME_DEFAULTS)
    if unknown:
        raise ConfigError(
            f"unknown key(s) {sorted(unknown)} in data.full_frame; allowed: {sorted(_FULL_FRAME_DEFAULTS)}"
        )
    out = {**_FULL_FRAME_DEFAULTS, **spec}
    out["fraction"] = _number("full_frame.fraction", out["fraction"], 0.0, 1.0)
    out["dark_p"] = _number("full_frame.dark_p", out["dark_p"], 0.0, 1.0)
    for key, lo in (("variants", 1), ("short_side", 16), ("smooth_images", 0)):
        out[key] = _int(f"full_frame.{key}", out[key], lo)
    return out


def _load_pairs(spec: Mapping[str, str]) -> list[Pair]:
    if "csv" in spec:
        return pairs_from_csv(spec["csv"])
    return pairs_from_folders(spec["banded_dir"], spec["clean_dir"])


class BandingDataModule(L.LightningDataModule):
    """Train/val/test data for debanding.

    Modes (pick one): ``root=None`` and ``paired=None`` -> embedded default (scikit-image photos +
    ``synthetic_images`` procedural smooth images); ``root`` -> every image under that folder
    (plus ``synthetic_images`` smooth ones if > 0); ``paired`` -> existing pairs from
    ``{banded_dir, clean_dir}`` or ``{csv}``.

    Clean sources are split by image (``val_fraction``); validation is ``val_samples`` fixed
    ``val_patch_size`` crops (paired mode: center crops of every held-out pair, or full images
    when ``val_patch_size`` is null). ``test`` (``{root}``, ``{banded_dir, clean_dir}`` or
    ``{csv}``) gives a separate test set; otherwise test uses the validation set.
    ``downscale`` (>= 1) shrinks photos, not pairs or the smooth images.
    ``degradation`` is the :meth:`Degradation.from_config` mapping (None = the default recipe).
    ``full_frame`` (``{fraction, variants, short_side, dark_p, smooth_images}``, null = off): that fraction of
    the training crops comes from whole training images banded at full resolution by the ``stream`` stage
    (:class:`~src.data.datasets.FullFrames`), plus ``smooth_images`` procedural smooth images of 1080 x 1920.
    """

    def __init__(
        self,
        root: str | None = None,
        paired: Mapping[str, str] | None = None,
        test: Mapping[str, str] | None = None,
        patch_size: int = 64,
        batch_size: int = 16,
        num_workers: int = 0,
        samples_per_epoch: int = 2048,
        val_samples: int = 16,
        val_patch_size: int | None = 256,
        val_batch_size: int | None = None,
        val_fraction: float = 0.2,
        downscale: float = 1.0,
        synthetic_images: int = 48,
        smooth_fraction: float | None = 0.5,
        degradation: Mapping[str, Any] | None = None,
        seed: int = 0,
        pin_memory: bool = False,
        persistent_workers: bool | None = None,
        require_root: bool = False,
        full_frame: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if require_root and root is None:
            raise ConfigError("data=folder needs a folder of clean photos: add data.root=/path/to/photos")
        paired = _pair_spec("paired", paired)
        test = _pair_spec("test", test)
        degradation = to_plain(degradation)
        if root is not None and paired is not None:
            raise ConfigError("set either data.root (clean images) or data.paired (existing pairs), not both")
        if root is not None and (not isinstance(root, str) or not root.strip()):
            raise ConfigError(f"data.root must be a folder path or null, got {root!r}")
        self.root = root
        self.paired = paired
        self.test = test
        self.patch_size = _int("patch_size", patch_size, 8)
        self.batch_size = _int("batch_size", batch_size, 1)
        self.num_workers = _int("num_workers", num_workers, 0)
        self.samples_per_epoch = _int("samples_per_epoch", samples_per_epoch, 1)
        self.val_samples = _int("val_samples", val_samples, 1)
        self.val_patch_size = None if val_patch_size is None else _int("val_patch_size", val_patch_size, 8)
        self.val_batch_size = self.batch_size if val_batch_size is None else _int("val_batch_size", val_batch_size, 1)
        if self.val_patch_size is None and self.val_batch_size != 1:
            self.val_batch_size = 1  # full images of different sizes cannot be stacked
        self.val_fraction = _number("val_fraction", val_fraction, 0.0, 1.0, hi_open=True)
        self.downscale = _number("downscale", downscale, 1.0, float("inf"))
        self.synthetic_images = _int("synthetic_images", synthetic_images, 0)
        self.smooth_fraction = (
            None if smooth_fraction is None else _number("smooth_fraction", smooth_fraction, 0.0, 1.0)
        )
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ConfigError(f"data.seed must be an integer, got {seed!r}")
        self.seed = seed
        self.pin_memory = bool(pin_memory)
        self.persistent_workers = (self.num_workers > 0) if persistent_workers is None else bool(persistent_workers)
        self.persistent_workers = self.persistent_workers and self.num_workers > 0  # torch rejects it otherwise
        if self.val_patch_size is None and paired is None:
            raise ConfigError("data.val_patch_size may be null only in paired mode; set it (e.g. 256)")
        self.degradation = Degradation.from_config(degradation)  # validate now: fail before training
        self.full_frame = _full_frame_spec(full_frame)
        self.save_hyperparameters(logger=True)

        self.train_dataset: Dataset | None = None
        self.val_dataset: Dataset | None = None
        self.test_dataset: Dataset | None = None

    # ----------------------------------------------------------------------------------------

    def setup(self, stage: str | None = None) -> None:
        """Load sources and build the datasets (once; later calls are no-ops)."""
        if self.train_dataset is not None:
            return
        if self.paired is not None:
            self._setup_paired()
        else:
            self._setup_sources()
        if self.test is not None:
            self.test_dataset = self._build_test(self.test)
        else:
            self.test_dataset = self.val_dataset

    def _sources(self) -> list[Source]:
        if self.root is None:
            return embedded_default(self.seed, self.synthetic_images, self.downscale)
        return folder_images(self.root, self.downscale) + smooth_images(self.synthetic_images, self.seed)

    def _setup_sources(self) -> None:
        sources = self._sources()
        train, val = split_by_photo(sources, self.val_fraction)
        if not val and self.val_fraction > 0:
            warnings.warn(
                f"only {len(sources)} image(s) available: validating on crops of the training image(s) "
                "(no held-out split); add more images for a real validation set",
                stacklevel=2,
            )
            val = train
        full = None
        if self.full_frame is not None:
            spec = self.full_frame
            images = [s for s in train if not s.smooth]
            images += smooth_images(spec["smooth_images"], self.seed + 1, size=(1080, 1920))
            full = FullFrames(
                images,
                self.degradation.stream or StreamConfig(),
                spec["variants"],
                spec["short_side"],
                spec["dark_p"],
                self.seed,
            )
        self.train_dataset = SyntheticBandingDataset(
            train,
            self.patch_size,
            self.samples_per_epoch,
            self.degradation,
            self.smooth_fraction,
            full_frames=full,
            full_frame_fraction=self.full_frame["fraction"] if full else 0.0,
        )
        self.val_dataset = (
            FixedBandingDataset(
                val, self.val_patch_size, self.val_samples, self.degradation, self.seed, self.smooth_fraction
            )
            if val
            else None
        )

    def _setup_paired(self) -> None:
        pairs = _load_pairs(self.paired)
        held_out = val_names([k for k, _, _ in pairs], self.val_fraction)
        train = [p for p in pairs if p[0] not in held_out]
        val = [p for p in pairs if p[0] in held_out]
        if not val and self.val_fraction > 0:
            warnings.warn("only 1 pair available: validating on the training pair (no held-out split)", stacklevel=2)
            val = train
        self.train_dataset = PairedDataset(train, self.patch_size, train=True, samples_per_epoch=self.samples_per_epoch)
        self.val_dataset = PairedDataset(val, self.val_patch_size, train=False) if val else None

    def _build_test(self, spec: Mapping[str, str]) -> Dataset:
        if "root" in spec:
            return FixedBandingDataset(
                folder_images(spec["root"], self.downscale),
                self.val_patch_size or 256,
                self.val_samples,
                self.degradation,
                self.seed,
                self.smooth_fraction,
            )
        return PairedDataset(_load_pairs(spec), self.val_patch_size, train=False)

    # ----------------------------------------------------------------------------------------

    def _loader(self, dataset: Dataset, batch_size: int, shuffle: bool, drop_last: bool) -> DataLoader:
        return DataLoader(
            dataset,
            batch_size=batch_size,
            shuffle=shuffle,
            drop_last=drop_last,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            persistent_workers=self.persistent_workers,
        )

    def train_dataloader(self) -> DataLoader:
        self.setup("fit")
        ds = self.train_dataset
        trainer = getattr(self, "trainer", None)
        if trainer is not None and trainer.world_size > 1:
            # distributed: Lightning swaps in its DistributedSampler (each rank its share), which a
            # resumed epoch starts over; the single-process loader below cannot take that sampler
            return self._loader(ds, self.batch_size, shuffle=True, drop_last=len(ds) >= self.batch_size)
        # Shuffling only matters for paired data (index -> pair); drop_last keeps batch sizes equal.
        # Its position in the epoch goes into checkpoints, so a mid-epoch resume continues the epoch.
        return ResumableLoader(
            ds,
            self.batch_size,
            shuffle=True,
            drop_last=len(ds) >= self.batch_size,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            persistent_workers=self.persistent_workers,
        )

    def val_dataloader(self) -> DataLoader | list:
        self.setup("validate")
        if self.val_dataset is None:
            return []  # val_fraction=0: Lightning skips validation
        return self._loader(self.val_dataset, self.val_batch_size, shuffle=False, drop_last=False)

    def test_dataloader(self) -> DataLoader | list:
        self.setup("test")
        if self.test_dataset is None:
            return []
        return self._loader(self.test_dataset, self.val_batch_size, shuffle=False, drop_last=False)
