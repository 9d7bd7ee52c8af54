"""Reference solvers and diagnostics for Eddyscope, as a plain torch library.

Fields are tensors shaped (batch, channel, ny, nx); 2D flows carry vorticity in one channel.
Nothing here imports the web app, the workers or the models: use it from a notebook too.
"""

from physics.diagnostics import enstrophy, kinetic_energy, relative_l2
from physics.flows import FLOWS, Flow, UnknownFlowError, get_flow
from physics.grid import Grid2D
from physics.ns2d.random_fields import gaussian_random_field
from physics.ns2d.solver import VorticitySolver2D
from physics.spectra import energy_spectrum, enstrophy_spectrum
from physics.spectral import velocity_from_vorticity

__all__ = [
    "FLOWS",
    "Flow",
    "Grid2D",
    "UnknownFlowError",
    "VorticitySolver2D",
    "energy_spectrum",
    "enstrophy",
    "enstrophy_spectrum",
    "gaussian_random_field",
    "get_flow",
    "kinetic_energy",
    "relative_l2",
    "velocity_from_vorticity",
]
