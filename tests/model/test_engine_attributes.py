"""Reading the engine's facts does no work (higgs_worker/model/engine.py): the silence codes the
runaway guard tests frames against are learned once, when the engine is built."""

from __future__ import annotations

import inspect

from higgs_worker.model.engine import Engine


def test_the_silence_codes_are_learned_when_the_engine_is_built_and_reading_them_encodes_nothing(engine, monkeypatch):
    tokenizer = engine.audio_tokenizer
    encodes = {"n": 0}
    encode = tokenizer.encode

    def counting(*args, **kwargs):
        encodes["n"] += 1
        return encode(*args, **kwargs)

    monkeypatch.setattr(tokenizer, "encode", counting)
    built = Engine(engine.model, tokenizer, engine.tokenizer, engine.feature_extractor, "cpu")
    assert encodes["n"] == 2  # one second of digital silence, one of a -60 dBFS noise floor
    assert not isinstance(inspect.getattr_static(built, "silence_codes"), property)
    first = built.silence_codes
    assert built.silence_codes is first and built.silence_codes == engine.silence_codes
    assert encodes["n"] == 2  # reading them encoded nothing more
