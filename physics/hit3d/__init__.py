"""3D incompressible flows in the triply periodic box [0, 2π)³ (homogeneous isotropic
turbulence): the grid and its transforms (``grid``), the pseudo-spectral solver
(``solver``), eddy-viscosity closures for coarse grids (``les``), filters that make LES
reference data from DNS (``filters``), initial conditions (``initial``) and turbulence
statistics (``diagnostics``). Plain torch; velocity fields are (batch, 3, n, n, n)."""
