"""The contract: what users and operators see. Settings (every environment variable),
the job input, the job output, the error codes, the model's 24 kHz output rate, and the
generator of docs/worker-reference.md. It imports no other layer of the package, so every
layer can read it; change a model here and regenerate the reference
(``python -m higgs_worker.contract.reference_doc --write``)."""
