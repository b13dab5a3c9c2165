"""dropserver: a fair-drop sale server."""

__version__ = "0.1.0"
