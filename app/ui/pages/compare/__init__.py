"""``/compare`` and ``/compare/<id>``: several models beside the reference solver, live.

Set up: an initial condition (an uploaded field, or a trajectory of a dataset, its
held-out trajectories first), two or more models of that flow (each at one or more inference
precisions: every (model, precision) is a column), the horizon, the reference solver on or
off and the divergence factor. Start submits a ``compare`` job through the same validation
as ``POST /api/jobs`` and moves to ``/compare/<job id>``, so a live comparison and a
reopened one are the same page. ``<id>`` is the job's id or its rollout's id.

Live updates: an Interval polls the job row and the ``compare_setup``, ``metrics`` and
``summary`` events after the last one read (``seq``), and appends the per-step scalars to
the ``compare-series`` store with a Patch. The setup event lays out the grid, one column
per entry plus the reference, with the field on top and the error field (model −
reference) under it. A shared frame slider walks over the frames written so far and
follows the newest while it sits at the end; Play steps it with a second Interval. The
overlays (spectra of every column with the k⁻³ / k⁻⁵ᐟ³ guides, relative L2 and H1,
correlation with the 0.8 line, energy and enstrophy) and the summary table (from the
``summary`` event) are drawn by ``app.ui.compare_figures``.

Channel mode: when the start is a channel-flow snapshot or dataset (and, once it arrives,
when the setup says ``geometry: channel``), the page offers that flow's 3D models and a
Baselines checklist (coarse DNS, Smagorinsky, WALE, dynamic Smagorinsky: LES on the
models' coarse grid), and shows instead of the 2D grid: the U⁺ profile and the rms and
−u′v′ profiles of every source overlaid on wall-unit axes with the MKM 1999 marks
(running or windowed statistics, from the ``channel_stats`` events), slices side by side,
each column's status and relative L2, and the summary table of statistics errors, ms per
step and speedups over each closure (``app.ui.channel_compare_figures``; the callbacks are
in ``channel``).

The page is a package: ``layout`` (the components), ``callbacks`` (registered on import),
``channel`` (the channel mode's pieces) and ``helpers`` (the pure functions both use, which
tests call without a browser).
"""

from app.ui.pages.compare import callbacks
from app.ui.pages.compare.layout import layout

__all__ = ["callbacks", "layout"]
