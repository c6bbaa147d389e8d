"""What one chain stage is made of: the run's shared context, the stage's inputs (``StageJob``), the model it starts
from (``StartModel``), what scoring it gave (``StageScore``) and what it hands on (``StageOutcome``).
``fer_edge.train.scoring`` makes a StageScore, ``fer_edge.train.outputs`` writes it, ``fer_edge.train.chain`` runs
the stages in order."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fer_edge.data.types import FaceDataset
from fer_edge.train.config import ChainConfig
from fer_edge.train.settings import StageConfig
from fer_edge.train.surgery import start_model


class StageContext:
    """Shared state of one chain run (config, progress bar, extra callbacks)."""

    def __init__(self, cfg: ChainConfig, bar: object, callbacks: list | None) -> None:
        self.cfg, self.bar, self.callbacks = cfg, bar, callbacks

    def say(self, text: str) -> None:
        from tqdm import tqdm

        tqdm.write(text, file=sys.stdout)


@dataclass(frozen=True)
class StageJob:
    """One stage to train and score: the settings it trains with (``config``, start weights already resolved),
    where it writes, the plan --resume compares, and when it started (``clock``: time.time(); ``started``: text)."""

    backbone: str
    stage: str
    ds: FaceDataset
    folder: Path
    config: StageConfig
    init: str | None             # the model the stage starts from (previous stage or --weights PATH), None: fresh
    plan: dict
    folds: int | None            # k of a cross-validated stage (None: one fold per subject, or an official split)
    clock: float
    started: str

    @property
    def title(self) -> str:
        return f"{self.backbone} / {self.stage}"


class StartModel:
    """Makes the model each training of a stage starts from (None: the trainer builds a fresh one) and remembers
    what happened to its head ("new", "kept" or "rebuilt") and the classes it came with."""

    def __init__(self, init: str | None, classes: tuple[str, ...], dropout: float,
                 init_classes: tuple[str, ...] | None) -> None:
        self.init, self.classes, self.dropout = init, classes, dropout
        self.head: str | None = "new" if init is None else None
        self.source_classes = init_classes

    def __call__(self, seed: int) -> object | None:
        if self.init is None:
            return None
        model, self.head, self.source_classes = start_model(self.init, self.classes, self.dropout, seed,
                                                            self.source_classes)
        return model


@dataclass(frozen=True)
class StageScore:
    """How a trained stage scored: labels and predictions of the test faces (an official test split, or every face
    once by the fold that held it out), FGSM accuracy, the most confident mistakes (Grad-CAM arrays), the handed-on
    model's training, and for cross-validation the fold statistics."""

    y_true: np.ndarray
    y_pred: np.ndarray
    fgsm_accuracy: float | None
    mistakes: dict                   # faces, heats, y_true, y_pred, conf (see scoring.mistakes)
    history: dict
    best_val_accuracy: float
    units: int                       # progress-bar units (models trained)
    timings: dict                    # train_seconds and eval_seconds, or fold_seconds and train_seconds
    head: str | None                 # "new", "kept" or "rebuilt"
    source_classes: tuple[str, ...] | None
    folds: dict | None = None        # fold_stats(...) plus test_subjects and fold_epochs; None: official split
    earlier_seconds: float = 0.0     # folds scored before a --resume, counted into the stage's time

    @property
    def cross_validated(self) -> bool:
        return self.folds is not None


@dataclass(frozen=True)
class StageOutcome:
    """What a finished stage hands on: its model, classes and the numbers for the summary."""

    model_path: Path
    classes: tuple[str, ...]
    summary: dict
