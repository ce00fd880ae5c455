"""lampo: omni-channel flash-sale engine with a live battle report."""

__version__ = "0.1.0"
