"""Face detection, 68-point landmarks with jitter averaging, tracking, masks and the semantic face layout (filled by the faces issue)."""
