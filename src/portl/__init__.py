"""Portl: move data between systems, correctly and fast."""
