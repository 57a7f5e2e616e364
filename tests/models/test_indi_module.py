"""INDIModule options that shape training: starting from other weights, per-part learning rates, training the
coarse pass alone."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from src.models.indi_module import INDIModule
from src.utils.errors import ConfigError, DataError

NET = {"_target_": "src.models.unet.UNet", "width": 8, "depth": 2, "blend_levels": 2}
GLOBAL = {**NET, "global_branch": {"factor": 4, "width": 8, "depth": 2}}


def _save_export(net: torch.nn.Module, path: Path) -> Path:
    torch.save(
        {
            "format": "indi-deband",
            "version": 1,
            "net": NET,
            "state_dict": {k: v.half() for k, v in net.state_dict().items()},
        },
        path,
    )
    return path


def test_init_from_copies_the_matching_weights_and_keeps_new_ones_fresh(tmp_path: Path):
    torch.manual_seed(0)
    first = INDIModule(net=NET)
    path = _save_export(first.net, tmp_path / "stage1.pt")
    second = INDIModule(net=GLOBAL, init_from=str(path))
    assert torch.equal(second.net.stem.weight, first.net.stem.weight.half().float())
    # the EMA starts from the initialised weights too
    assert torch.equal(second.ema.module.stem.weight, second.net.stem.weight)
    assert second.net.global_branch.net.head.weight.abs().max() < 0.01  # new: fresh near-zero head


def test_init_from_a_lightning_checkpoint_and_bad_files(tmp_path: Path):
    torch.manual_seed(1)
    first = INDIModule(net=NET)
    ckpt = tmp_path / "a.ckpt"
    torch.save({"state_dict": first.state_dict(), "hyper_parameters": dict(first.hparams)}, ckpt)
    second = INDIModule(net=GLOBAL, init_from=str(ckpt))
    assert torch.equal(second.net.head.weight, first.ema.module.head.weight)
    with pytest.raises(DataError, match="not found"):
        INDIModule(net=NET, init_from=str(tmp_path / "missing.pt"))
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(DataError, match="cannot read"):
        INDIModule(net=NET, init_from=str(tmp_path / "junk.pt"))


def test_lr_scale_freezes_and_scales_parameter_groups():
    module = INDIModule(
        net=GLOBAL,
        optimizer={"_target_": "torch.optim.AdamW", "_partial_": True, "lr": 1e-3},
        lr_scale={"": 0.0, "global_branch": 1.0, "head": 0.1},
    )
    groups = module._param_groups()
    lrs = sorted(g["lr"] for g in groups)
    assert lrs == pytest.approx([1e-4, 1e-3])
    assert not module.net.stem.weight.requires_grad
    assert all(p.requires_grad for p in module.net.global_branch.parameters())
    with pytest.raises(ConfigError):
        INDIModule(net=NET, lr_scale={"": -1})
    with pytest.raises(ConfigError, match="freezes every"):
        INDIModule(net=NET, lr_scale={"": 0.0})._param_groups()


def test_train_part_global_trains_only_the_coarse_pass_without_running_the_full_net():
    torch.manual_seed(2)
    module = INDIModule(
        net=GLOBAL, loss={"_target_": "src.models.losses.DebandLoss", "weights": {"l1": 1.0}}, train_part="global"
    )
    groups = module._param_groups()
    trained = {id(p) for g in groups for p in g["params"]}
    assert trained == {id(p) for p in module.net.global_branch.parameters()}
    calls = []
    module.net.stem.register_forward_hook(lambda *a: calls.append(1))
    clean = torch.rand(2, 3, 32, 32)
    loss, _ = module.training_loss({"clean": clean, "banded": (clean * 15).round() / 15})
    loss.backward()
    assert not calls  # the full-resolution net is not run
    assert module.net.global_branch.net.head.weight.grad.abs().sum() > 0
    with pytest.raises(ConfigError, match="train_part"):
        INDIModule(net=NET, train_part="fine")
    with pytest.raises(ConfigError, match="global branch"):
        INDIModule(net=NET, train_part="global")
