"""scripts/gpu-check.sh's plumbing, in its dry mode on the CPU (GPU_CHECK_DRY=1: the
tiny model, the gpu tests skip): carried wheels installed with --target and put first on
PYTHONPATH, every section logged to $OUT/gpu-check.log, JSON figures saved, a summary
table, and a failing section that neither stops the later ones nor leaves exit status 0.
The GPU run itself needs the lent machine (the script's header says how)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "gpu-check.sh"


def probe_wheel(folder: Path) -> Path:
    """A minimal pure-Python wheel (module gpukit_probe) standing in for the carried ones."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "gpukit_probe-1.0-py3-none-any.whl"
    info = "gpukit_probe-1.0.dist-info"
    files = {
        "gpukit_probe/__init__.py": '__version__ = "1.0"\n',
        f"{info}/METADATA": "Metadata-Version: 2.1\nName: gpukit-probe\nVersion: 1.0\n",
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = "".join(f"{name},,\n" for name in files) + f"{info}/RECORD,,\n"
    with zipfile.ZipFile(path, "w") as archive:
        for name, text in {**files, f"{info}/RECORD": record}.items():
            archive.writestr(name, text)
    return path


def run_check(tmp_path: Path, **env: str) -> tuple[subprocess.CompletedProcess, Path]:
    out = tmp_path / "out"
    full_env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("GPU_CHECK_") and k != "PYTHONPATH"},
        "PYTHON": sys.executable,
        "GPU_CHECK_DRY": "1",
        "GPU_CHECK_SITE": str(tmp_path / "site"),
        "OUT": str(out),
        **env,
    }
    proc = subprocess.run(["bash", str(SCRIPT)], cwd=ROOT, env=full_env, capture_output=True, text=True, timeout=300)
    return proc, out


def summary_rows(out: Path) -> dict[str, list[str]]:
    lines = (out / "summary.txt").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("section"))
    rows = [line.split() for line in lines[start + 1 :] if line and not line.startswith("total ")]
    return {row[0]: row[1:] for row in rows}


@pytest.mark.slow
def test_dry_run_installs_the_wheels_logs_every_section_and_passes(tmp_path):
    wheel = probe_wheel(tmp_path / "wheels")
    proc, out = run_check(tmp_path, GPU_CHECK_WHEELS=str(wheel.parent), GPU_CHECK_SECTIONS="versions,gpu-tests,batch-1")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    rows = summary_rows(out)
    assert list(rows) == ["wheels", "versions", "gpu-tests", "batch-1"]
    assert all(row[0] == "0" and row[-1] == "ok" for row in rows.values()), rows
    log = (out / "gpu-check.log").read_text()
    # the carried package is imported from the --target folder, which heads PYTHONPATH
    assert f"PYTHONPATH={tmp_path / 'site'}" in log
    assert any(line.split()[:3] == ["gpukit_probe", "1.0", "ok"] for line in log.splitlines())
    assert "2 skipped" in log  # the gpu tests ran (and skipped: no CUDA, accepted in the dry mode)
    assert "engine/ref" in log
    figures = json.loads((out / "bench-batch1.json").read_text())
    assert figures["reference"]["audio_s"] == figures["engine"]["audio_s"] > 0
    assert (out / "gpu-tests.xml").is_file()
    assert proc.stdout.rstrip().splitlines()[-1].startswith("total ")  # the summary is printed last


def test_a_failing_section_does_not_stop_the_next_and_fails_the_run(tmp_path):
    broken = tmp_path / "wheels" / "broken-1.0-py3-none-any.whl"
    broken.parent.mkdir()
    broken.write_bytes(b"not a zip file")
    proc, out = run_check(tmp_path, GPU_CHECK_WHEELS=str(broken.parent), GPU_CHECK_SECTIONS="versions")
    assert proc.returncode == 1, proc.stdout[-3000:]
    rows = summary_rows(out)
    assert rows["wheels"][-1] == "FAILED" and rows["wheels"][0] not in ("0", "skip")
    assert rows["versions"][0] == "0"  # ran after the failure, without the site on PYTHONPATH
    assert "no carried packages" in (out / "gpu-check.log").read_text()


def test_sections_past_the_budget_are_reported_as_not_run(tmp_path):
    proc, out = run_check(tmp_path, GPU_CHECK_WHEELS="", GPU_CHECK_SECTIONS="versions,batch-1", GPU_CHECK_BUDGET="0")
    assert proc.returncode == 1
    rows = summary_rows(out)
    assert rows["wheels"][0] == "skip"
    assert rows["versions"][0] == rows["batch-1"][0] == "none"
    assert "no time left for batch-1" in (out / "gpu-check.log").read_text()
