"""Eddy-viscosity closures in the periodic box, on coarse fields filtered from a short DNS:
Smagorinsky's formula and its extra dissipation, the dynamic coefficient's value, and the
DNS's own velocity-gradient skewness (its sign is that of the energy cascade)."""

from __future__ import annotations

import math

import pytest
import torch

from physics.hit3d import diagnostics as D
from physics.hit3d.grid import Grid3D
from physics.hit3d.initial import random_velocity
from physics.hit3d.les import (
    DynamicSmagorinsky,
    Smagorinsky,
    filter_width,
    get_closure,
    velocity_gradient,
)
from physics.hit3d.solver import HITSolver

F64 = torch.float64
FINE, COARSE = Grid3D(32), Grid3D(16)
NU = 0.02


@pytest.fixture(scope="module")
def dns() -> dict[str, torch.Tensor]:
    """A 32³ DNS (k_max η ≈ 0.6) from a random field peaked at k_p = 3, run for half a
    large-eddy turnover, when the gradient skewness has developed (≈ −0.5), and its
    spectral filter onto 16³."""
    u0 = random_velocity(FINE, k_peak=3.0, seed=1)
    u = HITSolver(FINE, nu=NU).advance(u0, 0.5)
    return {"initial": u0, "final": u, "coarse": HITSolver(FINE, NU).filter_to(u, 16).velocity}


def test_the_dns_develops_negative_gradient_skewness(dns):
    """The random-phase start has S ≈ 0; the cascade makes ∂u/∂x negatively skewed (≈ −0.4 to
    −0.5 in experiments and DNS; Pope 2000, §6.5). Reversing the sign of the nonlinear term
    would reverse the cascade and give S > 0."""
    assert abs(D.velocity_gradient_skewness(dns["initial"]).item()) < 0.05
    assert -0.6 < D.velocity_gradient_skewness(dns["final"]).item() < -0.35


def test_smagorinsky_follows_its_formula_and_is_non_negative(dns):
    u = dns["coarse"]
    g = velocity_gradient(u, COARSE)
    flat = g[0].permute(2, 3, 4, 0, 1)  # (..., 3, 3) matrices
    s = 0.5 * (flat + flat.transpose(-1, -2))
    magnitude = torch.sqrt(2 * (s * s).sum((-1, -2)))
    expected = (0.17 * 1.5 * COARSE.dx) ** 2 * magnitude
    assert filter_width(COARSE) == pytest.approx(1.5 * COARSE.dx)
    nu_t = Smagorinsky().eddy_viscosity(u, COARSE)
    assert torch.allclose(nu_t[0], expected, rtol=1e-12) and (nu_t >= 0).all()


def test_smagorinsky_dissipates_more_than_no_model_on_the_same_coarse_field(dns):
    """ε_sgs = ⟨2ν_t S:S⟩ > 0, and a short run loses more energy with the model than the
    coarse DNS does from the same field."""
    u = dns["coarse"]
    plain, modelled = HITSolver(COARSE, nu=NU), HITSolver(COARSE, nu=NU, closure="smagorinsky")
    budget = modelled.budget(u)
    assert budget["sgs_dissipation"].item() > 0.2 * budget["dissipation"].item()
    assert plain.budget(u)["sgs_dissipation"].item() == 0
    e_plain = D.kinetic_energy(plain.advance(u, 0.2)).item()
    e_modelled = D.kinetic_energy(modelled.advance(u, 0.2)).item()
    assert e_modelled < e_plain < D.kinetic_energy(u).item()


def test_dynamic_coefficient_of_filtered_dns_is_in_the_expected_range(dns):
    """Germano–Lilly with a sharp test filter at 2Δ on the filtered DNS: C = C_s² ≈ 0.02
    (C_s ≈ 0.14), in the 0.01–0.04 range reported for HIT with cutoff filters; C is
    invariant under u → a·u (L and M both scale as a²); ν_t = C Δ²|S|, non-negative."""
    u = dns["coarse"]
    model = DynamicSmagorinsky()
    c = model.coefficient(u, COARSE).item()
    assert 0.01 < c < 0.04, c
    assert model.coefficient(3 * u, COARSE).item() == pytest.approx(c, rel=1e-10)
    nu_t = model.eddy_viscosity(u, COARSE)
    smagorinsky = Smagorinsky(cs=math.sqrt(c)).eddy_viscosity(u, COARSE)
    assert torch.allclose(nu_t, smagorinsky, rtol=1e-10) and (nu_t >= 0).all()
    # The same holds one level up, on the 24³ filter of the same DNS.
    c24 = model.coefficient(HITSolver(FINE, NU).filter_to(dns["final"], 24).velocity,
                            Grid3D(24)).item()  # fmt: skip
    assert 0.01 < c24 < 0.04, c24


def test_dynamic_model_clips_a_negative_coefficient_to_zero(dns):
    """ν_t = max(C, 0) Δ²|S|: where the Germano identity asks for backscatter (C < 0, here
    imposed on the coefficient), the eddy viscosity is zero rather than negative."""

    class Backscatter(DynamicSmagorinsky):
        def coefficient(self, u, grid, gradient=None):
            return -super().coefficient(u, grid, gradient)

    u = dns["coarse"]
    assert Backscatter().coefficient(u, COARSE).item() < 0
    assert Backscatter().eddy_viscosity(u, COARSE).abs().max() == 0
    assert HITSolver(COARSE, nu=NU, closure=Backscatter()).budget(u)["sgs_dissipation"] == 0


def test_closures_by_name():
    assert get_closure(None) is None and get_closure("none") is None
    assert isinstance(get_closure("smagorinsky"), Smagorinsky)
    assert isinstance(get_closure("dynamic"), DynamicSmagorinsky)
    with pytest.raises(ValueError, match="smagorinsky"):
        get_closure("vreman")
