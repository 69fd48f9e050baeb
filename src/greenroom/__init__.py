"""Greenroom: an internal developer portal."""

__version__ = "0.1.0"
