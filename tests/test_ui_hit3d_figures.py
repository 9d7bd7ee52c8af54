"""The HIT panels' numbers and figures without a browser (``app.hit3d_summary``,
``app.ui.hit3d_figures``, ``app.ui.hit3d_panels``), on real 16³ fields: the ABC flow, whose
statistics are known exactly (a Beltrami field: ω = u), and a random field advanced a little
by the reference solver, whose numbers are recomputed here with
``physics.hit3d.diagnostics``."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from app.hit3d_summary import snapshot_slices, snapshot_summary
from app.ui import hit3d_figures as hf
from app.ui import hit3d_panels
from physics.hit3d import diagnostics
from physics.hit3d.flow import HIT3D
from tests.test_ui_privacy import cloud_problems, walk

N = 16
L = 2 * math.pi
NU = 0.04


@pytest.fixture(scope="module")
def turbulence() -> torch.Tensor:
    """A random field (k_p = 3) advanced to t = 0.3 by the 16³ solver: (1, 3, n, n, n)."""
    u0 = HIT3D.make_initial_condition("random", N, seed=11, dtype=torch.float64, k_peak=3)
    return HIT3D.make_solver(N).advance(u0, 0.3)


@pytest.fixture(scope="module")
def abc() -> torch.Tensor:
    return HIT3D.make_initial_condition("abc", N, dtype=torch.float64)


def test_the_statistics_of_the_abc_flow_are_its_exact_values(abc):
    # u = (sin z + cos y, sin x + cos z, sin y + cos x): u'² = 1, E = 3/2, ω = u so
    # ⟨|ω|²⟩ = 3, ε = ν⟨|ω|²⟩ = 3ν, λ = (15u'²/⟨|ω|²⟩)^½ = √5, Re_λ = √5/ν, all the energy in
    # shell 1 so L = (π/2u'²)·E = 3π/4; ∂u/∂x = ∂v/∂y = ∂w/∂z = 0.
    stats = snapshot_summary(abc[0], NU, L)["stats"]
    assert stats["energy"] == pytest.approx(1.5, rel=1e-12)
    assert stats["u_rms"] == pytest.approx(1.0, rel=1e-12)
    assert stats["dissipation"] == pytest.approx(3 * NU, rel=1e-12)
    assert stats["taylor_microscale"] == pytest.approx(math.sqrt(5), rel=1e-12)
    assert stats["taylor_reynolds"] == pytest.approx(math.sqrt(5) / NU, rel=1e-12)
    assert stats["integral_scale"] == pytest.approx(3 * math.pi / 4, rel=1e-12)
    assert stats["divergence_max"] < 1e-12
    assert stats["kolmogorov_scale"] == pytest.approx((NU**3 / (3 * NU)) ** 0.25, rel=1e-12)
    assert stats["kmax_eta"] == pytest.approx(N / 3 * stats["kolmogorov_scale"], rel=1e-12)


def test_the_card_carries_the_numbers_the_diagnostics_compute(turbulence):
    summary = snapshot_summary(turbulence[0].permute(1, 2, 3, 0).numpy(), NU, L)  # stored layout
    stats = summary["stats"]
    u = turbulence
    expected = {
        "energy": diagnostics.kinetic_energy(u),
        "dissipation": diagnostics.dissipation(u, NU),
        "u_rms": diagnostics.rms_velocity(u),
        "taylor_microscale": diagnostics.taylor_microscale(u),
        "taylor_reynolds": diagnostics.taylor_reynolds(u, NU),
        "integral_scale": diagnostics.integral_scale(u),
        "skewness": diagnostics.velocity_gradient_skewness(u),
        "divergence_max": diagnostics.divergence_max(u),
    }
    for key, value in expected.items():
        assert stats[key] == pytest.approx(float(value[0]), rel=1e-9, abs=1e-15), key
    # ε = ν⟨|ω|²⟩ for a solenoidal periodic field: the two forms agree.
    assert stats["dissipation"] == pytest.approx(
        float(diagnostics.dissipation(u, NU, form="vorticity")[0]), rel=1e-9
    )
    # A field the solver has advanced has started its cascade: the skewness is negative.
    assert stats["skewness"] < -0.1

    rows = {label: value for label, value, _ in hf.statistics_items(stats, N)}
    assert rows["grid"] == "16³"
    assert rows["Re_λ"] == f"{float(expected['taylor_reynolds'][0]):.4g}"
    assert rows["dissipation ε"] == f"{float(expected['dissipation'][0]):.4g}"
    assert rows["Taylor λ"] == f"{float(expected['taylor_microscale'][0]):.4g}"
    assert rows["integral L"] == f"{float(expected['integral_scale'][0]):.4g}"
    assert rows["skewness S"] == f"{float(expected['skewness'][0]):.3g}"
    card = hit3d_panels.summary(stats, N)
    assert [el.children for el in card[:2]] == ["grid", "16³"]


def test_the_spectrum_figure_carries_the_spectrum_and_a_minus_five_thirds_guide(turbulence):
    summary = snapshot_summary(turbulence[0], NU, L)
    k, e = diagnostics.energy_spectrum(turbulence)
    assert summary["k"] == [int(x) for x in k.tolist()]
    np.testing.assert_allclose(summary["spectrum"], e[0].numpy(), rtol=1e-12)
    # Parseval: the shells sum to the kinetic energy.
    assert sum(summary["spectrum"]) == pytest.approx(summary["stats"]["energy"], rel=1e-12)

    fig = hf.spectrum_figure(summary["k"], summary["spectrum"], N)
    assert fig.layout.xaxis.type == "log" and fig.layout.yaxis.type == "log"
    assert "16³" in fig.layout.title.text
    data, guide = fig.data
    ks = np.asarray(data.x)
    assert ks[0] == 1  # the mean (k = 0) cannot sit on a log axis
    np.testing.assert_allclose(data.y, e[0].numpy()[ks.astype(int)], rtol=1e-12)
    assert guide.meta == "guide:-5/3"
    gx, gy = np.log(np.asarray(guide.x)), np.log(np.asarray(guide.y))
    np.testing.assert_allclose(np.diff(gy) / np.diff(gx), -5 / 3, rtol=1e-12)
    # Anchored at the compensated spectrum's peak: the guide touches E(k) there, and lies on
    # or above it at every other shell.
    anchor = fig.layout.meta["k_anchor"]
    compensated = ks ** (5 / 3) * np.asarray(data.y)
    assert anchor == ks[np.argmax(compensated)]
    i = int(np.flatnonzero(ks == anchor)[0])
    assert guide.y[i] == pytest.approx(data.y[i], rel=1e-12)
    assert np.all(np.asarray(guide.y) >= np.asarray(data.y) * (1 - 1e-12))
    # The 2/3 rule's last shell on the 16³ grid, n/3, is marked.
    assert fig.layout.shapes[0].x0 == pytest.approx(N / 3)


def test_the_slices_are_the_midplanes_of_the_field(abc, turbulence):
    # ABC (k = 1) is a Beltrami field: |ω| = |u|, known in closed form. Midplane index 8 is
    # the coordinate π.
    slices = snapshot_slices(abc[0], L)
    fig = hf.slices_figure(slices["vorticity"], "vorticity", N, L)
    s = np.arange(N) * L / N
    m = math.pi
    assert s[N // 2] == pytest.approx(m)

    def speed(x, y, z):
        u = np.sin(z) + np.cos(y)
        v = np.sin(x) + np.cos(z)
        w = np.sin(y) + np.cos(x)
        return np.sqrt(u**2 + v**2 + w**2)

    a, b = np.meshgrid(s, s, indexing="xy")  # a varies along columns, b along rows
    exact = {"x": speed(m, a, b), "y": speed(a, m, b), "z": speed(a, b, m)}
    for trace, axis in zip(fig.data, ("x", "y", "z"), strict=True):
        assert trace.type == "heatmap"
        np.testing.assert_allclose(np.asarray(trace.z), exact[axis], atol=2e-6)  # float32
        np.testing.assert_allclose(np.asarray(trace.x), s, rtol=1e-6)
    assert [a.text for a in fig.layout.annotations] == [
        "x = 3.14 (y–z plane)",
        "y = 3.14 (x–z plane)",
        "z = 3.14 (x–y plane)",
    ]
    assert fig.layout.coloraxis.cmin == 0 and "16³" in fig.layout.title.text

    # Q of the turbulent field: the planes of diagnostics.q_criterion, colours symmetric.
    q = diagnostics.q_criterion(turbulence)[0].numpy()
    fig = hf.slices_figure(snapshot_slices(turbulence[0], L)["q"], "q", N, L)
    planes = [q[8, :, :].T, q[:, 8, :].T, q[:, :, 8].T]
    for trace, plane in zip(fig.data, planes, strict=True):
        np.testing.assert_allclose(np.asarray(trace.z), plane, rtol=1e-5, atol=1e-6)
    assert fig.layout.coloraxis.cmin == -fig.layout.coloraxis.cmax > -np.inf
    assert fig.layout.coloraxis.cmax == pytest.approx(max(np.abs(p).max() for p in planes), 1e-6)
    with pytest.raises(ValueError, match="quantity must be one of"):
        hf.slices_figure(slices["q"], "pressure", N)


def test_the_vorticity_pdfs_have_unit_area_and_unit_variance(turbulence):
    pdf = snapshot_summary(turbulence[0], NU, L)["pdf"]
    omega = diagnostics.vorticity(turbulence)[0]
    rms = float(torch.sqrt((omega**2).sum(dim=0).mean()))
    assert pdf["rms"] == [pytest.approx(rms, rel=1e-12)]
    for kind in hf.PDF_KINDS:
        x = np.asarray(pdf[kind]["x"])
        p = np.asarray(pdf[kind]["density"])
        width = x[1] - x[0]
        assert (p * width).sum() == pytest.approx(1.0, rel=1e-9)
        # x is scaled by its rms: the second moment is 1 (to the bins' midpoint rule).
        assert (x**2 * p * width).sum() == pytest.approx(1.0, rel=0.05)
        fig = hf.vorticity_pdf_figure(pdf, kind, N)
        assert fig.layout.yaxis.type == "log" and "16³" in fig.layout.title.text
        drawn = np.asarray(fig.data[0].y)
        assert (drawn > 0).all() and len(drawn) == int((p > 0).sum())
    # The Gaussian field's PDFs (normal, Maxwell χ₃ rescaled) have unit area and variance 1.
    grid = np.linspace(-12, 12, 200001)
    for kind, xs in (("component", grid), ("magnitude", grid[grid >= 0])):
        ref = hf.gaussian_reference(kind, xs)
        assert np.trapezoid(ref, xs) == pytest.approx(1.0, rel=1e-9)
        assert np.trapezoid(xs**2 * ref, xs) == pytest.approx(1.0, rel=1e-9)


def test_the_series_figure_draws_energy_and_dissipation_on_two_axes():
    series = {"t": [0.0, 0.1, 0.2], "energy": [1.5, 1.4, 1.3], "dissipation": [0.7, 0.68, 0.66]}
    fig = hf.series_figure({**series, "source": "solver"}, N, marker_t=0.1)
    energy, dissipation = fig.data
    assert list(energy.y) == series["energy"] and list(dissipation.y) == series["dissipation"]
    assert energy.yaxis == "y" and dissipation.yaxis == "y2"
    assert "solver's field, 16³" in fig.layout.title.text
    assert fig.layout.shapes[0].x0 == 0.1


def test_the_hit3d_panels_show_no_cloud_button_and_fill_every_output(turbulence):
    from dash import dcc

    graphs = [c for c in walk(hit3d_panels.panel_layout("t")) if isinstance(c, dcc.Graph)]
    assert {g.id for g in graphs} == {
        "t-hit3d-spectrum",
        "t-hit3d-series",
        "t-hit3d-pdf",
        "t-hit3d-slices",
    }
    for g in graphs:
        assert cloud_problems(g.config) == [], g.id

    summary = snapshot_summary(turbulence[0], NU, L)
    view = {
        **summary,
        "slices": snapshot_slices(turbulence[0], L),
        "series": {"t": [0.3], "energy": [1.0], "dissipation": [0.5], "source": "stored"},
        "t": 0.3,
        "length": L,
        "label": "a label",
        "dataset_id": "d",
    }
    card, spectrum, pdf, series, slices, note = hit3d_panels.render(view, "q", "component")
    assert len(card) == 2 * len(hf.statistics_items(summary["stats"], N))
    assert spectrum.data[1].meta == "guide:-5/3"
    assert pdf.layout.xaxis.title.text == hf.PDF_LABELS["component"]
    assert slices.layout.meta["quantity"] == "q" and series.data[0].y == (1.0,)
    assert note.children[0].children == "a label"
