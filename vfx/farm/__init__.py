"""Resumable frame-range tasks, the Ray engine and farm-manager export (filled by the farm issue)."""
