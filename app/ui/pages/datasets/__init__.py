"""``/data``: generate training data with the reference solvers, follow the generation
(progress over its shards, cancel, retry the failed shards), and look at what was made: the
datasets stored, and a preview of one trajectory (animated vorticity, its energy spectrum,
its energy and enstrophy against time).

``/data?preview=<dataset id>&trajectory=<i>`` opens with that preview.

Channel flows (``channel3d``): Preview on a channel dataset (velocity in The Well's layout,
``t1_fields/velocity`` with ``dimensions/y``) shows the channel panel
(``app.ui.channel_panels``) for the chosen trajectory and snapshot: statistics in wall units
and slices of the velocity. A channel generate job that is queued or running is followed
live (its ``channel_stats`` events) by the same panel, at once when nothing else is shown
there, or with its Statistics button. The generate form offers the channel flows too
(``app.services.flows.channel_generate_flows``): choosing one shows its parameters (solver
grid, stored x–z grid, Re_τ, closure, drive) and hides the 2D-only ones (ν, time stepper,
resolutions); a channel job started there is followed in the channel card at once.

Isotropic turbulence (``hit3d``): the form shows its parameters (ν, the random field's
k_p and u_rms, forcing, closure, the filter onto a coarser stored grid; the grid is the
Resolution box, n³); a hit3d job started there is followed live in the Isotropic
turbulence card (its ``hit3d_stats`` events and the shards stored so far), and Preview on
a hit3d dataset shows a snapshot there: the statistics card (E, ε, λ, Re_λ, L, skewness,
max |∇·u|), the energy spectrum with its k^(−5/3) guide, the vorticity PDF, E(t) and ε(t),
and the midplane slices of |ω| or Q (``app.ui.hit3d_panels``).

The page is a package: ``layout`` (the components), ``callbacks``, ``channel`` and
``hit3d`` (the callbacks, registered once on import) and ``helpers`` (the pure functions
they use, which tests call without a browser).
"""

from app.ui.pages.datasets import callbacks, channel, hit3d
from app.ui.pages.datasets.layout import layout

__all__ = ["callbacks", "channel", "hit3d", "layout"]
