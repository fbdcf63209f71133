"""Rendering: turns the float arrays of the core into pictures (grids, colormaps, overlays,
charts, PNG bytes). Nothing here computes on a model; callbacks call these to draw records.
"""
