"""The manifest survives being stopped anywhere: snapshot + journal, replayed in order."""

from __future__ import annotations

import json

from higgs_tts.manifest import DONE, SUBMITTED, Manifest, PieceRecord


def pieces(count: int) -> list[PieceRecord]:
    return [PieceRecord(n, 0, 10, f"{n:064x}", True) for n in range(count)]


def test_every_change_is_on_disk_before_the_client_goes_on(tmp_path):
    path = tmp_path / "manifest.json"
    manifest = Manifest.create(path, {"settings": {"seed": 1}}, pieces(3))
    manifest.submitted(manifest.pieces[0], "job-1", 1)
    manifest.job_ended(manifest.pieces[0], "COMPLETED", None, {"executionTime": 2500, "delayTime": 100})
    manifest.update(manifest.pieces[0], state=DONE, file="pieces/00000.flac")
    manifest.submitted(manifest.pieces[1], "job-2", 1)
    # no save(), no close(): as if the process were killed here
    again = Manifest.load(path)
    assert [p.state for p in again.pieces] == [DONE, SUBMITTED, "pending"]
    assert again.pieces[1].job_id == "job-2"
    assert again.billed_seconds() == 2.5
    assert json.loads(path.read_text())["pieces"][0]["state"] == "pending"  # the snapshot alone is older


def test_a_line_cut_short_is_ignored_and_compaction_keeps_the_order(tmp_path):
    path = tmp_path / "manifest.json"
    manifest = Manifest.create(path, {}, pieces(2))
    manifest.submitted(manifest.pieces[0], "job-1", None)
    manifest.close()
    with open(manifest.journal_path, "a") as journal:
        journal.write('{"seq": 2, "piece": {"index": 1, "sta')  # the process died mid-write
    again = Manifest.load(path)
    assert again.pieces[0].job_id == "job-1" and again.pieces[1].state == "pending"

    again.save()  # snapshot now includes seq 1, journal emptied
    assert manifest.journal_path.read_text() == ""
    # an old journal line (a crash between the snapshot's rename and the journal's truncation)
    # must not take a piece back to an older state
    stale = {"seq": 1, "piece": {**json.loads(path.read_text())["pieces"][0], "state": "pending", "job_id": None}}
    manifest.journal_path.write_text(json.dumps(stale) + "\n")
    assert Manifest.load(path).pieces[0].job_id == "job-1"
