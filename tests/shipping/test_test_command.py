"""The README's test command is what CI runs, and it installs the Debian packages the tests
need (scripts/test-system-packages.txt through scripts/install-system-packages.sh)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
INSTALL = ROOT / "scripts" / "install-system-packages.sh"


def readme_test_command() -> str:
    block = re.search(r"```bash\n(.*?)```", (ROOT / "README.md").read_text(), re.DOTALL)[1]
    [command] = [line for line in block.splitlines() if "scripts/test.sh" in line and not line.startswith("#")]
    return command.strip()


def test_ci_runs_exactly_the_readmes_test_command_then_the_image_check() -> None:
    commands = [
        line.strip()
        for line in (ROOT / ".ci" / "run").read_text().splitlines()
        if line.strip() and not line.startswith("#") and not line.startswith(("set ", "cd "))
    ]
    assert commands == [readme_test_command(), "bash scripts/image-check.sh"]
    test_sh = (ROOT / "scripts" / "test.sh").read_text()
    assert test_sh.index("scripts/install-system-packages.sh") < test_sh.index("scripts/setup-dev.sh")
    checked = test_sh[test_sh.index("for program in") : test_sh.index("done")]
    for program in ("espeak-ng", "chromium", "chromedriver"):  # what the tests run, checked before pytest
        assert program in checked


def test_every_listed_package_is_one_debian_name_under_a_comment() -> None:
    lines = (ROOT / "scripts" / "test-system-packages.txt").read_text().splitlines()
    names = [line.split("#")[0].strip() for line in lines if line.split("#")[0].strip()]
    assert "espeak-ng" in names
    for i, line in enumerate(lines):
        name = line.split("#")[0].strip()
        if name:
            assert re.fullmatch(r"[a-z0-9][a-z0-9.+-]+", name), line
            assert "#" in line or lines[i - 1].lstrip().startswith("#"), f"{name}: say why the tests need it"


def run_install(packages: list[str], user: str | None = None) -> subprocess.CompletedProcess:
    """The script on a list of ``packages`` (a file in the system's temporary folder that any user reads)."""
    with tempfile.NamedTemporaryFile("w", suffix=".txt") as listing:
        listing.write("# a comment line\n" + "".join(f"{p}  # why\n" for p in packages))
        listing.flush()
        os.chmod(listing.name, 0o644)
        command = ["bash", str(INSTALL), listing.name]
        if user:
            command = ["runuser", "-u", user, "--", *command]
        return subprocess.run(command, capture_output=True, text=True, timeout=120)


@pytest.mark.skipif(shutil.which("dpkg-query") is None, reason="a Debian system (dpkg) is needed")
def test_nothing_to_do_when_every_package_is_installed() -> None:
    result = run_install(["bash", "coreutils"])  # on every Debian system
    assert result.returncode == 0 and result.stdout == "" and result.stderr == ""


@pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("runuser") is None or shutil.which("dpkg-query") is None,
    reason="runs the script as another user (root with runuser, on Debian)",
)
def test_without_root_or_sudo_it_stops_with_what_to_install() -> None:
    result = run_install(["bash", "higgs-no-such-package"], user="nobody")
    assert result.returncode == 1
    assert "higgs-no-such-package" in result.stderr and "bash" not in result.stderr.split("\n")[1]
    assert "apt-get install -y --no-install-recommends higgs-no-such-package" in result.stderr
