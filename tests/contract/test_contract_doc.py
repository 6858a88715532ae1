"""The worker reference is generated from the models that enforce the contract, and real
job outputs match the documented output model."""

from __future__ import annotations

import pytest

from higgs_worker.contract import reference_doc
from higgs_worker.contract.config import Environment
from higgs_worker.contract.output import JobError, JobOutput
from higgs_worker.contract.schema import SynthesisRequest


def test_the_reference_doc_and_readme_tables_are_up_to_date():
    for path, text in reference_doc.expected_files().items():
        stale = f"{path.name} is stale: run python -m higgs_worker.contract.reference_doc --write"
        assert path.read_text() == text, stale


def test_the_reference_names_every_input_field_and_variable():
    text = reference_doc.DOC.read_text()
    for name in SynthesisRequest.model_fields:
        assert f"`{name}`" in text
    for name in Environment.model_fields:
        assert name in text
    assert all(field.description for field in SynthesisRequest.model_fields.values())


@pytest.mark.parametrize(
    "job_input",
    [
        {"text": "Hello there.", "seed": 3, "max_new_tokens": 30, "output_format": "mp3", "delivery": "base64"},
        {"text": "[SPEAKER0] Hi. [SPEAKER1] Hello.", "seed": 3, "max_new_tokens": 30, "delivery": "s3"},
        {
            "text": "Hi. Hello.",
            "seed": 3,
            "max_new_tokens": 30,
            "delivery": "s3",
            "subtitles": "vtt",
            "loudness_lufs": -20,
        },
        {"text": "Hi.", "seed": 3, "max_new_tokens": 30, "delivery": "base64", "subtitles": "srt", "pause_s": 0.2},
    ],
)
def test_real_outputs_match_the_documented_output(make_worker, s3_env, job_input):
    out = make_worker(s3_env).run({"id": "doc", "input": job_input}).as_output()
    JobOutput.model_validate(out)  # extra keys are refused: an undocumented key fails here
    assert ("audio_url" in out) == (job_input.get("delivery") == "s3")


def test_real_errors_match_the_documented_error(make_worker):
    out = make_worker().run({"input": {"text": "x", "colour": "blue"}}).as_output()
    JobError.model_validate(out)
    assert out["error"].startswith("invalid_input: ")
