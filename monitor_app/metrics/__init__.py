"""A patient's vital-sign samples."""
