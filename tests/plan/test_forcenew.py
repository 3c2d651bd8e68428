"""Replacements from the provider's schema: the table covers what the program uses, and
the changes the issue found unflagged are flagged with the field that forces them."""

from __future__ import annotations

import copy
import importlib
import importlib.metadata
import inspect
import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from plan import diff, document, replacement
from plan.forcenew import generate
from plan.recorder import run_program, stack_config
from tests.plan.conftest import ROOT

STACKS = sorted(
    p.name.removeprefix("Pulumi.").removesuffix(".yaml") for p in ROOT.glob("Pulumi.*.yaml")
)
MIRRORS = Path("/work/.mirror")
PROVIDER = MIRRORS / "hashicorp+terraform-provider-google-beta" / "repo"
PULUMI_GCP = MIRRORS / "pulumi+pulumi-gcp" / "repo"


def every_option_on() -> dict[str, Any]:
    """Prod's config with every optional setting the program has turned on."""
    config = copy.deepcopy(stack_config(ROOT, "prod"))
    config["cloudrun-tasks:alerts"]["emails"] = ["oncall@acme.example"]
    config["cloudrun-tasks:idempotency"] = {
        "location": "nam5",
        "database": "tasks-all",
        "ttl": "3000000s",
    }
    orders = config["cloudrun-tasks:pipelines"]["orders"]
    orders["service"]["ingress"] = "internal-and-cloud-load-balancing"
    # The app beside the handler, with both kinds of probe across the two pipelines.
    orders["service"]["app"] = {
        "image": "europe-docker.pkg.dev/acme/apps/orders@sha256:" + "cd" * 32,
        "env": {"NODE_ENV": "production"},
        "secrets": {"TOKEN": "api-token:1"},
        "startupProbe": {"path": "/healthz"},
    }
    config["cloudrun-tasks:pipelines"]["reports"]["service"]["app"] = {
        "image": "europe-docker.pkg.dev/acme/apps/reports@sha256:" + "ef" * 32,
    }
    orders["queue"]["paused"] = True
    orders["replayers"] = ["group:oncall@acme.example"]
    orders["payloads"] = {"enabled": True, "threshold": 100_000}
    orders["alerts"] = {
        "backlog": {"threshold": 500, "duration": "600s"},
        "failingAttempts": {"ratio": 0.2, "window": "900s", "duration": "600s"},
        "capacity": {"duration": "600s", "errorRatio": 0.1, "errorWindow": "600s"},
    }
    config["cloudrun-tasks:pipelines"]["reports"]["alerts"] = {"enabled": False}
    return config


def _plans() -> dict[str, dict[str, Any]]:
    plans = {stack: document.build(run_program(ROOT, stack, preview=True)) for stack in STACKS}
    plans["every-option-on"] = document.build(
        run_program(ROOT, "prod", every_option_on(), preview=True)
    )
    return plans


@pytest.fixture(scope="module")
def plans() -> dict[str, dict[str, Any]]:
    return _plans()


def test_the_table_names_its_source() -> None:
    source = replacement.table()["source"]
    assert source["repository"] == "https://github.com/hashicorp/terraform-provider-google-beta"
    assert re.fullmatch(r"v\d+\.\d+\.\d+", source["tag"])
    assert re.fullmatch(r"[0-9a-f]{40}", source["commit"])
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", source["commitDate"])
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", source["generated"])


def test_every_type_and_input_path_the_program_uses_is_in_the_table(
    plans: dict[str, dict[str, Any]],
) -> None:
    """A new resource type or input makes this fail until the table is regenerated."""
    known_types = set(replacement.table()["types"])
    unknown: set[str] = set()
    for name, plan in plans.items():
        for resource in plan["resources"].values():
            if resource["component"]:
                continue
            if resource["type"] not in known_types:
                unknown.add(f"{name}: type {resource['type']}")
                continue
            for path in diff.flatten(resource["inputs"]):
                if replacement.schema_path(resource["type"], path) is None:
                    unknown.add(f"{name}: {resource['type']} {path}")
    assert unknown == set()
    assert set(generate.TYPES) == known_types


def test_every_option_on_reaches_more_inputs_than_the_stacks(
    plans: dict[str, dict[str, Any]],
) -> None:
    def paths(plan: dict[str, Any]) -> set[str]:
        return {
            f"{r['type']} {path}"
            for r in plan["resources"].values()
            for path in diff.flatten(r["inputs"])
        }

    stacks = set().union(*(paths(plans[s]) for s in STACKS))
    assert paths(plans["every-option-on"]) - stacks


@pytest.mark.parametrize(
    ("type_", "path", "forced_by"),
    [
        ("gcp:firestore/database:Database", "locationId", "location_id"),
        ("gcp:firestore/database:Database", "name", "name"),
        ("gcp:cloudtasks/queue:Queue", "location", "location"),
        ("gcp:cloudrunv2/service:Service", "location", "location"),
        ("gcp:projects/iAMMember:IAMMember", "condition.expression", "condition.expression"),
        ("gcp:cloudtasks/queue:Queue", "rateLimits.maxDispatchesPerSecond", None),
        ("gcp:cloudrunv2/service:Service", "template.containers[0].image", None),
        ("gcp:cloudrunv2/service:Service", "template.containers[0].dependsOns[0]", None),
        (
            "gcp:cloudrunv2/service:Service",
            "template.containers[1].startupProbe.tcpSocket.port",
            None,
        ),
        ("gcp:cloudrunv2/service:Service", "labels.team", None),
        ("gcp:monitoring/dashboard:Dashboard", "dashboardJson", None),
        ("gcp:storage/bucket:Bucket", "name", "name"),
        ("gcp:storage/bucket:Bucket", "location", "location"),
        ("gcp:storage/bucket:Bucket", "lifecycleRules[0].condition.age", None),
    ],
)
def test_forcing_field(type_: str, path: str, forced_by: str | None) -> None:
    assert replacement.schema_path(type_, path) is not None
    assert replacement.forcing(type_, path) == forced_by


def test_an_unknown_path_is_not_in_the_table() -> None:
    assert replacement.schema_path("gcp:cloudtasks/queue:Queue", "rateLimits.maxBurst") is None
    assert (
        replacement.schema_path("gcp:cloudrunv2/service:Service", "template.containers[0].nope")
        is None
    )
    assert replacement.schema_path("gcp:nope/nope:Nope", "name") is None


def _dev_diff(change: dict[str, Any]) -> str:
    base = document.build(run_program(ROOT, "dev", preview=True))
    config = copy.deepcopy(stack_config(ROOT, "dev"))
    config.update(change)
    head = document.build(run_program(ROOT, "dev", config, preview=True))
    return diff.render(diff.compare(base, head), "base", "head")


def test_firestore_location_and_database_id_changes_are_replacements() -> None:
    """The issue's example: it showed `~ locationId` and '0 replaced'."""
    text = _dev_diff({"cloudrun-tasks:idempotency": {"location": "nam5", "database": "tasks-dev2"}})
    assert (
        "!! REPLACE firestore.Database idempotency: locationId (ForceNew location_id),"
        " name (ForceNew name) changed -- deleted and re-created; lost: every document"
    ) in text
    assert "0 replaced" not in text


def test_a_database_id_change_alone_is_a_replacement() -> None:
    text = _dev_diff({"cloudrun-tasks:idempotency": {"database": "tasks-dev2"}})
    assert "!! REPLACE firestore.Database idempotency: name (ForceNew name) changed" in text


def test_prod_replacements_say_pulumi_up_refuses_them() -> None:
    base = document.build(run_program(ROOT, "prod", preview=True))
    config = copy.deepcopy(stack_config(ROOT, "prod"))
    config["cloudrun-tasks:pipelines"]["orders"]["location"] = "us-east1"
    head = document.build(run_program(ROOT, "prod", config, preview=True))
    text = diff.render(diff.compare(base, head), "base", "head")
    lines = text.splitlines()
    for label in ("cloudtasks.Queue orders", "cloudrunv2.Service orders"):
        at = next(i for i, line in enumerate(lines) if line.startswith(f"!! REPLACE {label}:"))
        assert lines[at + 1].startswith("   protected: `pulumi up` refuses to delete it")


def test_abandoned_database_says_its_documents_stay() -> None:
    assert "abandoned" in replacement.lost(
        "gcp:firestore/database:Database", {"deletionPolicy": "ABANDON"}
    )
    assert "every document" in replacement.lost(
        "gcp:firestore/database:Database", {"deletionPolicy": "DELETE"}
    )


# --- the generator ------------------------------------------------------------------

GO = """
func ResourceThing() *schema.Resource {
	return &schema.Resource{
		Schema: map[string]*schema.Schema{
			"location": {
				Type:     schema.TypeString,
				Required: true,
				ForceNew: true,
				Description: `Where it is. Not "ForceNew: true" here {braces}.`,
			},
			"env": {
				Type:     schema.TypeList,
				Optional: true,
				Elem:     thingEnvSchema(),
			},
			"retry_config": {
				Type:     schema.TypeList,
				Optional: true,
				MaxItems: 1,
				ForceNew: true,
				Elem: &schema.Resource{
					Schema: map[string]*schema.Schema{
						"max_attempts": {
							Type:     schema.TypeInt,
							Optional: true, // a comment with ForceNew: true
						},
					},
				},
			},
			"labels": {Type: schema.TypeMap, Optional: true},
			"uid": {Type: schema.TypeString, Computed: true},
		},
	}
}

func thingEnvSchema() *schema.Resource {
	return &schema.Resource{
		Schema: map[string]*schema.Schema{
			"value": {Type: schema.TypeString, Optional: true},
		},
	}
}
"""


def test_the_generator_reads_force_new_nested_blocks_and_names() -> None:
    package = generate.Package(GO)
    body = package.block_after(r"func ResourceThing\(\) \*schema\.Resource \{")
    inner = body[body.index("&schema.Resource{") + len("&schema.Resource") :]
    schema = generate._resource_schema(package, inner[1 : generate._closing(inner, 0)], "t")
    inputs: dict[str, Any] = {}
    generate._walk(package, schema, {}, "", None, "t", inputs)
    assert {path: entry["forceNew"] for path, entry in inputs.items()} == {
        "location": True,
        "envs": False,
        "envs[].value": False,
        "retryConfig": True,
        "retryConfig.maxAttempts": True,  # inside a ForceNew block
        "labels": False,
    }
    assert inputs["retryConfig.maxAttempts"]["inheritedFrom"] == "retry_config"
    assert inputs["labels"]["kind"] == "map"


@pytest.mark.skipif(not PROVIDER.is_dir() or not PULUMI_GCP.is_dir(), reason="no git mirrors")
def test_the_table_is_what_the_generator_makes_of_its_source() -> None:
    committed = replacement.table()
    source = committed["source"]
    try:
        pulumi_tag = f"v{generate.pinned_pulumi_gcp()}"
        assert generate.upstream_tag(PROVIDER, PULUMI_GCP, pulumi_tag) == source["tag"]
        made = generate.generate(PROVIDER, source["tag"], PULUMI_GCP, pulumi_tag)
    except subprocess.CalledProcessError as error:
        pytest.skip(f"mirror lacks the tag: {error}")
    made["source"]["generated"] = source["generated"]
    assert json.loads(json.dumps(made)) == committed


def test_schedule_replacements_are_flagged_with_what_they_lose() -> None:
    """A job's region (its pipeline's location) and a tick metric's label type force a
    replacement; the text says what a job or a metric loses."""
    assert replacement.forcing("gcp:cloudscheduler/job:Job", "region") == "region"
    assert replacement.forcing("gcp:cloudscheduler/job:Job", "schedule") is None
    assert (
        replacement.forcing("gcp:logging/metric:Metric", "metricDescriptor.labels[0].valueType")
        == "metric_descriptor.labels.value_type"
    )
    assert replacement.forcing("gcp:logging/metric:Metric", "filter") is None
    assert "ticks due while no job exists" in replacement.lost("gcp:cloudscheduler/job:Job", {})
    assert "never counted" in replacement.lost("gcp:logging/metric:Metric", {})


# --- the table follows the pin ----------------------------------------------------------


def sdk_inputs(token: str) -> set[str]:
    """The inputs the installed pulumi-gcp SDK takes for TOKEN, as Pulumi spells them."""
    module, name = token.split(":")[1].split("/")[0], token.split(":")[2]
    args = getattr(importlib.import_module(f"pulumi_gcp.{module}"), f"{name}Args")
    params = inspect.signature(args.__init__).parameters
    return {generate._camel(p) for p in params if p not in ("self", "__self__")}


def inputs_the_table_lacks(table: dict[str, Any], sdk: Any = sdk_inputs) -> dict[str, set[str]]:
    lacking = {}
    for token, entry in table["types"].items():
        top = {key for key in entry["inputs"] if "." not in key and not key.endswith("[]")}
        if missing := sdk(token) - top:
            lacking[token] = missing
    return lacking


def test_the_table_describes_the_pinned_provider() -> None:
    """requirements.in's pin, the installed SDK and the table's source are one release."""
    source = replacement.table()["source"]
    assert source["pulumiGcp"] == generate.pinned_pulumi_gcp()
    assert importlib.metadata.version("pulumi-gcp") == source["pulumiGcp"]


def test_a_pin_the_table_does_not_describe_is_caught(tmp_path: Path) -> None:
    pinned = tmp_path / "requirements.in"
    pinned.write_text("pulumi==3.272.0\npulumi-gcp==10.2.0\n")
    assert generate.pinned_pulumi_gcp(pinned) != replacement.table()["source"]["pulumiGcp"]
    pinned.write_text("pulumi==3.272.0\n")
    with pytest.raises(generate.SourceError, match="no single"):
        generate.pinned_pulumi_gcp(pinned)


def test_every_input_of_the_installed_sdk_is_in_the_table() -> None:
    """The SDK, a judge we did not write, takes no input the table doesn't know: with
    pulumi-gcp 10.2.0 and a table of 9.35.0 this listed functionalType, sshEnabled and the
    deletionPolicy the generator used to skip (a schema entry given by a function call)."""
    assert inputs_the_table_lacks(replacement.table()) == {}


def test_an_sdk_input_the_table_lacks_is_caught() -> None:
    table = replacement.table()

    def newer(token: str) -> set[str]:
        extra = {"functionalType"} if token == "gcp:cloudrunv2/service:Service" else set()
        return sdk_inputs(token) | extra

    assert inputs_the_table_lacks(table, newer) == {
        "gcp:cloudrunv2/service:Service": {"functionalType"}
    }
