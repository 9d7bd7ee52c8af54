"""2D vorticity flows on the periodic square: the pseudo-spectral solver, its time steppers,
random initial conditions and the discrete equation residual."""
