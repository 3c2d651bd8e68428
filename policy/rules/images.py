"""Cloud Run images pinned by digest: a deployment runs exactly the bytes that were
reviewed, not whatever a tag points to when Cloud Run resolves it."""

from __future__ import annotations

import re
from typing import Final

from pulumi_policy import (
    EnforcementLevel,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
)

from rules.cloudrun import JOB_V2, SERVICE_V2
from rules.props import UNKNOWN, items, lookup

# Where each type lists its containers.
CONTAINERS_PATH: Final[dict[str, tuple[str, ...]]] = {
    SERVICE_V2: ("template", "containers"),
    JOB_V2: ("template", "template", "containers"),
}
# `name[:tag]@sha256:<64 lowercase hex>`: the OCI reference grammar's digest
# (github.com/distribution/reference, reference.go: `digest := algorithm ":" hex`), with
# sha256, the one algorithm Artifact Registry and Docker Hub use, at its full length.
# A tag beside the digest is allowed and ignored by the registry.
PINNED: Final = re.compile(r"^[^@\s]+@sha256:[0-9a-f]{64}$")
# One hex digit 64 times (sha256:000...): what a template writes until the release's digest
# is known. No image has it, so it would pass as pinned and fail only in Cloud Run.
PLACEHOLDER: Final = re.compile(r"@sha256:([0-9a-f])\1{63}$")
HOW_TO_PIN: Final = (
    " (gcloud artifacts docker images describe IMAGE --format='value(image_summary.digest)')."
)


def _pinned(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    path = CONTAINERS_PATH.get(args.resource_type)
    if path is None:
        return
    if lookup(args.props, *path) is UNKNOWN:
        return
    for index, container in enumerate(items(args.props, *path)):
        image = lookup(container, "image")
        # Unknown in preview when built from another resource's output: judged at `up`.
        if image is UNKNOWN or container is UNKNOWN:
            continue
        where = f"{'.'.join(path)}[{index}].image"
        # A multi-container service (the handler and its app): say which one.
        name = lookup(container, "name")
        if isinstance(name, str):
            where += f", container {name!r}"
        if isinstance(image, str) and PINNED.match(image):
            if PLACEHOLDER.search(image):
                report_violation(
                    f"'{args.name}' runs {image!r} ({where}), whose digest is a placeholder,"
                    " not an image's: Cloud Run would find no such image and fail the"
                    " deployment. Pin the image's real digest" + HOW_TO_PIN,
                    None,
                )
            continue
        shown = repr(image) if isinstance(image, str) else "no image"
        repository = image.split("@", 1)[0] if isinstance(image, str) else "IMAGE"
        report_violation(
            f"'{args.name}' runs {shown} ({where}), which is not pinned by digest: the"
            " tag can move between review and deployment, or between two instances."
            f" Pin it as {repository}@sha256:<digest>" + HOW_TO_PIN,
            None,
        )


cloudrun_image_pinned_by_digest = ResourceValidationPolicy(
    name="cloudrun-image-pinned-by-digest",
    description=(
        "Every container image of a Cloud Run service or job (the handler and its app"
        " alike) is pinned by digest (IMAGE@sha256:<64 hex>), and not"
        " by a placeholder such as sha256:000...0."
        " Mandatory unless a stack's policy/config/<stack>.json lowers it (dev, staging:"
        " advisory)."
    ),
    # Mandatory by default, so a new stack without a config file fails safe, like
    # prod-resources-protected.
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_pinned,
)
