"""Pretext tasks: one file per method."""
