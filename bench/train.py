"""Training and inference speed of our neural operators, side by side with a named peer or
one of our own models as a baseline.

fno2d rows: our ``build_model("fno2d", {"width": 32, "n_layers": 4, "modes": 12})`` against
      neuraloperator 2.0.0's ``neuralop.models.FNO`` at the same configuration, at 64² and
      128²: ms per training step at batch 16 (forward, relative-L2 loss, backward, Adam
      step) and inference ms per sample at batch 1 and 16.
ifactformer3d row: our IFactFormer-m (the paper's channel-flow configuration: dim 96,
      5 heads of 96, 10 iterations, 3 velocity channels) against our chained FactFormer
      3D at the same width, heads and depth, on the 32×33×16 channel grid: ms per training
      step. The chained FactFormer is our own code, not an external peer, so this row
      reports it as the ``baseline``.

The peer FNO is configured to be the same network as ours as far as its API allows:
hidden_channels=32, n_layers=4, in/out channels 1, the (x, y) ∈ [0, 1) grid appended to
the input (``positional_embedding="grid"``), a linear lifting (``lifting_channel_ratio=0``),
a projection 32 → 128 → 1 with GELU (``projection_channel_ratio=4``), no channel MLP
inside the blocks (``use_channel_mlp=False``) and a linear skip beside each spectral
convolution (``fno_skip="linear"``). Its ``n_modes`` counts modes over both signs on the
first axis and over the full (not halved) length on the last one, where it keeps
``n // 2 + 1`` of the rfft's half spectrum: ``n_modes=(24, 22)`` keeps k_y ∈ {−12, …, 11},
k_x ∈ {0, …, 11}, exactly our 12 modes per direction, and gives the same parameter count
(2,368,001; ``(24, 24)`` would keep 13 modes along x: 2,564,609). Differences left: our
model normalises its input and adds the residual (a few elementwise passes), the peer
applies GELU twice between blocks (neuraloperator 2.0.0 applies the block nonlinearity
both before and after the absent channel MLP) and stores complex weights as complex
tensors.

Timing: both models live in the same process, so they share the allocator, the thread
pool and the load. After a warm-up (plans, Adam state, first-touch allocations) the runs
take turns in a rotating order; each repeat runs the same number of steps for both, sized
so that the slower takes about ``--repeat-s`` seconds; the medians are reported with the
spread. On CPU the allocator matters: at 128² a batch-16 activation (33.5 MB) is above
glibc's largest mmap threshold (32 MB), so every one is mapped and unmapped again, page
faults included; ``--allocator jemalloc`` re-runs the script with jemalloc preloaded (if
found), which keeps such blocks. Each row names the allocator it ran with.

    python bench/train.py [--quick] [--device cpu|cuda] [--threads N] [--allocator glibc|jemalloc]
                          [--configs NAME ...] [--repeats R] [--repeat-s S]

One JSON object per line per configuration: name, ours, ours_ms, peer, peer_ms, ratio
(= ours_ms / peer_ms; below 1: ours is faster), parameter counts, spreads and settings. The
ifactformer3d row names its other side baseline instead: baseline, baseline_ms,
baseline_ratio (= ours_ms / baseline_ms), baseline_params, baseline_ms_range,
baseline_input_shape.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import statistics
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from _timing import ms_range, time_alternating
from torch import nn

from models.losses import relative_l2
from models.registry import build_model, parameter_count

PEER_VERSION = "2.0.0"  # the neuraloperator version the issue names; the installed one is reported
FNO_CONFIG = {"width": 32, "n_layers": 4, "modes": 12}
# neuraloperator's spelling of 12 modes per direction (see the module docstring).
PEER_N_MODES = (24, 22)
# IFactFormer-m's channel-flow configuration (Yang et al.): dim 96, 5 heads of dimension 96,
# one shared block applied 10 times, velocity (u, v, w) in and out.
IFACT_CONFIG = {
    "channels": 3,
    "dim": 96,
    "heads": 5,
    "head_dim": 96,
    "kernel_multiplier": 3,
    "n_iterations": 10,
}
CHANNEL_GRID = (32, 33, 16)
JEMALLOC_PATHS = (
    "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2",
    "/usr/lib/aarch64-linux-gnu/libjemalloc.so.2",
    "/usr/lib/libjemalloc.so.2",
    "/usr/local/lib/libjemalloc.so.2",
)


def installed(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def allocator_label(device: torch.device) -> str:
    if device.type == "cuda":
        conf = os.environ.get("PYTORCH_CUDA_ALLOC_CONF", "")
        return "torch CUDA caching allocator" + (f" ({conf})" if conf else " (defaults)")
    preload = os.environ.get("LD_PRELOAD", "")
    if "jemalloc" in preload:
        return f"jemalloc (LD_PRELOAD={preload})"
    tuned = {k: v for k, v in os.environ.items() if k.startswith("MALLOC_")}
    return "glibc malloc" + (f" {tuned}" if tuned else " (defaults)")


def with_jemalloc() -> None:
    """Re-executes this script with jemalloc preloaded, unless it already is."""
    if "jemalloc" in os.environ.get("LD_PRELOAD", ""):
        return
    library = next((p for p in JEMALLOC_PATHS if Path(p).exists()), None)
    if library is None:
        raise SystemExit(
            "--allocator jemalloc: no libjemalloc.so.2 found (apt-get install libjemalloc2)."
        )
    env = dict(os.environ)
    env["LD_PRELOAD"] = ":".join(filter(None, [library, env.get("LD_PRELOAD")]))
    os.execve(sys.executable, [sys.executable, *sys.argv], env)


# --- the models ------------------------------------------------------------------------------


@dataclass
class Contender:
    """A model with its input/target shapes: what one side of a row times."""

    label: str
    model: nn.Module
    input_shape: tuple[int, ...]

    @property
    def parameters(self) -> int:
        return parameter_count(self.model)


def ours_fno(n: int, batch: int, device: torch.device) -> Contender:
    model = build_model("fno2d", FNO_CONFIG).to(device)
    # The zoo's trajectory convention: (B, history, C, H, W).
    shape = model.contract.input_shape(n, n, batch=batch)
    return Contender(f"fno2d {FNO_CONFIG}", model, shape)


def peer_fno(n: int, batch: int, device: torch.device) -> Contender:
    try:
        from neuralop.models import FNO
    except ImportError as exc:
        raise SystemExit(
            f"neuraloperator is not importable ({exc}); install it with "
            ".venv/bin/pip install --no-deps neuraloperator==2.0.0 tensorly tensorly-torch "
            "opt_einsum"
        ) from None
    model = FNO(
        n_modes=PEER_N_MODES,
        in_channels=1,
        out_channels=1,
        hidden_channels=FNO_CONFIG["width"],
        n_layers=FNO_CONFIG["n_layers"],
        lifting_channel_ratio=0,
        projection_channel_ratio=4,
        positional_embedding="grid",
        non_linearity=F.gelu,
        use_channel_mlp=False,
        fno_skip="linear",
    ).to(device)
    label = (
        f"neuraloperator {installed('neuraloperator')} FNO(n_modes={PEER_N_MODES}, "
        "hidden_channels=32, n_layers=4, lifting_channel_ratio=0, projection_channel_ratio=4,"
        " positional_embedding='grid', use_channel_mlp=False, fno_skip='linear')"
    )
    return Contender(label, model, (batch, 1, n, n))


def ours_ifactformer(batch: int, device: torch.device) -> Contender:
    model = build_model("ifactformer3d", IFACT_CONFIG).to(device)
    shape = model.contract.input_shape(*CHANNEL_GRID, batch=batch)
    return Contender(f"ifactformer3d {IFACT_CONFIG}", model, shape)


def baseline_factformer(batch: int, device: torch.device) -> Contender:
    """The chained FactFormer 3D at IFactFormer-m's width, heads, kernel rank and depth (10
    distinct chained blocks where IFactFormer-m applies one parallel block 10 times): the
    architecture the implicit, parallel form replaces, in the same code base."""
    config = {k: v for k, v in IFACT_CONFIG.items() if k != "n_iterations"}
    config["n_layers"] = IFACT_CONFIG["n_iterations"]
    model = build_model("factformer3d", config).to(device)
    shape = model.contract.input_shape(*CHANNEL_GRID, batch=batch)
    return Contender(f"factformer3d {config} (chained FactFormer, ours)", model, shape)


# --- what is timed ---------------------------------------------------------------------------


def train_run(side: Contender, device: torch.device) -> Callable[[int], None]:
    """``steps`` training steps: forward, relative-L2 loss, backward, Adam step."""
    model = side.model.train()
    g = torch.Generator().manual_seed(0)
    x = torch.randn(side.input_shape, generator=g).to(device)
    with torch.no_grad():
        y = torch.randn_like(model(x))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)

    def run(steps: int) -> None:
        for _ in range(steps):
            loss = relative_l2(model(x), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

    return run


def infer_run(side: Contender, device: torch.device) -> Callable[[int], None]:
    """``steps`` forward passes in inference mode."""
    model = side.model.eval()
    g = torch.Generator().manual_seed(0)
    x = torch.randn(side.input_shape, generator=g).to(device)

    def run(steps: int) -> None:
        with torch.inference_mode():
            for _ in range(steps):
                model(x)

    return run


def measure(
    name: str,
    kind: str,
    ours: Contender,
    other: Contender,
    device: torch.device,
    args: argparse.Namespace,
    per_sample: int = 1,
    role: str = "peer",
) -> dict:
    """One row: ``ours`` against ``other``, whose keys are named after its ``role``:
    ``peer`` for an external implementation, ``baseline`` for one of our own models."""
    make = train_run if kind == "train" else infer_run
    times = time_alternating(
        {"ours": make(ours, device), "other": make(other, device)},
        device,
        args.repeats,
        args.repeat_s,
        warmup=args.warmup,
    )
    ours_runs = [t / per_sample for t in times["ours"]]
    other_runs = [t / per_sample for t in times["other"]]
    ours_ms, other_ms = statistics.median(ours_runs), statistics.median(other_runs)
    return {
        "name": name,
        "ours": ours.label,
        "ours_ms": round(ours_ms, 3),
        role: other.label,
        f"{role}_ms": round(other_ms, 3),
        ratio_key(role): round(ours_ms / other_ms, 3),
        "unit": "ms per training step" if kind == "train" else "ms per sample (inference)",
        "ours_params": ours.parameters,
        f"{role}_params": other.parameters,
        "ours_ms_range": ms_range(ours_runs),
        f"{role}_ms_range": ms_range(other_runs),
        "repeats": len(ours_runs),
        "input_shape": list(ours.input_shape),
        f"{role}_input_shape": list(other.input_shape),
        "device": str(device),
        "threads": torch.get_num_threads(),
        "allocator": allocator_label(device),
        "torch": torch.__version__,
    }


def ratio_key(role: str) -> str:
    """The key of ``ours_ms / {role}_ms``: ``ratio`` against a peer, as in every bench
    script; ``baseline_ratio`` against a baseline, so it is not read as a peer ratio."""
    return "ratio" if role == "peer" else f"{role}_ratio"


# --- configurations --------------------------------------------------------------------------


def fno_rows(n: int, device: torch.device, args: argparse.Namespace):
    torch.manual_seed(0)
    yield measure(
        f"fno2d_train_{n}x{n}_b16", "train", ours_fno(n, 16, device), peer_fno(n, 16, device),
        device, args,
    )  # fmt: skip
    for batch in (1, 16):
        torch.manual_seed(0)
        row = measure(
            f"fno2d_infer_{n}x{n}_b{batch}",
            "infer",
            ours_fno(n, batch, device),
            peer_fno(n, batch, device),
            device,
            args,
            per_sample=batch,
        )
        row["batch"] = batch
        yield row


def ifactformer_rows(device: torch.device, args: argparse.Namespace):
    torch.manual_seed(0)
    batch = args.batch_3d
    grid = "x".join(map(str, CHANNEL_GRID))
    row = measure(
        f"ifactformer3d_train_{grid}_b{batch}",
        "train",
        ours_ifactformer(batch, device),
        baseline_factformer(batch, device),
        device,
        args,
        role="baseline",
    )
    row["batch"] = batch
    yield row


CONFIGS: dict[str, Callable] = {
    "fno2d_64": lambda device, args: fno_rows(64, device, args),
    "fno2d_128": lambda device, args: fno_rows(128, device, args),
    "ifactformer3d": ifactformer_rows,
}
# What each group's other side is: an external implementation or one of our own models.
ROLES = {"fno2d_64": "peer", "fno2d_128": "peer", "ifactformer3d": "baseline"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--device",
        default="cuda" if torch.cuda.is_available() else "cpu",
        help="cpu or cuda (default: cuda when available; %(default)s here)",
    )
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    parser.add_argument(
        "--allocator",
        choices=("glibc", "jemalloc"),
        default="glibc",
        help="CPU allocator for both models (jemalloc: re-run with it preloaded)",
    )
    parser.add_argument("--repeats", type=int, default=None, help="timed repeats per model")
    parser.add_argument("--repeat-s", type=float, default=None, help="seconds per repeat")
    parser.add_argument("--warmup", type=int, default=None, help="untimed steps per model")
    parser.add_argument("--batch-3d", type=int, default=1, help="batch of the 3D row (default 1)")
    parser.add_argument("--quick", action="store_true", help="a smoke run: few, short repeats")
    parser.add_argument(
        "--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS), metavar="NAME",
        help="which configurations (default: all of %(default)s)",
    )  # fmt: skip
    args = parser.parse_args()
    if args.allocator == "jemalloc":
        with_jemalloc()
    if args.repeats is None:
        args.repeats = 2 if args.quick else 7
    if args.repeat_s is None:
        args.repeat_s = 0.05 if args.quick else 1.0
    if args.warmup is None:
        args.warmup = 1 if args.quick else 3
    version = installed("neuraloperator")
    if version != PEER_VERSION:
        print(
            f"warning: neuraloperator {version} is installed; the issue names {PEER_VERSION}.",
            file=sys.stderr,
        )
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: torch sees no CUDA device here.")
    for config in args.configs:
        try:
            for row in CONFIGS[config](device, args):
                print(json.dumps(row), flush=True)
        except (ImportError, AttributeError) as exc:
            # A model family that has not landed in this checkout: say so, give no number.
            role = ROLES[config]
            row = {"name": config, "ours_ms": None, f"{role}_ms": None, ratio_key(role): None}
            row["error"] = f"not measured: {type(exc).__name__}: {exc}"
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
