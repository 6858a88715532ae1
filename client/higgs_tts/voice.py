"""One voice for every piece: a library voice, or reference audio uploaded once.

Reference audio goes to the endpoint's bucket once (``S3_BUCKET``, ``S3_ENDPOINT_URL``,
``S3_PREFIX`` and the AWS credentials: the variables the worker reads) under a key named
by its sha256, and every job names that key (``reference_audio.s3_key``); without a
bucket it travels inline (base64) in every job. With neither a voice nor reference
audio, the book's first words are made once as a voice sample, and that sample becomes
every piece's reference: the model's own pick of a voice, kept for the whole book.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
from dataclasses import dataclass
from pathlib import Path

from .errors import InputError

MIN_REFERENCE_S = 0.25
MAX_REFERENCE_S = 60.0  # the worker's default MAX_REFERENCE_SECONDS
SAMPLE_WORDS = 30  # the voice sample: about 10-15 s of speech


@dataclass(frozen=True)
class S3Target:
    bucket: str
    endpoint_url: str | None
    prefix: str

    @classmethod
    def from_env(cls, bucket: str | None = None) -> S3Target | None:
        bucket = bucket or os.environ.get("S3_BUCKET") or os.environ.get("BUCKET_NAME")
        if not bucket:
            return None
        endpoint = os.environ.get("S3_ENDPOINT_URL") or os.environ.get("BUCKET_ENDPOINT_URL") or None
        prefix = os.environ.get("S3_PREFIX", "higgs-audio/")
        return cls(bucket, endpoint, prefix)

    def upload_once(self, data: bytes, suffix: str) -> str:
        """Put ``data`` at a key named by its hash (skipped when already there); returns the key."""
        try:
            import boto3
            from botocore.exceptions import BotoCoreError, ClientError
        except ImportError:
            raise InputError(
                f"uploading the reference audio to s3://{self.bucket} needs boto3: pip install 'higgs-tts[s3]'"
                " (or unset S3_BUCKET to send it inline with every job)"
            ) from None

        key = f"{self.prefix}references/{hashlib.sha256(data).hexdigest()[:32]}{suffix}"
        credentials = {}
        if not os.environ.get("AWS_ACCESS_KEY_ID") and os.environ.get("BUCKET_ACCESS_KEY_ID"):
            credentials = {
                "aws_access_key_id": os.environ["BUCKET_ACCESS_KEY_ID"],
                "aws_secret_access_key": os.environ.get("BUCKET_SECRET_ACCESS_KEY", ""),
            }
        client = boto3.client("s3", endpoint_url=self.endpoint_url, **credentials)
        try:
            try:
                client.head_object(Bucket=self.bucket, Key=key)
                return key
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchKey", "NotFound"):
                    raise
            client.put_object(Bucket=self.bucket, Key=key, Body=data)
        except (BotoCoreError, ClientError) as exc:
            raise InputError(
                f"could not upload the reference audio to s3://{self.bucket}/{key}: {type(exc).__name__}"
                f" ({str(exc)[:160]}); check S3_BUCKET, S3_ENDPOINT_URL and the AWS credentials, or unset S3_BUCKET"
                " to send it inline with every job"
            ) from None
        return key


def read_reference(path: str | Path) -> bytes:
    """The reference file's bytes, refused early when it is not 0.25..60 s of decodable audio."""
    import soundfile

    path = Path(path)
    if not path.is_file():
        raise InputError(f"reference audio {path}: no such file")
    data = path.read_bytes()
    try:
        info = soundfile.info(io.BytesIO(data))
    except Exception:
        raise InputError(f"reference audio {path} does not decode; use wav, flac, ogg or mp3") from None
    seconds = info.frames / info.samplerate if info.samplerate else 0.0
    if not MIN_REFERENCE_S <= seconds <= MAX_REFERENCE_S:
        raise InputError(
            f"reference audio {path} lasts {seconds:.2f} s; use {MIN_REFERENCE_S}..{MAX_REFERENCE_S:.0f} s"
        )
    return data


def reference_fields(data: bytes, suffix: str, transcript: str | None, s3: S3Target | None) -> tuple[dict, str]:
    """(the job's ``reference_audio`` object, how it travels: an s3 key or 'inline')."""
    if s3 is not None:
        key = s3.upload_once(data, suffix)
        reference, how = {"s3_key": key}, f"s3://{s3.bucket}/{key}"
    else:
        reference, how = {"base64": base64.b64encode(data).decode()}, "inline (base64 in every job)"
    if transcript:
        reference["transcript"] = transcript
    return reference, how


def sample_text(first_paragraphs: list[str], words: int = SAMPLE_WORDS) -> str:
    """The book's first whole sentences, about ``words`` words: the voice sample's text."""
    from .pieces import SENTENCE_END

    picked: list[str] = []
    for paragraph in first_paragraphs:
        for sentence in SENTENCE_END.split(paragraph):
            if picked and len(" ".join(picked).split()) + len(sentence.split()) > words:
                return " ".join(picked)
            picked.append(sentence)
    text = " ".join(picked)
    return " ".join(text.split()[: words * 2])
