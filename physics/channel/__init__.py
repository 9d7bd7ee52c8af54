"""Wall-bounded channel flow (walls at y = ±1): the grid and its finite differences in y, the
solver, LES closures, the velocity as datasets hold it, and statistics in wall units."""
