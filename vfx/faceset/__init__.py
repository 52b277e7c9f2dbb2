"""Facesets on disk: aligned crops plus per-face metadata, versioned (filled by the faces issue)."""
