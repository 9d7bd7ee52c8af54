"""A tiny learnable problem that every model in the zoo must solve: the "does it learn" test.

The data are exact solutions of a linear PDE on the periodic box, advection by a constant
velocity plus diffusion, evolved in Fourier space: û(k, t+Δt) = û(k, t)·exp(−(i c·k +
ν|k|²)Δt). Smooth random initial fields (a few low modes) make the map from one frame to
the next a fixed Fourier multiplier, which every operator in the zoo can represent, while
persistence (predicting no change) is clearly wrong: the shift moves the highest mode by about
a quarter of a wavelength per step.

``fit`` is deliberately a bare Adam loop over the model's contract (windows of ``history``
frames → the next ``out_steps`` frames), so a model's learning test does not depend on the
training pipeline's features.
"""

from __future__ import annotations

import math

import torch

from models.losses import relative_l2


def smooth_fields(
    n_samples: int, channels: int, space: tuple[int, ...], max_mode: int = 3, seed: int = 0
) -> torch.Tensor:
    """Random real fields with Fourier modes |k_i| ≤ max_mode only, (N, C, *space), std ≈ 1."""
    g = torch.Generator().manual_seed(seed)
    spectrum_shape = (n_samples, channels, *space[:-1], space[-1] // 2 + 1)
    coeffs = torch.complex(
        torch.randn(spectrum_shape, generator=g), torch.randn(spectrum_shape, generator=g)
    )
    mask = torch.ones(spectrum_shape[2:], dtype=torch.bool)
    for axis, n in enumerate(space):
        k = torch.fft.rfftfreq(n, 1 / n) if axis == len(space) - 1 else torch.fft.fftfreq(n, 1 / n)
        keep = k.abs() <= max_mode
        shape = [1] * len(space)
        shape[axis] = -1
        mask = mask & keep.view(shape)
    fields = torch.fft.irfftn(coeffs * mask, s=space, dim=tuple(range(2, 2 + len(space))))
    return fields / fields.std()


def advect_diffuse(
    fields: torch.Tensor, steps: int, velocity: float = 0.04, nu: float = 1e-3, dt: float = 1.0
) -> torch.Tensor:
    """Trajectories ``(N, steps + 1, C, *space)`` of the exact linear evolution on [0, 1)^d.

    The constant velocity points along the diagonal (every axis moves by ``velocity·dt`` per
    step, in box units), so every axis matters.
    """
    space = fields.shape[2:]
    dims = tuple(range(2, 2 + len(space)))
    multiplier = torch.ones((), dtype=torch.complex64)
    for axis, n in enumerate(space):
        freq = (
            torch.fft.rfftfreq(n, 1 / n) if axis == len(space) - 1 else torch.fft.fftfreq(n, 1 / n)
        )
        kappa = 2 * math.pi * freq
        shape = [1] * len(space)
        shape[axis] = -1
        factor = torch.exp(torch.complex(-nu * kappa**2 * dt, -velocity * kappa * dt))
        multiplier = multiplier * factor.view(shape)
    frames = [fields]
    spectrum = torch.fft.rfftn(fields, dim=dims)
    for _ in range(steps):
        spectrum = spectrum * multiplier
        frames.append(torch.fft.irfftn(spectrum, s=space, dim=dims))
    return torch.stack(frames, dim=1).float()


def windows(trajectories: torch.Tensor, history: int, out_steps: int):
    """All (input window, target window) pairs inside the trajectories, stacked."""
    xs, ys = [], []
    n_time = trajectories.shape[1]
    for t in range(n_time - history - out_steps + 1):
        xs.append(trajectories[:, t : t + history])
        ys.append(trajectories[:, t + history : t + history + out_steps])
    return torch.cat(xs), torch.cat(ys)


def fit(model, trajectories: torch.Tensor, steps: int = 200, lr: float = 3e-3, batch: int = 8):
    """Trains ``model`` with Adam on its contract's windows; returns it in eval mode."""
    contract = model.contract
    x, y = windows(trajectories, contract.history, contract.out_steps)
    flat = trajectories.transpose(1, 2).flatten(2)  # (N, C, T·space)
    model.set_normalization(flat.mean(dim=(0, 2)), flat.std(dim=(0, 2)))
    g = torch.Generator().manual_seed(0)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=steps)
    model.train()
    for _ in range(steps):
        rows = torch.randint(0, x.shape[0], (batch,), generator=g)
        loss = relative_l2(model(x[rows]), y[rows])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
    return model.eval()


@torch.no_grad()
def errors(model, trajectories: torch.Tensor) -> tuple[float, float]:
    """(model, persistence) relative L2 over every window of held-out trajectories.

    Persistence repeats the last input frame for each output step.
    """
    contract = model.contract
    x, y = windows(trajectories, contract.history, contract.out_steps)
    persistence = x[:, -1:].expand_as(y)
    return relative_l2(model(x), y).item(), relative_l2(persistence, y).item()


def learning_problem(
    channels: int, space: tuple[int, ...], n_train: int = 24, n_val: int = 6, steps: int = 8
) -> tuple[torch.Tensor, torch.Tensor]:
    """(train, validation) trajectories, different initial fields, same dynamics."""
    train = advect_diffuse(smooth_fields(n_train, channels, space, seed=1), steps)
    val = advect_diffuse(smooth_fields(n_val, channels, space, seed=2), steps)
    return train, val
