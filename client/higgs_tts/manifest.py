"""OUTDIR/manifest.json: every piece's state, so a run can stop anywhere and be resumed.

A piece is ``pending`` (never sent, or to be sent again), ``submitted`` (a job id is
recorded: a new run polls that job instead of paying for another), ``done`` (its audio
file is written and its sha256 recorded) or ``failed`` (out of attempts; a new run tries
it again). Every job ever sent is listed with its id, outcome and the endpoint's own
timings (``executionTime``: what RunPod bills).

On disk: ``manifest.json``, a snapshot written whole (a temporary file, fsync, an atomic
rename) when a run starts and ends, and ``manifest.journal`` beside it, where every change
of a piece is appended as one JSON line (the piece's whole record) and fsync'd before the
client goes on, under a lock shared by the threads that drive the pieces. Loading reads
the snapshot and replays the journal (a last line cut short by a crash is ignored: it was
never acted on). So whatever stops the client (Ctrl-C, a kill, a power cut), the manifest
is one consistent state, and a change costs one small append, not a rewrite of every
piece (a 300-piece snapshot is about 100 ms of CPU; an append well under 1 ms + fsync).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path

VERSION = 1
PENDING, SUBMITTED, DONE, FAILED = "pending", "submitted", "done", "failed"


@dataclass
class JobRecord:
    id: str
    seed: int | None
    outcome: str = "submitted"  # COMPLETED, FAILED, TIMED_OUT, CANCELLED, rejected, lost, ...
    error: str | None = None
    execution_ms: int | None = None  # RunPod's executionTime (billed)
    delay_ms: int | None = None  # RunPod's delayTime (queue + cold start)
    worker_total_s: float | None = None  # the worker's own timings.total_s


@dataclass
class PieceRecord:
    index: int
    chapter: int
    words: int
    text_sha256: str
    ends_paragraph: bool
    state: str = PENDING
    job_id: str | None = None  # the job in flight, if any
    seed: int | None = None
    attempts: int = 0  # attempts in the current run (reset when a run starts)
    rejected: int = 0  # results refused by the checks (each moves the seed on)
    jobs: list[JobRecord] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    file: str | None = None  # relative to OUTDIR
    sha256: str | None = None
    subtitles: str | None = None
    duration_s: float | None = None
    sample_rate: int | None = None
    loudness_lufs: float | None = None

    @classmethod
    def from_json(cls, data: dict) -> PieceRecord:
        jobs = [JobRecord(**job) for job in data.pop("jobs", [])]
        return cls(**data, jobs=jobs)


class Manifest:
    def __init__(self, path: Path, data: dict, pieces: list[PieceRecord]):
        self.path = Path(path)
        self.journal_path = self.path.with_suffix(".journal")
        self.data = data  # settings, fingerprint, book outline, voice
        self.pieces = pieces
        self._lock = threading.RLock()
        self._journal = None
        self._seq = int(data.get("journal_seq", 0))  # the last journal line the snapshot includes

    # -- files --------------------------------------------------------------------------

    @classmethod
    def create(cls, path: Path, data: dict, pieces: list[PieceRecord]) -> Manifest:
        manifest = cls(path, {"version": VERSION, **data}, pieces)
        manifest.save()
        return manifest

    @classmethod
    def load(cls, path: Path) -> Manifest:
        """The snapshot with the journal's changes replayed (not yet compacted: see ``save``)."""
        raw = json.loads(Path(path).read_text())
        if raw.get("version") != VERSION:
            raise ValueError(f"manifest version {raw.get('version')} (this client reads {VERSION})")
        pieces = [PieceRecord.from_json(dict(p)) for p in raw.pop("pieces")]
        manifest = cls(path, raw, pieces)
        position = {piece.index: n for n, piece in enumerate(pieces)}
        if manifest.journal_path.exists():
            for line in manifest.journal_path.read_text().splitlines():
                try:
                    entry = json.loads(line)
                    record = PieceRecord.from_json(dict(entry["piece"]))
                except (ValueError, TypeError, KeyError):
                    break  # a line cut short when the client was stopped: nothing after it was written
                if entry["seq"] > manifest._seq:  # older lines are in the snapshot already
                    pieces[position[record.index]] = record
                    manifest._seq = entry["seq"]
        return manifest

    def save(self) -> None:
        """Compact: the whole state as a new snapshot, then an empty journal."""
        with self._lock:
            self.data["journal_seq"] = self._seq
            payload = json.dumps({**self.data, "pieces": [asdict(p) for p in self.pieces]})
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".manifest-", suffix=".tmp")
            try:
                with os.fdopen(fd, "w") as handle:
                    handle.write(payload)
                    handle.flush()
                    os.fsync(handle.fileno())
                os.replace(tmp, self.path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
            self.close()
            self._journal = open(self.journal_path, "w")  # noqa: SIM115 (kept open for appends)
            os.fsync(self._journal.fileno())

    def close(self) -> None:
        with self._lock:
            if self._journal is not None:
                self._journal.close()
                self._journal = None

    def _record(self, piece: PieceRecord) -> None:
        """Append ``piece``'s whole record to the journal and make it durable."""
        with self._lock:
            if self._journal is None:
                self._journal = open(self.journal_path, "a")  # noqa: SIM115
            self._seq += 1
            self._journal.write(json.dumps({"seq": self._seq, "piece": asdict(piece)}) + "\n")
            self._journal.flush()
            os.fsync(self._journal.fileno())

    # -- changes (each recorded at once) ------------------------------------------------

    def update(self, piece: PieceRecord, **changes) -> None:
        with self._lock:
            for name, value in changes.items():
                setattr(piece, name, value)
            self._record(piece)

    def submitted(self, piece: PieceRecord, job_id: str, seed: int | None) -> None:
        with self._lock:
            piece.jobs.append(JobRecord(job_id, seed))
            self.update(piece, state=SUBMITTED, job_id=job_id, seed=seed)

    def job_ended(self, piece: PieceRecord, outcome: str, error: str | None = None, status: dict | None = None) -> None:
        with self._lock:
            record = next((job for job in reversed(piece.jobs) if job.id == piece.job_id), None)
            if record is not None:
                record.outcome = outcome
                record.error = error
                if status:
                    record.execution_ms = _int_or_none(status.get("executionTime"))
                    record.delay_ms = _int_or_none(status.get("delayTime"))
                    output = status.get("output")
                    if isinstance(output, list) and output:
                        output = output[-1]
                    if isinstance(output, dict):
                        record.worker_total_s = (output.get("timings") or {}).get("total_s")
            if error:
                piece.errors.append(error)
            self._record(piece)

    # -- queries ------------------------------------------------------------------------

    def jobs(self) -> list[JobRecord]:
        with self._lock:
            return [job for piece in self.pieces for job in piece.jobs]

    def billed_seconds(self) -> float:
        """GPU time billed per the jobs' own timings: RunPod's executionTime, else the worker's total_s."""
        total = 0.0
        for job in self.jobs():
            if job.execution_ms is not None:
                total += job.execution_ms / 1000
            elif job.worker_total_s is not None:
                total += job.worker_total_s
        return total


def _int_or_none(value) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fingerprint(settings: dict) -> str:
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()
