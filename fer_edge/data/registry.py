"""The dataset-layout registry (kept apart so reader modules can import it without cycles)."""

from fer_edge.data.types import Layout
from fer_edge.registry import Registry

DATASETS: Registry[type[Layout]] = Registry("dataset layout")
