"""Entry point Pulumi runs for `--policy-pack policy`; constructing the pack serves it."""

from pulumi_policy import PolicyPack

from policies import POLICIES

PolicyPack(name="cloudrun-tasks-guardrails", policies=POLICIES)
