"""The LightningModule: a time-conditioned UNet trained with INDI and a (spectral) loss."""

from __future__ import annotations

import inspect
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import hydra
import torch
from lightning import LightningModule
from torchmetrics import MeanMetric, MetricCollection

from src.metrics.collection import CLEAN, restoration_metrics, update_metrics
from src.models.ema import EMA, upgrade_state_dict
from src.models.indi import INDISchedule
from src.models.unet import count_parameters, macs_per_pixel
from src.utils.config import to_plain
from src.utils.errors import ConfigError, DataError
from src.utils.images import log_image_grid, make_grid

log = logging.getLogger(__name__)


class INDIModule(LightningModule):
    """Holds the network, the INDI schedule and the loss; configs in, so a checkpoint rebuilds itself.

    Args:
        net: Hydra config of the network (``_target_`` + kwargs), e.g. ``src.models.unet.UNet``.
        indi: kwargs of :class:`~src.models.indi.INDISchedule`.
        loss: Hydra config of the loss, e.g. ``src.models.losses.DebandLoss``.
        optimizer: Hydra config with ``_partial_: true``; called with the parameters.
        scheduler: optional Hydra config with ``_partial_: true``; called with the optimizer (and with
            ``total_steps`` = the trainer's estimated number of optimizer steps when it takes one and the config
            does not set it, as :func:`~src.models.lr_schedule.warmup_cosine` does).
        scheduler_interval: ``epoch`` or ``step``.
        ema_decay: decay of the weight EMA used for validation, testing and inference (0 disables it).
        log_images_every_n_epochs: how often validation saves/logs a (banded | restored | clean) grid.
        num_log_images: rows in that grid.
        score_cambi_weight: ``val/score = val/psnr - w * val/cambi_mlc5``, one number that rewards fidelity and
            penalises visible banding (what sweeps optimise).
        deband_steps: the step count the ``deband`` tool uses by default for these weights (None: ``indi.steps``).
        lr_scale: ``{parameter-name prefix: factor}``: those parameters train at ``factor`` times the learning
            rate (the longest matching prefix wins; 0 freezes them), e.g. ``{"": 0.1, "global_branch": 1.0}``
            to fine-tune an initialised net slowly around a new branch. Null = one rate for all.
        init_from: a training checkpoint or exported model whose network weights start this one (its EMA
            weights where it has them); parameters that it lacks or whose shapes differ keep their fresh
            initialisation, e.g. a new global branch on top of a trained full-resolution net. Null = none.
        train_part: ``all`` (default): the loss is taken on the whole network's output. ``global``: on
            ``x_t + global_branch(x_t, t)`` alone, the full-resolution net not run (frozen). The coarse pass
            then costs about 1/50 of the whole network, so it can train on crops that hold whole 1080p bands;
            validation and inference still run the whole network.
    """

    def __init__(
        self,
        net: Mapping,
        indi: Mapping | None = None,
        loss: Mapping | None = None,
        optimizer: Mapping | None = None,
        scheduler: Mapping | None = None,
        scheduler_interval: str = "epoch",
        ema_decay: float = 0.999,
        log_images_every_n_epochs: int = 5,
        num_log_images: int = 4,
        score_cambi_weight: float = 0.5,
        deband_steps: int | None = None,
        init_from: str | None = None,
        lr_scale: Mapping[str, float] | None = None,
        train_part: str = "all",
    ) -> None:
        super().__init__()
        if scheduler_interval not in ("epoch", "step"):
            raise ConfigError(f"model.scheduler_interval must be 'epoch' or 'step', got {scheduler_interval!r}")
        if train_part not in ("all", "global"):
            raise ConfigError(f"model.train_part must be 'all' or 'global', got {train_part!r}")
        self.save_hyperparameters(
            {
                "net": to_plain(net),
                "indi": to_plain(indi) or {},
                "loss": to_plain(loss) or {"_target_": "src.models.losses.DebandLoss"},
                "optimizer": to_plain(optimizer) or {"_target_": "torch.optim.AdamW", "_partial_": True, "lr": 1e-3},
                "scheduler": to_plain(scheduler),
                "scheduler_interval": scheduler_interval,
                "ema_decay": ema_decay,
                "log_images_every_n_epochs": log_images_every_n_epochs,
                "num_log_images": num_log_images,
                "score_cambi_weight": score_cambi_weight,
                "deband_steps": deband_steps,
                "init_from": init_from,
                "lr_scale": to_plain(lr_scale),
                "train_part": train_part,
            }
        )
        self._lr_scale = _check_lr_scale(self.hparams.lr_scale)
        self.net = hydra.utils.instantiate(self.hparams.net)
        if train_part == "global":
            if getattr(self.net, "global_branch", None) is None:
                raise ConfigError(
                    "model.train_part=global needs a network with a global branch (model.net.global_branch)"
                )
            # only the coarse pass learns: freeze the rest, whatever lr_scale says
            own = {k: v for k, v in (self._lr_scale or {}).items() if k.startswith("global_branch")}
            self._lr_scale = {"": 0.0, "global_branch": 1.0, **own}
        if init_from:
            _load_initial_weights(self.net, init_from)
        indi_kwargs = {k: v for k, v in self.hparams.indi.items() if k != "_target_"}
        self.schedule = INDISchedule(**indi_kwargs)
        self.loss_fn = hydra.utils.instantiate(self.hparams.loss)
        self.ema = EMA(self.net, ema_decay) if ema_decay > 0 else None

        self.train_loss = MeanMetric()
        # suffix "_input": the banded input; "_1step": one evaluation at t = 1; "": the N-step sampler
        self.val_metrics = restoration_metrics("val/")
        self.test_metrics = restoration_metrics("test/")
        self._grid_rows: list[torch.Tensor] = []

    # ------------------------------------------------------------------ inference
    @property
    def inference_net(self) -> torch.nn.Module:
        """The EMA weights when there are any: they are what validation measures and what ships."""
        return self.ema.module if self.ema is not None else self.net

    @torch.no_grad()
    def restore(self, banded: torch.Tensor, steps: int | None = None, seed: int | None = 0) -> torch.Tensor:
        """Deband ``(B, 3, H, W)`` in [0, 1] with ``steps`` INDI steps (default: the schedule's); returns [0, 1]."""
        return self.schedule.sample(self.inference_net, banded, steps=steps, seed=seed).clamp(0.0, 1.0)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.net(x, t)

    def describe(self) -> str:
        return (
            f"{type(self.net).__name__}: {count_parameters(self.net) / 1e6:.3f} M parameters, "
            f"{macs_per_pixel(self.net) / 1e3:.1f} kMAC per pixel per step; {self.schedule}"
        )

    # ------------------------------------------------------------------ training
    def training_loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Sample t, build x_t, predict the clean image and take the loss: ``(total, {term: value})``."""
        clean, banded = batch["clean"], batch["banded"]
        t = self.schedule.sample_t(clean.shape[0], device=clean.device)
        x_t = self.schedule.train_pair(clean, banded, t)
        if self.hparams.get("train_part", "all") == "global":
            return self.loss_fn(x_t + self.net.global_branch(x_t, t), clean, reference=banded)
        return self.loss_fn(self.net(x_t, t), clean, reference=banded)

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        loss, parts = self.training_loss(batch)
        self.train_loss(loss.detach())
        self.log("train/loss", self.train_loss, on_step=True, on_epoch=True, prog_bar=True)
        if len(parts) > 1:
            for name, value in parts.items():
                self.log(f"train/loss_{name}", value.detach(), on_step=False, on_epoch=True)
        return loss

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # resuming (ckpt_path=) a checkpoint written before the EMA was torch's AveragedModel
        checkpoint["state_dict"] = upgrade_state_dict(checkpoint["state_dict"])

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        if self.ema is not None:
            self.ema.update(self.net)

    # ------------------------------------------------------------------ evaluation
    def _evaluate(self, batch: dict[str, torch.Tensor], metrics: MetricCollection) -> torch.Tensor:
        clean, banded = batch["clean"], batch["banded"]
        net = self.inference_net
        ones = torch.ones(clean.shape[0], device=clean.device, dtype=clean.dtype)
        one_step = net(banded, ones).clamp(0.0, 1.0)
        restored = one_step if self.schedule.steps == 1 and not self.schedule.has_noise else self.restore(banded)
        # "_clean": the clean images' own banding scores, the floor a restoration can reach
        for suffix, output in (("_input", banded), ("_1step", one_step), ("", restored), (CLEAN, clean)):
            update_metrics(metrics, suffix, output, clean, banded)
        return restored

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        restored = self._evaluate(batch, self.val_metrics)
        self.log_dict(
            self.val_metrics, on_step=False, on_epoch=True, prog_bar=False, batch_size=batch["clean"].shape[0]
        )
        need = self.hparams.num_log_images - sum(r.shape[0] for r in self._grid_rows)
        if need > 0:
            self._grid_rows.append(
                torch.stack([batch["banded"][:need], restored[:need], batch["clean"][:need]], dim=1).cpu()
            )

    def on_validation_epoch_end(self) -> None:
        # the epoch's metrics are final here (Lightning resets them after this hook)
        psnr = self.val_metrics["psnr"].compute()
        self.log("val/psnr_gain", psnr - self.val_metrics["psnr_input"].compute(), prog_bar=True)
        self.log("val/score", psnr - self.hparams.score_cambi_weight * self.val_metrics["cambi_mlc5"].compute())
        rows, self._grid_rows = self._grid_rows, []
        every = max(1, int(self.hparams.log_images_every_n_epochs))
        last = self.trainer.max_epochs is not None and self.current_epoch + 1 >= self.trainer.max_epochs
        if not rows or self.trainer.sanity_checking or not self.trainer.is_global_zero:
            return
        if (self.current_epoch + 1) % every and not last:
            return
        grid = make_grid(torch.cat(rows))
        out = Path(self.trainer.default_root_dir) / "images" / f"val_epoch{self.current_epoch:03d}.png"
        log_image_grid(
            self.loggers,
            grid,
            out,
            key="val/images",
            step=self.global_step,
            caption=f"epoch {self.current_epoch}: banded | restored ({self.schedule.steps} steps) | clean",
        )

    def test_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._evaluate(batch, self.test_metrics)
        self.log_dict(self.test_metrics, on_step=False, on_epoch=True, batch_size=batch["clean"].shape[0])

    # ------------------------------------------------------------------ optimisation
    def _param_groups(self) -> list[dict[str, Any]] | Any:
        """The optimizer's parameter groups: one per learning-rate factor of ``lr_scale`` (frozen ones left out)."""
        if not self._lr_scale:
            return self.net.parameters()
        base_lr = float(self.hparams.optimizer.get("lr", 1e-3))
        groups: dict[float, list[torch.nn.Parameter]] = {}
        for name, param in self.net.named_parameters():
            match = max((k for k in self._lr_scale if name.startswith(k)), key=len, default=None)
            factor = 1.0 if match is None else self._lr_scale[match]
            param.requires_grad_(factor > 0)
            if factor > 0:
                groups.setdefault(factor, []).append(param)
        if not groups:
            raise ConfigError("model.lr_scale freezes every parameter: nothing would train")
        return [{"params": ps, "lr": base_lr * f} for f, ps in groups.items()]

    def configure_optimizers(self) -> Any:
        optimizer = hydra.utils.instantiate(self.hparams.optimizer)(params=self._param_groups())
        if not self.hparams.scheduler:
            return optimizer
        factory = hydra.utils.instantiate(self.hparams.scheduler)
        kwargs = {}
        if "total_steps" not in self.hparams.scheduler and "total_steps" in inspect.signature(factory).parameters:
            kwargs["total_steps"] = max(1, int(self.trainer.estimated_stepping_batches))
        scheduler = factory(optimizer=optimizer, **kwargs)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": self.hparams.scheduler_interval},
        }


def _check_lr_scale(spec: Any) -> dict[str, float] | None:
    if spec is None:
        return None
    ok = isinstance(spec, Mapping) and all(
        isinstance(k, str) and isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0
        for k, v in spec.items()
    )
    if not ok:
        raise ConfigError(f"model.lr_scale must map parameter-name prefixes to factors >= 0, got {spec!r}")
    return {k: float(v) for k, v in spec.items()}


def _load_initial_weights(net: torch.nn.Module, path: str | os.PathLike) -> None:
    """Copy the matching network weights of ``path`` (training checkpoint or export) into ``net``."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"model.init_from: file not found: '{p}'")
    try:
        blob = torch.load(p, map_location="cpu", weights_only=False)
        state = blob["state_dict"]
    except Exception as exc:  # noqa: BLE001 - any unreadable file means the same thing to the user
        raise DataError(f"model.init_from: cannot read '{p}': {type(exc).__name__}") from None
    if "hyper_parameters" in blob:  # a Lightning checkpoint: the EMA weights are what validation measured
        prefix = "ema.module." if any(k.startswith("ema.module.") for k in state) else "net."
        state = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
    own = net.state_dict()
    loaded = {k: v.to(own[k].dtype) for k, v in state.items() if k in own and own[k].shape == v.shape}
    if not loaded:
        raise DataError(f"model.init_from: no weights of '{p}' fit this network")
    net.load_state_dict(loaded, strict=False)
    log.info("initialised %d of %d tensors from %s (the rest are new)", len(loaded), len(own), p)


def load_checkpoint(path: str | os.PathLike, device: str = "cpu", ckpt: dict | None = None) -> INDIModule:
    """Load an :class:`INDIModule` checkpoint (EMA included), with one-line errors for bad files.

    ``ckpt``: the already-loaded checkpoint dict of ``path``, to avoid reading it twice.
    """
    p = Path(path)
    if ckpt is None:
        if not p.is_file():
            raise DataError(f"checkpoint not found: '{p}'")
        try:
            ckpt = torch.load(p, map_location="cpu", weights_only=False)
        except Exception as exc:  # noqa: BLE001 - any unpickling failure means the same thing to the user
            raise DataError(
                f"cannot read checkpoint '{p}': {type(exc).__name__}: {(str(exc).splitlines() or [''])[0]}"
            ) from None
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt or "net" not in ckpt.get("hyper_parameters", {}):
        raise DataError(f"'{p}' is not an indi-deband training checkpoint (no model config inside)")
    try:
        # the stored weights replace any initial ones: no need to read init_from's file again
        module = INDIModule(**{**ckpt["hyper_parameters"], "init_from": None})
        module.load_state_dict(upgrade_state_dict(ckpt["state_dict"]))
    except (RuntimeError, KeyError, TypeError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(
            f"checkpoint '{p}' does not match the model config stored in it "
            f"(made with an incompatible version or config): {first}"
        ) from None
    return module.eval().to(device)
