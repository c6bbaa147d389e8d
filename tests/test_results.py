"""results/ holds data only: no code, only the models results/MODELS.json keeps, and every training config there
parses and starts from a model that is in git or that an earlier step writes under runs/."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from fer_edge.train import config

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "results"
MODELS = json.loads((RESULTS / "MODELS.json").read_text())
CONFIGS = sorted(RESULTS.glob("train/*/*.yaml"))


def _tracked(pattern: str) -> list[str]:
    out = subprocess.run(["git", "ls-files", "--", pattern], cwd=REPO, capture_output=True, text=True, check=True)
    return sorted(out.stdout.split())


def test_no_code_in_results() -> None:
    code = [p for p in _tracked("results") if p.endswith((".py", ".sh"))]
    assert code == [], f"scripts belong in scripts/: {code}"


def test_only_the_listed_models_are_in_git() -> None:
    models = _tracked("results/**.keras")
    assert models == sorted(MODELS["kept"])
    for row in MODELS["removed"]:
        assert row["path"] not in models and re.fullmatch(r"[0-9a-f]{64}", row["sha256"]) and row["bytes"] > 0
        assert (REPO / row["reports"] / "run.json").is_file()  # its record stays
        assert row["sha256"] in (RESULTS / "MODELS.md").read_text()


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.relative_to(RESULTS).as_posix())
def test_config_parses_and_starts_from_a_model_one_can_have(path: Path) -> None:
    cfg = config.config_from_settings({"out": "runs/x", **config.read_config_file(path)})
    for start in (cfg.weights, *filter(None, cfg.stage.teacher.split(","))):
        if start in ("none", "imagenet"):
            continue
        assert start.startswith("runs/") or (REPO / start).is_file(), f"{path.name}: {start} is neither in git " \
                                                                       "nor an earlier step's runs/ output"
