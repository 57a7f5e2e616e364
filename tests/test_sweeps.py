"""Sweeps as a user runs them: a joblib multirun with its summary, an Optuna search, DDP on 2 CPU processes."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, TINY

TINY_SWEEP = [o for o in TINY if not o.startswith(("model.net.width", "indi.steps"))] + ["test=false"]


def _run(*args: str, out: Path, timeout: int = 480) -> subprocess.CompletedProcess:
    env = {**os.environ, "WANDB_MODE": "offline", "INDI_ROOT": str(out), "PYTHONPATH": str(ROOT)}
    res = subprocess.run(
        [sys.executable, "-m", "src.train", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-4000:]
    return res


def _sweep_dir(out: Path) -> Path:
    dirs = list((out / "logs" / "train" / "multiruns").iterdir())
    assert len(dirs) == 1
    return dirs[0]


@pytest.mark.slow
def test_joblib_multirun_2x2_writes_jobs_wandb_runs_and_summary(tmp_path: Path):
    res = _run(
        "-m",
        "experiment=fft_indi",
        "hydra/launcher=parallel",
        "model.net.width=8,12",
        "indi.steps=1,2",
        *TINY_SWEEP,
        out=tmp_path,
    )
    sweep = _sweep_dir(tmp_path)
    jobs = sorted(p for p in sweep.iterdir() if p.is_dir() and p.name.isdigit())
    assert len(jobs) == 4
    runs = [r for j in jobs for r in (j / "wandb").glob("offline-run-*")]
    assert len(runs) == 4
    with open(sweep / "summary.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 4
    values = [float(r["val/psnr"]) for r in rows]
    assert values == sorted(values, reverse=True)  # best first
    # the summary shows what differs between jobs
    assert {r["overrides"] for r in rows} == {f"model.net.width={w} indi.steps={s}" for w in (8, 12) for s in (1, 2)}
    assert "best first" in (sweep / "summary.md").read_text() and "| job |" in res.stdout


@pytest.mark.slow
def test_optuna_three_trials(tmp_path: Path):
    _run(
        "-m",
        "hparams_search=optuna",
        "experiment=fft_indi",
        "hydra.sweeper.n_trials=3",
        "indi.steps=2",
        "hydra.sweeper.sampler.n_startup_trials=2",
        "logger=csv",
        *TINY_SWEEP,
        out=tmp_path,
    )
    sweep = _sweep_dir(tmp_path)
    results = (sweep / "optimization_results.yaml").read_text()
    assert "best_params" in results and "best_value" in results
    assert len(list(sweep.glob("*/metrics.json"))) == 3


@pytest.mark.slow
def test_ddp_sim_two_cpu_processes(tmp_path: Path):
    run = tmp_path / "run"
    _run("experiment=fft_indi", "trainer=ddp_sim", *TINY, "trainer.max_epochs=2", f"hydra.run.dir={run}", out=tmp_path)
    assert len(list((run / "checkpoints").glob("best-*.ckpt"))) == 1
    assert (run / "checkpoints" / "last.ckpt").is_file()
    assert len(list((run / "wandb").glob("offline-run-*"))) == 1
    assert (run / "metrics.json").is_file()


def test_slurm_launcher_config_composes(tmp_path: Path, monkeypatch):
    env = {**os.environ, "INDI_ROOT": str(tmp_path), "PYTHONPATH": str(ROOT)}
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "src.train",
            "hydra/launcher=slurm",
            "trainer=ddp",
            "experiment=fft_indi",
            "--cfg",
            "hydra",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    assert "SlurmLauncher" in res.stdout
    # the environment fills in partition and GPUs per node
    from hydra import compose, initialize_config_dir

    from tests.conftest import CONF

    monkeypatch.setenv("SLURM_PARTITION", "gpu")
    monkeypatch.setenv("SLURM_GPUS_PER_NODE", "4")
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("train", overrides=["hydra/launcher=slurm", "trainer=ddp"], return_hydra_config=True)
    launcher = cfg.hydra.launcher
    assert launcher.partition == "gpu" and launcher.gpus_per_node == 4 and launcher.tasks_per_node == 4
    assert launcher.timeout_min == 240 and cfg.trainer.strategy == "ddp"
