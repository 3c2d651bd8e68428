"""Outputs as args: a consumer passes the project, image, enqueuer and label values another
resource of the same program makes. Plain values are still checked before any resource;
an Output is checked when it resolves, with the same line, and the resources that would
take a bad value are never registered; an unknown value in a preview passes.

Each program runs under mocks in a process of its own (see test_provider.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.package.test_provider import PROJECT, python

IMAGE = "us-docker.pkg.dev/cloudrun/container/hello"
APP_IMAGE = "us-docker.pkg.dev/cloudrun/container/app"

# Resources whose outputs the Output route reads; the plain route registers them too, so
# both register the same set.
SOURCES = f"""
import pulumi
import pulumi_gcp as gcp
from components import IdempotencyStore, ProjectApis, TaskPipeline

api = gcp.serviceaccount.Account(
    "api", project="{PROJECT}", account_id="api", display_name="payments"
)
repository = gcp.artifactregistry.Repository(
    "apps", project="cloudrun", location="us", repository_id="container", format="DOCKER"
)
"""

PROGRAM = """
project = {project}
apis = ProjectApis("apis", {{"project": project}})
after = pulumi.ResourceOptions(depends_on=[apis])
store = IdempotencyStore(
    "store", {{"project": project, "database": "tasks-pkg", "location": "nam5"}}, after
)
orders = TaskPipeline(
    "orders",
    {{
        "project": project,
        "pipeline": {{
            "location": "us-central1",
            "service": {{"image": {image}, "app": {{"image": {app_image}, "port": 9000}}}},
            "enqueuers": [{enqueuer}, "user:ops@example.com"],
            "replayers": [{replayer}],
            "payloads": {{"enabled": True}},
        }},
        "cloudtasks_agent_member": apis.cloudtasks_agent_member,
        "database": store.database_id,
        "labels": {{"team": {label}}},
    }},
    after,
)
pulumi.export("runtime", orders.runtime_service_account)
"""

PLAIN = {
    "project": f'"{PROJECT}"',
    "image": f'"{IMAGE}"',
    "app_image": f'"{APP_IMAGE}"',
    "enqueuer": f'"serviceAccount:api@{PROJECT}.iam.gserviceaccount.com"',
    "replayer": '"group:replay@example.com"',
    "label": '"payments"',
}
OUTPUTS = {
    "project": "api.project",
    "image": (
        'pulumi.Output.concat(repository.location, "-docker.pkg.dev/", repository.project,'
        ' "/", repository.repository_id, "/hello")'
    ),
    "app_image": (
        'pulumi.Output.concat(repository.location, "-docker.pkg.dev/", repository.project,'
        ' "/", repository.repository_id, "/app")'
    ),
    "enqueuer": "api.member",
    "replayer": 'pulumi.Output.from_input("group:replay@example.com")',
    "label": "api.display_name",
}

RECORD = f"""
import json, sys
from pathlib import Path
from plan.recorder import Recording, run_program
recording = Recording(project="consumer", stack="test")
error = None
try:
    run_program(
        Path(sys.argv[1]), "test", {{"gcp:project": "{PROJECT}"}},
        preview=sys.argv[2] == "preview", into=recording,
    )
except Exception as raised:
    error = f"{{type(raised).__name__}}: {{raised}}"
print(json.dumps({{
    "error": error,
    "resources": [[r.type, r.urn, r.parent, r.protect, r.inputs] for r in recording.resources],
}}))
"""


def run(directory: Path, program: str, *, preview: bool = False) -> dict[str, Any]:
    directory.mkdir(parents=True)
    (directory / "Pulumi.yaml").write_text("name: consumer\nruntime: python\n")
    (directory / "__main__.py").write_text(program)
    result = python(RECORD, str(directory), "preview" if preview else "up")
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout)


def program(**values: str) -> str:
    return SOURCES + PROGRAM.format(**{**PLAIN, **values})


@pytest.fixture(scope="module")
def routes(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], dict[str, Any]]:
    base = tmp_path_factory.mktemp("inputs")
    return run(base / "plain", program()), run(base / "outputs", program(**OUTPUTS))


def registrations(run: dict[str, Any]) -> list[str]:
    """Each resource's type, parent, protect and inputs, in a stable order: not its
    name, since the grant of a member from an Output is named by its place."""
    return sorted(
        json.dumps([type_, parent, protect, inputs], sort_keys=True)
        for type_, _, parent, protect, inputs in run["resources"]
    )


def names(run: dict[str, Any]) -> set[str]:
    return {urn for _, urn, *_ in run["resources"]}


def test_outputs_register_what_plain_values_register(
    routes: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    plain, outputs = routes
    assert (plain["error"], outputs["error"]) == (None, None)
    assert registrations(outputs) == registrations(plain)
    # The names differ only where a member came as an Output: by its place.
    renamed = {
        name.replace(
            f"serviceAccount-api@{PROJECT}.iam.gserviceaccount.com", "enqueuers-0"
        ).replace("group-replay@example.com", "replayers-0")
        for name in names(plain)
    }
    assert renamed == names(outputs)
    inputs = [r[4] for r in plain["resources"]]
    # Not two empty runs: the values went where they belong.
    (service,) = [
        i for t, _, _, _, i in plain["resources"] if t == "gcp:cloudrunv2/service:Service"
    ]
    handler, app = service["template"]["containers"]
    assert (handler["image"], app["image"]) == (IMAGE, APP_IMAGE)
    assert service["labels"]["team"] == "payments"
    queue_members = sorted(
        i["member"]
        for t, _, _, _, i in plain["resources"]
        if t == "gcp:cloudtasks/queueIamMember:QueueIamMember"
    )
    assert queue_members == [
        "group:replay@example.com",
        f"serviceAccount:api@{PROJECT}.iam.gserviceaccount.com",
        "user:ops@example.com",
    ]
    assert all(i.get("project", PROJECT) in (PROJECT, "cloudrun") for i in inputs)


def test_the_grant_of_an_output_member_is_named_by_its_place(
    routes: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    _, outputs = routes
    names = sorted(
        urn.rsplit("::", 1)[1]
        for t, urn, *_ in outputs["resources"]
        if t == "gcp:cloudtasks/queueIamMember:QueueIamMember"
    )
    assert names == [
        "orders-cloudtasks-enqueuer-enqueuers-0",
        "orders-cloudtasks-enqueuer-replayers-0",
        "orders-cloudtasks-enqueuer-user-ops@example.com",
    ]


LINE = (
    "args.pipeline.enqueuers.0: must be an IAM member such as"
    " 'serviceAccount:NAME@PROJECT.iam.gserviceaccount.com' (prefixes: serviceAccount,"
    ' user, group, principal, principalSet), got "api@acme.example"'
)


def registered(run: dict[str, Any]) -> list[str]:
    return [type_ for type_, *_ in run["resources"]]


def test_a_bad_resolved_output_is_refused_with_the_plain_values_line(tmp_path: Path) -> None:
    bad = run(
        tmp_path / "output",
        program(enqueuer='api.email.apply(lambda _: "api@acme.example")'),
    )
    assert bad["error"] is not None
    assert f"invalid args of TaskPipeline 'orders' (1 problem):\n  {LINE}" in bad["error"]
    # No grant to the bad member (named by its place) was registered; the plain members'
    # were, as they take nothing from the Output.
    granted = [urn for _, urn, *_ in bad["resources"] if "IamMember" in urn or "IAMMember" in urn]
    assert [urn for urn in granted if "enqueuers-0" in urn] == []
    assert any(urn.endswith("-user-ops@example.com") for urn in granted)
    plain = run(tmp_path / "plain", program(enqueuer='"api@acme.example"'))
    assert plain["error"] is not None
    assert f"invalid args of TaskPipeline 'orders' (1 problem):\n  {LINE}" in plain["error"]
    # The plain value: refused before any resource of the pipeline.
    assert not [urn for _, urn, *_ in plain["resources"] if "TaskPipeline" in urn]


def test_a_bad_resolved_app_image_is_refused_with_the_plain_values_line(tmp_path: Path) -> None:
    line = (
        "args.pipeline.service.app.image: must be a container image reference"
        " REGISTRY/PATH[:TAG][@sha256:DIGEST] (repository name must be lowercase),"
        ' got "Not/An/Image"'
    )
    bad = run(
        tmp_path / "output",
        program(app_image='repository.project.apply(lambda _: "Not/An/Image")'),
    )
    assert bad["error"] is not None
    assert f"invalid args of TaskPipeline 'orders' (1 problem):\n  {line}" in bad["error"]
    assert [t for t, *_ in bad["resources"] if t == "gcp:cloudrunv2/service:Service"] == []
    plain = run(tmp_path / "plain", program(app_image='"Not/An/Image"'))
    assert plain["error"] is not None
    assert f"invalid args of TaskPipeline 'orders' (1 problem):\n  {line}" in plain["error"]


def test_a_bad_resolved_project_is_refused_before_any_resource_of_the_pipeline(
    tmp_path: Path,
) -> None:
    source = program().replace(
        '"project": project,\n        "pipeline"',
        '"project": api.project.apply(lambda _: "Acme"),\n        "pipeline"',
    )
    assert "Acme" in source
    bad = run(tmp_path / "output", source)
    assert bad["error"] is not None
    assert bad["error"].endswith(
        "invalid args of TaskPipeline 'orders' (1 problem):\n"
        "  args.project: must be a project id (6..30 lowercase letters, digits, hyphens),"
        ' got "Acme"'
    )
    # Nothing of the pipeline took the project: every resource of it takes one.
    assert [t for t, urn, *_ in bad["resources"] if "TaskPipeline$gcp" in urn] == []


def test_an_unknown_image_in_a_preview_leaves_the_project_known(tmp_path: Path) -> None:
    """Each Output is checked on its own: an image still being built does not make the
    project every resource takes unknown (a preview would show them all replaced)."""
    preview = run(
        tmp_path / "preview",
        program(
            project="api.project",
            image=f'api.email.apply(lambda _: "{IMAGE}")',
        ),
        preview=True,
    )
    assert preview["error"] is None
    queue = [i for t, _, _, _, i in preview["resources"] if t == "gcp:cloudtasks/queue:Queue"]
    service = [i for t, _, _, _, i in preview["resources"] if t == "gcp:cloudrunv2/service:Service"]
    assert [q["project"] for q in queue] == [PROJECT]
    assert [s["project"] for s in service] == [PROJECT]
    assert service[0]["template"]["containers"][0]["image"] != IMAGE  # not known yet


def test_an_output_member_listed_twice_across_lists_is_refused(tmp_path: Path) -> None:
    bad = run(tmp_path / "twice", program(replayer="api.member"))
    assert bad["error"] is not None
    assert (
        "args.pipeline.replayers.0: the same member as args.pipeline.enqueuers.0; a member"
        " from an Output must be listed once"
    ) in bad["error"]


def test_unknown_values_in_a_preview_pass(tmp_path: Path) -> None:
    # An account's email is computed by Google: unknown in a preview.
    preview = run(
        tmp_path / "preview",
        program(enqueuer='api.email.apply(lambda e: "serviceAccount:" + e)'),
        preview=True,
    )
    assert preview["error"] is None
    members = [
        inputs.get("member")
        for type_, _, _, _, inputs in preview["resources"]
        if type_ == "gcp:cloudtasks/queueIamMember:QueueIamMember"
    ]
    assert len(members) == 3 and "user:ops@example.com" in members


def test_an_output_where_a_plain_value_is_needed_is_said_with_the_other_problems(
    tmp_path: Path,
) -> None:
    source = program().replace(
        '"location": "us-central1",',
        '"location": "us-central1", "queue": {"max_attempts": pulumi.Output.from_input(5),'
        ' "max_backoff": "forever"},',
    )
    bad = run(tmp_path / "plain-only", source)
    assert bad["error"] is not None
    assert (
        "invalid args of TaskPipeline 'orders' (2 problems):\n"
        "  args.pipeline.queue.maxAttempts: must be a plain value, not an Output (it is"
        " checked before any resource)\n"
        "  args.pipeline.queue.maxBackoff: must be a duration"
    ) in bad["error"]
    assert "cloudrun-tasks:index:TaskPipeline" not in registered(bad)


def test_a_bad_secret_output_is_refused_without_showing_it(tmp_path: Path) -> None:
    bad = run(
        tmp_path / "secret",
        program(label='pulumi.Output.secret("Payments Team")'),
    )
    assert bad["error"] is not None
    assert "args.labels.team: " in bad["error"]
    assert bad["error"].rstrip().endswith(", got [secret]")
    assert "Payments" not in bad["error"]
    shown = run(
        tmp_path / "plain", program(label='api.display_name.apply(lambda _: "Payments Team")')
    )
    assert shown["error"] is not None and '"Payments Team"' in shown["error"]
