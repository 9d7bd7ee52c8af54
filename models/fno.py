"""Fourier neural operators (Li et al., 2021) in two and three dimensions, as one-step maps.

``FNO2d`` maps a window of ``history`` vorticity frames ``(B, history, C, H, W)`` to the
next frame ``(B, 1, C, H, W)``; ``FNO3d`` does the same for velocity on ``(X, Y, Z)``
grids, with zero padding on the wall-normal axis ``Y``. Both are compositions of the layers
in :mod:`models.layers`, configured by ``FNO2dConfig`` and ``FNO3dConfig``, and share the
contract and normalisation of :class:`models.base.NeuralOperator`.

An FNO block is ``z ← σ(K z + W z)``: ``K`` a spectral convolution acting on the lowest
Fourier modes (global, resolution-independent), ``W`` a pointwise linear map with bias
(local, and carrying everything above the retained modes).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from models.base import Contract, NeuralOperator, stack_frames, zero_init
from models.config import OperatorConfig, param
from models.layers import (
    GridEmbedding2d,
    GridEmbedding3d,
    SpectralConv2d,
    SpectralConv3d,
    pointwise,
)

# The projection's hidden width is this multiple of ``width`` (128 for the reference
# width 32, as in the original FNO code). A fixed ratio keeps the parameter formula simple.
PROJECTION_RATIO = 4


# --- what the FNO family shares (also used by models.ifno) ------------------------------


class FourierOperator(NeuralOperator):
    """The ends FNO2d, FNO3d and IFNO share around their Fourier layers: frames stacked into
    channels, optional grid coordinates, a pointwise lift, the two-layer projection, and the
    config's ``residual`` choice. Subclasses call :meth:`build_lift`, then build their
    Fourier layers, then call :meth:`build_projection`: the order of construction fixes the
    initial weights drawn from the global RNG and the order of the state dict."""

    grid: nn.Module | None
    lift: nn.Module
    project_hidden: nn.Module
    project_out: nn.Module

    @property
    def residual(self) -> bool:
        return self.config.residual

    def build_lift(self, grid: nn.Module, dims: int) -> None:
        """Sets ``self.grid`` to ``grid`` (a coordinate embedding adding ``dims`` channels;
        it has no weights, so an unused one draws nothing) when the config's ``add_grid``,
        else None; and ``self.lift``, pointwise from the ``T·C`` stacked frames plus those
        coordinates to ``width`` channels."""
        config = self.config
        in_channels = config.history * config.channels + (dims if config.add_grid else 0)
        self.grid = grid if config.add_grid else None
        self.lift = pointwise(in_channels, config.width, dims=dims)

    def build_projection(self, dims: int) -> None:
        """Sets ``project_hidden`` (``width → 4·width``) and ``project_out`` (``4·width → C``),
        the latter zeroed when ``residual`` so that an untrained model is persistence."""
        config = self.config
        w = config.width
        self.project_hidden = pointwise(w, PROJECTION_RATIO * w, dims=dims)
        self.project_out = pointwise(PROJECTION_RATIO * w, config.channels, dims=dims)
        if config.residual:
            zero_init(self.project_out)

    def lifted(self, z: torch.Tensor) -> torch.Tensor:
        """The normalised window ``(B, T, C, *space)`` lifted to ``(B, width, *space)``."""
        z = stack_frames(z)
        if self.grid is not None:
            z = self.grid(z)
        return self.lift(z)

    def projected(self, z: torch.Tensor) -> torch.Tensor:
        """``(B, width, *space)`` to one output frame ``(B, 1, C, *space)``."""
        return self.project_out(F.gelu(self.project_hidden(z))).unsqueeze(1)


def ends_parameter_count(config: Any, dims: int) -> int:
    """Parameters of what :meth:`FourierOperator.build_lift` and
    :meth:`~FourierOperator.build_projection` build from ``config``: with ``c = T·C +
    dims·add_grid``, ``w = width``, ``h = 4·w``, ``(c·w + w) + (w·h + h) + (h·C + C)``."""
    w = config.width
    c = config.history * config.channels + (dims if config.add_grid else 0)
    hidden = PROJECTION_RATIO * w
    lift = c * w + w
    projection = w * hidden + hidden + hidden * config.channels + config.channels
    return lift + projection


def fourier_layers(z: torch.Tensor, spectral: nn.ModuleList, local: nn.ModuleList) -> torch.Tensor:
    """FNO blocks ``z ← σ(K_l z + W_l z + b_l)``, σ = GELU except after the last block
    (the projection's own nonlinearity follows it)."""
    for i, (k, w) in enumerate(zip(spectral, local, strict=True)):
        z = k(z) + w(z)
        if i < len(spectral) - 1:
            z = F.gelu(z)
    return z


def check_space(name: str, dims: int, space: tuple[int, ...]) -> tuple[int, ...]:
    """``space`` as a tuple of ints; ``ValueError`` unless it has ``dims`` positive sizes."""
    space = tuple(int(n) for n in space)
    axes = "(H, W)" if dims == 2 else "(X, Y, Z)"
    if len(space) != dims:
        raise ValueError(f"{name} works on {dims}D grids {axes}; got a grid of shape {space}")
    if min(space) < 1:
        raise ValueError(f"{name} needs at least one point along every axis; got {space}")
    return space


# Config fields that FNO2d, FNO3d and IFNO (models.ifno) declare alike: one declaration each,
# so their help text (shown in the generated forms) cannot drift apart. Each config still
# names its own defaults.


def channels_field(default: int, meaning: str) -> Any:
    return param(default, f"Physical channels the model reads and predicts ({meaning}).", min=1)


def history_field() -> Any:
    return param(
        1,
        "Consecutive input frames. They are stacked as input channels, so with more than "
        "one frame the model also sees how the field has been changing.",
        min=1,
    )


def width_field(default: int, where: str = "every Fourier layer") -> Any:
    return param(
        default,
        f"Channels of the hidden representation inside {where}. Larger is more "
        "expressive; the parameter count grows as width².",
        min=1,
    )


def modes_field(default: int, where: str = "each spectral convolution") -> Any:
    return param(
        default,
        f"Fourier modes kept per axis in {where}: the wavenumbers the learned global kernel "
        "acts on. The grid needs at least 2·modes points per axis.",
        min=1,
    )


def n_layers_field(default: int) -> Any:
    return param(
        default, "Number of Fourier layers (spectral convolution plus pointwise map, GELU).", min=1
    )


def add_grid_2d_field() -> Any:
    return param(
        True,
        "Append the coordinates of each point (x, y in [0, 1)) as two extra input "
        "channels, so the model can learn effects tied to position, such as a fixed forcing.",
        advanced=True,
    )


def residual_field() -> Any:
    return param(
        True,
        "Predict the change from the last input frame rather than the new frame. An "
        "untrained model is then exactly persistence, which makes training faster and steadier.",
        advanced=True,
    )


# What FNO3d and IFNO3d (models.ifno) share on channel-flow grids (X, Y, Z), Y wall-normal:
# their config fields, the grid rule, the coordinate channels and the wall-normal padding.


def modes_x_field(default: int) -> Any:
    return param(
        default,
        "Fourier modes kept along x (streamwise, periodic), for each sign of the wavenumber. "
        "The grid needs at least 2·modes_x points along x.",
        min=1,
    )


def modes_y_field(default: int) -> Any:
    return param(
        default,
        "Fourier modes kept along y (wall-normal), for each sign of the wavenumber, on the "
        "padded axis. The grid needs at least 2·modes_y points along y, padding included.",
        min=1,
    )


def modes_z_field(default: int) -> Any:
    return param(
        default,
        "Fourier modes kept along z (spanwise, periodic). The grid needs at least "
        "2·modes_z points along z.",
        min=1,
    )


def add_grid_3d_field() -> Any:
    return param(
        True,
        "Append the coordinates of each point as three extra input channels (x, z in "
        "[0, 1), y from 0 at one wall to 1 at the other), so the model knows where the "
        "walls are.",
        advanced=True,
    )


def pad_y_field(default: int) -> Any:
    return param(
        default,
        "Zero points appended to the wall-normal axis inside the network and cropped off "
        "after it, so the Fourier layers (which assume periodicity) do not couple the two "
        "walls. 0 treats y as periodic.",
        min=0,
        advanced=True,
    )


def check_channel_grid(name: str, config: Any, space: tuple[int, ...]) -> None:
    """The grid rule of a 3D Fourier operator ``name`` whose ``config`` has ``modes_x``,
    ``modes_y``, ``modes_z`` and ``pad_y``: ``ValueError`` unless the ``(X, Y, Z)`` grid
    holds ``2·modes`` points per axis (``Y`` counted with its padding)."""
    nx, ny, nz = check_space(name, 3, space)
    grid = f"{nx}×{ny}×{nz}"
    for axis, n, modes, extra in (
        ("x", nx, config.modes_x, ""),
        ("y", ny + config.pad_y, config.modes_y, f" (padding of {config.pad_y} included)"),
        ("z", nz, config.modes_z, ""),
    ):
        if n < 2 * modes:
            raise ValueError(
                f"a {grid} grid is too coarse for {name} with modes_{axis} = {modes}: the "
                f"{axis} axis needs at least 2·modes_{axis} = {2 * modes} points{extra} "
                f"and has {n}; use fewer modes or a finer grid"
            )


def fourier_layer_3d_parameter_count(config: Any) -> int:
    """Parameters of one 3D Fourier layer (a :class:`~models.layers.SpectralConv3d` and
    the pointwise map beside it) of ``config``: ``8·w²·modes_x·modes_y·modes_z + w² + w``."""
    w = config.width
    return 8 * w * w * config.modes_x * config.modes_y * config.modes_z + w * w + w


def channel_grid() -> GridEmbedding3d:
    """The coordinate channels of a channel-flow grid: x and z periodic, y wall to wall."""
    return GridEmbedding3d(periodic=(True, False, True))


def pad_wall_normal(z: torch.Tensor, pad_y: int) -> torch.Tensor:
    """``(B, C, X, Y, Z)`` with ``pad_y`` zero points appended to ``Y`` (domain padding:
    the spectral layers then see a periodic box in which the walls are separated by the
    padding instead of touching); crop with ``z[..., :Y, :]``."""
    return F.pad(z, (0, 0, 0, pad_y)) if pad_y else z


# --- 2D -------------------------------------------------------------------------------


@dataclass
class FNO2dConfig(OperatorConfig):
    """Hyper-parameters of :class:`FNO2d`.

    ``modes`` is used along both axes, so a grid needs ``H + padding`` and ``W + padding``
    of at least ``2·modes`` (:meth:`check_grid`). Configs written for the earlier FNO2d
    (``in_channels``/``out_channels`` instead of ``channels``) are read by :meth:`from_dict`.
    """

    title: ClassVar[str] = "Fourier neural operator (2D)"

    channels: int = channels_field(1, "1 for vorticity")
    history: int = history_field()
    width: int = width_field(32)
    modes: int = modes_field(12)
    n_layers: int = n_layers_field(4)
    add_grid: bool = add_grid_2d_field()
    residual: bool = residual_field()
    padding: int = param(
        0,
        "Zero points appended to both axes inside the network and cropped off after it. Keep "
        "0 for periodic flows; a few points (e.g. 8) for non-periodic fields, so the Fourier "
        "layers do not wrap one boundary onto the other.",
        min=0,
        advanced=True,
    )

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> FNO2dConfig:
        """Builds a config from a (possibly partial) dict; unknown keys are an error.

        The earlier FNO2d's keys ``in_channels`` and ``out_channels`` (default 1 each) are
        mapped to ``channels`` when they are equal, so shipped checkpoints still load.
        """
        data = dict(data or {})
        legacy = {k: data.pop(k) for k in ("in_channels", "out_channels") if k in data}
        if legacy:
            c_in, c_out = legacy.get("in_channels", 1), legacy.get("out_channels", 1)
            if c_in != c_out:
                raise ValueError(
                    f"FNO2dConfig: in_channels={c_in!r} and out_channels={c_out!r} differ; "
                    "FNO2d predicts the same channels it reads, so use one 'channels' value"
                )
            if "channels" in data and data["channels"] != c_in:
                raise ValueError(
                    f"FNO2dConfig: channels={data['channels']!r} contradicts "
                    f"in_channels=out_channels={c_in!r}; give only 'channels'"
                )
            data["channels"] = c_in
        return super().from_dict(data)

    def contract(self) -> Contract:
        return Contract(dims=2, channels=self.channels, history=self.history, out_steps=1)

    def check_grid(self, space: tuple[int, ...]) -> None:
        """``ValueError`` unless an ``(H, W)`` grid (plus padding) holds ``2·modes`` points
        per axis."""
        height, width = check_space("FNO2d", 2, space)
        need = 2 * self.modes
        if min(height, width) + self.padding < need:
            raise ValueError(
                f"a {height}×{width} grid is too coarse for FNO2d with {self.modes} Fourier "
                f"modes: each axis needs at least 2·modes = {need} points (padding of "
                f"{self.padding} included); use fewer modes or a finer grid"
            )

    def parameter_count(self) -> int:
        """The number of parameters of ``FNO2d(self)``; see :class:`FNO2d` for the formula."""
        w, m, n = self.width, self.modes, self.n_layers
        return ends_parameter_count(self, 2) + n * (4 * w * w * m * m + w * w + w)


class FNO2d(FourierOperator):
    """Two-dimensional Fourier neural operator: a window of frames → the next frame.

    Pipeline, for ``x`` of shape ``(B, T, C, H, W)`` (``T = history``) in physical units:

    1. normalise per channel, ``z = (x − in_mean) / in_std``, and stack the ``T`` frames
       into ``T·C`` channels;
    2. grid (``add_grid``): append the coordinates ``x, y ∈ [0, 1)`` → ``T·C + 2`` channels;
    3. lift: pointwise linear to ``width`` channels; then zero-pad ``padding`` points at the
       end of both axes (``padding > 0``, for non-periodic fields);
    4. ``n_layers`` blocks ``z ← σ(K_l z + W_l z + b_l)``, ``K_l`` a
       :class:`~models.layers.SpectralConv2d` on ``modes × modes`` (both signs of ``k_y``),
       σ = GELU, except after the last block, where the projection's own nonlinearity
       follows; then crop the padding off;
    5. project: pointwise ``width → 4·width``, GELU, pointwise ``4·width → C``;
    6. back to physical units with the input statistics: ``residual``:
       ``y = x[:, −1] + in_std · z``; otherwise ``y = in_mean + in_std · z``.

    When ``residual`` the last projection layer starts at zero, so an untrained model is
    exactly persistence.

    Parameter count, with ``c = T·C + 2·add_grid``, ``w = width``, ``m = modes``,
    ``L = n_layers``, ``h = 4·w``::

        (c·w + w)                            lift
        + L·(4·w²·m² + w² + w)               spectral (two complex corner blocks) + pointwise
        + (w·h + h) + (h·C + C)              projection

    (``FNO2dConfig.parameter_count()`` evaluates it). The buffers ``in_mean`` and
    ``in_std`` (shape ``(C,)``) are saved in the state dict but are not parameters. State
    dict names: ``lift``, ``spectral.{l}.weight_pos/neg``, ``pointwise.{l}``,
    ``project_hidden``, ``project_out``, ``in_mean``, ``in_std`` (unchanged from the earlier
    FNO2d, whose checkpoints load as ``history = 1``).

    Shapes: ``(B, T, C, H, W) → (B, 1, C, H, W)`` for any ``H, W`` with
    ``H + padding, W + padding ≥ 2·modes``.
    """

    def __init__(self, config: FNO2dConfig | None = None):
        config = config or FNO2dConfig()
        super().__init__(config)
        w = config.width
        self.build_lift(GridEmbedding2d(), dims=2)
        self.spectral = nn.ModuleList(
            SpectralConv2d(w, w, config.modes, config.modes) for _ in range(config.n_layers)
        )
        self.pointwise = nn.ModuleList(pointwise(w, w) for _ in range(config.n_layers))
        self.build_projection(dims=2)

    def body(self, z: torch.Tensor) -> torch.Tensor:
        padding = self.config.padding
        height, width = z.shape[-2:]
        z = self.lifted(z)
        if padding:
            z = F.pad(z, (0, padding, 0, padding))
        z = fourier_layers(z, self.spectral, self.pointwise)
        return self.projected(z[..., :height, :width])


# --- 3D -------------------------------------------------------------------------------


@dataclass
class FNO3dConfig(OperatorConfig):
    """Hyper-parameters of :class:`FNO3d` on ``(X, Y, Z)`` grids, ``Y`` wall-normal.

    ``x`` and ``z`` are periodic; ``Y`` is padded with ``pad_y`` zero points inside the
    network, so a grid needs ``X ≥ 2·modes_x``, ``Y + pad_y ≥ 2·modes_y``,
    ``Z ≥ 2·modes_z`` (:meth:`check_grid`).
    """

    title: ClassVar[str] = "Fourier neural operator (3D)"

    channels: int = channels_field(3, "3 for velocity u, v, w")
    history: int = history_field()
    width: int = width_field(20)
    modes_x: int = modes_x_field(8)
    modes_y: int = modes_y_field(8)
    modes_z: int = modes_z_field(8)
    n_layers: int = n_layers_field(4)
    add_grid: bool = add_grid_3d_field()
    residual: bool = residual_field()
    pad_y: int = pad_y_field(8)

    def contract(self) -> Contract:
        return Contract(dims=3, channels=self.channels, history=self.history, out_steps=1)

    def check_grid(self, space: tuple[int, ...]) -> None:
        """``ValueError`` unless an ``(X, Y, Z)`` grid holds ``2·modes`` points per axis
        (``Y`` counted with its padding)."""
        check_channel_grid("FNO3d", self, space)

    def parameter_count(self) -> int:
        """The number of parameters of ``FNO3d(self)``; see :class:`FNO3d` for the formula."""
        blocks = self.n_layers * fourier_layer_3d_parameter_count(self)
        return ends_parameter_count(self, 3) + blocks


class FNO3d(FourierOperator):
    """Three-dimensional Fourier neural operator for velocity on ``(X, Y, Z)``.

    Same design as :class:`FNO2d`, for ``x`` of shape ``(B, T, C, X, Y, Z)`` (``T =
    history``, ``Y`` the wall-normal axis of a channel, ``x`` and ``z`` periodic):

    1. normalise per channel and stack the ``T`` frames into ``T·C`` channels;
    2. grid (``add_grid``): append ``i/X, k/Z ∈ [0, 1)`` (periodic) and the wall-normal
       index coordinate ``j/(Y − 1) ∈ [0, 1]`` (both walls on the grid) → ``T·C + 3``;
    3. lift: pointwise linear to ``width``; zero-pad ``pad_y`` points at the end of ``Y``
       (domain padding: the spectral layers see a periodic box in which the walls are
       separated by the padding instead of touching);
    4. ``n_layers`` blocks ``z ← σ(K_l z + W_l z + b_l)``, ``K_l`` a
       :class:`~models.layers.SpectralConv3d` on ``modes_x × modes_y × modes_z`` (four
       corners, both signs of ``k_x`` and ``k_y``), σ = GELU except after the last block;
       then crop ``Y`` back;
    5. project: pointwise ``width → 4·width``, GELU, pointwise ``4·width → C``;
    6. ``residual``: ``y = x[:, −1] + in_std · z``; otherwise ``y = in_mean + in_std · z``
       (the last layer starts at zero when ``residual``: an untrained model is persistence).

    Parameter count, with ``c = T·C + 3·add_grid``, ``w = width``,
    ``M = modes_x·modes_y·modes_z``, ``L = n_layers``, ``h = 4·w``::

        (c·w + w)                            lift
        + L·(8·w²·M + w² + w)                spectral (four complex corner blocks) + pointwise
        + (w·h + h) + (h·C + C)              projection

    (``FNO3dConfig.parameter_count()`` evaluates it). Shapes:
    ``(B, T, C, X, Y, Z) → (B, 1, C, X, Y, Z)`` for any grid passing
    :meth:`FNO3dConfig.check_grid`.
    """

    def __init__(self, config: FNO3dConfig | None = None):
        config = config or FNO3dConfig()
        super().__init__(config)
        w = config.width
        self.build_lift(channel_grid(), dims=3)
        modes = (config.modes_x, config.modes_y, config.modes_z)
        self.spectral = nn.ModuleList(SpectralConv3d(w, w, *modes) for _ in range(config.n_layers))
        self.pointwise = nn.ModuleList(pointwise(w, w, dims=3) for _ in range(config.n_layers))
        self.build_projection(dims=3)

    def body(self, z: torch.Tensor) -> torch.Tensor:
        pad_y = self.config.pad_y
        ny = z.shape[-2]
        z = pad_wall_normal(self.lifted(z), pad_y)
        z = fourier_layers(z, self.spectral, self.pointwise)
        return self.projected(z[..., :ny, :])
