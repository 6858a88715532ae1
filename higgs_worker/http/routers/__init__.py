"""The HTTP mode's routes, one ``APIRouter`` a concern: ``health`` (/ping, /v1/state),
``speech`` (OpenAI's /v1/audio/speech and /v1/models), ``voices`` (the voice library) and
``jobs`` (/v1/synthesize, the queue job contract over HTTP). ``http.app.create_app``
includes them; each gets the shared ``Service`` through ``Depends(service_of)``."""
