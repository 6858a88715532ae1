"""The endpoint: RunPod's queue API (REST v2, plain HTTPS calls), or an HTTP-mode worker.

``QueueEndpoint`` speaks RunPod's serverless API v2 directly with ``requests`` (no runpod
SDK: that package brings a web server, SSH and file watchers a client never uses)::

    POST {base}/{endpoint}/run          {"input": {...}} -> {"id", "status"}
    GET  {base}/{endpoint}/status/{id}  {"status", "delayTime", "executionTime", "output" | "error"}
    POST {base}/{endpoint}/cancel/{id}
    GET  {base}/{endpoint}/health       {"jobs": {"inQueue", "inProgress", ...}, "workers": {...}}

``{base}`` is ``RUNPOD_ENDPOINT_BASE_URL`` (default ``https://api.runpod.ai/v2``); the key
goes as ``Authorization: Bearer`` only where :mod:`higgs_tts.keys` allows.

One policy for every call: :class:`~higgs_tts.pacing.RequestPacer` spaces requests (429 ->
every request waits ``Retry-After`` or an exponential pause); 5xx and connection errors are
tried again a few times, except for ``/run``: RunPod's ``/run`` has no idempotency key and
no way to list an endpoint's jobs, so a ``/run`` whose answer was lost (read timeout, the
connection cut after the request went out, a 500/502/504) may have queued a job that will
run and be billed. It is never sent again here: :class:`RunAnswerLost` says so, and the
caller decides (``say`` stops and tells the user how to check; ``book`` records it in the
manifest, tries the piece again and counts it in the summary). Only a ``/run`` that surely
did not arrive (no connection made, 429, 503) is sent again.

``HttpEndpoint`` posts the same job input to an HTTP-mode worker's ``/v1/synthesize``.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from . import __version__
from .errors import EndpointError, InputError, JobNotFound, RunAnswerLost, TransientEndpointError
from .keys import RUNPOD_KEY, WORKER_KEY, check_transport, is_local_host, is_runpod_host, warn
from .pacing import RequestPacer, retry_after_seconds

DEFAULT_BASE_URL = "https://api.runpod.ai/v2"
TRANSIENT_TRIES = 5  # 5xx / connection errors, per request
THROTTLED_TRIES = 12  # 429s in a row, per request
CONNECT_TIMEOUT_S = 10
READ_TIMEOUT_S = 30
USER_AGENT = f"higgs-tts/{__version__}"


class QueueEndpoint:
    """A RunPod queue endpoint (or a look-alike at ``RUNPOD_ENDPOINT_BASE_URL``)."""

    def __init__(
        self,
        endpoint_id: str,
        api_key: str,
        base_url: str | None = None,
        pacer: RequestPacer | None = None,
        connections: int = 16,
        allow_insecure_http: bool = False,
        read_timeout_s: float = READ_TIMEOUT_S,
    ):
        self.read_timeout_s = read_timeout_s
        if not endpoint_id:
            raise InputError("no endpoint: pass --endpoint ID or set RUNPOD_ENDPOINT_ID")
        if not api_key:
            raise InputError(f"no API key: set {RUNPOD_KEY} (RunPod console > Settings > API Keys)")
        self.endpoint_id = endpoint_id
        self.base_url = (base_url or os.environ.get("RUNPOD_ENDPOINT_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")
        check_transport(self.base_url, RUNPOD_KEY, allow_insecure_http)
        if not is_runpod_host(self.base_url) and not is_local_host(self.base_url):
            warn(f"sending {RUNPOD_KEY} to {self.base_url}, not a RunPod host (RUNPOD_ENDPOINT_BASE_URL says so)")
        self.pacer = pacer or RequestPacer()
        self.session = requests.Session()
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=max(4, connections), max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        # proxies (HTTPS_PROXY, NO_PROXY) and the CA bundle read from the environment once for
        # this host, not on every request: that lookup was a fifth of a /status poll's CPU;
        # trust_env off also keeps ~/.netrc from replacing the Authorization header
        self.session.proxies.update(requests.utils.get_environ_proxies(self.base_url))
        self.session.verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
        self.session.trust_env = False
        self.session.headers.update(
            {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json", "User-Agent": USER_AGENT}
        )

    def describe(self) -> str:
        return f"endpoint {self.endpoint_id} at {self.base_url}"

    def url(self, path: str) -> str:
        return f"{self.base_url}/{self.endpoint_id}/{path}"

    # -- the operations -----------------------------------------------------------------

    def health(self) -> dict:
        """``/health``: checks the key and the endpoint before anything is written."""
        return self._call("health", lambda: self._json("GET", "health"))

    def submit(self, job_input: dict) -> str:
        """``/run``: queue a job, return its id (:class:`RunAnswerLost` when that is unknown)."""
        answer = self._call("run", lambda: self._json("POST", "run", {"input": job_input}))
        job_id = answer.get("id") if isinstance(answer, dict) else None
        if not job_id:
            raise EndpointError(f"{self.describe()}: /run answered without a job id: {str(answer)[:200]}")
        return str(job_id)

    def status(self, job_id: str) -> dict:
        """``/status/{id}``: the raw state (``status``, ``output`` / ``error``, ``executionTime`` ...)."""
        return self._call("status", lambda: self._json("GET", f"status/{job_id}"))

    def cancel(self, job_id: str, best_effort: bool = True) -> dict | None:
        """``/cancel/{id}``; best effort: None when it could not be sent (else the error is raised)."""
        try:
            return self._call("cancel", lambda: self._json("POST", f"cancel/{job_id}", timeout=10))
        except EndpointError:
            if best_effort:
                return None
            raise

    def _json(self, method: str, path: str, body: dict | None = None, timeout: float | None = None) -> Any:
        """One request; the body read in 1 MB chunks (requests' ``Response.json()`` reads 10 kB
        at a time: a finished job with its audio inline is ~3 MB of JSON, 19 ms against 8 ms)."""
        data = None if body is None else json.dumps(body).encode()
        with self.session.request(
            method, self.url(path), data=data, timeout=(CONNECT_TIMEOUT_S, timeout or self.read_timeout_s), stream=True
        ) as response:
            if response.status_code >= 400:
                response.content  # noqa: B018 - read the error body before the stream closes
                raise requests.HTTPError(response=response)
            return json.loads(b"".join(response.iter_content(1 << 20)))

    # -- one policy for errors and limits ------------------------------------------------

    def _call(self, kind: str, request) -> Any:
        throttled = transient = 0
        while True:
            self.pacer.acquire(kind)
            try:
                result = request()
            except requests.HTTPError as exc:
                response = exc.response
                code = response.status_code if response is not None else 0
                if code == 429:
                    throttled += 1
                    if throttled >= THROTTLED_TRIES:
                        raise TransientEndpointError(f"{self.describe()}: still 429 Too Many Requests") from None
                    self.pacer.throttled(retry_after_seconds(response.headers))
                    continue
                if code == 404:
                    if kind == "status":
                        raise JobNotFound("the endpoint no longer knows this job (404)") from None
                    raise EndpointError(
                        f"{self.describe()} answered 404 Not Found: check --endpoint / RUNPOD_ENDPOINT_ID"
                        " (and RUNPOD_ENDPOINT_BASE_URL if you set it)"
                    ) from None
                if code in (401, 403):
                    raise EndpointError(
                        f"{self.describe()} refused the API key ({code} {response.reason}): check {RUNPOD_KEY}"
                    ) from None
                if kind == "run" and code in (500, 502, 504):
                    raise RunAnswerLost(self._lost(f"{code} {response.reason}")) from None
                if code >= 500 or code == 408:
                    transient += 1
                    if transient >= TRANSIENT_TRIES:
                        raise TransientEndpointError(f"{self.describe()}: {code} from /{kind}") from None
                    time.sleep(min(8.0, 0.5 * 2**transient))
                    continue
                raise EndpointError(f"{self.describe()}: /{kind} answered {code}: {_body(response)}") from None
            except (
                requests.ConnectionError,
                requests.Timeout,
                requests.exceptions.ChunkedEncodingError,
                ValueError,
            ) as exc:
                if kind == "run" and not _surely_not_sent(exc):
                    raise RunAnswerLost(self._lost(type(exc).__name__)) from None
                transient += 1  # unreachable, cut short, or not JSON (a proxy's error page): try again
                if transient >= TRANSIENT_TRIES:
                    raise TransientEndpointError(
                        f"{self.describe()}: unreachable ({type(exc).__name__}) after {transient} tries"
                    ) from None
                time.sleep(min(8.0, 0.5 * 2**transient))
                continue
            self.pacer.succeeded()
            return result

    def _lost(self, what: str) -> str:
        return (
            f"{self.describe()}: POST /run got no usable answer ({what}), so the job may have been queued"
            " and will be billed if it runs; it was not sent again. RunPod's /run has no idempotency key"
            " and no job list: check the endpoint's Requests tab in the RunPod console"
            f" (or GET {self.url('health')} for the jobs queued and running) before sending it again"
        )


def _surely_not_sent(exc: Exception) -> bool:
    """True when the request cannot have reached the server: no connection was made."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    if isinstance(exc, requests.ConnectionError) and not isinstance(exc, requests.ReadTimeout):
        reason = exc.args[0] if exc.args else None
        reason = getattr(reason, "reason", reason)  # urllib3's MaxRetryError wraps the cause
        name = type(reason).__name__
        return name in ("NewConnectionError", "NameResolutionError", "ConnectTimeoutError") or (
            isinstance(reason, ConnectionRefusedError)
        )
    return False


class HttpEndpoint:
    """An HTTP-mode worker (``WORKER_MODE=http``): ``POST /v1/synthesize`` answers with the result.

    The key (see :mod:`higgs_tts.keys`): ``RUNPOD_API_KEY`` for a RunPod load-balancing
    endpoint (``https://ID.api.runpod.ai``), else the worker's own ``HIGGS_TTS_API_KEY``."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        timeout_s: float = 1800,
        allow_insecure_http: bool = False,
        key_variable: str = WORKER_KEY,
    ):
        self.base_url = base_url.rstrip("/")
        if api_key:
            check_transport(self.base_url, key_variable, allow_insecure_http)
        else:
            check_transport(self.base_url, "the text", True)  # nothing secret: just a valid URL
        self.key_variable = key_variable
        self.headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.headers["User-Agent"] = USER_AGENT
        self.timeout_s = timeout_s

    @classmethod
    def for_url(cls, base_url: str, environ=os.environ, allow_insecure_http: bool = False, timeout_s: float = 1800):
        """The right key for ``base_url``, from its own variable."""
        variable = RUNPOD_KEY if is_runpod_host(base_url) else WORKER_KEY
        return cls(base_url, environ.get(variable) or None, timeout_s, allow_insecure_http, variable)

    def describe(self) -> str:
        return f"HTTP endpoint {self.base_url}"

    def synthesize(self, job_input: dict) -> dict:
        try:
            response = requests.post(
                f"{self.base_url}/v1/synthesize",
                json={"input": job_input},
                headers=self.headers,
                timeout=(CONNECT_TIMEOUT_S, self.timeout_s),
            )
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise EndpointError(f"{self.describe()} is unreachable ({type(exc).__name__})") from None
        if response.status_code == 401:
            raise EndpointError(f"{self.describe()} refused the API key (401): check {self.key_variable}")
        if response.status_code == 404:
            raise EndpointError(f"{self.describe()} has no /v1/synthesize (404): is it an HTTP-mode worker?")
        if response.status_code != 200:
            raise EndpointError(f"{self.describe()} answered {response.status_code}: {_body(response)}")
        return response.json()


def _body(response) -> str:
    """A short, single-line excerpt of an error body (the OpenAI-style message when there is one)."""
    if response is None:
        return "no response"
    try:
        payload = response.json()
        if isinstance(payload, dict):
            error = payload.get("error")
            if isinstance(error, dict):
                return str(error.get("message", error))[:300]
            if error:
                return str(error)[:300]
        return str(payload)[:300]
    except ValueError:
        return " ".join(response.text.split())[:300] or response.reason or ""
