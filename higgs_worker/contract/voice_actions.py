"""Voice actions of the queue mode, and the voice entry both doors return.

A queue job whose input has ``"action"`` is a voice action, not a synthesis:

- ``{"action": "list_voices"}`` -> ``{"object": "list", "data": [VoiceEntry, ...]}``
- ``{"action": "design_voice", "name": ..., "description": ..., "seed": ...}`` -> one ``VoiceEntry``

HTTP mode has the same two as ``GET /v1/audio/voices`` and ``POST /v1/audio/voices/design``
(with ``DesignVoice``'s fields as its JSON body). ``parse_action`` validates the input or
raises ``WorkerError(invalid_input)``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator

from .errors import INVALID_INPUT, WorkerError
from .schema import MAX_DESCRIPTION_CHARS, check_name

MAX_SEED = 2**32 - 1


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ListVoices(_Strict):
    action: Literal["list_voices"] = Field(description="list the preset and library voices with their descriptions")


class DesignVoice(_Strict):
    action: Literal["design_voice"] = Field(
        "design_voice", description="design a voice from a description and keep it in the library under `name`"
    )
    name: str = Field(
        description="the name to keep it under (a plain name: letters, digits, `.`, `_`, `-`); "
        "replaces a library voice of that name, and takes precedence over a preset of that name"
    )
    description: str = Field(
        min_length=1,
        max_length=MAX_DESCRIPTION_CHARS,
        description="the speaker, in words (e.g. `a warm, low female voice, British accent, calm and slow`)",
    )
    seed: int | None = Field(
        None,
        ge=0,
        le=MAX_SEED,
        description="the seed of the one generation that designs it (null: a fixed default); "
        "the same description and seed on the same model give the same voice",
    )

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        check_name(value, "name")
        if value.lower() == "auto":
            raise ValueError("'auto' is reserved (it means: the model picks a voice)")
        return value

    @field_validator("description")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("description must describe the speaker")
        return value.strip()


VoiceAction = Annotated[ListVoices | DesignVoice, Field(discriminator="action")]
ACTIONS = ("list_voices", "design_voice")


class VoiceEntry(BaseModel):
    """One voice as listed (and as ``design_voice`` returns it)."""

    id: str = Field(description="the name to pass as `voice`")
    object: Literal["voice"] = Field(description='always `"voice"`')
    name: str = Field(description="the same name")
    description: str | None = Field(
        description="the speaker description it was designed from (null for an uploaded clip)"
    )
    source: Literal["preset", "library"] = Field(
        description="`preset`: shipped with the worker, designed on first use; "
        "`library`: uploaded or designed into VOICES_DIR (wins over a preset of the same name)"
    )

    def as_output(self) -> dict:
        return self.model_dump()


class VoiceList(BaseModel):
    """What ``list_voices`` returns."""

    object: Literal["list"] = "list"
    data: list[VoiceEntry]

    def as_output(self) -> dict:
        return self.model_dump()


def is_action(raw: Any) -> bool:
    return isinstance(raw, dict) and "action" in raw


def parse_action(raw: Any) -> ListVoices | DesignVoice:
    """``job["input"]`` with an ``action`` -> the validated action (``WorkerError`` invalid_input)."""
    if raw.get("action") not in ACTIONS:
        raise WorkerError(INVALID_INPUT, f"action must be one of {', '.join(ACTIONS)}")
    try:
        return TypeAdapter(VoiceAction).validate_python(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'][1:]) or 'input'}: {err['msg'].removeprefix('Value error, ')}"
            for err in exc.errors()[:8]
        )
        raise WorkerError(INVALID_INPUT, problems) from None
