"""Readers for trajectory files in the layouts people share 2D flow data in.

``read_trajectories(path, field=None)`` detects the layout from the file's content and
returns a ``TrajectoryData`` whose fields are shaped (trajectory, time, ny, nx), y along the
second-to-last axis and x along the last (``physics.grid``'s order), whatever the file's own
order. One module per format family:

- ``numpy_files``: ``.npy`` / ``.npz`` (never unpickled)
- ``eddyscope``: our HDF5 datasets and rollouts (``physics.formats.store``)
- ``well``: The Well's HDF5 layout
- ``pdebench``: PDEBench's 2D HDF5 layouts
- ``fno_mat``: the FNO benchmark's ``.mat`` files, MATLAB v5 and v7.3
- ``netcdf``: netCDF through xarray
- ``channel``: one 3D channel-flow velocity snapshot with its wall-normal points
  (``read_channel_snapshot`` → ``ChannelSnapshot``; not a trajectory reader)
- ``periodic``: one 3D velocity snapshot on a triply periodic box (hit3d)
  (``read_periodic_velocity`` → ``PeriodicSnapshot``; not a trajectory reader)

Readers load whole arrays into memory; pass ``field`` to read one field of a large file.
An unrecognised layout raises ``UnrecognisedLayout`` (a ValueError) whose message lists
what the file holds. Writers are in ``physics.formats.export``.
"""

from physics.formats.channel import ChannelSnapshot, read_channel_snapshot
from physics.formats.core import (
    VORTICITY_NAMES,
    FieldNotFound,
    TrajectoryData,
    UnrecognisedLayout,
)
from physics.formats.detect import FORMATS, detect_format, read_trajectories
from physics.formats.eddyscope import read_eddyscope
from physics.formats.fno_mat import read_fno_mat
from physics.formats.netcdf import read_netcdf
from physics.formats.numpy_files import read_npy, read_npz
from physics.formats.pdebench import read_pdebench
from physics.formats.periodic import PeriodicSnapshot, read_periodic_velocity
from physics.formats.well import read_the_well

__all__ = [
    "FORMATS",
    "VORTICITY_NAMES",
    "ChannelSnapshot",
    "FieldNotFound",
    "PeriodicSnapshot",
    "TrajectoryData",
    "UnrecognisedLayout",
    "detect_format",
    "read_channel_snapshot",
    "read_eddyscope",
    "read_fno_mat",
    "read_netcdf",
    "read_npy",
    "read_npz",
    "read_pdebench",
    "read_periodic_velocity",
    "read_the_well",
    "read_trajectories",
]
