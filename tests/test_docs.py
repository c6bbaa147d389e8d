"""docs/ stays true: the Python blocks of docs/api.md run as written, docs/manifest.md names every manifest field
of the schema, docs/architecture.md lists every plug-in registry of the package, and every relative link (with its
#anchor) and every repository path named in README.md and docs/*.md exists."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from fer_edge.bundle import SCHEMA

DOCS = Path(__file__).resolve().parents[1] / "docs"
PACKAGE = DOCS.parent / "fer_edge"
PAGES = [DOCS.parent / "README.md", *sorted(DOCS.glob("*.md"))]
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
REPO_PATH = re.compile(r"`((?:results|fer_edge|tests|scripts|docs|\.ci)/[^`\s*{}]*)`")


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


def package_block() -> str:
    text = (DOCS / "architecture.md").read_text(encoding="utf-8")
    return re.search(r"```\nfer_edge/\n(.*?)```", text, re.S).group(1)


def unnamed_modules(block: str, package: Path = PACKAGE) -> list[str]:
    """The modules (each .py but __init__) under ``package`` that the package block of docs/architecture.md does
    not name: a top-level one as ``name.py`` above the folders, one in a folder by its name in that folder's
    entry, one in a subfolder by its name after ``sub/`` in it (until the next ``other/``)."""
    lines = block.splitlines()
    first = next(i for i, ln in enumerate(lines) if re.match(r"  \w+/", ln))
    top, sections, current = "\n".join(lines[:first]), {}, None
    for ln in lines[first:]:
        m = re.match(r"  (\w+)/", ln)
        current = m.group(1) if m else current
        sections[current] = sections.get(current, "") + ln + "\n"
    missing = []
    for path in sorted(package.rglob("*.py")):
        rel = path.relative_to(package)
        if path.name == "__init__.py" or "__pycache__" in rel.parts:
            continue
        if len(rel.parts) == 1:
            named = re.search(rf"(?<![\w/]){re.escape(path.name)}\b", top)
        else:
            text = sections.get(rel.parts[0], "")
            for sub in rel.parts[1:-1]:
                m = re.search(rf"\b{re.escape(sub)}/(.*?)(?=\b\w+/[\s(]|\Z)", text, re.S)
                text = m.group(1) if m else ""
            named = re.search(rf"(?<![\w.-]){re.escape(path.stem)}(?![\w'-])", text)
        if not named:
            missing.append(rel.as_posix())
    return missing


def test_the_architecture_names_every_module() -> None:
    assert unnamed_modules(package_block()) == []


def test_the_architecture_names_every_test_helper() -> None:
    text = (DOCS / "architecture.md").read_text(encoding="utf-8").split("## Tests", 1)[1]
    helpers = sorted(p.stem for p in (DOCS.parent / "tests" / "helpers").glob("*.py") if p.stem != "__init__")
    assert len(helpers) >= 7 and [h for h in helpers if f"`{h}`" not in text] == []


def test_the_module_check_catches_a_missing_one(tmp_path: Path) -> None:
    for rel in ("errors.py", "train/stage.py", "runtime/detectors/area.py", "runtime/sources/latest.py"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("")
    block = ("  errors.py\n  train/       trainer, a stage's model, stage\n  runtime/     detectors/ (base, area)\n"
             "               sources/ (camera)\n")
    assert unnamed_modules(block, tmp_path) == ["runtime/sources/latest.py"]
    assert unnamed_modules(block.replace(", stage", ", stages"), tmp_path) == ["runtime/sources/latest.py",
                                                                         "train/stage.py"]
    assert unnamed_modules(block.replace("area", "x").replace("errors.py", "errors"), tmp_path) == [
        "errors.py", "runtime/detectors/area.py", "runtime/sources/latest.py"]


def anchors(path: Path) -> set[str]:
    """GitHub's anchors of a Markdown file's headings: lower case, punctuation dropped, spaces as hyphens."""
    text = re.sub(r"```.*?```", "", path.read_text(encoding="utf-8"), flags=re.S)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in re.findall(r"^#+ (.+)$", text, re.M)}


def links(page: Path) -> list[str]:
    text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.S)
    return [t for t in LINK.findall(text) if not re.match(r"[a-z][a-z0-9+.-]*:", t)]


def test_pages_link_somewhere() -> None:
    assert len(links(PAGES[0])) >= 10 and sum(len(links(p)) for p in PAGES[1:]) >= 10


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_relative_link_resolves(page: Path) -> None:
    broken = []
    for target in links(page):
        file, _, anchor = target.partition("#")
        dest = (page.parent / file).resolve() if file else page
        if not dest.exists() or (anchor and dest.suffix == ".md" and anchor not in anchors(dest)):
            broken.append(target)
    assert broken == []


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_repository_path_named_exists(page: Path) -> None:
    """`results/...`, `fer_edge/...`, `tests/...` in the text: a file moved or deleted leaves no stale name."""
    named = REPO_PATH.findall(page.read_text(encoding="utf-8"))
    assert sorted({n for n in named if not (DOCS.parent / n.rstrip("/.,")).exists()}) == []


def test_the_link_check_catches_a_broken_link(tmp_path: Path) -> None:
    page = tmp_path / "x.md"
    page.write_text("# Top\n\n## A `b`: c\n\n[ok](#a-b-c) [ok](x.md#top) [bad](#nope) [bad](missing.md) [web](https://e.x)\n")
    assert links(page) == ["#a-b-c", "x.md#top", "#nope", "missing.md"]
    assert {"top", "a-b-c"} == anchors(page)



def test_the_default_model_named_in_the_docs_is_the_bundled_one() -> None:
    """'the default model (RUN, ...)' names the training run under results/train/ whose Keras test accuracy is the
    default bundle's (its manifest name, sepnet-ferplus, is not the run it came from)."""
    import json

    manifest = json.loads((PACKAGE / "assets" / "default_bundle" / "manifest.json").read_text())
    named = [(page, m) for page in PAGES for m in re.findall(r"default model \(([\w.-]+)",
                                                              page.read_text(encoding="utf-8").replace("\n", " "))]
    assert named, "no page names the default model's training run"
    for page, run in named:
        record = DOCS.parent / "results" / "train" / run / "run.json"
        assert record.is_file(), f"{page.name}: default model {run}: no {record}"
        assert json.loads(record.read_text())["summary"]["accuracy"] == pytest.approx(
            manifest["evaluation"]["keras_accuracy"], abs=1e-6), f"{page.name}: {run} is not the bundled model"
