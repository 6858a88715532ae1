"""The docs as a whole: every link and anchor resolves, generated sections are current, and
nothing a fresh endpoint lacks or a change's history is in them. (The request examples run in
tests/shipping/test_documented_examples.py; the deploy reference's coverage of the scripts is in
tests/shipping/test_shipping_files.py.)"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "benchmarks" / "RESULTS.md"]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
# Pages other engineers write in the same round (issue 30's docs tree links them). Until they
# are merged a link to one may point nowhere; once a page exists its anchors are checked too.


def anchors(text: str) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to '-', '-N' for repeats."""
    seen: dict[str, int] = {}
    out = set()
    in_fence = False
    for line in text.splitlines():
        if line.lstrip().startswith(("```", "~~~")):
            in_fence = not in_fence
        if in_fence or not (m := re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)):
            continue
        slug = re.sub(r"[^\w\- ]", "", m.group(1).replace("`", "").lower()).replace(" ", "-")
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        out.add(slug if n == 0 else f"{slug}-{n}")
    return out


def test_anchors_follow_githubs_rule() -> None:
    text = "# Deploy\n## deploy-runpod.sh\n## Many jobs at once (MAX_CONCURRENCY)\n## 1. An image: fork\n## Deploy\n"
    assert anchors(text) == {
        "deploy",
        "deploy-runpodsh",
        "many-jobs-at-once-max_concurrency",
        "1-an-image-fork",
        "deploy-1",
    }


@pytest.mark.parametrize("doc", DOCS, ids=[str(d.relative_to(ROOT)) for d in DOCS])
def test_every_relative_link_and_anchor_resolves(doc: Path) -> None:
    text = doc.read_text()
    problems = []
    for target in LINK.findall(text):
        if re.match(r"[a-z]+:", target):
            continue  # https:, mailto:
        path, _, anchor = target.partition("#")
        dest = (doc.parent / path).resolve() if path else doc
        rel = dest.relative_to(ROOT).as_posix() if dest.is_relative_to(ROOT) else str(dest)
        if not dest.exists():
            problems.append(f"{target}: no such file")
            continue
        if anchor and dest.suffix == ".md" and anchor not in anchors(dest.read_text()):
            problems.append(f"{target}: no heading with that anchor in {rel}")
    assert problems == []


def test_the_docs_name_no_voice_a_fresh_endpoint_lacks_and_no_history() -> None:
    for doc in DOCS:
        text = doc.read_text()
        assert "belinda" not in text.lower(), doc.name
        if doc.name != "RESULTS.md":  # results carry their commits; pages describe what is
            assert not re.search(r"before this change|\(0?[0-9a-f]{7}\)", text), doc.name


def test_the_cost_table_is_generated_from_the_memory_plan_and_the_prices() -> None:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import gpu_cost
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    doc = gpu_cost.COSTS_DOC.read_text()
    assert gpu_cost.with_table(doc, gpu_cost.table()) == doc, "stale: run python benchmarks/gpu_cost.py --write"
    assert "<!-- generated:gpu-cost -->\n| pool |" in doc
    # the config's pools are the ones the page explains, in the same order
    import json

    pools = json.loads((ROOT / "runpod-serverless-config.json").read_text())["endpoint"]["gpu"]["pools"]
    assert ", ".join(f"`{p}`" for p in pools) in doc
