"""samzoo: Segment Anything for microscopy."""
__version__ = "0.1.0"
