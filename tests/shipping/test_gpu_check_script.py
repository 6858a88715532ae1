"""scripts/gpu-check.sh in its dry mode on the CPU (GPU_CHECK_DRY=1: the tiny model, tiny
sizes): carried wheels installed with --target and put first on PYTHONPATH, the version check,
then every stage of scripts/gpu_check.py in one process, each printing its JSON line (saved to
$OUT/stages.jsonl), a summary with a row per section and per stage; a failing prerequisite
stops the check with a clear message. The GPU run itself needs the lent machine (the
script's header says how)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "gpu-check.sh"
STAGES = [
    "probe",
    "compile-smoke",
    "setup",
    "warm-up",
    "numerics",
    "step-cost",
    "attention",
    "batch-1",
    "concurrency",
    "shares",
    "mix",
    "restart",
    "summary",
]


def probe_wheel(folder: Path, init: str = '__version__ = "1.0"\n') -> Path:
    """A minimal pure-Python wheel (module gpukit_probe) standing in for the carried ones."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "gpukit_probe-1.0-py3-none-any.whl"
    info = "gpukit_probe-1.0.dist-info"
    files = {
        "gpukit_probe/__init__.py": init,
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
    proc = subprocess.run(["bash", str(SCRIPT)], cwd=ROOT, env=full_env, capture_output=True, text=True, timeout=500)
    return proc, out


def summary_rows(out: Path) -> dict[str, list[str]]:
    lines = (out / "summary.txt").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("section"))
    rows = []
    for line in lines[start + 1 :]:
        if not line.strip():
            break
        rows.append(line.split())
    return {row[0]: row[1:] for row in rows}


@pytest.mark.slow
def test_dry_run_installs_the_wheels_and_prints_every_stage_from_one_process(tmp_path):
    wheel = probe_wheel(tmp_path / "wheels")
    proc, out = run_check(
        tmp_path,
        GPU_CHECK_WHEELS=str(wheel.parent),
        GPU_CHECK_SECTIONS="versions,stages",
        GPU_CHECK_ARGS="--restart",  # opt-in
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    rows = summary_rows(out)
    assert list(rows) == ["wheels", "versions", "stages"]
    assert all(row[0] == "0" and row[-1] == "ok" for row in rows.values()), rows
    log = (out / "gpu-check.log").read_text()
    # the carried package is imported from the --target folder, which heads PYTHONPATH
    assert f"PYTHONPATH={tmp_path / 'site'}" in log
    assert any(line.split()[:3] == ["gpukit_probe", "1.0", "ok"] for line in log.splitlines())
    stages = [json.loads(line) for line in (out / "stages.jsonl").read_text().splitlines()]
    assert [s["stage"] for s in stages] == STAGES
    assert all(s["seconds"] >= 0 and s["elapsed_s"] > 0 and "error" not in s for s in stages)
    by_name = {s["stage"]: s for s in stages}
    setup = by_name["setup"]
    assert setup["ran"]["torch"].startswith(setup["pinned"]["torch"]) and setup["dry"] is True  # versions recorded
    assert by_name["probe"]["missing"] == [] and by_name["summary"]["ok"] is True
    numerics = by_name["numerics"]
    assert numerics["teacher_forced_4_at_once"]["max_rel_diff"] < 1e-4  # fp32 on the CPU: equal to rounding
    assert numerics["greedy_vs_generate"]["identical"] and numerics["seed_reproduces"]["beside_others_identical"]
    warm = by_name["warm-up"]
    assert warm["graphs"]["lanes"]["slot lane"]["length"] == warm["slot_len"] and warm["graphs"]["cuda_graphs"] >= 0
    cost = by_name["step-cost"]
    assert set(cost["ms_per_step"]["all_slots"]) == set(cost["ms_per_step"]["one"]) == {"50", "450"}
    assert all(ms > 0 for ms in cost["ms_per_step"]["all_slots"].values())
    attention = by_name["attention"]["eager"]["ms"]
    assert "packed SDPA, live (chosen)" in attention and "repeat_kv, whole cache (before)" in attention
    assert max(row["max_diff_1024"] for row in attention.values()) < 1e-4  # every variant computes the same
    assert by_name["batch-1"]["reference"]["audio_s"] == by_name["batch-1"]["engine"]["audio_s"] > 0
    assert set(by_name["concurrency"]["levels"]) == {"1", "2"}
    shares = by_name["shares"]["levels"]["2"]
    assert shares["ms_per_step"]["forward"] > 0 and shares["ms_per_step"]["codec decode"] > 0
    mix = by_name["mix"]
    assert mix["placed"] == "slot" and mix["with"]["audio_s_per_s"] > 0 and mix["neighbours_ratio"] > 0
    assert by_name["restart"]["second"]["job_s"] > 0  # the second process ran a job
    summary = (out / "summary.txt").read_text()
    for stage in STAGES:
        assert any(line.split()[:1] == [stage] for line in summary.splitlines()), summary
    assert proc.stdout.rstrip().splitlines()[-1].startswith("total ")  # the summary is printed last


def test_wheels_that_do_not_install_stop_the_check_with_a_clear_message(tmp_path):
    broken = tmp_path / "wheels" / "broken-1.0-py3-none-any.whl"
    broken.parent.mkdir()
    broken.write_bytes(b"not a zip file")
    proc, out = run_check(tmp_path, GPU_CHECK_WHEELS=str(broken.parent), GPU_CHECK_SECTIONS="versions,stages")
    assert proc.returncode == 1, proc.stdout[-3000:]
    rows = summary_rows(out)
    assert rows["wheels"][-1] == "FAILED"
    assert rows["versions"][-2:] == ["NOT", "RUN"] and rows["stages"][-2:] == ["NOT", "RUN"]
    assert "STOPPED: wheels failed (the carried wheels did not install)" in proc.stdout


def test_a_carried_package_that_does_not_import_stops_the_check_before_the_stages(tmp_path):
    wheel = probe_wheel(tmp_path / "wheels", init="raise ImportError('probe: built for another Python')\n")
    proc, out = run_check(tmp_path, GPU_CHECK_WHEELS=str(wheel.parent), GPU_CHECK_SECTIONS="versions,stages")
    assert proc.returncode == 1
    rows = summary_rows(out)
    assert rows["wheels"][0] == "0" and rows["versions"][-1] == "FAILED"
    assert rows["stages"][-2:] == ["NOT", "RUN"]
    assert "gpukit_probe does not import" in proc.stdout and "STOPPED: versions failed" in proc.stdout


def test_sections_past_the_budget_are_reported_as_not_run(tmp_path):
    proc, out = run_check(tmp_path, GPU_CHECK_WHEELS="", GPU_CHECK_SECTIONS="versions,stages", GPU_CHECK_BUDGET="0")
    assert proc.returncode == 1
    rows = summary_rows(out)
    assert rows["wheels"][0] == "skip"
    assert rows["versions"][0] == rows["stages"][0] == "none"
    assert "no time left for versions" in (out / "gpu-check.log").read_text()


@pytest.mark.slow
def test_a_stage_that_raises_prints_its_error_and_the_next_stages_still_run(tmp_path):
    """Issue 25 finding 3: one failing stage used to drop every later one. The private torch
    parts are probed first, before anything is built; the summary line comes last."""
    stages = "probe,compile-smoke,setup,warm-up,numerics,step-cost,restart"
    proc, out = run_check(
        tmp_path,
        GPU_CHECK_WHEELS="",
        GPU_CHECK_SECTIONS="stages",
        GPU_CHECK_ARGS=f"--stages {stages}",
        GPU_CHECK_FAIL_STAGE="numerics",
    )
    assert proc.returncode == 1, proc.stdout[-4000:]  # a failed stage fails the section
    lines = [json.loads(line) for line in (out / "stages.jsonl").read_text().splitlines()]
    assert [s["stage"] for s in lines] == [*stages.split(","), "summary"]
    by_name = {s["stage"]: s for s in lines}
    probe = by_name["probe"]
    assert probe["missing"] == [] and "torch._inductor.cudagraph_trees.local" in probe["present"]
    assert by_name["compile-smoke"]["fallbacks"] == 0 and "error" not in by_name["compile-smoke"]
    assert by_name["numerics"]["error"] == "RuntimeError: injected failure in numerics (GPU_CHECK_FAIL_STAGE)"
    cost = by_name["step-cost"]  # after the failure: it ran, with its figures
    assert "error" not in cost and all(ms > 0 for ms in cost["ms_per_step"]["all_slots"].values())
    assert by_name["restart"]["skipped"].startswith("opt-in")
    summary = by_name["summary"]
    assert summary["failed"] == ["numerics"] and summary["ok"] is False
    assert {n: r["status"] for n, r in summary["stages"].items()} == {
        "probe": "ok",
        "compile-smoke": "ok",
        "setup": "ok",
        "warm-up": "ok",
        "numerics": "error",
        "step-cost": "ok",
        "attention": "skipped",
        "batch-1": "skipped",
        "concurrency": "skipped",
        "shares": "skipped",
        "mix": "skipped",
        "restart": "skipped",
    }
    table = (out / "summary.txt").read_text()
    assert any(
        line.split()[:1] == ["numerics"] and "ERROR RuntimeError: injected" in line for line in table.splitlines()
    )
    assert any(line.split()[:1] == ["step-cost"] and "ms/step" in line for line in table.splitlines())
    assert summary_rows(out)["stages"][-1] == "FAILED"
