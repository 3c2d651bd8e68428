"""The component provider, built as `pulumi package add` would run it: the schema Pulumi's
analyzer infers from the components, and `construct` under mocks.

Each in a process of its own: `pulumi.provider` registers Pulumi's copy of
google/rpc/status.proto, which collides with googleapis-common-protos' once another test
has imported a Google client (as the plugin's own process never does)."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from components.provider import COMPONENTS, NAME
from tests.package.conftest import ROOT

SNAPSHOT = ROOT / "provider" / "schema.json"
# The package version is left out of the snapshot (it changes with every commit); the live
# schema, with the version a build gets, is judged by Pulumi's metaschema in
# test_schema_version.py.
VERSION = "0.0.0"
PROJECT = "acme-tasks-pkg"
IMAGE = "us-docker.pkg.dev/cloudrun/container/hello"
ENQUEUER = "serviceAccount:api@acme-tasks-pkg.iam.gserviceaccount.com"
# One pipeline of each route has a schedule (its body with a null inside, which must reach
# the job as it is) and a payload bucket.
SCHEDULE = {
    "cron": "0 3 * * 1-5",
    "time_zone": "Europe/Berlin",
    "body": {"report": "daily", "since": None},
    "path": "/reports",
    "paused": True,
}


def python(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code, *args], cwd=ROOT, capture_output=True, text=True, timeout=300
    )


SCHEMA = f"""
from pulumi.provider.experimental.component import ComponentProvider
from components.provider import COMPONENTS, NAME
print(ComponentProvider(COMPONENTS, NAME, None, "{VERSION}").schema)
"""


def inferred_schema() -> dict[str, Any]:
    result = python(SCHEMA)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_inferred_schema_matches_the_snapshot() -> None:
    schema = inferred_schema()
    text = json.dumps(schema, indent=2, sort_keys=True) + "\n"
    if os.environ.get("UPDATE_SNAPSHOTS") == "1":
        SNAPSHOT.write_text(text)
    assert text == SNAPSHOT.read_text(), (
        "the components' public interface changed: say what a consumer must change in"
        " CHANGELOG.md (Unreleased), then refresh with"
        " UPDATE_SNAPSHOTS=1 .venv/bin/pytest tests/package"
    )


def test_every_component_input_and_output_is_typed_and_described() -> None:
    schema = inferred_schema()
    assert sorted(schema["resources"]) == sorted(f"{NAME}:index:{c.__name__}" for c in COMPONENTS)
    properties: dict[str, dict[str, Any]] = {}
    for token, resource in schema["resources"].items():
        assert resource["isComponent"] and resource["description"], token
        for kind in ("inputProperties", "properties"):
            assert resource[kind], (token, kind)
            for name, prop in resource[kind].items():
                properties[f"{token}.{kind}.{name}"] = prop
    for token, type_ in schema["types"].items():
        assert type_["description"], token
        for name, prop in type_["properties"].items():
            properties[f"{token}.{name}"] = prop
    undescribed = [where for where, prop in properties.items() if not prop.get("description")]
    untyped = [
        where for where, prop in properties.items() if not ("type" in prop or "$ref" in prop)
    ]
    assert (undescribed, untyped) == ([], [])
    pipeline = schema["resources"][f"{NAME}:index:TaskPipeline"]
    assert pipeline["inputProperties"]["pipeline"]["$ref"] == f"#/types/{NAME}:index:PipelineInputs"
    assert sorted(pipeline["requiredInputs"]) == [
        "cloudtasksAgentMember",
        "database",
        "pipeline",
        "project",
    ]


PYTHON_ROUTE = f"""
import pulumi
from components import IdempotencyStore, ProjectApis, TaskPipeline
from components.apis import CLOUDSCHEDULER

apis = ProjectApis("apis", {{"project": "{PROJECT}", "extra_services": [CLOUDSCHEDULER]}})
after = pulumi.ResourceOptions(depends_on=[apis])
store = IdempotencyStore(
    "store", {{"project": "{PROJECT}", "database": "tasks-pkg", "location": "nam5"}}, after
)
extra = {{
    "schedules": {{"nightly": {SCHEDULE!r}}},
    "payloads": {{"enabled": True, "threshold": 100000}},
}}
for name in ("orders", "mail"):
    TaskPipeline(
        name,
        {{
            "project": "{PROJECT}",
            "pipeline": {{
                "location": "us-central1",
                "service": {{"image": "{IMAGE}", "max_instances": 2, "env": {{"LEVEL": "info"}}}},
                "queue": {{"max_attempts": 5, "max_retry_duration": "600s"}},
                "enqueuers": ["{ENQUEUER}"],
                **(extra if name == "orders" else {{}}),
            }},
            "cloudtasks_agent_member": apis.cloudtasks_agent_member,
            "database": store.database_id,
            "cloudscheduler_agent_member": apis.cloudscheduler_agent_member,
        }},
        after,
    )
"""


def camel(schedule: dict[str, Any]) -> dict[str, Any]:
    """A schedule's keys as the schema spells them (the body is a JSON value, kept)."""
    return {"timeZone" if key == "time_zone" else key: value for key, value in schedule.items()}


# The same, as the engine hands it to the provider: camelCase inputs, depends_on as
# resources the provider only knows by URN.
PROVIDER_ROUTE = f"""
import pulumi
from pulumi.provider.experimental.component import ComponentProvider
from pulumi.resource import DependencyResource
from components.apis import CLOUDSCHEDULER, REQUIRED_SERVICES
from components.provider import COMPONENTS, NAME

provider = ComponentProvider(COMPONENTS, NAME, None, "0.0.0")
apis = provider.construct(
    "apis",
    NAME + ":index:ProjectApis",
    {{"project": "{PROJECT}", "extraServices": [CLOUDSCHEDULER]}},
)
# What the engine passes for depends_on=[apis]: the caller's SDK expands a component into
# its children, so the provider gets their URNs.
inside = "urn:pulumi:test::consumer::" + NAME + ":index:ProjectApis$gcp:projects/"
children = [
    *(
        inside + "service:Service::apis-" + api.split(".")[0]
        for api in (*REQUIRED_SERVICES, CLOUDSCHEDULER)
    ),
    inside + "serviceIdentity:ServiceIdentity::apis-cloudtasks-agent",
    inside + "serviceIdentity:ServiceIdentity::apis-cloudscheduler-agent",
]
after = pulumi.ResourceOptions(depends_on=[DependencyResource(urn) for urn in children])
store = provider.construct(
    "store",
    NAME + ":index:IdempotencyStore",
    {{"project": "{PROJECT}", "database": "tasks-pkg", "location": "nam5"}},
    after,
)
extra = {{
    "schedules": {{"nightly": {camel(SCHEDULE)!r}}},
    "payloads": {{"enabled": True, "threshold": 100000}},
}}
for name in ("orders", "mail"):
    provider.construct(
        name,
        NAME + ":index:TaskPipeline",
        {{
            "project": "{PROJECT}",
            "pipeline": {{
                "location": "us-central1",
                "service": {{"image": "{IMAGE}", "maxInstances": 2, "env": {{"LEVEL": "info"}}}},
                "queue": {{"maxAttempts": 5, "maxRetryDuration": "600s"}},
                "enqueuers": ["{ENQUEUER}"],
                **(extra if name == "orders" else {{}}),
            }},
            "cloudtasksAgentMember": apis.state["cloudtasksAgentMember"],
            "database": store.state["databaseId"],
            "cloudschedulerAgentMember": apis.state["cloudschedulerAgentMember"],
        }},
        after,
    )
"""


RECORD = f"""
import json, sys
from pathlib import Path
from plan.recorder import run_program
recording = run_program(Path(sys.argv[1]), "test", {{"gcp:project": "{PROJECT}"}})
print(json.dumps([
    [r.type, r.urn, r.parent, sorted(r.dependencies), r.protect, r.inputs]
    for r in recording.resources
]))
"""


def run(tmp_path: Path, program: str) -> subprocess.CompletedProcess[str]:
    tmp_path.mkdir()
    (tmp_path / "Pulumi.yaml").write_text("name: consumer\nruntime: python\n")
    (tmp_path / "__main__.py").write_text(program)
    return python(RECORD, str(tmp_path))


def recorded(tmp_path: Path, program: str) -> list[list[Any]]:
    result = run(tmp_path, program)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout)


def resources(recording: list[list[Any]]) -> dict[str, tuple[Any, ...]]:
    return {urn: tuple(rest) for _, urn, *rest in recording}


@pytest.fixture(scope="module")
def routes(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[list[Any]], list[list[Any]]]:
    base = tmp_path_factory.mktemp("routes")
    return recorded(base / "python", PYTHON_ROUTE), recorded(base / "provider", PROVIDER_ROUTE)


def test_construct_registers_what_the_python_route_registers(
    routes: tuple[list[list[Any]], list[list[Any]]],
) -> None:
    by_python, by_provider = routes
    assert resources(by_provider) == resources(by_python)
    types = [type_ for type_, *_ in by_python]
    # Not two empty runs: both pipelines whole, with the per-stack components.
    assert types.count("cloudrun-tasks:index:TaskPipeline") == 2
    assert types.count("gcp:cloudtasks/queue:Queue") == 2
    assert types.count("gcp:cloudrunv2/service:Service") == 2
    assert types.count("gcp:firestore/database:Database") == 1
    assert types.count("gcp:cloudscheduler/job:Job") == 1
    assert types.count("gcp:storage/bucket:Bucket") == 1
    # ProjectApis: itself, 8 APIs (the 7 required, Logging among them, and Cloud
    # Scheduler), two agents; the store: itself, database, TTL field; a pipeline 23 (its 5
    # alert policies and claims-lost metric among them); orders' payloads 4 (component,
    # bucket, two grants) and schedule 9 (component, ticker account and its grant, invoke
    # and enqueue grants, job, its log metric and alert).
    assert len(by_python) == 11 + 3 + 2 * 23 + 4 + 9
    (job,) = [inputs for type_, *_, inputs in by_python if type_ == "gcp:cloudscheduler/job:Job"]
    assert (job["schedule"], job["timeZone"], job["paused"]) == (
        "0 3 * * 1-5",
        "Europe/Berlin",
        True,
    )
    assert json.loads(base64.b64decode(job["httpTarget"]["body"])) == SCHEDULE["body"]
    assert job["httpTarget"]["uri"].endswith("/_tick/reports")


def test_construct_reports_a_bad_input_by_name(tmp_path: Path) -> None:
    result = run(tmp_path / "bad", PROVIDER_ROUTE.replace('"600s"', '"ten minutes"'))
    assert result.returncode != 0
    assert (
        "invalid args of TaskPipeline 'orders' (1 problem):\n"
        "  args.pipeline.queue.maxRetryDuration: must be a duration such as"
    ) in result.stderr


def test_construct_takes_outputs_and_checks_them_when_they_resolve(
    tmp_path: Path, routes: tuple[list[list[Any]], list[list[Any]]]
) -> None:
    """What the engine hands the provider for a value that depends on another resource:
    an Output. Resolved, it registers what the plain value does; bad, it is refused with
    the plain value's line."""
    plain = f'"image": "{IMAGE}"'
    assert PROVIDER_ROUTE.count(plain) == 1
    as_output = PROVIDER_ROUTE.replace(plain, f'"image": pulumi.Output.from_input("{IMAGE}")')
    by_python, _ = routes
    registered = recorded(tmp_path / "output", as_output)
    # Same resources, parents, protection and inputs; the Output adds no dependency here.
    assert resources(registered) == resources(by_python)
    bad = PROVIDER_ROUTE.replace(plain, '"image": pulumi.Output.from_input("Not An Image")')
    result = run(tmp_path / "bad", bad)
    assert result.returncode != 0
    assert (
        "invalid args of TaskPipeline 'orders' (1 problem):\n  args.pipeline.service.image: "
    ) in result.stderr
    assert '"Not An Image"' in result.stderr
