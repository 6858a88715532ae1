"""The preset voices shipped with the worker (``preset_voices.json`` beside this file).

Each preset is a short speaker description with the fixed seed and sentence it is designed
from: on its first use the worker generates the sentence once from the description
(``voice_design``), keeps the clip and the sentence in the voice library as a normal voice,
and from then on clones that clip. A library voice of the same name wins over a preset.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..contract.schema import MAX_DESCRIPTION_CHARS, check_name
from ..contract.voice_actions import VoiceEntry
from .voices import VoiceLibrary

PRESETS_FILE = Path(__file__).with_name("preset_voices.json")


class Preset(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    description: str = Field(min_length=1, max_length=MAX_DESCRIPTION_CHARS)
    seed: int = Field(ge=0, le=2**32 - 1)
    sentence: str = Field(min_length=1)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return check_name(value, "preset name")


def read_presets(path: Path = PRESETS_FILE) -> dict[str, Preset]:
    """Every preset by name: the file's ``sentence`` and ``seed`` unless a voice sets its own."""
    data = json.loads(path.read_text(encoding="utf-8"))
    presets = {}
    for entry in data["voices"]:
        preset = Preset(**{"sentence": data["sentence"], "seed": data["seed"], **entry})
        if preset.name in presets:
            raise ValueError(f"preset {preset.name!r} is defined twice in {path.name}")
        presets[preset.name] = preset
    return presets


@cache
def presets() -> dict[str, Preset]:
    return read_presets()


@cache
def design_defaults() -> tuple[str, int]:
    """The sentence and seed a voice is designed from unless told otherwise (the file's own)."""
    data = json.loads(PRESETS_FILE.read_text(encoding="utf-8"))
    return data["sentence"], data["seed"]


def voice_entries(library: VoiceLibrary, shipped: dict[str, Preset]) -> list[VoiceEntry]:
    """Every voice a job can name: the presets (in the file's order), then the other library
    voices (by name). A preset's entry says ``library`` once a library voice of that name
    that was not designed from the preset's description replaces it."""
    in_library = library.names()
    entries = []
    for name, preset in shipped.items():
        stored = library.description(name) if name in in_library else preset.description
        if name in in_library and stored != preset.description:
            entries.append(VoiceEntry(id=name, object="voice", name=name, description=stored, source="library"))
        else:
            entries.append(
                VoiceEntry(id=name, object="voice", name=name, description=preset.description, source="preset")
            )
    for name in in_library:
        if name not in shipped:
            entries.append(
                VoiceEntry(id=name, object="voice", name=name, description=library.description(name), source="library")
            )
    return entries
