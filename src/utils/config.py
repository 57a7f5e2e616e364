"""Config values as plain Python containers (OmegaConf only, no Hydra), for the layers below the entry points."""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

__all__ = ["to_plain"]


def to_plain(value: Any) -> Any:
    """DictConfig/ListConfig -> plain (resolved) containers, so values pickle and compare as dicts; else as is."""
    if isinstance(value, (DictConfig, ListConfig)):
        return OmegaConf.to_container(value, resolve=True)
    return value
