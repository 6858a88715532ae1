"""What the client tells a user when it cannot go on: one message each, never a traceback."""

from __future__ import annotations

from dataclasses import dataclass


class ClientError(Exception):
    """A failure the user can act on; the CLI prints its message and exits with ``exit_code``."""

    exit_code = 1


class InputError(ClientError):
    """The book or the options cannot be used (empty, binary, no speakable text, a bad option)."""

    exit_code = 2


class EndpointError(ClientError):
    """The endpoint refused us (401, 404, 400) or stayed unreachable after retries."""


class TransientEndpointError(EndpointError):
    """429 / 5xx / connection trouble that outlasted the client's back-off (a piece may try again)."""


class RunAnswerLost(TransientEndpointError):
    """``/run``'s answer was lost: the job may be queued (and billed) without the client knowing its id."""


class JobNotFound(EndpointError):
    """``/status`` does not know the job (expired: RunPod keeps /run results 30 minutes)."""


class PieceError(ClientError):
    """One attempt at a piece did not give usable audio (job failed, timed out, bad result)."""

    def __init__(self, message: str, retryable: bool = True, new_seed: bool = False):
        super().__init__(message)
        self.retryable = retryable
        self.new_seed = new_seed  # the result came back but was rejected: the same seed would repeat it


@dataclass(frozen=True)
class FailedPiece:
    index: int
    chapter_title: str
    attempts: int
    errors: tuple[str, ...]

    def describe(self) -> str:
        last = self.errors[-1] if self.errors else "no error recorded"
        return f"piece {self.index + 1} ({self.chapter_title}): {self.attempts} attempt(s); last: {last}"


class BookFailed(ClientError):
    """Some pieces failed for good; the manifest keeps everything else for the next run."""

    def __init__(self, failed: list[FailedPiece], manifest_path: str):
        self.failed = failed
        lines = [f"{len(failed)} piece(s) failed; the book was not assembled:"]
        lines += [f"  - {piece.describe()}" for piece in failed]
        lines.append(f"Everything else is kept in {manifest_path}: run the same command again to retry only these.")
        super().__init__("\n".join(lines))
