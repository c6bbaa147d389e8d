"""Training: backbones, model surgery (surgery), one stage (trainer), the chained transfer across datasets (chain;
a stage scored by scoring, written by outputs), metrics (evaluate), reports, Grad-CAM and adversarial
regularization. TensorFlow is imported only inside the functions that need it.

Names that are also submodules (``gradcam``, ``evaluate``) are reached through them:
``from fer_edge.train.gradcam import gradcam``, ``from fer_edge.train.evaluate import evaluate``."""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "BACKBONES": "backbones", "Backbone": "backbones", "build_classifier": "backbones", "unfreeze": "backbones",
    "load_model": "surgery", "rehead": "surgery", "resize_input": "surgery", "start_model": "surgery",
    "Phase": "settings", "StageConfig": "settings", "StageResult": "trainer", "train_stage": "trainer",
    "ChainConfig": "config", "STAGES": "config", "config_from_settings": "config", "read_config_file": "config",
    "ChainResult": "chain", "run_chain": "chain", "StageScore": "stage", "StageOutcome": "stage",
    "score_official": "scoring", "score_folds": "scoring",
    "cv_folds": "folds", "subject_holdout": "folds",
    "Evaluation": "evaluate", "metrics": "evaluate", "fold_stats": "evaluate",
    "Explanation": "gradcam", "explain": "gradcam",
    "fgsm_accuracy": "adversarial",
}  # fmt: skip

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"fer_edge.train.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'fer_edge.train' has no attribute {name!r}")
