"""Connectors: one module per system, all behind the seam in :mod:`portl.connectors.base`."""
