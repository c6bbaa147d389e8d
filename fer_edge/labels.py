"""The canonical label space: 8 emotions in FERPlus order, plus the aliases other datasets use."""

from __future__ import annotations

from fer_edge.errors import DataError

EMOTIONS: tuple[str, ...] = (
    "neutral",
    "happiness",
    "surprise",
    "sadness",
    "anger",
    "disgust",
    "fear",
    "contempt",
)

ALIASES: dict[str, str] = {
    "neutral": "neutral", "ne": "neutral", "calm": "neutral",
    "happiness": "happiness", "happy": "happiness", "ha": "happiness", "joy": "happiness",
    "surprise": "surprise", "surprised": "surprise", "su": "surprise",
    "sadness": "sadness", "sad": "sadness", "sa": "sadness",
    "anger": "anger", "angry": "anger", "an": "anger",
    "disgust": "disgust", "disgusted": "disgust", "di": "disgust",
    "fear": "fear", "fearful": "fear", "afraid": "fear", "fe": "fear",
    "contempt": "contempt", "co": "contempt",
}  # fmt: skip


def canonical(name: str) -> str:
    """Map a dataset's class name (any case, any common alias) to the canonical emotion name."""
    key = name.strip().lower()
    if key not in ALIASES:
        raise DataError(f"unknown emotion label {name!r}; known: {', '.join(EMOTIONS)}")
    return ALIASES[key]


def index(name: str) -> int:
    """Canonical index of an emotion name or alias."""
    return EMOTIONS.index(canonical(name))


def display(name: str) -> str:
    """Label as shown to people, e.g. 'Happiness'."""
    return canonical(name).capitalize()
