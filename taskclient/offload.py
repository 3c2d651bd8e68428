"""Claim checks, the client's half: a body over the pipeline's threshold is uploaded to its
payload bucket and the task carries a reference instead (format: handler/payloads.py).

When: the pipeline's stack output has `payloadBucket` (payloads enabled) and the body is over
`payloadThreshold` bytes, or, without a threshold, the task would not fit Cloud Tasks'
MAX_TASK_BYTES with its headers. Otherwise the spec goes out unchanged.

Object name: `<queue id>/<sha256 of the body>-<random 128 bits>`, written with
ifGenerationMatch=0 (create only, never overwrite). Not content-addressed alone, because
the lifecycle rule deletes an object by its own age: a new task must never point at an
older upload of the same bytes that is about to go, and enqueuers (roles/storage.
objectCreator) can neither overwrite nor read an object to refresh it. Not the task's name,
because an unnamed task's id is chosen by Cloud Tasks after the upload. The queue id and
digest make an object findable by hand; the random part makes every upload its own.
An upload whose task is then not created (an error, or ALREADY_EXISTS for a de-dup key) is
left to the lifecycle rule, which alone deletes.
"""

import hashlib
import uuid
from dataclasses import replace
from typing import Any

from handler.payloads import CLAIM_CHECK_TYPE, ClaimCheck
from taskclient import transport
from taskclient.pipelines import Pipeline
from taskclient.task_builder import MAX_TASK_BYTES, TaskSpec, body_of, build_task_unchecked

UPLOAD_TIMEOUT_S = 120.0


class UploadError(Exception):
    """The body could not be stored: the task was not created."""


def object_name(pipeline: Pipeline, digest: str) -> str:
    return f"{pipeline.queue_name}/{digest}-{uuid.uuid4().hex}"


def needs_offload(pipeline: Pipeline, spec: TaskSpec) -> bool:
    """Whether `spec`'s body goes to the bucket. Builds the task first, so that a spec
    build_task refuses for anything but its size fails before anything is uploaded."""
    if pipeline.payload_bucket is None or spec.payload is None:
        return False
    if _content_type(spec) == CLAIM_CHECK_TYPE:
        # Already a reference (a replayed dead letter of an offloaded task): offloading it
        # again would hand the processor the reference instead of the data.
        return False
    _, size = build_task_unchecked(pipeline, spec)
    if pipeline.payload_threshold is not None:
        return len(body_of(spec)[0]) > pipeline.payload_threshold
    return size > MAX_TASK_BYTES


def _content_type(spec: TaskSpec) -> str:
    given = {name.lower(): value for name, value in spec.headers.items()}
    return given.get("content-type", "").split(";")[0].strip().lower()


class Offloader:
    """Uploads for one pipeline; the storage client is made on first upload (and honours
    STORAGE_EMULATOR_HOST)."""

    def __init__(self, pipeline: Pipeline) -> None:
        self._pipeline = pipeline
        self._client: Any = None

    def prepare(self, spec: TaskSpec) -> TaskSpec:
        """`spec` itself, or one whose body is the claim check of the uploaded body.
        UsageError for a bad spec, UploadError if the upload failed."""
        if not needs_offload(self._pipeline, spec):
            return spec
        return self.offload(spec)

    def offload(self, spec: TaskSpec) -> TaskSpec:
        """Uploads `spec`'s body (needs_offload said so) and returns its claim check's spec."""
        bucket = self._pipeline.payload_bucket
        assert bucket is not None  # needs_offload
        body, body_type = body_of(spec)
        given = {name.lower(): value for name, value in spec.headers.items()}
        content_type = given.get("content-type") or body_type or ""
        digest = hashlib.sha256(body).hexdigest()
        name = object_name(self._pipeline, digest)
        self._upload(bucket, name, body, content_type)
        check = ClaimCheck(bucket, name, len(body), digest, content_type)
        headers = {n: v for n, v in spec.headers.items() if n.lower() != "content-type"}
        headers["Content-Type"] = CLAIM_CHECK_TYPE
        return replace(spec, payload=check.to_json(), headers=headers)

    def _upload(self, bucket: str, name: str, body: bytes, content_type: str) -> None:
        from google.api_core import exceptions

        if self._client is None:
            self._client = transport.storage_client(self._pipeline)
        blob = self._client.bucket(bucket).blob(name)
        try:
            # ifGenerationMatch=0: create, never replace; it also makes the upload
            # idempotent, so the library retries it on transient errors.
            blob.upload_from_string(
                body,
                content_type=content_type or "application/octet-stream",
                if_generation_match=0,
                timeout=UPLOAD_TIMEOUT_S,
            )
        except exceptions.GoogleAPIError as exc:
            raise UploadError(f"payload upload to gs://{bucket}/{name} failed: {exc}") from exc
