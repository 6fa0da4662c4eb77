"""Pretext tasks: one file per self-supervised method."""
