"""A training DataLoader whose position in the epoch is part of Lightning's checkpoint.

Lightning saves ``state_dict()`` of every loader that has one with each checkpoint and calls
``load_state_dict`` on resume. :class:`ResumableLoader` records the shuffle seed and how many batches
of the current epoch the model has consumed; resumed mid-epoch, it yields only the batches that were
still to come, in the same order. Paired data thus resumes exactly (the same pairs, the same order;
the random flips drawn per item are fresh). Synthetic data draws a new random crop and degradation
for every item anyway, so there the restored position keeps the epoch's length and the crops are new.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

__all__ = ["EpochPermutation", "ResumableLoader"]


class EpochPermutation(Sampler[int]):
    """A random permutation of ``range(n)`` fixed by ``(seed, epoch)``; ``skip`` drops its first items once."""

    def __init__(self, n: int, seed: int, shuffle: bool = True) -> None:
        self.n = int(n)
        self.seed = int(seed)
        self.shuffle = shuffle
        self.epoch = 0
        self.skip = 0  # applies to the next iteration only (a resumed epoch)

    def set_epoch(self, epoch: int) -> None:
        """Called by Lightning at the start of every epoch."""
        self.epoch = int(epoch)

    def order(self) -> list[int]:
        if not self.shuffle:
            return list(range(self.n))
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        return torch.randperm(self.n, generator=g).tolist()

    def __iter__(self) -> Iterator[int]:
        skip, self.skip = self.skip, 0
        return iter(self.order()[skip:])

    def __len__(self) -> int:
        return self.n


class ResumableLoader(DataLoader):
    """``DataLoader`` with ``state_dict``/``load_state_dict`` (Lightning's stateful-loader interface).

    When Lightning writes a checkpoint after batch ``k`` (0-based), the iterator has handed out exactly
    ``k + 1`` batches: Lightning asks for the next one only when it starts the next step.
    """

    def __init__(
        self, dataset: Dataset, batch_size: int, shuffle: bool, drop_last: bool, seed: int | None = None, **kw: Any
    ) -> None:
        if seed is None:  # from torch's global RNG, so lightning.seed_everything fixes it
            seed = int(torch.randint(0, 2**31 - 1, ()).item())
        sampler = EpochPermutation(len(dataset), seed, shuffle)  # type: ignore[arg-type]
        super().__init__(dataset, batch_size=batch_size, sampler=sampler, drop_last=drop_last, **kw)
        self._handed_out = 0
        self._resume_at = 0

    def __iter__(self) -> Iterator[Any]:
        sampler: EpochPermutation = self.sampler  # type: ignore[assignment]
        start, self._resume_at = self._resume_at, 0
        sampler.skip = start * self.batch_size  # type: ignore[operator]
        self._handed_out = start
        for batch in super().__iter__():
            self._handed_out += 1
            yield batch

    def __len__(self) -> int:
        # the full epoch's length: Lightning counts the batches of a resumed epoch from where it stopped
        return len(self.batch_sampler)  # type: ignore[arg-type]

    def state_dict(self) -> dict[str, int]:
        sampler: EpochPermutation = self.sampler  # type: ignore[assignment]
        return {"seed": sampler.seed, "epoch": sampler.epoch, "batches_done": self._handed_out}

    def load_state_dict(self, state: dict[str, int]) -> None:
        sampler: EpochPermutation = self.sampler  # type: ignore[assignment]
        sampler.seed = int(state["seed"])
        sampler.epoch = int(state["epoch"])
        done = int(state["batches_done"])
        # a checkpoint written at an epoch's end resumes at the next epoch's start
        self._resume_at = 0 if done >= len(self) else done
