"""Layers of the factorized transformers: axis-wise low-rank attention and its helpers.

FactFormer (Li, Shu & Barati Farimani, NeurIPS 2023) replaces full attention over all
``N = n_1·…·n_D`` points of a grid by one small kernel per axis. For axis ``a`` the field is
averaged over the other axes, ``ū_a(i) = mean_{other axes} W_in u``, giving ``n_a``
tokens; queries and keys of those tokens, rotated by their coordinate (rotary encoding),
give the kernel

    K_a[h](i, j) = s · Σ_c q_a[h](i)_c k_a[h](j)_c,      an ``n_a × n_a`` matrix per head,

and the values ``v = W_v u`` are mixed along that axis only:
``(K_a ⋆_a v)(…, i, …) = Σ_j K_a(i, j) v(…, j, …)``. The chained form (FactFormer,
IFactFormer-o) composes the axes, ``K_x ⋆_x K_y ⋆_y K_z ⋆_z v``, which is a low-rank
approximation of a full kernel on the grid; the parallel form (IFactFormer-m, Yang, Wang
& Wang, 2024) applies each axis kernel to ``v`` separately and concatenates the results.
Cost per head: ``O(N·Σ_a n_a)`` instead of ``O(N²)``.

Layers know nothing about configs, normalisation or checkpoints; :mod:`models.factformer`
composes them. Fields inside the network are channels-last, ``(B, *space, dim)``; every
layer runs unchanged on CPU and CUDA and under ``torch.device("meta")``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

# Gain of the Xavier-uniform initialisation of the query/key projections (as in the
# reference code): the kernels start small, so a fresh block perturbs its input little.
QK_INIT_GAIN = 0.02

# Epsilon of the instance normalisation after the attention (PyTorch's InstanceNorm default).
NORM_EPS = 1e-5

# Base of the rotary frequencies, θ_c = base^(−2c/d) (RoFormer's 10000).
ROTARY_BASE = 10000.0


def axis_coordinates(
    n: int, periodic: bool, device: torch.device | None = None, dtype: torch.dtype | None = None
) -> torch.Tensor:
    """Normalised coordinates of ``n`` grid points along one axis, shape ``(n,)``.

    Periodic axis: ``i/n ∈ [0, 1)`` (the point at 1 is the point at 0). Bounded axis (the
    wall-normal ``y`` of a channel, both walls on the grid): ``i/(n − 1) ∈ [0, 1]``. Either
    way the same physical position gets the same coordinate at every resolution.
    """
    i = torch.arange(n, device=device, dtype=dtype or torch.get_default_dtype())
    return i / n if periodic else i / max(n - 1, 1)


def rotate_pairs(t: torch.Tensor, angles: torch.Tensor) -> torch.Tensor:
    """Rotary position encoding (RoFormer) of the last axis of ``t``.

    With ``t = (t₁, t₂)`` split in halves and ``angles`` ``(…, d/2)``, returns
    ``(t₁ cos φ − t₂ sin φ, t₂ cos φ + t₁ sin φ)``: each pair ``(t₁ᶜ, t₂ᶜ)`` is rotated by
    ``φ_c``. Then ``rot(q, φ(x))·rot(k, φ(x'))`` depends on ``x − x'`` only, so the kernel
    built from rotated queries and keys knows relative positions.
    """
    half = t.shape[-1] // 2
    t1, t2 = t[..., :half], t[..., half:]
    cos, sin = angles.cos(), angles.sin()
    return torch.cat((t1 * cos - t2 * sin, t2 * cos + t1 * sin), dim=-1)


def rotary_angles(coords: torch.Tensor, dim: int, scale: float) -> torch.Tensor:
    """Angles ``φ_c(x) = scale · x · base^(−2c/dim)``, ``c < dim/2``: shape ``(n, dim/2)``.

    ``scale`` is the angle the fastest pair turns through over a unit of coordinate (the
    reference's ``1/min_freq = 64``).
    """
    c = torch.arange(0, dim, 2, device=coords.device, dtype=coords.dtype)
    inv_freq = ROTARY_BASE ** (-c / dim)
    return (scale * coords)[:, None] * inv_freq[None, :]


class GaussianFourierFeatures(nn.Module):
    """Random Fourier features of point coordinates (Tancik et al., 2020).

    ``γ(x) = [sin(2π x·B), cos(2π x·B)]`` with ``B`` of shape ``(pos_dims, n_features)``
    drawn once from ``N(0, scale²)``. ``B`` is a fixed random projection, not learned, so it
    is a buffer (saved with the weights, not a parameter). No parameters.
    Shapes: ``(N, pos_dims) → (N, 2·n_features)``.
    """

    def __init__(self, pos_dims: int, n_features: int, scale: float):
        super().__init__()
        self.register_buffer("frequencies", scale * torch.randn(pos_dims, n_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        proj = 2 * math.pi * (x @ self.frequencies.to(x.dtype))
        return torch.cat((proj.sin(), proj.cos()), dim=-1)


class FrameLift(nn.Module):
    """Lifts a window of ``T`` frames of ``C`` channels to ``dim`` features per point.

    ``h = W₂ · [GELU(a_c u_{t,c} + b_c)]_{t,c}``: each physical channel is first widened to
    ``dim/(2C)`` features by its own pointwise affine map (the same for every frame: a
    grouped 1×1 convolution), then one linear map without bias mixes the ``T × dim/2``
    features of the window into ``dim`` (a convolution over the whole window in time).

    Parameter count: ``dim`` (the grouped affine map: ``dim/2`` weights and biases) plus
    ``T·dim²/2``. Needs ``dim/2`` divisible by ``C``.
    Shapes: ``(B, T, C, N) → (B, N, dim)``.
    """

    def __init__(self, channels: int, history: int, dim: int):
        super().__init__()
        half = dim // 2
        if dim % 2 or half % channels:
            raise ValueError(
                f"FrameLift needs dim/2 divisible by channels; got dim={dim}, channels={channels}"
            )
        self.widen = nn.Conv2d(channels, half, kernel_size=1, groups=channels)
        self.mix = nn.Conv2d(half, dim, kernel_size=(history, 1), bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.mix(F.gelu(self.widen(x.transpose(1, 2))))  # (B, dim, 1, N)
        return z.squeeze(2).transpose(1, 2)


class AxisPooling(nn.Module):
    """Projects a field onto one axis: the tokens from which that axis's kernel is built.

    ``ū(i) = mean_{other axes} (W_in u)(…, i, …)``, then a gated MLP with a pre-norm:
    ``p(i) = W₂ (GELU(A ū') ⊙ (B ū')) + b₂`` with ``ū' = LayerNorm(ū(i))`` and
    ``[A; B] = W₁, b₁`` one ``dim → 2·dim`` linear map.

    Parameter count: ``dim²`` (``W_in``, no bias) + ``2·dim`` (LayerNorm)
    + ``2·dim² + 2·dim`` (``W₁``) + ``dim·latent + latent`` (``W₂``).
    Shapes: ``(B, *space, dim) → (B, n_axis, latent)``.
    """

    def __init__(self, dim: int, latent_dim: int, axis: int):
        super().__init__()
        self.axis = axis
        self.to_in = nn.Linear(dim, dim, bias=False)
        self.norm = nn.LayerNorm(dim)
        self.gate = nn.Linear(dim, 2 * dim)
        self.out = nn.Linear(dim, latent_dim)

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        others = [d for d in range(1, u.ndim - 1) if d != 1 + self.axis]
        # W_in has no bias, so averaging first gives the same tokens for less work.
        z = self.norm(self.to_in(u.mean(dim=others) if others else u))
        a, b = self.gate(z).chunk(2, dim=-1)
        return self.out(F.gelu(a) * b)


class AxialKernel(nn.Module):
    """The low-rank kernel of one axis: ``K[h](i, j) = s · rot(q_h(i))·rot(k_h(j))``.

    ``q = W_q p``, ``k = W_k p`` (no biases) from the axis tokens ``p`` of
    :class:`AxisPooling`, split into ``heads`` of ``kernel_dim`` features, each rotated by
    its coordinate (:func:`rotate_pairs`, angles from :func:`rotary_angles`). No softmax:
    the kernel is a plain (signed) integral kernel, as in the reference code. ``s`` is
    ``scaling`` (:class:`FactorizedAttention` passes 1, or ``1/√kernel_dim`` when
    ``kernel_dim > 4·head_dim``: the reference's rule).

    Parameter count: ``2 · latent · heads · kernel_dim``.
    Shapes: tokens ``(B, n, latent)``, coordinates ``(n,)`` → ``(B, heads, n, n)``.
    """

    def __init__(
        self, latent_dim: int, heads: int, kernel_dim: int, rotary_scale: float, scaling: float
    ):
        super().__init__()
        if kernel_dim % 2:
            raise ValueError(
                f"AxialKernel needs an even kernel_dim for rotary pairs; got {kernel_dim}"
            )
        self.heads = heads
        self.kernel_dim = kernel_dim
        self.rotary_scale = rotary_scale
        self.scaling = scaling
        self.to_q = nn.Linear(latent_dim, heads * kernel_dim, bias=False)
        self.to_k = nn.Linear(latent_dim, heads * kernel_dim, bias=False)
        nn.init.xavier_uniform_(self.to_q.weight, gain=QK_INIT_GAIN)
        nn.init.xavier_uniform_(self.to_k.weight, gain=QK_INIT_GAIN)

    def forward(self, tokens: torch.Tensor, coords: torch.Tensor) -> torch.Tensor:
        batch, n, _ = tokens.shape
        q = self.to_q(tokens).view(batch, n, self.heads, self.kernel_dim).transpose(1, 2)
        k = self.to_k(tokens).view(batch, n, self.heads, self.kernel_dim).transpose(1, 2)
        angles = rotary_angles(coords.to(q.dtype), self.kernel_dim, self.rotary_scale)
        q, k = rotate_pairs(q, angles), rotate_pairs(k, angles)
        return self.scaling * (q @ k.transpose(-1, -2))


def apply_along_axis(kernel: torch.Tensor, v: torch.Tensor, axis: int) -> torch.Tensor:
    """``(K ⋆_a v)(…, i, …) = Σ_j K(i, j) v(…, j, …)`` along spatial axis ``axis``.

    ``kernel``: ``(B, h, n, n)``; ``v``: ``(B, h, *space, e)`` with ``space[axis] = n``.
    For a contiguous ``v`` this is one batched matrix product on a view of ``v``, the
    axes before ``axis`` acting as a batch over which the kernel is broadcast; the result
    is contiguous in the same layout.
    """
    batch, heads = v.shape[:2]
    space = v.shape[2:-1]
    outer = math.prod(space[:axis])
    blocks = v.reshape(batch, heads, outer, space[axis], -1)
    return (kernel.unsqueeze(2) @ blocks).view(v.shape)


class FactorizedAttention(nn.Module):
    """One factorized-attention block (FactFormer's FABlock; IFactFormer's FABlock-o/-m).

    For ``u`` of shape ``(B, *space, dim)`` with ``D = len(space)`` axes:

    1. ``ũ = LayerNorm(u)``; values ``v = W_v ũ`` (``heads × head_dim``, no bias);
       ``w = W_in ũ`` (no bias);
    2. per axis ``a``: tokens ``p_a = AxisPooling_a(w)``, kernel ``K_a = AxialKernel_a(p_a,
       x_a)`` with ``x_a`` the axis coordinates;
    3. ``chained``: ``φ = K_D ⋆_D (… K_2 ⋆_2 (K_1 ⋆_1 v))`` (maps along different axes
       commute), ``P = 1`` block of ``heads·head_dim`` channels;
       ``parallel``: ``φ = [K_1 ⋆_1 v, …, K_D ⋆_D v]`` concatenated per head, ``P = D``;
    4. instance normalisation of ``φ`` (each channel over the grid, no affine), then
       ``W_o₂ GELU(W_o₁ φ)`` (``P·heads·head_dim → dim → dim``, no biases).

    The caller adds the result to ``u`` (a residual update). Parameter count, with
    ``d = dim``, ``H = heads``, ``e = head_dim``, ``m = kernel_multiplier``, latent ``= d``::

        2d + d·H·e + d²                            LayerNorm, W_v, W_in
        + D·(4d² + 5d)                             AxisPooling per axis
        + D·2·d·H·e·m                              AxialKernel per axis (W_q, W_k)
        + P·H·e·d + d²                             output MLP

    Shapes: ``(B, *space, dim) → (B, *space, dim)`` for any grid with at least two points.
    """

    def __init__(
        self,
        dim: int,
        heads: int,
        head_dim: int,
        n_axes: int,
        kernel_multiplier: int,
        parallel: bool,
        rotary_scale: float,
    ):
        super().__init__()
        if n_axes < 1:
            raise ValueError(f"FactorizedAttention needs at least one axis; got {n_axes}")
        self.heads = heads
        self.head_dim = head_dim
        self.n_axes = n_axes
        self.parallel = parallel
        kernel_dim = head_dim * kernel_multiplier
        scaling = 1 / math.sqrt(kernel_dim) if kernel_multiplier > 4 else 1.0
        self.norm = nn.LayerNorm(dim)
        self.to_v = nn.Linear(dim, heads * head_dim, bias=False)
        self.to_in = nn.Linear(dim, dim, bias=False)
        self.pool = nn.ModuleList(AxisPooling(dim, dim, axis) for axis in range(n_axes))
        self.kernel = nn.ModuleList(
            AxialKernel(dim, heads, kernel_dim, rotary_scale, scaling) for _ in range(n_axes)
        )
        groups = n_axes if parallel else 1
        self.out_hidden = nn.Linear(groups * heads * head_dim, dim, bias=False)
        self.out = nn.Linear(dim, dim, bias=False)

    def forward(self, u: torch.Tensor, coords: list[torch.Tensor]) -> torch.Tensor:
        space = u.shape[1:-1]
        if len(space) != self.n_axes or len(coords) != self.n_axes:
            raise ValueError(
                f"FactorizedAttention expects {self.n_axes} spatial axes and coordinates; "
                f"got a field {tuple(u.shape)} and {len(coords)} coordinate arrays"
            )
        u = self.norm(u)
        batch, n_points = u.shape[0], math.prod(space)
        heads, e = self.heads, self.head_dim
        # (B, *space, H·e) → (B, H, *space, e), contiguous: every axis map is then a view
        v = self.to_v(u).view(batch, n_points, heads, e).transpose(1, 2).contiguous()
        v = v.view(batch, heads, *space, e)
        w = self.to_in(u)
        kernels = [
            kernel(pool(w), x)
            for pool, kernel, x in zip(self.pool, self.kernel, coords, strict=True)
        ]
        if self.parallel:
            parts = [apply_along_axis(k, v, a) for a, k in enumerate(kernels)]
        else:
            phi = v  # the axis maps act on different indices, so their order is immaterial
            for a, k in enumerate(kernels):
                phi = apply_along_axis(k, phi, a)
            parts = [phi]
        # Instance normalisation of every channel over the grid, then W_o₁ on the channels
        # ordered (head, part, feature), applied part by part: no concatenated copy.
        weight = self.out_hidden.weight.view(-1, heads, len(parts), e)
        hidden = None
        for p, part in enumerate(parts):
            flat = part.view(batch, heads, n_points, e)
            centred = flat - flat.mean(dim=2, keepdim=True)  # two-pass variance: exact
            var = centred.square().mean(dim=2, keepdim=True)
            normed = (centred * torch.rsqrt(var + NORM_EPS)).transpose(1, 2)
            term = F.linear(normed.reshape(batch, n_points, heads * e), weight[:, :, p].flatten(1))
            hidden = term if hidden is None else hidden + term
        out = self.out(F.gelu(hidden))
        return out.view(batch, *space, out.shape[-1])
