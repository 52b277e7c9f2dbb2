"""Semantic retouch: layout warping, refiner, segmentation-driven latent edits (filled by the retouch issues)."""
