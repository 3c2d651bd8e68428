"""What a consumer reads from the components: typed outputs in the schema (strings, lists
and maps of strings, never "object of any"), holding the very values of the stack output
entry the enqueue client reads (whose shape is kept)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.package.test_provider import NAME, PROJECT, PYTHON_ROUTE, inferred_schema, python

PIPELINE = f"{NAME}:index:TaskPipeline"
# name -> (schema type, element type of a list or map, always present)
TYPED = {
    "queueName": ("string", None, True),
    "queuePath": ("string", None, True),
    "location": ("string", None, True),
    "serviceName": ("string", None, True),
    "serviceUrl": ("string", None, True),
    "invokerServiceAccount": ("string", None, True),
    "runtimeServiceAccount": ("string", None, True),
    "tickerServiceAccount": ("string", None, False),
    "dispatchDeadline": ("string", None, True),
    "deadLetterTopic": ("string", None, True),
    "deadLetterSubscription": ("string", None, True),
    "deadLetterSubscriptionPath": ("string", None, True),
    "firestoreDatabase": ("string", None, True),
    "payloadBucket": ("string", None, False),
    "scheduleJobs": ("object", "string", True),
}


def _shape(prop: dict[str, Any]) -> tuple[str | None, str | None]:
    inner = prop.get("additionalProperties") or prop.get("items") or {}
    return prop.get("type"), inner.get("type")


def test_every_output_is_typed_never_any() -> None:
    schema = inferred_schema()
    pipeline = schema["resources"][PIPELINE]
    assert {
        name: (*_shape(prop), name in pipeline["required"])
        for name, prop in pipeline["properties"].items()
    } == TYPED
    dashboard = schema["resources"][f"{NAME}:index:StackDashboard"]
    assert dashboard["properties"]["url"]["type"] == "string"
    anything = [
        f"{token}.{name}"
        for token, resource in schema["resources"].items()
        for name, prop in resource["properties"].items()
        if "pulumi.json#/Any" in json.dumps(prop)
    ]
    assert anything == []


READ = """
outputs = {}
for name, p in pipelines.items():
    typed = {
        key: getattr(p, attr)
        for key, attr in [
            ("queueName", "queue_name"), ("queuePath", "queue_path"), ("location", "location"),
            ("serviceName", "service_name"), ("serviceUrl", "service_url"),
            ("invokerServiceAccount", "invoker_service_account"),
            ("runtimeServiceAccount", "runtime_service_account"),
            ("tickerServiceAccount", "ticker_service_account"),
            ("dispatchDeadline", "dispatch_deadline"), ("deadLetterTopic", "dead_letter_topic"),
            ("deadLetterSubscription", "dead_letter_subscription"),
            ("deadLetterSubscriptionPath", "dead_letter_subscription_path"),
            ("firestoreDatabase", "firestore_database"), ("payloadBucket", "payload_bucket"),
            ("scheduleJobs", "schedule_jobs"),
        ]
        if getattr(p, attr) is not None
    }
    outputs[name] = {"typed": typed, "entry": p.outputs}
pulumi.export("read", outputs)
"""

RECORD = f"""
import json, sys
from pathlib import Path
from plan.recorder import run_program
recording = run_program(Path(sys.argv[1]), "test", {{"gcp:project": "{PROJECT}"}})
print(json.dumps(recording.outputs["read"]))
"""


@pytest.fixture(scope="module")
def read(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    program = tmp_path_factory.mktemp("typed")
    (program / "Pulumi.yaml").write_text("name: consumer\nruntime: python\n")
    source = PYTHON_ROUTE.replace("for name in", "pipelines = {}\nfor name in").replace(
        "    TaskPipeline(", "    pipelines[name] = TaskPipeline("
    )
    (program / "__main__.py").write_text(source + READ)
    result = python(RECORD, str(Path(program)))
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout)


def test_typed_outputs_hold_the_stack_output_entrys_values(read: dict[str, Any]) -> None:
    orders, mail = read["orders"], read["mail"]
    for pipeline in (orders, mail):
        typed, entry = pipeline["typed"], pipeline["entry"]
        same = {
            "queuePath": "queue",
            "queueName": "queueName",
            "location": "location",
            "serviceName": "serviceName",
            "serviceUrl": "serviceUrl",
            "invokerServiceAccount": "invokerServiceAccount",
            "runtimeServiceAccount": "runtimeServiceAccount",
            "dispatchDeadline": "dispatchDeadline",
            "deadLetterTopic": "deadLetterTopic",
            "deadLetterSubscriptionPath": "deadLetterSubscription",
            "firestoreDatabase": "firestoreDatabase",
        }
        assert {k: typed[k] for k in same} == {k: entry[v] for k, v in same.items()}
        assert all(isinstance(typed[k], str) and typed[k] for k in same)
        assert entry["deadLetterSubscription"].endswith(
            "/subscriptions/" + typed["deadLetterSubscription"]
        )
        assert typed["queuePath"].startswith(f"projects/{PROJECT}/locations/us-central1/queues/")
    # The stack output entry kept its shape: the keys the enqueue client reads.
    assert sorted(mail["entry"]) == sorted(
        [
            "queue",
            "queueName",
            "location",
            "serviceName",
            "serviceUrl",
            "invokerServiceAccount",
            "runtimeServiceAccount",
            "dispatchDeadline",
            "deadLetterTopic",
            "deadLetterSubscription",
            "firestoreDatabase",
        ]
    )
    assert (mail["typed"]["scheduleJobs"], "tickerServiceAccount" in mail["typed"]) == ({}, False)
    assert "payloadBucket" not in mail["typed"]
    # orders has a schedule and payloads.
    assert orders["typed"]["scheduleJobs"] == {
        "nightly": orders["entry"]["schedules"]["nightly"]["job"]
    }
    assert orders["typed"]["payloadBucket"] == orders["entry"]["payloadBucket"]
    assert orders["typed"]["tickerServiceAccount"].startswith("orders-ticker@")
