"""fer-edge: facial-expression recognition from GPU training to real devices."""

from fer_edge.privacy import disable_telemetry

__version__ = "0.1.0"

disable_telemetry()  # before anything imports openvino, nncf or onnxruntime (fer_edge/privacy.py)
