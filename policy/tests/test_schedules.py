"""A schedule's identity: run.invoker on the service its jobs push to, nothing more."""

from __future__ import annotations

from pulumi_policy import PolicyResource, StackValidationArgs

from plan.recorder import run_program
from rules.schedules import schedule_identity_least_privilege
from support import REPO, evaluate, policy_resource, policy_resources, stack_config, validate

ACCOUNT = "gcp:serviceaccount/account:Account"
RUN = "gcp:cloudrunv2/service:Service"
TICKER_EMAIL = "orders-ticker@acme-tasks-dev.iam.gserviceaccount.com"


def dev() -> list[PolicyResource]:
    return policy_resources(run_program(REPO, "dev"))


def one(resources: list[PolicyResource], type_: str, name: str) -> PolicyResource:
    [found] = [r for r in resources if r.resource_type == type_ and r.name == name]
    return found


def test_the_dev_stack_schedule_holds_what_its_ticks_need() -> None:
    recording = run_program(REPO, "dev")
    assert any(r.type == "gcp:cloudscheduler/job:Job" for r in recording.resources)
    violations = evaluate([schedule_identity_least_privilege], recording, stack_config("dev"))
    assert violations == []


def test_any_other_grant_to_the_identity_is_refused() -> None:
    resources = dev()
    ticker = one(resources, ACCOUNT, "orders-ticker")
    queue = one(resources, "gcp:cloudtasks/queue:Queue", "orders")
    extra = policy_resource(
        "gcp:cloudtasks/queueIamMember:QueueIamMember",
        {"role": "roles/cloudtasks.enqueuer", "member": f"serviceAccount:{TICKER_EMAIL}"},
        "ticker-enqueues",
        property_dependencies={"name": [queue]},
    )
    [message] = validate(
        schedule_identity_least_privilege, StackValidationArgs([*resources, extra])
    )
    assert "'orders-ticker' is a Cloud Scheduler job's identity" in message
    assert "roles/cloudtasks.enqueuer" in message and "'ticker-enqueues'" in message
    # Linked by dependency alone (a preview, where the email is unknown), it is refused too.
    by_dependency = policy_resource(
        "gcp:projects/iAMMember:IAMMember",
        {"role": "roles/viewer", "project": "acme-tasks-dev"},
        "ticker-views",
        property_dependencies={"member": [ticker]},
    )
    [message] = validate(
        schedule_identity_least_privilege, StackValidationArgs([*resources, by_dependency])
    )
    assert "roles/viewer" in message


def test_invoking_another_service_is_refused() -> None:
    resources = dev()
    ticker = one(resources, ACCOUNT, "orders-ticker")
    other = policy_resource(RUN, {"location": "us-central1"}, "billing")
    grant = policy_resource(
        "gcp:cloudrunv2/serviceIamMember:ServiceIamMember",
        {"role": "roles/run.invoker", "member": f"serviceAccount:{TICKER_EMAIL}"},
        "ticker-invokes-billing",
        property_dependencies={"name": [other], "member": [ticker]},
    )
    [message] = validate(
        schedule_identity_least_privilege, StackValidationArgs([*resources, other, grant])
    )
    assert "'ticker-invokes-billing' grants it roles/run.invoker" in message


def test_a_grant_on_the_identity_beyond_token_minting_and_act_as_is_refused() -> None:
    resources = dev()
    ticker = one(resources, ACCOUNT, "orders-ticker")
    grant = policy_resource(
        "gcp:serviceaccount/iAMMember:IAMMember",
        {"role": "roles/iam.serviceAccountKeyAdmin", "member": "user:someone@acme.example"},
        "keys-of-ticker",
        property_dependencies={"serviceAccountId": [ticker]},
    )
    [message] = validate(
        schedule_identity_least_privilege, StackValidationArgs([*resources, grant])
    )
    assert "grants roles/iam.serviceAccountKeyAdmin on 'orders-ticker'" in message
