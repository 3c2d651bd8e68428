"""The handler image's registry and its pusher (bootstrap/gitops/image_registry.py): the
pusher's only authority is pushing to that one repository, proved from the kept snapshot
of Google's role contents and what the bootstrap registers under mocks."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from plan.recorder import Recording, run_program, stack_config
from tests.bootstrap.test_authority import BOOTSTRAP, authority, bootstrap_module, role_snapshot

image_registry = bootstrap_module("image_registry")
REPOSITORY = "gcp:artifactregistry/repository:Repository"
REPOSITORY_MEMBER = "gcp:artifactregistry/repositoryIamMember:RepositoryIamMember"
# A docker push: blobs and manifests (uploadArtifacts, with downloadArtifacts for the
# client's existence checks) and the tag (tags.create/update), cloud.google.com/
# artifact-registry/docs/access-control ("Artifact Registry Writer: read and write
# artifacts").
PUSH = frozenset(
    {
        "artifactregistry.repositories.uploadArtifacts",
        "artifactregistry.repositories.downloadArtifacts",
        "artifactregistry.tags.create",
        "artifactregistry.tags.update",
    }
)
Roles = Mapping[str, frozenset[str]]


@pytest.fixture(scope="module")
def dev() -> Recording:
    return run_program(BOOTSTRAP, "dev")


def pusher_member(recording: Recording) -> str:
    project = stack_config(BOOTSTRAP, recording.stack)["gcp:project"]
    return f"serviceAccount:image-pusher-{recording.stack}@{project}.iam.gserviceaccount.com"


def grants_of(recording: Recording, member: str) -> list[tuple[str, str]]:
    """(resource type, role) of every grant MEMBER holds."""
    return sorted(
        (r.type, r.inputs["role"])
        for r in recording.resources
        if r.type.lower().endswith("iammember") and r.inputs.get("member") == member
    )


def test_only_the_building_environment_has_a_registry() -> None:
    assert run_program(BOOTSTRAP, "dev").of_type(REPOSITORY)
    for stack in ("staging", "prod"):
        assert run_program(BOOTSTRAP, stack).of_type(REPOSITORY) == []


def test_the_repository_is_docker_with_immutable_tags(dev: Recording) -> None:
    [repository] = dev.of_type(REPOSITORY)
    assert repository.inputs["format"] == "DOCKER"
    assert repository.inputs["dockerConfig"] == {"immutableTags": True}
    assert dev.outputs["githubEnvironments"]["dev-image"]["HANDLER_IMAGE"] == (
        "us-central1-docker.pkg.dev/acme-tasks-dev/handler/handler"
    )


def test_the_pusher_holds_writer_on_the_repository_and_nothing_else(dev: Recording) -> None:
    assert grants_of(dev, pusher_member(dev)) == [(REPOSITORY_MEMBER, image_registry.PUSHER_ROLE)]
    # Nothing at project level, on the state bucket or key, or on another account.
    assert not [r for r in dev.resources if r.type == "gcp:projects/iAMMember:IAMMember"
                and r.inputs["member"] == pusher_member(dev)]  # fmt: skip


def test_the_pusher_can_push_and_escalate_nowhere() -> None:
    snapshot = role_snapshot.snapshot()
    writer = snapshot[image_registry.PUSHER_ROLE]
    assert writer >= PUSH
    assert writer & authority.ESCALATING == set()
    # Every write it holds acts on the registry's own collections.
    writes = role_snapshot.writes(writer, snapshot)
    assert writes and all(p.startswith("artifactregistry.") for p in writes)
    reader = snapshot[image_registry.PULLER_ROLE]
    assert "artifactregistry.repositories.downloadArtifacts" in reader
    assert "artifactregistry.repositories.uploadArtifacts" not in reader


def test_the_pusher_is_impersonable_from_the_image_environment_only(dev: Recording) -> None:
    [grant] = [
        r
        for r in dev.of_type("gcp:serviceaccount/iAMMember:IAMMember")
        if r.name == "image-pusher-github"
    ]
    assert grant.inputs["member"].endswith(":environment:dev-image")


def test_pullers_get_reader_on_the_repository(dev: Recording) -> None:
    config = {
        **stack_config(BOOTSTRAP, "dev"),
        "cloudrun-tasks-bootstrap:imagePullers": ["210987654321"],
    }
    recording = run_program(BOOTSTRAP, "dev", config)
    agent = image_registry.cloud_run_agent("210987654321")
    assert grants_of(recording, agent) == [(REPOSITORY_MEMBER, image_registry.PULLER_ROLE)]


def test_a_bad_puller_is_refused_by_key() -> None:
    config = {**stack_config(BOOTSTRAP, "dev"), "cloudrun-tasks-bootstrap:imagePullers": ["x"]}
    with pytest.raises(Exception, match=r"imagePullers\.0: must be a list of project numbers"):
        run_program(BOOTSTRAP, "dev", config)
