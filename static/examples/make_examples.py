"""How the shipped example initial condition was made (rerun to reproduce it bit for bit
on the same torch build): a Gaussian random field on 256², the FNO benchmark's covariance,
advanced 2 time units under the ns2d-forced dynamics, then truncated spectrally to 64².

    python static/examples/make_examples.py
"""

from pathlib import Path

import numpy as np
import torch

from physics.flows import get_flow
from physics.resample import spectral_truncate


def main() -> None:
    flow = get_flow("ns2d-forced")
    w = flow.random_initial_condition(256, batch=1, seed=2024, dtype=torch.float64)
    w = flow.make_solver(256, dtype=torch.float64).advance(w, 2.0)
    field = spectral_truncate(w, 64)[0, 0].numpy().astype(np.float32)
    np.save(Path(__file__).with_name("example_ns2d_forced_64.npy"), field, allow_pickle=False)


if __name__ == "__main__":
    main()
