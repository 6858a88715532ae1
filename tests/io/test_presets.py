"""The preset voices shipped in higgs_worker/io/preset_voices.json and how the list shows
them beside the library's voices."""

from __future__ import annotations

import json

from higgs_worker.io.presets import PRESETS_FILE, presets, read_presets, voice_entries
from higgs_worker.io.voices import VoiceLibrary
from tests.conftest import wav_bytes

OPENAI = [
    "alloy",
    "ash",
    "ballad",
    "coral",
    "echo",
    "fable",
    "nova",
    "onyx",
    "sage",
    "shimmer",
    "verse",
    "marin",
    "cedar",
]


def test_every_openai_name_and_a_dozen_of_our_own_are_presets():
    shipped = presets()
    assert set(OPENAI) <= set(shipped)
    own = [name for name in shipped if name not in OPENAI]
    assert len(own) >= 12
    for wanted in ("narrator", "child", "elderly-man", "elderly-woman", "mandarin-woman", "british-man"):
        assert wanted in own
    assert all(preset.description and preset.sentence for preset in shipped.values())
    assert len({(p.description, p.seed) for p in shipped.values()}) == len(shipped)  # each its own voice
    assert any(ord(ch) > 0x4E00 for ch in shipped["mandarin-woman"].sentence)  # Chinese voices read Chinese


def test_a_duplicate_preset_is_refused(tmp_path):
    data = json.loads(PRESETS_FILE.read_text())
    data["voices"].append(dict(data["voices"][0]))
    path = tmp_path / "presets.json"
    path.write_text(json.dumps(data))
    try:
        read_presets(path)
    except ValueError as exc:
        assert "defined twice" in str(exc)
    else:
        raise AssertionError("a duplicate preset was accepted")


def test_the_list_puts_presets_first_and_a_library_voice_wins_over_a_preset(tmp_path):
    library = VoiceLibrary(str(tmp_path / "voices"))
    shipped = presets()
    library.publish("nova", wav_bytes(1.0), "Uploaded.")  # an uploaded clip named like a preset
    library.publish("alloy", wav_bytes(1.0), "Designed.", description=shipped["alloy"].description)
    library.publish("zed", wav_bytes(1.0), None, description="A voice of mine.")
    entries = {entry.id: entry for entry in voice_entries(library, shipped)}
    assert list(entries)[: len(shipped)] == list(shipped) and list(entries)[-1] == "zed"
    assert (entries["nova"].source, entries["nova"].description) == ("library", None)
    assert (entries["alloy"].source, entries["alloy"].description) == ("preset", shipped["alloy"].description)
    assert (entries["zed"].source, entries["zed"].description) == ("library", "A voice of mine.")
    assert entries["onyx"].source == "preset" and all(entry.object == "voice" for entry in entries.values())


def test_docs_voices_lists_every_preset_with_its_description():
    from tests.conftest import ROOT

    page = (ROOT / "docs" / "voices.md").read_text()
    for preset in presets().values():
        assert f"| `{preset.name}` | {preset.description} |" in page
