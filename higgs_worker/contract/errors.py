"""Error codes of the job contract and the one exception type that carries them.

Every failure a user can see is ``{"error": "<code>: <message>"}``. Code paths raise
``WorkerError`` with one of the codes below, and a kind (and the parameter) where a door
answers it differently; ``jobs`` turns it into a ``JobFailure``. A door chooses its status
from the code and kind, never from the message text, so a message can be reworded freely.
"""

from __future__ import annotations

from dataclasses import dataclass

INVALID_INPUT = "invalid_input"
MODEL_UNAVAILABLE = "model_unavailable"
REFERENCE_AUDIO = "reference_audio"
GENERATION_FAILED = "generation_failed"
OUT_OF_MEMORY = "out_of_memory"
STORAGE = "storage"

# What each code means for the caller (docs/worker-reference.md is generated from this).
MEANINGS = {
    INVALID_INPUT: "the job input was refused (unknown field, bad value, over a limit); fix the input",
    MODEL_UNAVAILABLE: "the model could not be downloaded or loaded (hub, token, volume, legacy repo format); "
    "the message names the variable to check",
    REFERENCE_AUDIO: "reference audio or a voice could not be fetched or decoded, or is out of bounds",
    GENERATION_FAILED: "generation stopped (cancelled, timed out) or failed unexpectedly; the worker keeps serving",
    OUT_OF_MEMORY: "the GPU ran out of memory; shorter text, smaller chunks or a larger GPU",
    STORAGE: "the result could not be stored in S3, or is too large to return inline without S3; or the voice "
    "library (VOICES_DIR) could not be written (full, read-only)",
}
CODES = frozenset(MEANINGS)

# Kinds: what sort of refusal it is, where a door or a caller acts on it apart from its code
# (HTTP: 404 for NOT_FOUND, 413 for TOO_LARGE, input_too_long for TOO_LONG; AUDIO_TOO_LONG keeps
# its code's status, and tells the job's reference total from one clip's limit).
NOT_FOUND = "not_found"  # a named thing (a voice) does not exist; the parameter names what
TOO_LARGE = "too_large"  # bytes over a limit (reference audio, the inline result)
TOO_LONG = "too_long"  # the text is over MAX_TEXT_CHARS
AUDIO_TOO_LONG = "audio_too_long"  # audio longer than the seconds it may have (MAX_REFERENCE_SECONDS)
KINDS = frozenset({NOT_FOUND, TOO_LARGE, TOO_LONG, AUDIO_TOO_LONG})


@dataclass(frozen=True)
class JobFailure:
    """How a job ended when it failed: the contract code, its kind (or None), the job input's
    parameter at fault when known, and the message a user can act on."""

    code: str
    message: str
    kind: str | None = None
    parameter: str | None = None

    def as_output(self) -> dict:
        """The queue contract's ``{"error": "<code>: <message>"}``."""
        return {"error": f"{self.code}: {self.message}"}


class Cancelled(Exception):
    """Generation stopped because the job was cancelled or timed out (its ``should_stop``
    answered true); the job then fails with ``generation_failed``."""


class WorkerError(Exception):
    """A failure with a contract error code and a message a user can act on."""

    def __init__(self, code: str, message: str, *, kind: str | None = None, parameter: str | None = None):
        if code not in CODES:
            raise ValueError(f"unknown error code {code!r}")
        if kind is not None and kind not in KINDS:
            raise ValueError(f"unknown error kind {kind!r}")
        super().__init__(f"{code}: {message}")
        self.code, self.message, self.kind, self.parameter = code, message, kind, parameter

    def failure(self) -> JobFailure:
        return JobFailure(self.code, self.message, self.kind, self.parameter)


def is_out_of_memory(exc: BaseException) -> bool:
    """torch's OutOfMemoryError, or a CUDA out-of-memory RuntimeError."""
    try:
        import torch

        if isinstance(exc, torch.OutOfMemoryError):
            return True
    except ImportError:  # pragma: no cover
        pass
    return "out of memory" in str(exc).lower() and "cuda" in str(exc).lower()


def free_device_memory() -> None:
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def out_of_memory(loading: bool = False) -> WorkerError:
    """The contract error for running out of GPU memory (after freeing what can be freed)."""
    free_device_memory()
    if loading:
        return WorkerError(
            OUT_OF_MEMORY, "the model does not fit in this GPU's memory; choose a GPU with 24 GB or more"
        )
    return WorkerError(
        OUT_OF_MEMORY,
        "the GPU ran out of memory; use shorter text, a smaller chunk_max_words, lower MAX_CONCURRENCY, "
        "or a GPU with more memory",
    )
