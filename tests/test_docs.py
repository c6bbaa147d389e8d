"""docs/ stays true: the Python blocks of docs/api.md run as written, docs/manifest.md names every manifest field
of the schema, and docs/architecture.md lists every plug-in registry of the package."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from fer_edge.bundle import SCHEMA

DOCS = Path(__file__).resolve().parents[1] / "docs"
PACKAGE = DOCS.parent / "fer_edge"


def python_blocks(path: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", path.read_text(encoding="utf-8"), re.S)


def test_the_api_examples_run_in_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocks = python_blocks(DOCS / "api.md")
    assert len(blocks) >= 5
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "docs_api"}
    for i, block in enumerate(blocks):
        exec(compile(block, f"docs/api.md block {i + 1}", "exec"), namespace)
    assert (tmp_path / "frames.jsonl").stat().st_size > 0
    assert (tmp_path / "bench-results" / "results.json").is_file()


def test_the_manifest_spec_names_every_schema_field() -> None:
    text = (DOCS / "manifest.md").read_text(encoding="utf-8")
    props = SCHEMA["properties"]
    names = set(props) | set(props["input"]["properties"]) | set(props["artifacts"]["items"]["properties"])
    missing = sorted(n for n in names if f"`{n}`" not in text)
    assert missing == []
    assert f"| {SCHEMA['properties']['schema_version']['const']} |" in text  # the current version has a row


def test_the_architecture_lists_every_registry() -> None:
    text = (DOCS / "architecture.md").read_text(encoding="utf-8")
    found = set()
    for path in PACKAGE.rglob("*.py"):
        found.update(re.findall(r"^(?:    )?(\w+): Registry\[", path.read_text(encoding="utf-8"), re.M))
    found.discard("reg")  # devices/profiles builds PROFILES through a local variable
    assert {"DATASETS", "BACKBONES", "FORMATS", "TOOLCHAINS", "BACKENDS", "DETECTORS", "SOURCES"} <= found
    assert sorted(n for n in found if f"`{n}`" not in text) == []
