"""Compositor package and review videos (filled by the swap issue)."""
