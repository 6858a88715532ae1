"""``Worker.run`` ends a job with a typed outcome (``jobs.Outcome``): the failures carry the
kind and parameter a door maps to its status, the successes are ``JobOutput``."""

from __future__ import annotations

import base64

from higgs_worker.contract.errors import INVALID_INPUT, NOT_FOUND, REFERENCE_AUDIO, TOO_LARGE, TOO_LONG, JobFailure
from higgs_worker.contract.output import JobOutput


def test_refusals_carry_their_kind_and_parameter(make_worker):
    worker = make_worker({"MAX_TEXT_CHARS": "20", "MAX_REFERENCE_BYTES": "1000"})
    unknown = worker.run({"input": {"text": "Hi.", "voice": "nobody-here"}})
    assert isinstance(unknown, JobFailure)
    assert (unknown.code, unknown.kind, unknown.parameter) == (INVALID_INPUT, NOT_FOUND, "voice")
    assert unknown.as_output()["error"].startswith("invalid_input: unknown voice 'nobody-here'")

    long = worker.run({"input": {"text": "x" * 21}})
    assert (long.code, long.kind, long.parameter) == (INVALID_INPUT, TOO_LONG, "text")

    big = base64.b64encode(b"\0" * 4000).decode()
    large = worker.run({"input": {"text": "Hi.", "reference_audio": {"base64": big, "transcript": "x"}}})
    assert (large.code, large.kind, large.parameter) == (REFERENCE_AUDIO, TOO_LARGE, "reference_audio")

    plain = worker.run({"input": {"text": "Hi.", "temperature": -1}})
    assert isinstance(plain, JobFailure) and plain.kind is None


def test_a_job_ends_as_a_job_output_whose_dict_is_the_contract(make_worker):
    outcome = make_worker().run({"id": "typed", "input": {"text": "Hello there.", "seed": 1, "max_new_tokens": 20}})
    assert isinstance(outcome, JobOutput)
    output = outcome.as_output()
    assert JobOutput.model_validate(output) == outcome
    assert "loudness" not in output and "subtitles" not in output  # optional fields the job did not set
    assert output["format"] == "wav" and output["content_type"] == "audio/wav"
