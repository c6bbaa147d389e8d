"""results/ holds data only: no code, only the models results/MODELS.json keeps, and every training config there
parses and starts from a model that is in git or that an earlier step writes under runs/."""

from __future__ import annotations

import json
import re
import shlex
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


MODEL_MD = REPO / "docs" / "model.md"
COMMAND = re.compile(r"fer-edge (?:train|average) [^`\n#]+")
PLACEHOLDER = re.compile(r"[A-Z][A-Z_]*")
GIT_SHOW = re.compile(r"git show ([0-9a-f]{7,40}):(\S+) > (runs/\S+\.keras)")


def _given(argv: list[str]) -> dict:
    """The options a `fer-edge train|average` argv gives (defaults left out), parsed by the command itself."""
    import click

    from fer_edge.cli import cli

    cmd = cli.get_command(click.Context(cli), argv[0])
    ctx = cmd.make_context(argv[0], argv[1:])
    default = click.core.ParameterSource.DEFAULT
    return {k: v for k, v in ctx.params.items() if ctx.get_parameter_source(k) is not default}


def _stage_models(settings: dict) -> set[str]:
    """The model files a train run with these flat settings writes: OUT/<backbone>/<stage>/model.keras."""
    cfg = config.config_from_settings(settings)
    return {f"{Path(cfg.out).as_posix()}/{b}/{s}/model.keras" for b in cfg.backbones for s in cfg.chain}


def produced(text: str, configs: list[Path], but: Path | None = None) -> set[str]:
    """Every runs/ model an earlier step writes: the `fer-edge train` and `fer-edge average` commands of the
    given docs text (their --out, the config file's out key) and the out keys of the configs (but one)."""
    found: set[str] = set()
    blocks = re.findall(r"```[^\n]*\n(.*?)```", text, re.S)
    spans = re.findall(r"`([^`]+)`", re.sub(r"```.*?```", "", text, flags=re.S))  # inline code may wrap a line
    lines = [ln for b in blocks for ln in re.sub(r"\\\n\s*", " ", b).splitlines()] + [" ".join(s.split())
                                                                                     for s in spans]
    for line in (c for ln in lines for c in COMMAND.findall(ln)):
        argv = shlex.split(line)[1:]
        if any(PLACEHOLDER.fullmatch(a) for a in argv):  # `fer-edge train --swa N`: names an option, runs nothing
            continue
        opts = _given(argv)
        if argv[0] == "average":
            found.add(f"{opts.get('out') or Path(opts['stage'], 'average').as_posix()}/model.keras")
            continue
        file = opts.pop("config_file", None)
        if file is not None and Path(file).resolve() == (but and but.resolve()):
            continue
        opts.pop("data", None)
        settings = {**(config.read_config_file(REPO / file) if file else {}), **opts}
        if settings.get("out"):  # one without is test_readme_commands' to catch
            found |= _stage_models(settings)
    for commit, src, dest in GIT_SHOW.findall("\n".join(lines)):  # a model restored from git history
        known = subprocess.run(["git", "cat-file", "-e", commit], cwd=REPO, capture_output=True).returncode == 0
        if known:  # (a shallow clone lacks the commit: nothing to check against)
            assert subprocess.run(["git", "cat-file", "-e", f"{commit}:{src}"], cwd=REPO).returncode == 0, \
                f"docs: git show {commit}:{src}: no such file in that commit"
        found.add(dest)
    for path in configs:
        settings = config.read_config_file(path)
        if path != but and settings.get("out"):
            found |= _stage_models(settings)
    return found


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.relative_to(RESULTS).as_posix())
def test_config_parses_and_starts_from_a_model_one_can_have(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    cfg = config.config_from_settings({"out": "runs/x", **config.read_config_file(path)})
    earlier = produced(MODEL_MD.read_text(encoding="utf-8"), CONFIGS, but=path)
    for start in (cfg.weights, *filter(None, cfg.stage.teacher.split(","))):
        if start in ("none", "imagenet"):
            continue
        if start.startswith("runs/"):
            assert start in earlier, f"{path.name}: {start} is no earlier step's output (docs/model.md's " \
                                     "commands, the configs' out keys)"
        else:
            assert (REPO / start).is_file(), f"{path.name}: {start} is not in git"


def test_the_start_model_check_catches_a_typo(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    earlier = produced(MODEL_MD.read_text(encoding="utf-8"), CONFIGS)
    assert {"runs/compact/compact/ferplus/model.keras", "runs/compact-long/average/model.keras",
            "runs/compact-64/compact/ferplus/model.keras", "runs/chain/compact/ckplus/model.keras"} <= earlier
    assert "runs/compact-lnog/average/model.keras" not in earlier
    assert "runs/compact/compact/jaffe/model.keras" not in earlier  # that run's chain is ferplus only
    assert "runs/models/sepnet-e71.keras" in earlier  # docs/model.md restores it with git show
    with pytest.raises(AssertionError, match="no such file in that commit"):
        produced("```\ngit show 559e867:results/train/nope/model.keras > runs/models/x.keras\n```", [])
    text = "`fer-edge train --chain ferplus,jaffe --backbones compact,vgg19 --out runs/g`\n" \
           "```\nfer-edge average runs/g/vgg19/jaffe --epochs 2   # default --out\n```"
    assert produced(text, []) == {f"runs/g/{b}/{s}/model.keras" for b in ("compact", "vgg19")
                                  for s in ("ferplus", "jaffe")} | {"runs/g/vgg19/jaffe/average/model.keras"}
