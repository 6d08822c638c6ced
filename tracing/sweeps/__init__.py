"""Sweeps: th.sweep and the agent that runs trials."""
