"""Facesets on disk (aligned crops plus per-face metadata, schema ``vfx.Faceset/1``) and `vfx extract`."""

from vfx.faceset.store import FACESET_SCHEMA, FaceRecord, Faceset, FacesetInfo

__all__ = ["FACESET_SCHEMA", "FaceRecord", "Faceset", "FacesetInfo"]
