"""Moved to ``app.services.initial_conditions``; kept only for
``workers/runners/rollout_channel.py``, whose import its owner rewrites (then delete this)."""

from app.services.initial_conditions import load_channel_initial_condition

__all__ = ["load_channel_initial_condition"]
