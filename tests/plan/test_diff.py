"""`--diff`: added, removed and changed settings; replacements and deletions flagged loudly."""

from __future__ import annotations

from typing import Any

from plan import diff
from tests.plan.conftest import config, pipeline, plan_of

QUEUE = "cloudtasks.Queue orders"


def _render(base: dict[str, Any], head: dict[str, Any]) -> tuple[diff.PlanDiff, str]:
    changes = diff.compare(base, head)
    return changes, diff.render(changes, "base.json", "head")


def test_same_config_has_no_changes() -> None:
    changes, text = _render(plan_of(config()), plan_of(config()))
    assert changes.empty
    assert text == "Plan changes from base.json to head: none.\n"


def test_changed_setting_is_named_with_both_values_and_no_replacement() -> None:
    head = pipeline()
    head["queue"]["maxDispatchesPerSecond"] = 50
    changes, text = _render(plan_of(config()), plan_of(config(orders=head)))
    queue_key = "cloudrun-tasks:index:TaskQueue$gcp:cloudtasks/queue:Queue::orders"
    assert changes.changed[queue_key] == [("rateLimits.maxDispatchesPerSecond", 5, 50)]
    assert f"  ~ {QUEUE}\n      rateLimits.maxDispatchesPerSecond: 5 -> 50\n" in text
    # The backlog alert's default threshold follows the rate: ten minutes of work.
    backlog = changes.changed[
        "cloudrun-tasks:index:TaskPipeline$gcp:monitoring/alertPolicy:AlertPolicy::orders-backlog"
    ]
    assert (
        "conditions[0].displayName",
        "more than 3000 tasks waiting for 300s",
        "more than 30000 tasks waiting for 300s",
    ) in backlog
    assert len(changes.changed) == 2
    assert changes.replaced == {}
    assert "!!" not in text
    assert text.endswith("0 added, 0 removed, 0 moved, 2 changed, 0 replaced.\n")


def test_location_change_flags_queue_and_service_replacement() -> None:
    head = pipeline()
    head["location"] = "europe-west1"
    changes, text = _render(plan_of(config()), plan_of(config(orders=head)))
    replaced = {changes.both[key].label: forced for key, forced in changes.replaced.items()}
    # The grants on the queue and the service name their location, and the database's
    # default location follows the pipelines (idempotency.default_location): moving the
    # only pipeline moves it, and a Firestore database can't move.
    assert replaced == {
        "firestore.Database idempotency": [diff.Forced("locationId", "location_id")],
        QUEUE: [diff.Forced("location", "location")],
        "cloudrunv2.Service orders": [diff.Forced("location", "location")],
        "cloudtasks.QueueIamMember orders-cloudtasks-enqueuer-serviceAccount-api@"
        "acme-tasks-plan.iam.gserviceaccount.com": [diff.Forced("location", "location")],
        "cloudrunv2.ServiceIamMember orders-run-invoker-invoker": [
            diff.Forced("location", "location")
        ],
    }
    assert (
        f"!! REPLACE {QUEUE}: location (ForceNew location) changed -- deleted and re-created;"
        " lost: every task waiting in the queue;"
    ) in text
    assert (
        "!! REPLACE cloudrunv2.Service orders: location (ForceNew location) changed --"
        " deleted and re-created; lost: the service's URL"
    ) in text
    assert "(ForceNew from the provider's schema: terraform-provider-google-beta v7.45.0" in text
    assert "protected:" not in text  # unprotected: `pulumi up` would go ahead
    # Loud means first: the flags come before the list of changes.
    assert text.index("!! REPLACE") < text.index("Changed:")


def test_project_change_replaces_too() -> None:
    head = config()
    head["gcp:project"] = "acme-tasks-other"
    base = plan_of(config())
    changes, _ = _render(base, plan_of(head))
    # Every resource that names its project (nearly all) is re-created in the new one.
    with_project = {
        key
        for key, r in base["resources"].items()
        if "project" in r["inputs"] and not r["component"]
    }
    assert len(with_project) > 15
    assert set(changes.replaced) == with_project
    assert all(diff.Forced("project", "project") in forced for forced in changes.replaced.values())


def test_removed_pipeline_is_a_loud_deletion_and_added_one_is_listed() -> None:
    base = plan_of(config(orders=pipeline()))
    head = plan_of(config(payments=pipeline()))
    changes, text = _render(base, head)
    assert f"!! DELETE {QUEUE}: lost: every task waiting in the queue" in text
    # A grant going away is listed, not shouted: it holds no data.
    assert "!! DELETE cloudtasks.QueueIamMember" not in text
    assert "!! DELETE cloudrunv2.Service orders" in text
    assert "  + cloudtasks.Queue payments\n" in text
    assert "  - cloudtasks.Queue orders\n" in text
    # 13 resources and components of the pipeline, its 5 alert policies and the claims-lost
    # metric, its dead-letter topic and subscription and the runtime account's grants on
    # them and the database.
    assert len(changes.added) == len(changes.removed) == 23
    assert "  + monitoring.AlertPolicy payments-backlog\n" in text


def test_protect_and_outputs_changes_are_reported() -> None:
    base, head = plan_of(config()), config()
    head["cloudrun-tasks:protect"] = True
    changes, text = _render(base, plan_of(head))
    assert ("(protect)", False, True) in changes.changed[
        "cloudrun-tasks:index:TaskQueue$gcp:cloudtasks/queue:Queue::orders"
    ]
    assert "deletionProtection: false -> true" in text
    assert changes.replaced == {}


def test_added_setting_shows_absent_before() -> None:
    head = pipeline()
    head["service"]["env"] = {"LOG_LEVEL": "debug"}
    _, text = _render(plan_of(config()), plan_of(config(orders=head)))
    # Env vars are sorted: LOG_LEVEL now comes before the pipeline's TASK_* variables,
    # so the last of them, TASK_MAX_RETRY_DURATION, moves to a new index.
    assert 'template.containers[0].envs[7].name: (absent) -> "TASK_MAX_RETRY_DURATION"' in text


def test_output_change_is_listed() -> None:
    base = plan_of(config())
    orders = base["outputs"]["pipelines"]["orders"]
    head = {
        **base,
        "outputs": {
            **base["outputs"],
            "pipelines": {"orders": {**orders, "location": "europe-west1"}},
        },
    }
    changes, text = _render(base, head)
    assert changes.outputs == [("pipelines.orders.location", "us-central1", "europe-west1")]
    assert '  ~ pipelines.orders.location: "us-central1" -> "europe-west1"\n' in text


def test_flatten_names_every_leaf() -> None:
    assert diff.flatten({"a": {"b": [1, {"c": 2}]}, "d": [], "e": {}}) == {
        "a.b[0]": 1,
        "a.b[1].c": 2,
        "d": [],
        "e": {},
    }
