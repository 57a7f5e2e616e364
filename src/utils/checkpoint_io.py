"""Checkpoint writing that never leaves a half-written file: write to a temporary name, then rename."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from lightning.pytorch.plugins.io import TorchCheckpointIO

from src.utils.atomic import atomic_output


class AtomicCheckpointIO(TorchCheckpointIO):
    """A run killed while saving keeps its previous ``last.ckpt`` intact (os.replace is atomic on POSIX)."""

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: str | os.PathLike, storage_options: Any | None = None
    ) -> None:
        with atomic_output(Path(path)) as tmp:
            super().save_checkpoint(checkpoint, tmp, storage_options)
