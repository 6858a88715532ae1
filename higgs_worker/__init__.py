"""Higgs Audio v2 text-to-speech as a RunPod serverless worker.

The package reads like its layers, each folder importing only those before it:
``contract`` (settings, job input and output, error codes) -> ``text`` (splitting) ->
``model`` (volume store, engine, scheduler) and ``audio`` (codecs, segments, subtitles,
loudness) -> ``io`` (voices, reference audio, S3) -> the modules here that tie them
together (``jobs``, ``synthesis``, ``voice_inputs``, ``voice_design``, ``narration``,
``startup``, ``logs``) -> ``http`` (the HTTP door). ``devtools`` (tiny model,
benchmark) is never imported by serving code.
tests/test_layers.py enforces these rules.
"""

__version__ = "0.1.0"
