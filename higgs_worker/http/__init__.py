"""The HTTP mode (``WORKER_MODE=http``, RunPod load-balancing endpoints): the app factory
(``app``), one router a concern (``routers/``), the state they share (``service``), a
request's job (``http_job``), errors and the API key, the OpenAI ``/v1/audio/speech``
translation, and voice-library administration. A front door: it may import every layer
below it; only ``handler.py`` imports it."""
