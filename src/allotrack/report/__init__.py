"""Presentation: number formatting, tables and figures. Computation lives in :mod:`allotrack.stats`."""
