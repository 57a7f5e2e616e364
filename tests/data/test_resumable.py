"""ResumableLoader: a run stopped mid-epoch and resumed from its checkpoint sees each item of that epoch once."""

from __future__ import annotations

import warnings
from pathlib import Path

import lightning as L
import pytest
import torch
from torch.utils.data import Dataset

from src.data.resumable import EpochPermutation, ResumableLoader


class _Indices(Dataset):
    def __len__(self) -> int:
        return 24

    def __getitem__(self, i: int) -> torch.Tensor:
        return torch.tensor([float(i)])


class _Recorder(L.LightningModule):
    """Records the item indices of every training batch; stops the run after ``stop_after`` steps."""

    def __init__(self, stop_after: int | None = None) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))
        self.seen: list[tuple[int, list[int]]] = []
        self.stop_after = stop_after

    def training_step(self, batch: torch.Tensor, batch_idx: int) -> torch.Tensor:
        self.seen.append((self.current_epoch, batch[:, 0].long().tolist()))
        return (self.w * batch).sum()

    def on_train_batch_end(self, *args) -> None:
        if self.stop_after is not None and self.global_step == self.stop_after:
            self.trainer.save_checkpoint(self.ckpt)
            self.trainer.should_stop = True

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)

    def train_dataloader(self):
        return ResumableLoader(_Indices(), batch_size=4, shuffle=True, drop_last=True, seed=7)


def _trainer(root: Path) -> L.Trainer:
    return L.Trainer(
        max_epochs=2,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=root,
    )


def test_permutation_depends_on_seed_and_epoch_and_skip_applies_once():
    s = EpochPermutation(10, seed=3)
    first = list(s)
    assert sorted(first) == list(range(10))
    s.skip = 4
    assert list(s) == first[4:]
    assert list(s) == first  # the skip was for one iteration only
    s.set_epoch(1)
    assert list(s) != first


@pytest.mark.parametrize("stop_after", [2, 6])  # mid-epoch 0 (of 6 steps), and exactly at its end
def test_resumed_epoch_sees_the_rest_of_its_items_in_order(tmp_path: Path, stop_after: int):
    full = _Recorder()
    _trainer(tmp_path / "full").fit(full)

    first = _Recorder(stop_after=stop_after)
    first.ckpt = tmp_path / "stop.ckpt"
    _trainer(tmp_path / "a").fit(first)
    assert torch.load(first.ckpt, weights_only=False)["loops"]["fit_loop"]["state_dict"]["combined_loader"]

    resumed = _Recorder()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _trainer(tmp_path / "b").fit(resumed, ckpt_path=first.ckpt)
    assert not [w for w in caught if "not resumable" in str(w.message)]
    # the interrupted run and the resumed one together saw exactly what an uninterrupted run saw
    assert first.seen[:stop_after] + resumed.seen == full.seen
