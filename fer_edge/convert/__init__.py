"""Conversion: a Keras model into one self-describing bundle of TFLite, ONNX and OpenVINO artifacts, each
validated through the runtime against the Keras model. TensorFlow, ONNX and NNCF are imported only when used."""

from fer_edge.convert.bundler import ConvertOptions, ConvertResult, Row, convert
from fer_edge.convert.formats import FORMATS, ExportFormat

__all__ = ["FORMATS", "ConvertOptions", "ConvertResult", "ExportFormat", "Row", "convert"]
