"""S3 delivery with boto3: upload (botocore's own bounded retries), presign, read reference keys
(only under REFERENCE_S3_PREFIX).

Credentials come only from the environment (boto3's own AWS_* chain, or RunPod's
BUCKET_* names mapped in ``config``). Error messages name the bucket, key and the
S3 error code; never a credential or a presigned query string.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from ..contract.config import S3Settings
from ..contract.errors import REFERENCE_AUDIO, STORAGE, TOO_LARGE, WorkerError
from ..contract.formats import LOSSY_FORMATS

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StoredObject:
    s3_uri: str
    url: str | None  # presigned https URL, None when S3_PRESIGN_SECONDS=0


def _error_code(exc: BaseException) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code")
        if code:
            return str(code)
    return type(exc).__name__


class S3Store:
    """``attempts`` is the total number of tries of each S3 call (S3_ATTEMPTS), counted
    and paced by botocore's ``standard`` retry mode (exponential backoff with jitter,
    retries only transient errors: throttling, 5xx, timeouts, connection errors). An
    access or signature error is not transient, so it fails at once: no retry storm."""

    def __init__(self, settings: S3Settings, attempts: int = 4):
        import boto3
        from botocore.config import Config

        self.settings = settings
        self.attempts = max(1, attempts)
        session = boto3.session.Session(
            aws_access_key_id=settings.access_key_id,
            aws_secret_access_key=settings.secret_access_key,
            region_name=settings.region,
        )
        self.client = session.client(
            "s3",
            endpoint_url=settings.endpoint_url,
            config=Config(
                signature_version="s3v4",
                connect_timeout=min(5.0, settings.timeout_seconds),
                read_timeout=settings.timeout_seconds,
                retries={"mode": "standard", "total_max_attempts": self.attempts},  # tries, not retries
            ),
        )

    def key_for(self, file_name: str) -> str:
        return f"{self.settings.prefix}{file_name}"

    def upload(self, file_name: str, data: bytes, content_type: str) -> StoredObject:
        key = self.key_for(file_name)
        bucket = self.settings.bucket
        try:
            self.client.put_object(Bucket=bucket, Key=key, Body=data, ContentType=content_type)
        except Exception as exc:  # botocore raises many types, after its own bounded retries
            code = _error_code(exc)
            log.warning("S3 upload of s3://%s/%s failed (%s)", bucket, key, code)
            raise WorkerError(
                STORAGE,
                f"could not store the result at s3://{bucket}/{key} ({code}); "
                "check S3_BUCKET, S3_ENDPOINT_URL and the endpoint's S3 credentials",
            ) from None
        url = None
        if self.settings.presign_seconds > 0:
            try:
                url = self.client.generate_presigned_url(
                    "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=self.settings.presign_seconds
                )
            except Exception as exc:
                raise WorkerError(
                    STORAGE, f"stored s3://{bucket}/{key} but could not presign it ({_error_code(exc)})"
                ) from None
        return StoredObject(s3_uri=f"s3://{bucket}/{key}", url=url)

    def read_reference(self, key: str, max_bytes: int) -> bytes:
        """Read reference audio at ``key``, which must lie under REFERENCE_S3_PREFIX (never
        the results); refuse large objects. A key outside the prefix, a missing object and
        one the credentials may not read give one and the same error, so no answer tells
        whether, or how large, an object outside the prefix exists."""
        bucket, prefix = self.settings.bucket, self.settings.reference_prefix
        unavailable = WorkerError(
            REFERENCE_AUDIO,
            f"no reference audio at s3_key {key!r}: it must name an object under REFERENCE_S3_PREFIX "
            f"{prefix!r} in S3_BUCKET",
        )
        if not key.startswith(prefix):
            raise unavailable
        too_large = WorkerError(
            REFERENCE_AUDIO,
            f"s3://{bucket}/{key} is larger than {max_bytes} bytes (MAX_REFERENCE_BYTES)",
            kind=TOO_LARGE,
            parameter="reference_audio",
        )
        try:
            head = self.client.head_object(Bucket=bucket, Key=key)
            if int(head.get("ContentLength", 0)) > max_bytes:
                raise too_large
            body = self.client.get_object(Bucket=bucket, Key=key)["Body"]
            data = body.read(max_bytes + 1)
        except WorkerError:
            raise
        except Exception as exc:
            code = _error_code(exc)
            if code in ("404", "NoSuchKey", "NotFound", "403", "AccessDenied", "Forbidden"):
                raise unavailable from None
            raise WorkerError(REFERENCE_AUDIO, f"could not read s3://{bucket}/{key} ({code})") from None
        if len(data) > max_bytes:
            raise too_large
        return data


def deliver(
    store: S3Store | None,
    delivery: str,
    file_name: str,
    data: bytes,
    content_type: str,
    inline_max_bytes: int,
    streamed_bytes: int = 0,
) -> dict:
    """S3 or inline (``delivery``: "auto", "s3" or "base64"). The inline budget counts stream
    items already sent: RunPod's aggregated result (/runsync, /status) repeats them before
    the final item."""
    import base64

    inline_size = (len(data) + 2) // 3 * 4 + streamed_bytes
    inline_ok = inline_size <= inline_max_bytes
    want_s3 = delivery == "s3" or (delivery == "auto" and store is not None)
    if not want_s3 and not inline_ok:
        if store is None:
            also = f" (with {streamed_bytes} bytes of streamed chunks)" if streamed_bytes else ""
            raise WorkerError(
                STORAGE,
                f"the audio is {len(data)} bytes{also}, above the inline limit of {inline_max_bytes} bytes "
                "(INLINE_MAX_BYTES); set S3_BUCKET on the endpoint or ask for a compressed output_format "
                f"({', '.join(LOSSY_FORMATS)})",
                kind=TOO_LARGE,
            )
        want_s3 = True
    if want_s3:
        stored = store.upload(file_name, data, content_type)
        out = {"s3_uri": stored.s3_uri}
        if stored.url:
            out["audio_url"] = stored.url
        return out
    return {"audio_base64": base64.b64encode(data).decode("ascii")}
