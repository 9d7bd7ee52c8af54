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

The page is a package: ``layout`` (the components), ``callbacks`` and ``channel`` (the
callbacks, registered once on import) and ``helpers`` (the pure functions they use, which
tests call without a browser).
"""

from app.ui.pages.datasets import callbacks, channel
from app.ui.pages.datasets.layout import layout

__all__ = ["callbacks", "channel", "layout"]
