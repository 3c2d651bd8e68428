"""The deployer's payload-bucket condition (bootstrap/gitops/authority.py) compiled and
evaluated by a CEL implementation (cel-python): true for every payload bucket the main
program names, false for the state bucket and for near misses.

IAM evaluates a bucket permission with resource.type `storage.googleapis.com/Bucket` and
resource.name `projects/_/buckets/BUCKET` (cloud.google.com/iam/docs/
conditions-resource-attributes). `extract()` is Google's extension to CEL for
resource names (iam/docs/conditions-attribute-reference); cel-python has no such function,
so `extract` below supplies the behaviour the condition relies on: the text the template's
`{...}` stands for at the first place the template's literal text fits, or "" when it fits
nowhere. That reading is ours, not checked against Google's evaluator. Parsing,
`startsWith`, `==`, `!=` and `&&` are cel-python's own.

A bucket name carries no project (`projects/_/`): a `x-payloads-…` bucket of another
project is kept out by where the grant sits (the deployer's project), not by the condition.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable

import celpy
import pytest
from celpy.adapter import json_to_cel
from celpy.celtypes import BoolType, StringType

from plan.recorder import Recording, run_program
from tests.bootstrap.test_authority import BOOTSTRAP, BOOTSTRAP_STACKS, EVERY_OPTION, authority
from tests.infra.conftest import ROOT, STACKS

BUCKET = "gcp:storage/bucket:Bucket"


def extract(name: StringType, template: StringType) -> StringType:
    before, rest = str(template).split("{", 1)
    after = rest.split("}", 1)[1]
    start = str(name).find(before)
    if start < 0:
        return StringType("")
    tail = str(name)[start + len(before) :]
    if not after:
        return StringType(tail)
    end = tail.find(after)
    return StringType(tail[:end] if end >= 0 else "")


def admits(expression: str, bucket: str) -> bool:
    env = celpy.Environment()
    program = env.program(env.compile(expression), functions={"extract": extract})
    result = program.evaluate(
        {
            "resource": json_to_cel(
                {"type": "storage.googleapis.com/Bucket", "name": f"projects/_/buckets/{bucket}"}
            )
        }
    )
    assert isinstance(result, BoolType), result
    return bool(result)


def misjudged(expression: str, payloads: Iterable[str], refused: Iterable[str]) -> list[str]:
    return [b for b in payloads if not admits(expression, b)] + [
        b for b in refused if admits(expression, b)
    ]


@pytest.fixture(scope="module")
def payload_buckets() -> list[str]:
    """Every payload bucket name the main program derives: the stack files and the
    every-option config."""
    recordings: list[Recording] = [run_program(ROOT, stack) for stack in STACKS]
    recordings.append(run_program(ROOT, "test", copy.deepcopy(EVERY_OPTION)))
    names = [r.inputs["name"] for rec in recordings for r in rec.of_type(BUCKET)]
    assert names
    return names


@pytest.fixture(scope="module", params=BOOTSTRAP_STACKS)
def bootstrap(request: pytest.FixtureRequest) -> Recording:
    return run_program(BOOTSTRAP, request.param)


def near_misses(state_bucket: str, payload: str) -> list[str]:
    pipeline, digest = payload.split("-payloads-")
    return [
        state_bucket,
        f"{pipeline}-payloads",  # no infix dash after
        f"{pipeline}payloads-{digest}",  # no dash before
        f"{pipeline}-payload-{digest}",
        f"{pipeline}-PAYLOADS-{digest}",
        f"payloads-{digest}",  # the infix at the start: no pipeline
        f"{state_bucket}-backup",
        f"{pipeline}_payloads_{digest}",
    ]


def test_the_condition_admits_every_payload_bucket_and_never_the_state_bucket(
    bootstrap: Recording, payload_buckets: list[str]
) -> None:
    [state] = bootstrap.of_type(BUCKET)
    [grant] = [
        r
        for r in bootstrap.of_type("gcp:projects/iAMMember:IAMMember")
        if "PayloadBuckets" in r.inputs["role"]
    ]
    expression = grant.inputs["condition"]["expression"]
    refused = near_misses(state.inputs["name"], payload_buckets[0])
    assert misjudged(expression, payload_buckets, refused) == []


def test_a_state_bucket_named_like_a_payload_bucket_is_still_refused(
    payload_buckets: list[str],
) -> None:
    """stateBucket is the admin's choice: even `<x>-payloads-<y>` stays out."""
    state = payload_buckets[0]
    condition = authority.payload_bucket_condition(state)
    assert not admits(condition, state)
    assert admits(authority.payload_bucket_condition("p-pulumi-dev"), state)


def test_payload_names_fit_what_the_condition_requires(payload_buckets: list[str]) -> None:
    """The condition knows the names by their `-payloads-` infix; the program's names
    (components/name_rules.py) have it, once, after the pipeline."""
    for name in payload_buckets:
        assert re.fullmatch(r"[a-z0-9][a-z0-9_-]*-payloads-[0-9a-f]{10}", name), name


# --- the judge can fail ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "wrong"),
    [
        # Every bucket of the project: the state bucket too.
        ("resource.name.startsWith('projects/_/buckets/')", "acme-pulumi-dev"),
        # The infix anywhere, no exclusion: a state bucket named like a payload bucket.
        (
            "resource.name.extract('projects/_/buckets/{p}-payloads-') != ''",
            "acme-payloads-state",
        ),
        # The wrong infix: misses the payload buckets.
        ("resource.name.extract('projects/_/buckets/{p}-payload_') != ''", "orders-payloads-"),
    ],
)
def test_a_condition_that_misjudges_a_bucket_is_caught(expression: str, wrong: str) -> None:
    payloads = ["orders-payloads-0123456789"]
    refused = ["acme-pulumi-dev", "acme-payloads-state"]
    assert any(wrong in b for b in misjudged(expression, payloads, refused))


@pytest.mark.parametrize(
    ("name", "template", "expected"),
    [
        # Templates in the forms public IAM conditions use (GKE's cross-account roles:
        # extract("projects/{name}"); secrets: extract("/secrets/{name}/versions/")).
        ("projects/p/secrets/s/versions/1", "/secrets/{name}/versions/", "s"),
        ("projects/p/zones/z/instances/i", "projects/{project}/", "p"),
        ("projects/p/zones/z/instances/i", "/instances/{name}", "i"),
        ("projects/p/zones/z/instances/i", "/disks/{name}", ""),
    ],
)
def test_extract_follows_googles_description(name: str, template: str, expected: str) -> None:
    assert extract(StringType(name), StringType(template)) == StringType(expected)
