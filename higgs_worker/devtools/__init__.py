"""Developer tools shipped in the image on purpose (the GPU check and the smoke run use
it) but never imported by serving code: the tiny random-weight Higgs checkpoint and the
engine/concurrency benchmark, its reference path (``reference``: transformers' ``generate()``),
the numerics check. It may import every layer; no layer imports it."""
