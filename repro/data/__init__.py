"""Data integrity: the sha256 manifest of a prepared directory and streaming downloads."""
