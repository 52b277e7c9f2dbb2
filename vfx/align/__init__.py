"""Similarity alignment of faces (eyes level, fixed inter-ocular distance), crop and uncrop (filled by the faces issue)."""
