"""Scoring logs (local files or Blob Storage), drift reports and telemetry."""
