"""Laplacian pyramids, enhanced multi-band blending, baselines and paste-back (filled by the swap issue)."""
