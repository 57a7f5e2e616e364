"""The INDI schedule (Inversion by Direct Iteration, Delbracio & Milanfar 2023), without Lightning.

Notation: ``clean`` = x (the target), ``banded`` = y (the degraded observation), t in [0, 1].
The training path is ``x_t = (1 - t) x + t y (+ t * eps_t * n)``: t = 1 is the banded image, t = 0 the clean one.
A restoration network F(x_t, t) predicts x; the sampler walks from t = 1 to t = 0 with

    x_{t-d} = (d / t) F(x_t, t) + (1 - d / t) x_t (+ (t - d) sqrt(eps_{t-d}^2 - eps_t^2) z)

so one step (N = 1) is plain regression F(y, 1), and more steps trade distortion for perceptual quality.
Everything here takes plain tensors: images ``(B, C, H, W)`` and times ``(B,)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch

from src.utils.errors import ConfigError
from src.utils.validate import check_int

Denoiser = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
NOISE_KINDS = ("none", "constant", "sqrt")


class INDISchedule:
    """Training-path construction, t sampling and the iterative sampler of INDI.

    Args:
        steps: default number of sampling steps N (>= 1).
        t_one_weight: weight ``a`` of the point mass at t = 1 mixed with uniform t on (0, 1];
            a sample lands at t = 1 with probability a / (1 + a) (the paper's a = 0.5 gives 1/3;
            ``inf`` gives t = 1 always, i.e. plain regression).
        noise: path noise, ``none`` (default), ``constant`` (eps_t = eps0) or ``sqrt`` (eps_t = eps0 / sqrt(t)).
        eps0: path-noise scale.
        grid: ``uniform`` (t_k = 1 - k / N) or an explicit decreasing list of times from 1 to 0.
        t_min: smallest t of the ``sqrt`` noise, so eps_t stays finite near t = 0.
        max_change: if set, the sampler keeps every iterate within this distance of the banded input, per
            pixel (a projection onto the set of images that could have been quantized to the input, for steps
            up to 2 * max_change). Each step moves x_t by d / t times the network's correction, and these add
            up to about ln N corrections over N steps; where the network is wrong (a halo along an edge) the
            error compounds with N. The training path never leaves the set, so a good network is unaffected.
    """

    def __init__(
        self,
        steps: int = 10,
        t_one_weight: float = 0.5,
        noise: str = "none",
        eps0: float = 0.0,
        grid: str | Sequence[float] = "uniform",
        t_min: float = 1e-3,
        max_change: float | None = None,
    ) -> None:
        check_int("indi.steps", steps, 1)
        if t_one_weight < 0:
            raise ConfigError(f"indi.t_one_weight must be >= 0, got {t_one_weight}")
        if noise not in NOISE_KINDS:
            raise ConfigError(f"indi.noise must be one of {', '.join(NOISE_KINDS)}; got {noise!r}")
        if eps0 < 0:
            raise ConfigError(f"indi.eps0 must be >= 0, got {eps0}")
        if not 0 < t_min < 1:
            raise ConfigError(f"indi.t_min must be in (0, 1), got {t_min}")
        if max_change is not None and not max_change > 0:
            raise ConfigError(f"indi.max_change must be > 0 or null, got {max_change!r}")
        self.max_change = None if max_change is None else float(max_change)
        self.steps = steps
        self.t_one_weight = float(t_one_weight)
        self.noise = noise
        self.eps0 = float(eps0)
        self.t_min = float(t_min)
        if isinstance(grid, str):
            if grid != "uniform":
                raise ConfigError(f"indi.grid must be 'uniform' or a list of times; got {grid!r}")
            self.grid: str | list[float] = grid
        else:
            self.grid = [float(g) for g in grid]
            self._check_grid(self.grid)

    # ------------------------------------------------------------------ training
    @property
    def has_noise(self) -> bool:
        return self.noise != "none" and self.eps0 > 0

    def eps(self, t: torch.Tensor) -> torch.Tensor:
        """Path-noise level eps_t for times ``t`` (any shape)."""
        if not self.has_noise:
            return torch.zeros_like(t)
        if self.noise == "constant":
            return torch.full_like(t, self.eps0)
        return self.eps0 / torch.sqrt(t.clamp_min(self.t_min))

    def sample_t(
        self, batch_size: int, generator: torch.Generator | None = None, device: torch.device | str = "cpu"
    ) -> torch.Tensor:
        """Training times ``(B,)``: uniform on (0, 1], with probability a / (1 + a) exactly 1."""
        u = torch.rand(batch_size, generator=generator, device=device)
        t = 1.0 - u  # (0, 1]: t = 0 would ask the net for the identity on clean input, which is never used
        # a = inf (YAML .inf) means t = 1 always: one-step regression
        p_one = 1.0 if math.isinf(self.t_one_weight) else self.t_one_weight / (1.0 + self.t_one_weight)
        at_one = torch.rand(batch_size, generator=generator, device=device) < p_one
        return torch.where(at_one, torch.ones_like(t), t)

    def train_pair(
        self, clean: torch.Tensor, banded: torch.Tensor, t: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """The point x_t on the path between ``clean`` (t = 0) and ``banded`` (t = 1).

        Args:
            clean, banded: ``(B, C, H, W)``.
            t: ``(B,)`` times in [0, 1].
        Returns:
            x_t ``(B, C, H, W)``; the network's training target is ``clean``.
        """
        tb = _bcast(t, clean)
        x_t = (1.0 - tb) * clean + tb * banded
        if self.has_noise:
            z = torch.randn(clean.shape, generator=generator, device=clean.device, dtype=clean.dtype)
            x_t = x_t + tb * _bcast(self.eps(t), clean) * z
        return x_t

    # ------------------------------------------------------------------ sampling
    def timesteps(self, steps: int | None = None, device: torch.device | str = "cpu") -> torch.Tensor:
        """The sampling grid ``(N + 1,)``, decreasing from 1 to 0."""
        if not isinstance(self.grid, str) and steps is None:
            return torch.tensor(self.grid, dtype=torch.float32, device=device)
        n = self.steps if steps is None else steps
        check_int("the number of INDI steps", n, 1)
        return torch.linspace(1.0, 0.0, n + 1, device=device)

    def step(
        self, x_t: torch.Tensor, pred: torch.Tensor, t: float, t_next: float, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """One INDI update from time ``t`` to ``t_next < t``, given the prediction ``pred = F(x_t, t)``.

        Args:
            x_t, pred: ``(B, C, H, W)``.
        Returns:
            x_{t_next} ``(B, C, H, W)``.
        """
        if not 0.0 <= t_next < t <= 1.0:
            raise ValueError(f"INDI step needs 0 <= t_next < t <= 1, got t={t}, t_next={t_next}")
        d = t - t_next
        x_next = (d / t) * pred + (1.0 - d / t) * x_t
        if self.has_noise and t_next > 0:
            e_t = float(self.eps(torch.tensor(t)))
            e_next = float(self.eps(torch.tensor(t_next)))
            # eps is non-increasing in t, so the variance to add is non-negative
            std = t_next * math.sqrt(max(e_next**2 - e_t**2, 0.0))
            if std > 0:
                z = torch.randn(x_t.shape, generator=generator, device=x_t.device, dtype=x_t.dtype)
                x_next = x_next + std * z
        return x_next

    @torch.no_grad()
    def sample(
        self,
        model: Denoiser,
        banded: torch.Tensor,
        steps: int | None = None,
        seed: int | None = 0,
        generator: torch.Generator | None = None,
        callback: Callable[[int, int], None] | None = None,
    ) -> torch.Tensor:
        """Restore ``banded`` ``(B, C, H, W)`` by walking the grid from t = 1 to 0 with ``model(x_t, t)``.

        Deterministic for a given ``seed`` (only the path noise is random). ``callback(i, n)`` is called
        after each of the n steps, for progress bars.
        """
        grid = self.timesteps(steps).tolist()
        if generator is None and self.has_noise:
            generator = torch.Generator(device=banded.device)
            if seed is not None:
                generator.manual_seed(seed)
        x = banded
        if self.has_noise:
            z = torch.randn(banded.shape, generator=generator, device=banded.device, dtype=banded.dtype)
            x = banded + float(self.eps(torch.tensor(1.0))) * z
        n = len(grid) - 1
        for i, (t, t_next) in enumerate(zip(grid[:-1], grid[1:])):
            tt = torch.full((banded.shape[0],), t, device=banded.device, dtype=banded.dtype)
            x = self.step(x, model(x, tt), t, t_next, generator=generator)
            if self.max_change is not None:
                x = banded + (x - banded).clamp(-self.max_change, self.max_change)
            if callback is not None:
                callback(i + 1, n)
        return x

    @staticmethod
    def _check_grid(grid: list[float]) -> None:
        ok = (
            len(grid) >= 2
            and abs(grid[0] - 1.0) < 1e-6
            and abs(grid[-1]) < 1e-6
            and all(a > b for a, b in zip(grid[:-1], grid[1:]))
        )
        if not ok:
            raise ConfigError(f"indi.grid must decrease strictly from 1 to 0, got {grid}")

    def __repr__(self) -> str:
        return (
            f"INDISchedule(steps={self.steps}, t_one_weight={self.t_one_weight}, noise={self.noise!r}, "
            f"eps0={self.eps0}, grid={self.grid!r}, max_change={self.max_change})"
        )


def _bcast(t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``(B,)`` -> ``(B, 1, 1, 1)`` matching ``like``'s dtype and device."""
    return t.to(like.dtype).to(like.device).view(-1, *([1] * (like.ndim - 1)))
