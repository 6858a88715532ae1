"""The endpoint: RunPod's queue API through the runpod SDK's endpoint client, or HTTP mode.

``QueueEndpoint`` uses ``runpod.Endpoint`` (``/run``), its ``RunPodClient`` (``/health``; for
``/status`` its session, base URL and headers, see ``_get_json``) and ``Job.cancel``
(``/cancel``). What the SDK does, and what is added here (runpod 1.12.0,
``runpod/endpoint/runner.py``):

- the API base is ``runpod.endpoint_url_base``, read from ``RUNPOD_ENDPOINT_BASE_URL`` once
  when ``runpod`` is imported; the client sets it per endpoint, so the variable (or
  ``base_url``) also counts when it is set after the import;
- a 401 becomes ``RuntimeError`` (its ``UNAUTHORIZED_MSG``), any other error status a
  ``requests.HTTPError``; both are turned into one clear :class:`EndpointError` here;
- its ``requests.Session`` reads the proxy variables and ``~/.netrc`` on every request;
  the client resolves proxies and the CA bundle once for the API host instead;
- its session retries 408/429 only for ``http://`` URLs (the adapter is mounted on
  ``http://`` alone) and only for GET; the client mounts one adapter for both schemes,
  without retries and with a connection pool sized to the pieces in flight, so that one
  policy applies everywhere: :class:`~higgs_tts.pacing.RequestPacer` (429 -> every request
  waits ``Retry-After`` or an exponential pause), and transient 5xx / connection errors are
  tried again a few times;
- ``Job.status()`` drops a failed job's ``error`` (and RunPod's timings); the raw ``/status``
  JSON is read instead.

``HttpEndpoint`` posts the same job input to an HTTP-mode worker's ``/v1/synthesize``.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from .errors import EndpointError, JobNotFound, TransientEndpointError
from .pacing import RequestPacer, retry_after_seconds

DEFAULT_BASE_URL = "https://api.runpod.ai/v2"
TRANSIENT_TRIES = 5  # 5xx / connection errors, per request
THROTTLED_TRIES = 12  # 429s in a row, per request


class QueueEndpoint:
    """A RunPod queue endpoint (or a look-alike at ``RUNPOD_ENDPOINT_BASE_URL``)."""

    def __init__(
        self,
        endpoint_id: str,
        api_key: str,
        base_url: str | None = None,
        pacer: RequestPacer | None = None,
        connections: int = 16,
    ):
        import runpod

        if not endpoint_id:
            raise EndpointError("no endpoint: pass --endpoint ID or set RUNPOD_ENDPOINT_ID")
        if not api_key:
            raise EndpointError("no API key: set RUNPOD_API_KEY (RunPod console > Settings > API Keys)")
        self.endpoint_id = endpoint_id
        self.base_url = (base_url or os.environ.get("RUNPOD_ENDPOINT_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")
        if not self.base_url.startswith(("http://", "https://")):
            raise EndpointError(
                f"RUNPOD_ENDPOINT_BASE_URL {self.base_url!r}: an http:// or https:// URL, e.g. {DEFAULT_BASE_URL}"
            )
        self.pacer = pacer or RequestPacer()
        self._endpoint = runpod.Endpoint(endpoint_id, api_key=api_key)
        client = self._endpoint.rp_client
        client.endpoint_url_base = self.base_url
        session = client.rp_session
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=max(4, connections), max_retries=0)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        # proxies (HTTPS_PROXY, NO_PROXY) and the CA bundle read from the environment once for
        # this host, not on every request: that lookup was a fifth of a /status poll's CPU
        session.proxies.update(requests.utils.get_environ_proxies(self.base_url))
        session.verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
        session.trust_env = False

    def describe(self) -> str:
        return f"endpoint {self.endpoint_id} at {self.base_url}"

    # -- the operations -----------------------------------------------------------------

    def health(self) -> dict:
        """``/health``: checks the key and the endpoint before anything is written."""
        return self._call("health", lambda: self._endpoint.rp_client.get(f"{self.endpoint_id}/health", timeout=30))

    def submit(self, job_input: dict) -> str:
        """``/run``: queue a job, return its id."""
        job = self._call("run", lambda: self._endpoint.run({"input": job_input}))
        return job.job_id

    def status(self, job_id: str) -> dict:
        """``/status/{id}``: the raw state (``status``, ``output`` / ``error``, ``executionTime`` ...)."""
        return self._call("status", lambda: self._get_json(f"{self.endpoint_id}/status/{job_id}", timeout=30))

    def _get_json(self, path: str, timeout: float) -> dict:
        """GET through the SDK client's own session, base URL and headers, as ``RunPodClient.get``
        does, but reading the body in 1 MB chunks: ``RunPodClient.get`` goes through requests'
        ``Response.json()``, which reads in 10 kB chunks; for a finished job with its audio
        inline (about 3 MB of base64 for a 200-word piece) that was 19 ms of CPU, this is 8 ms,
        the largest share of the client's CPU per piece (benchmarks/book_client.py)."""
        from runpod.endpoint.helpers import UNAUTHORIZED_MSG

        client = self._endpoint.rp_client
        url = f"{client.endpoint_url_base}/{path}"
        with client.rp_session.get(url, headers=client.headers, timeout=timeout, stream=True) as response:
            if response.status_code == 401:
                raise RuntimeError(UNAUTHORIZED_MSG)  # as the SDK does
            response.raise_for_status()
            return json.loads(b"".join(response.iter_content(1 << 20)))

    def cancel(self, job_id: str) -> None:
        from runpod.endpoint.runner import Job

        try:
            self._call("cancel", lambda: Job(self.endpoint_id, job_id, self._endpoint.rp_client).cancel(timeout=10))
        except EndpointError:
            pass  # best effort: the job is given up either way

    # -- one policy for errors and limits ------------------------------------------------

    def _call(self, kind: str, request) -> Any:
        throttled = transient = 0
        while True:
            self.pacer.acquire(kind)
            try:
                result = request()
            except RuntimeError as exc:  # the SDK's 401
                if "401" in str(exc):
                    raise EndpointError(
                        f"{self.describe()} refused the API key (401 Unauthorized): check RUNPOD_API_KEY"
                    ) from None
                raise
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
                        f"{self.describe()} refused the API key ({code}): check RUNPOD_API_KEY"
                    ) from None
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
                transient += 1  # unreachable, cut short, or not JSON (a proxy's error page): try again
                if transient >= TRANSIENT_TRIES:
                    raise TransientEndpointError(
                        f"{self.describe()}: unreachable ({type(exc).__name__}) after {transient} tries"
                    ) from None
                time.sleep(min(8.0, 0.5 * 2**transient))
                continue
            self.pacer.succeeded()
            return result


class HttpEndpoint:
    """An HTTP-mode worker (``WORKER_MODE=http``): ``POST /v1/synthesize`` answers with the result."""

    def __init__(self, base_url: str, api_key: str | None = None, timeout_s: float = 1800):
        self.base_url = base_url.rstrip("/")
        self.headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.timeout_s = timeout_s

    def describe(self) -> str:
        return f"HTTP endpoint {self.base_url}"

    def synthesize(self, job_input: dict) -> dict:
        try:
            response = requests.post(
                f"{self.base_url}/v1/synthesize",
                json={"input": job_input},
                headers=self.headers,
                timeout=self.timeout_s,
            )
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise EndpointError(f"{self.describe()} is unreachable ({type(exc).__name__})") from None
        if response.status_code == 401:
            raise EndpointError(f"{self.describe()} refused the API key (401): check RUNPOD_API_KEY")
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
