"""Which key goes to which host: a key is only ever sent to the host it belongs to.

- ``RUNPOD_API_KEY`` (the RunPod account key: it can create endpoints and spend money) goes
  to RunPod's API hosts (``*.runpod.ai``, ``*.runpod.io``) over HTTPS, and to the API base
  the user named in ``RUNPOD_ENDPOINT_BASE_URL`` (a RunPod look-alike; stderr says so when
  that is not a RunPod host).
- ``HIGGS_TTS_API_KEY`` (an HTTP-mode worker's own ``API_KEY``) goes to ``say --base-url``.
  A ``--base-url`` on a RunPod host (a load-balancing endpoint, ``https://ID.api.runpod.ai``)
  gets the RunPod key instead: RunPod's gateway checks that one.
- Nothing goes over plain ``http://`` to a host that is not this machine (localhost,
  127.0.0.0/8, ::1) unless ``--allow-insecure-http`` says so, and then stderr warns.
"""

from __future__ import annotations

import ipaddress
import sys
from urllib.parse import urlsplit

from .errors import InputError

RUNPOD_KEY = "RUNPOD_API_KEY"
WORKER_KEY = "HIGGS_TTS_API_KEY"
RUNPOD_HOST_SUFFIXES = (".runpod.ai", ".runpod.io")


def host_of(url: str) -> str:
    return (urlsplit(url).hostname or "").lower().rstrip(".")


def is_runpod_host(url: str) -> bool:
    """An HTTPS URL on RunPod's own domains."""
    host = host_of(url)
    return urlsplit(url).scheme == "https" and host.endswith(RUNPOD_HOST_SUFFIXES)


def is_local_host(url: str) -> bool:
    host = host_of(url)
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_transport(url: str, variable: str, allow_insecure_http: bool) -> None:
    """Refuse to send ``variable``'s key over plain HTTP to another machine, unless allowed (then warn)."""
    scheme = urlsplit(url).scheme
    if scheme not in ("http", "https") or not host_of(url):
        raise InputError(f"{url!r}: an http:// or https:// URL with a host, e.g. https://api.runpod.ai/v2")
    if scheme == "http" and not is_local_host(url):
        if not allow_insecure_http:
            raise InputError(
                f"{url} is plain http:// on another machine: {variable} would cross the network unencrypted."
                " Use https://, or pass --allow-insecure-http if this network is yours"
            )
        warn(f"warning: sending {variable} to {host_of(url)} over plain http:// (--allow-insecure-http)")


def warn(message: str) -> None:
    print(f"higgs-tts: {message}", file=sys.stderr)
