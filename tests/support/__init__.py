"""Test support: real local stand-ins for external services (the Hugging Face Hub, ...)."""

__all__ = ["HubServer", "RequestRecord", "client_env", "write_repo"]


def __getattr__(name: str):
    # Lazy, so that `python -m tests.support.hub_server` does not import the module twice.
    if name in __all__:
        from . import hub_server

        return getattr(hub_server, name)
    raise AttributeError(name)
