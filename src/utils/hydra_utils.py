"""Glue between Hydra configs and the entry points: instantiation of lists, config printing, one-line errors."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig, OmegaConf

from src.utils.errors import DebandError
from src.utils.threads import threads_per_job

log = logging.getLogger(__name__)


def config_dir() -> str:
    """The Hydra config folder: ``conf/`` of a source checkout, else the copy installed as ``src/conf``."""
    src = Path(__file__).resolve().parents[1]
    checkout = src.parent / "conf"
    return str(checkout if (checkout / "train.yaml").is_file() else src / "conf")


CONFIG_PATH = config_dir()


def instantiate_dict(cfg: DictConfig | None, kind: str) -> list[Any]:
    """Instantiate every entry with a ``_target_`` in a config group such as ``callbacks`` or ``logger``."""
    objs: list[Any] = []
    if not cfg:
        return objs
    if not isinstance(cfg, DictConfig):
        raise TypeError(f"the {kind} config must be a mapping")
    for conf in cfg.values():
        if isinstance(conf, DictConfig) and "_target_" in conf:
            log.debug("instantiating %s <%s>", kind, conf._target_)
            objs.append(hydra.utils.instantiate(conf))
    return objs


def find_user_error(exc: BaseException) -> DebandError | None:
    """The first :class:`DebandError` in ``exc``'s cause chain (Hydra wraps errors raised in constructors)."""
    seen = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        if isinstance(cur, DebandError):
            return cur
        seen.add(id(cur))
        cur = cur.__cause__ or cur.__context__
    return None


def one_line_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn a :class:`DebandError` (bad input or config) into ``error: <message>`` on stderr and exit code 1."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - re-raised unless it is a user error
            user = find_user_error(exc)
            if user is None:
                raise
            print(f"error: {user}", file=sys.stderr, flush=True)
            raise SystemExit(1) from None

    return wrapper


def run_context() -> dict[str, Any]:
    """What Hydra knows about this job: its overrides, sweep name, and a fair torch thread count.

    Under the joblib launcher, jobs x threads must not exceed the cores, or every job crawls.
    """
    from pathlib import Path

    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    ctx: dict[str, Any] = {"overrides": [], "override_name": "", "sweep": None, "threads": None}
    if not HydraConfig.initialized():
        return ctx
    hc = HydraConfig.get()
    ctx["overrides"] = list(hc.overrides.task)
    ctx["override_name"] = hc.job.get("override_dirname", "") or ""
    if hc.mode == RunMode.MULTIRUN:
        ctx["sweep"] = Path(hc.sweep.dir).name
        launcher = hc.get("launcher") or {}
        if "joblib" in str(launcher.get("_target_", "")).lower():
            ctx["threads"] = threads_per_job(int(launcher.get("n_jobs", -1) or -1))
    return ctx


def print_config_tree(
    cfg: DictConfig,
    order: tuple[str, ...] = ("data", "model", "indi", "loss", "callbacks", "logger", "trainer", "paths", "extras"),
) -> None:
    """Print the resolved config as a rich tree (groups first, then the rest)."""
    import rich
    import rich.syntax
    import rich.tree

    tree = rich.tree.Tree("CONFIG", style="dim", guide_style="dim")
    keys = [k for k in order if k in cfg] + [k for k in cfg if k not in order]
    for key in keys:
        branch = tree.add(str(key), style="bold")
        value = cfg[key]
        text = OmegaConf.to_yaml(value, resolve=True) if isinstance(value, DictConfig) else str(value)
        branch.add(rich.syntax.Syntax(text, "yaml"))
    rich.print(tree)


def finish_wandb() -> None:
    """Close the W&B run so the next job of a multirun starts a fresh one."""
    if "wandb" in sys.modules:
        import wandb

        if wandb.run is not None:
            wandb.finish()
