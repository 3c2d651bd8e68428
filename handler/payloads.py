"""Claim checks: a body too big for a task travels in the pipeline's payload bucket, and the
task carries a small JSON reference to it instead (written by taskclient/offload.py).

The reference is the task's body, with Content-Type CLAIM_CHECK_TYPE:
  {"bucket": B, "object": O, "size": N, "sha256": HEX, "contentType": T}
`contentType` is the original body's, which the processor sees again. The handler fetches
the object, checks its size and SHA-256 and hands the processor the original bytes; the
processor never sees the reference. A dead letter keeps the reference, not the bytes, so a
replay re-sends the reference and the handler fetches the object again.

TASK_PAYLOAD_BUCKET  the pipeline's payload bucket (the stack sets it when payloads are
                     enabled); a reference to any other bucket is rejected. Unset: every
                     reference is rejected (STORAGE_EMULATOR_HOST is honoured).
"""

import hashlib
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from handler.task import MalformedTask, TaskRequest

CLAIM_CHECK_TYPE = "application/vnd.cloudrun-tasks.claim-check+json"
BUCKET_ENV = "TASK_PAYLOAD_BUCKET"
# Longest wait for one download; less when the attempt's answer budget has less left.
FETCH_TIMEOUT_S = 60.0
# The share of the answer budget left that a download may take, its retries included: a
# request started just before the retry deadline may take its own timeout more, and the
# rest is for handing the task back (releasing its claim) while Cloud Tasks still listens.
FETCH_SHARE = 0.4
# With less than this to spend the download is not started: the attempt fails (retried).
MIN_FETCH_TIMEOUT_S = 0.5
# Bucket names: 3-63 characters (up to 222 with dots), lowercase letters, digits, "-", "_"
# and "."; start and end with a letter or digit (cloud.google.com/storage/docs/buckets#naming).
_BUCKET = re.compile(r"[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]")
_SHA256 = re.compile(r"[0-9a-f]{64}")


class PayloadSettingsError(ValueError):
    """TASK_PAYLOAD_BUCKET is not a bucket name."""


class PayloadUnavailable(Exception):
    """The object could not be read now (timeout, 5xx, permission not yet effective): the
    attempt fails and Cloud Tasks retries it."""


@dataclass(frozen=True)
class ClaimCheck:
    """Where an offloaded body is and how to recognise it."""

    bucket: str
    object: str
    size: int
    sha256: str
    content_type: str

    def to_json(self) -> bytes:
        return json.dumps(
            {
                "bucket": self.bucket,
                "object": self.object,
                "size": self.size,
                "sha256": self.sha256,
                "contentType": self.content_type,
            },
            separators=(",", ":"),
        ).encode()

    @classmethod
    def parse(cls, body: bytes) -> "ClaimCheck":
        """The reference in `body`; MalformedTask says which field is wrong."""
        try:
            raw = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise MalformedTask(f"claim check: not JSON ({exc})") from None
        except (ValueError, RecursionError) as exc:
            # Valid JSON Python won't hold (an integer over sys.get_int_max_str_digits()
            # digits, nesting past the recursion limit): the same on every attempt.
            why = str(exc) if isinstance(exc, ValueError) else "nested too deeply"
            raise MalformedTask(f"claim check: not JSON Python can read ({why})") from None
        if not isinstance(raw, dict):
            raise MalformedTask("claim check: not a JSON object")
        fields: dict[str, Any] = raw
        problems = []
        if not isinstance(fields.get("bucket"), str) or not _BUCKET.fullmatch(fields["bucket"]):
            problems.append("bucket must be a bucket name")
        if not isinstance(fields.get("object"), str) or not fields["object"]:
            problems.append("object must be a non-empty string")
        size = fields.get("size")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            problems.append("size must be an integer >= 0")
        if not isinstance(fields.get("sha256"), str) or not _SHA256.fullmatch(fields["sha256"]):
            problems.append("sha256 must be 64 lowercase hex digits")
        if not isinstance(fields.get("contentType", ""), str):
            problems.append("contentType must be a string")
        if problems:
            raise MalformedTask(f"claim check: {'; '.join(problems)}")
        return cls(
            bucket=fields["bucket"],
            object=fields["object"],
            size=fields["size"],
            sha256=fields["sha256"],
            content_type=fields.get("contentType", ""),
        )

    @property
    def url(self) -> str:
        return f"gs://{self.bucket}/{self.object}"


def is_claim_check(task: TaskRequest) -> bool:
    return task.content_type.split(";")[0].strip().lower() == CLAIM_CHECK_TYPE


class PayloadReader:
    """Resolves claim checks from one bucket; `bucket` None: the pipeline has none."""

    def __init__(self, bucket: str | None) -> None:
        self.bucket = bucket
        self._client: Any = None

    def describe(self) -> str:
        if self.bucket is None:
            return f"none ({BUCKET_ENV} is not set: claim checks are rejected)"
        where = os.environ.get("STORAGE_EMULATOR_HOST")
        return f"gs://{self.bucket}" + (f" at {where}" if where else "")

    def _storage(self) -> Any:
        if self._client is None:
            # Imported on first use: a handler without payloads starts without it.
            from google.cloud import storage

            self._client = storage.Client()
        return self._client

    def resolve(self, task: TaskRequest) -> TaskRequest:
        """The task as its processor must see it: unchanged unless it is a claim check, else
        with the original body and Content-Type. MalformedTask (-> rejected, dead-lettered
        with the reference) if the reference is bad or the object is missing or altered;
        PayloadUnavailable (-> retried) if it can't be read now."""
        if not is_claim_check(task):
            return task
        check = ClaimCheck.parse(task.body)
        if self.bucket is None:
            raise MalformedTask(f"claim check {check.url}: this service has no payload bucket")
        if check.bucket != self.bucket:
            raise MalformedTask(
                f"claim check {check.url}: not in this pipeline's payload bucket {self.bucket}"
            )
        # One bucket serves every pipeline of the stack's queues that share it: a task may
        # only name what its own queue's enqueuers uploaded (taskclient/offload.py names
        # objects `<queue id>/...`).
        prefix = f"{task.queue}/"
        if not check.object.startswith(prefix) or len(check.object) == len(prefix):
            raise MalformedTask(
                f"claim check {check.url}: object not under this queue's prefix {prefix}"
            )
        if check.content_type.split(";")[0].strip().lower() == CLAIM_CHECK_TYPE:
            # Never resolved a second time: the processor must get data, never a reference.
            raise MalformedTask(f"claim check {check.url}: the object is itself a claim check")
        body = self._download(check, task.time_left())
        if len(body) != check.size:
            found = f"more than {check.size}" if len(body) > check.size else str(len(body))
            raise MalformedTask(
                f"claim check {check.url}: object altered ({found} bytes, the reference"
                f" says {check.size})"
            )
        digest = hashlib.sha256(body).hexdigest()
        if digest != check.sha256:
            raise MalformedTask(
                f"claim check {check.url}: object altered (sha256 {digest}, the reference"
                f" says {check.sha256})"
            )
        headers = {name: value for name, value in task.headers.items() if name != "content-type"}
        if check.content_type:
            headers["content-type"] = check.content_type
        return replace(task, body=body, headers=headers)

    def _download(self, check: ClaimCheck, time_left: float | None) -> bytes:
        from google.api_core import exceptions
        from google.cloud.storage.retry import DEFAULT_RETRY

        budget = FETCH_TIMEOUT_S
        if time_left is not None:
            budget = min(FETCH_TIMEOUT_S, time_left * FETCH_SHARE)
        if budget < MIN_FETCH_TIMEOUT_S:
            raise PayloadUnavailable(
                f"claim check {check.url}: {budget:.1f} s left of the answer budget, too"
                " little to download it"
            )
        blob = self._storage().bucket(check.bucket).blob(check.object)
        try:
            # One byte past the stated size, so that a longer object is caught without
            # reading all of it. The library's default retry goes on for 120 s whatever
            # the request timeout: bounded here by what the answer budget allows.
            return blob.download_as_bytes(
                start=0, end=check.size, timeout=budget, retry=DEFAULT_RETRY.with_timeout(budget)
            )
        except exceptions.NotFound:
            raise MalformedTask(
                f"claim check {check.url}: object missing (never written, or deleted by the"
                " bucket's lifecycle rule)"
            ) from None
        except exceptions.RequestRangeNotSatisfiable:
            # A range starting at 0 is unsatisfiable only for an empty object.
            if check.size == 0:
                return b""
            raise MalformedTask(
                f"claim check {check.url}: object altered (0 bytes, the reference says"
                f" {check.size})"
            ) from None
        except Exception as exc:
            raise PayloadUnavailable(f"claim check {check.url}: unreadable now: {exc!r}") from exc


def from_env(environ: Mapping[str, str] = os.environ) -> PayloadReader:
    bucket = environ.get(BUCKET_ENV, "").strip() or None
    if bucket is not None and not _BUCKET.fullmatch(bucket):
        raise PayloadSettingsError(
            f"{BUCKET_ENV}: {bucket!r} is not a bucket name (3-63 characters: lowercase"
            " letters, digits, '-', '_', '.')"
        )
    return PayloadReader(bucket)
