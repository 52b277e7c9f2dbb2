"""Evaluation code the tools and tests use; production code never imports it (an import-linter contract in
``pyproject.toml`` says so).

- :mod:`vfx.eval.landmarks`: landmark accuracy on labelled photos (dlib XML, normalised mean error);
- :mod:`vfx.eval.stability`: landmark tracks over time (stability under a known motion, lag, jitter);
- :mod:`vfx.eval.retouch`: known-warp recovery of the layout warp, and the latent-edit figures.

Floor 7, beside :mod:`vfx.farm`: it may import anything below it. The submodules are not imported here, so
``import vfx.eval`` stays cheap.
"""
