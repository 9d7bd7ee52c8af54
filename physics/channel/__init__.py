"""Wall-bounded channel flow (walls at y = ±1): the grid and its finite differences in y, the
solver, LES closures, the velocity as datasets hold it, statistics in wall units, and the
registered flow ``ChannelFlow`` (``physics.channel.flow``) that describes it."""
