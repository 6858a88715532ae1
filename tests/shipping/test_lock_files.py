"""The locks (scripts/lock.sh): requirements-runtime.lock is what bootstrap installs onto the
volume, requirements-dev.lock what scripts/setup-dev.sh installs into .venv. Each must be made
from the requirements as they are now: editing a requirements file without relocking fails here."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

from higgs_worker.bootstrap import lock_inputs

ROOT = Path(__file__).resolve().parents[2]
LOCKS = {
    "requirements-runtime.lock": ["requirements-runtime.txt"],
    "requirements-dev.lock": ["requirements-runtime.txt", "requirements-dev.txt"],
}
RELOCK = "the lock is stale: run 'bash scripts/lock.sh' and commit the locks"


def name(requirement: str) -> str:
    return re.sub(r"[-_.]+", "-", requirement).lower()


def locked_pins(lock: str) -> dict[str, tuple[str, int]]:
    """name -> (version, number of hashes) for every entry of a lock."""
    pins = {}
    for entry in re.split(r"\n(?=[A-Za-z0-9])", lock):
        match = re.match(r"([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?==([^\s;\\]+)", entry)
        if match:
            pins[name(match[1])] = (match[3], entry.count("--hash=sha256:"))
    return pins


def required_pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            match = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?==(\S+)", line)
            assert match, f"{path.name}: '{line}' is not pinned with =="
            pins[name(match[1])] = match[3]
    return pins


@pytest.mark.parametrize("lock", sorted(LOCKS))
def test_the_lock_was_made_from_the_requirements_as_they_are(lock: str) -> None:
    recorded = lock_inputs((ROOT / lock).read_text())
    actual = {src: hashlib.sha256((ROOT / src).read_bytes()).hexdigest() for src in LOCKS[lock]}
    assert recorded == actual, f"{lock}: {RELOCK}"


@pytest.mark.parametrize("lock", sorted(LOCKS))
def test_every_distribution_is_pinned_with_hashes_and_every_requirement_is_in_it(lock: str) -> None:
    pins = locked_pins((ROOT / lock).read_text())
    assert len(pins) > 100  # the whole tree (139 for the runtime at 2026-12), not the 30-odd direct pins
    unhashed = [n for n, (_, hashes) in pins.items() if hashes == 0]
    assert unhashed == []
    for src in LOCKS[lock]:
        for dist, version in required_pins(ROOT / src).items():
            assert pins.get(dist, ("missing",))[0] == version, f"{lock}: {dist}=={version} ({src}): {RELOCK}"


def test_the_dev_lock_holds_the_runtimes_versions() -> None:
    """The tests run what the image installs."""
    runtime = locked_pins((ROOT / "requirements-runtime.lock").read_text())
    dev = locked_pins((ROOT / "requirements-dev.lock").read_text())
    assert {n: v for n, (v, _) in runtime.items()} == {n: dev[n][0] for n in runtime if n in dev}
    assert set(runtime) <= set(dev)


def test_only_pypi_files_are_in_the_locks() -> None:
    """No local index, find-links folder or URL of this machine reached a lock."""
    for lock in LOCKS:
        text = (ROOT / lock).read_text()
        assert not re.search(r"file:|/opt/|--find-links|--index-url|--extra-index-url|\+cpu", text), lock


def test_the_installers_require_the_hashes() -> None:
    setup = (ROOT / "scripts" / "setup-dev.sh").read_text()
    assert "--require-hashes" in setup and "-r requirements-dev.lock" in setup
    assert "requirements-runtime.txt -r" not in setup  # no unlocked install left
