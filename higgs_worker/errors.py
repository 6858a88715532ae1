"""Error codes of the job contract and the one exception type that carries them.

Every failure a user can see is ``{"error": "<code>: <message>"}``. Code paths raise
``WorkerError`` with one of the codes below; ``jobs`` turns it into that dict.
"""

from __future__ import annotations

INVALID_INPUT = "invalid_input"
MODEL_UNAVAILABLE = "model_unavailable"
REFERENCE_AUDIO = "reference_audio"
GENERATION_FAILED = "generation_failed"
OUT_OF_MEMORY = "out_of_memory"
STORAGE = "storage"

CODES = frozenset({INVALID_INPUT, MODEL_UNAVAILABLE, REFERENCE_AUDIO, GENERATION_FAILED, OUT_OF_MEMORY, STORAGE})


class WorkerError(Exception):
    """A failure with a contract error code and a message a user can act on."""

    def __init__(self, code: str, message: str):
        if code not in CODES:
            raise ValueError(f"unknown error code {code!r}")
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message

    def as_output(self) -> dict:
        return {"error": f"{self.code}: {self.message}"}
