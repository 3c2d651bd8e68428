"""Property tests of derived names over generated members, pipeline names and secret ids.

The strategies build entries from the pieces names are made of (separators, characters
sanitising drops, '-secret-'), so entries that spelled alike before are common; one test
shows they find such collisions under the former spelling rules.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import pytest
from hypothesis import HealthCheck, find, given, settings
from hypothesis import strategies as st

from components.names import (
    ACCOUNT_ID,
    ACCOUNT_MEMBER,
    QUEUE_MEMBER,
    SECRET_MEMBER,
    check_names,
)
from components.settings import ConfigError, parse_settings
from plan.recorder import Recording, run_program
from tests.infra.conftest import ROOT
from tests.infra.expectations import check_pipeline
from tests.infra.test_names import registered_names, renames

# Thousands of generated configs through the program: about a minute of CPU.
pytestmark = pytest.mark.slow

PREFIXES = ["serviceAccount", "user", "group", "principal", "principalSet"]
KEPT = re.compile(r"[A-Za-z0-9@._-]+")
IMAGE = "us-docker.pkg.dev/cloudrun/container/hello"

# Config reaches the program as UTF-8 text, so no lone surrogates (st.text has none).
rests = (
    st.one_of(
        st.lists(
            st.sampled_from(["a", "b", "-", "--", "+", ".", "@", ":", "/", "é", "_", "%"]),
            min_size=1,
            max_size=6,
        ).map("".join),
        st.text(min_size=1, max_size=12),
    )
    .map(lambda text: re.sub(r"\s", "", text))
    .filter(bool)
)
members = st.builds("{}:{}".format, st.sampled_from(PREFIXES), rests)
pipeline_names = (
    st.lists(st.sampled_from(["a", "b", "secret", "orders", "x1"]), min_size=1, max_size=4)
    .map("-".join)
    .filter(lambda name: len(name) <= 22)
)
secret_ids = st.lists(st.sampled_from(["b", "c", "secret", "B_1"]), min_size=1, max_size=4).map(
    "-".join
)
pipelines = st.dictionaries(
    pipeline_names,
    st.tuples(
        st.lists(members, max_size=4, unique=True), st.lists(secret_ids, max_size=3, unique=True)
    ),
    min_size=1,
    max_size=3,
)


def raw_config(generated: dict[str, tuple[list[str], list[str]]]) -> dict[str, Any]:
    """Stack config as `pulumi config` hands it over (keys with their namespace)."""
    return {
        "gcp:project": "acme-tasks-test",
        "gcp:region": "us-central1",
        "cloudrun-tasks:pipelines": {
            name: {
                "service": {
                    "image": IMAGE,
                    "secrets": {f"S{i}": f"{s}:latest" for i, s in enumerate(secrets)},
                },
                "enqueuers": enqueuers,
            }
            for name, (enqueuers, secrets) in generated.items()
        },
    }


def settings_of(config: dict[str, Any]) -> Any:
    return parse_settings({k.removeprefix("cloudrun-tasks:"): v for k, v in config.items()})


# The spelling rules before names were made injective: the formers names are checked against.
def former_grant(owner: str, role: str, key: str) -> str:
    role = role.removeprefix("roles/").replace(".", "-")
    return f"{owner}-{role}-{re.sub(r'[^A-Za-z0-9@._-]+', '-', key)}"


def former_names(
    generated: Mapping[str, tuple[Sequence[str], Sequence[str]]],
) -> list[tuple[str, str]]:
    """(kind, former name) of every grant whose spelling depends on config."""
    return [
        *(
            (kind, former_grant(owner, role, m))
            for name, (enqueuers, _) in generated.items()
            for m in enqueuers
            for kind, owner, role in (
                ("account", f"{name}-invoker", "roles/iam.serviceAccountUser"),
                ("queue", name, "roles/cloudtasks.enqueuer"),
            )
        ),
        *(
            ("secret", f"{name}-secret-{s}")
            for name, (_, secrets) in generated.items()
            for s in secrets
        ),
    ]


def test_generated_entries_collided_under_the_former_spelling() -> None:
    """The strategies can find what the issue reports, so the properties below can fail."""
    found = find(
        pipelines,
        lambda generated: max(Counter(former_names(generated)).values(), default=1) > 1,
        settings=settings(max_examples=5000, database=None),
    )
    assert max(Counter(former_names(found)).values()) == 2


def lossless(member: str) -> bool:
    return KEPT.fullmatch(member.partition(":")[2]) is not None


def ambiguous(pipeline: str) -> bool:
    """Whether PIPELINE-secret-S could also split as another pipeline and secret."""
    spelled = f"{pipeline}-secret-"
    return any(spelled.startswith("-secret-", i) for i in range(len(pipeline)))


@settings(max_examples=300, deadline=None, database=None)
@given(pipelines)
def test_derived_names_are_injective_and_keep_unambiguous_spellings(
    generated: dict[str, tuple[list[str], list[str]]],
) -> None:
    derived = check_names(settings_of(raw_config(generated))).derived
    per_kind = Counter((d.kind, d.name.name) for d in derived)
    assert [key for key, n in per_kind.items() if n > 1] == []
    # Per pipeline: 17 fixed names (with the dead-letter topic and subscription and the
    # runtime account's grants on them and the database), 5 alert policies and the
    # claims-lost metric, 2 grants per enqueuer, 1 per secret; per stack: the dashboard, the
    # idempotency store (component, database, TTL policy) and their components.
    entries = sum(len(e) * 2 + len(s) + 17 + 5 + 1 for e, s in generated.values()) + 5
    assert len(derived) == entries, "one name per resource and account id"
    for d in derived:
        if not d.path.startswith("pipelines."):
            assert d.name.name == d.name.former, d  # the stack's own, fixed names
            continue
        pipeline = d.path.split(".")[1]
        if ".enqueuers." in d.path:
            member = generated[pipeline][0][int(d.path.rsplit(".", 1)[1])]
            assert (d.name.name == d.name.former) is lossless(member), d
        elif d.kind == SECRET_MEMBER:
            assert (d.name.name == d.name.former) is not ambiguous(pipeline), d
        else:
            assert d.name.name == d.name.former, d
    kinds = {ACCOUNT_MEMBER: "account", QUEUE_MEMBER: "queue", SECRET_MEMBER: "secret"}
    assert sorted(
        (kinds[d.kind], d.name.former)
        for d in derived
        if ".enqueuers." in d.path or d.kind == SECRET_MEMBER
    ) == sorted(former_names(generated))


junk = st.one_of(st.text(max_size=8), members)


@settings(
    max_examples=40,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(pipelines, st.lists(junk, max_size=2))
def test_program_registers_every_name_once_or_reports_config_errors(
    generated: dict[str, tuple[list[str], list[str]]], extra: list[str]
) -> None:
    """Any members, valid or not: a ConfigError before any resource, or every grant
    registered once, under the names checked up front, aliased exactly where renamed."""
    config = raw_config(generated)
    first = next(iter(generated))
    config["cloudrun-tasks:pipelines"][first]["enqueuers"] += extra
    rec = Recording(project="cloudrun-tasks", stack="test")
    try:
        run_program(ROOT, "test", config, into=rec)
    except ConfigError:
        assert rec.resources == []
        return
    assert len({r.urn for r in rec.resources}) == len(rec.resources)
    for name, pipeline in config["cloudrun-tasks:pipelines"].items():
        check_pipeline(
            rec,
            name,
            location="us-central1",
            protect=False,
            enqueuers=pipeline["enqueuers"],
            secrets=pipeline["service"]["secrets"],
        )
    names = check_names(settings_of(config))
    assert {(d.kind, d.name.name) for d in names.derived} == registered_names(rec)
    formers = Counter((d.kind, d.name.former) for d in names.derived)
    current = {(d.kind, d.name.name) for d in names.derived}
    expected = {
        (d.kind, d.name.name): d.name.former
        for d in names.derived
        if d.kind != ACCOUNT_ID
        and d.name.former != d.name.name
        and formers[(d.kind, d.name.former)] == 1
        and (d.kind, d.name.former) not in current
    }
    assert {
        (r.type, r.name): renames(r)[0].rsplit("::", 1)[1] for r in rec.resources if renames(r)
    } == expected
