"""cloudrun-image-pinned-by-digest: pinned, unpinned and unknown images; its level per stack."""

from __future__ import annotations

from typing import Any

import pytest
from pulumi_policy import EnforcementLevel

from rules.images import cloudrun_image_pinned_by_digest
from support import UNKNOWN, resource_args, stack_config, validate

RUN = "gcp:cloudrunv2/service:Service"
JOB = "gcp:cloudrunv2/job:Job"
REPO_IMAGE = "us-central1-docker.pkg.dev/acme/tasks/orders"
DIGEST = "sha256:" + "0123456789abcdef" * 4


def service(*images: Any) -> dict[str, Any]:
    return {"template": {"containers": [{"image": i} for i in images]}}


@pytest.mark.parametrize(
    "image",
    [
        f"{REPO_IMAGE}@{DIGEST}",
        f"{REPO_IMAGE}:1.4.2@{DIGEST}",  # a tag beside the digest: the digest wins
        f"localhost:5000/orders@{DIGEST}",  # a registry port is not a tag
        UNKNOWN,  # built from another resource's output: judged at `pulumi up`
    ],
)
def test_pinned_or_unknown_image_passes(image: str) -> None:
    assert validate(cloudrun_image_pinned_by_digest, resource_args(RUN, service(image))) == []


@pytest.mark.parametrize(
    "image",
    [
        "us-docker.pkg.dev/cloudrun/container/hello",  # implicit :latest
        f"{REPO_IMAGE}:latest",
        f"{REPO_IMAGE}:1.4.2",
        f"{REPO_IMAGE}@sha256:0123abcd",  # truncated digest
        f"{REPO_IMAGE}@{DIGEST.upper().replace('SHA256', 'sha256')}",  # hex is lowercase
        f"{REPO_IMAGE}@sha512:{'ab' * 64}",  # not the sha256 the rule asks for
        f"{REPO_IMAGE}@{DIGEST}0",  # 65 hex digits
        f"@{DIGEST}",  # no repository
    ],
)
def test_unpinned_image_is_reported(image: str) -> None:
    [message] = validate(
        cloudrun_image_pinned_by_digest, resource_args(RUN, service(image), "orders")
    )
    assert f"'orders' runs {image!r} (template.containers[0].image)" in message
    assert "not pinned by digest" in message
    assert f"Pin it as {image.split('@')[0]}@sha256:<digest>" in message


def test_each_unpinned_container_is_reported_by_index() -> None:
    props = service(f"{REPO_IMAGE}@{DIGEST}", "gcr.io/acme/sidecar:1", "gcr.io/acme/proxy")
    messages = validate(cloudrun_image_pinned_by_digest, resource_args(RUN, props, "orders"))
    assert len(messages) == 2
    assert "template.containers[1].image" in messages[0] and "sidecar" in messages[0]
    assert "template.containers[2].image" in messages[1] and "proxy" in messages[1]


def test_the_app_beside_a_pinned_handler_is_reported_by_name() -> None:
    props = {
        "template": {
            "containers": [
                {"name": "handler", "image": f"{REPO_IMAGE}@{DIGEST}"},
                {"name": "app", "image": "europe-docker.pkg.dev/acme/apps/thumbnails:2.0.0"},
            ]
        }
    }
    [message] = validate(cloudrun_image_pinned_by_digest, resource_args(RUN, props, "orders"))
    assert "(template.containers[1].image, container 'app')" in message
    assert "Pin it as europe-docker.pkg.dev/acme/apps/thumbnails:2.0.0@sha256:<digest>" in message
    props["template"]["containers"][1]["image"] = f"{REPO_IMAGE}-app@{DIGEST}"
    assert validate(cloudrun_image_pinned_by_digest, resource_args(RUN, props)) == []


def test_missing_image_is_reported() -> None:
    props = {"template": {"containers": [{"name": "main"}]}}
    [message] = validate(cloudrun_image_pinned_by_digest, resource_args(RUN, props, "orders"))
    assert "'orders' runs no image" in message


def test_cloud_run_jobs_are_checked_too() -> None:
    unpinned = {"template": {"template": {"containers": [{"image": f"{REPO_IMAGE}:1"}]}}}
    pinned = {"template": {"template": {"containers": [{"image": f"{REPO_IMAGE}@{DIGEST}"}]}}}
    [message] = validate(cloudrun_image_pinned_by_digest, resource_args(JOB, unpinned, "nightly"))
    assert "template.template.containers[0].image" in message
    assert validate(cloudrun_image_pinned_by_digest, resource_args(JOB, pinned)) == []


@pytest.mark.parametrize(
    "props",
    [
        {"template": UNKNOWN},
        {"template": {"containers": UNKNOWN}},
        {"template": {"containers": [UNKNOWN]}},
    ],
)
def test_unknown_containers_are_left_to_the_update(props: dict[str, Any]) -> None:
    assert validate(cloudrun_image_pinned_by_digest, resource_args(RUN, props)) == []


def test_other_resources_are_ignored() -> None:
    args = resource_args("gcp:cloudtasks/queue:Queue", {"image": "hello"})
    assert validate(cloudrun_image_pinned_by_digest, args) == []


def test_mandatory_in_prod_and_new_stacks_advisory_in_dev_and_staging() -> None:
    name = cloudrun_image_pinned_by_digest.name
    # The default applies to any stack whose config doesn't name the policy: prod, and a
    # new stack added without a config file's say-so.
    assert cloudrun_image_pinned_by_digest.enforcement_level == EnforcementLevel.MANDATORY
    assert name not in stack_config("prod")
    assert stack_config("dev")[name] == stack_config("staging")[name] == "advisory"


@pytest.mark.parametrize("digit", ["0", "f", "a"])
def test_a_placeholder_digest_is_reported_not_taken_for_a_pin(digit: str) -> None:
    image = f"{REPO_IMAGE}@sha256:{digit * 64}"
    [message] = validate(
        cloudrun_image_pinned_by_digest, resource_args(RUN, service(image), "orders")
    )
    assert f"'orders' runs {image!r} (template.containers[0].image)" in message
    assert "whose digest is a placeholder, not an image's" in message
    assert "gcloud artifacts docker images describe IMAGE" in message


def test_a_digest_that_merely_repeats_digits_is_a_pin() -> None:
    image = f"{REPO_IMAGE}@sha256:{'0' * 63}1"
    assert validate(cloudrun_image_pinned_by_digest, resource_args(RUN, service(image))) == []
