"""fer-edge: facial-expression recognition from GPU training to real devices."""

__version__ = "0.1.0"
