"""Logging to stdout (RunPod's console) with secrets and payloads scrubbed.

A filter on the root handler replaces the values of secret environment variables,
presigned-URL query strings and long base64 runs in every record it formats.
"""

from __future__ import annotations

import logging
import os
import re
import sys

SECRET_VARIABLES = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "BUCKET_ACCESS_KEY_ID",
    "BUCKET_SECRET_ACCESS_KEY",
    "HF_TOKEN",
    "HUGGING_FACE_HUB_TOKEN",
    "RUNPOD_API_KEY",
    "API_KEY",
)
PRESIGNED_QUERY = re.compile(r"([?&](?:X-Amz-[A-Za-z-]+|Signature|AWSAccessKeyId|Expires)=)[^&\s\"']+")
LONG_BASE64 = re.compile(r"[A-Za-z0-9+/]{200,}={0,2}")


def scrub(text: str, env: dict | None = None) -> str:
    env = os.environ if env is None else env
    for name in SECRET_VARIABLES:
        value = env.get(name)
        if value and len(value) >= 4:
            text = text.replace(value, f"<{name}>")
    text = PRESIGNED_QUERY.sub(r"\1<redacted>", text)
    return LONG_BASE64.sub("<base64>", text)


class ScrubbingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return scrub(super().format(record))


def setup(level: str | None = None) -> None:
    level = (level or os.environ.get("RUNPOD_LOG_LEVEL") or "INFO").upper()
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(ScrubbingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level if level in logging._nameToLevel else "INFO")
    for noisy in ("botocore", "boto3", "urllib3", "s3transfer", "httpx", "filelock"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
