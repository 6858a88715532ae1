"""Where inputs come from and where results go: the voice library on the volume and the
preset voices shipped beside it (``preset_voices.json``), reference audio (URL through the
guarded HTTP fetcher, base64 or an S3 key) and S3 storage of results. It may import
``contract`` and ``audio`` (to decode what it reads), never the model or a front door."""
