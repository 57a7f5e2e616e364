"""Config values as plain Python containers (OmegaConf only, no Hydra), for the layers below the entry points."""

from __future__ import annotations

import sys
from typing import Any

__all__ = ["to_plain"]


def to_plain(value: Any) -> Any:
    """DictConfig/ListConfig -> plain (resolved) containers, so values pickle and compare as dicts; else as is."""
    # a DictConfig exists only where omegaconf was imported: inference, which never sees one, need not import
    # it (0.04 s of every deband start)
    omegaconf = sys.modules.get("omegaconf")
    if omegaconf is not None and isinstance(value, (omegaconf.DictConfig, omegaconf.ListConfig)):
        return omegaconf.OmegaConf.to_container(value, resolve=True)
    return value
