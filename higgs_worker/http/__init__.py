"""The HTTP mode (``WORKER_MODE=http``, RunPod load-balancing endpoints): the app and its
routes, the OpenAI ``/v1/audio/speech`` translation, and voice-library administration.
A front door: it may import every layer below it; only ``handler.py`` imports it."""
