"""Where the main program's stacks keep their state and encrypt their secrets."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_gcp as gcp

# 90 days: rotation re-encrypts nothing; old versions keep decrypting existing stacks.
KEY_ROTATION = "7776000s"


@dataclass
class StateBackendArgs:
    project: str
    location: str
    bucket_name: str
    key_ring_name: str
    versions_kept: int
    """Noncurrent state versions kept per object: how far back a rollback of state reaches."""
    protect: bool
    depends_on: list[pulumi.Resource]
    """The APIs: children don't inherit a component's depends_on."""


class StateBackend(pulumi.ComponentResource):
    """A private, versioned GCS bucket (`gs://`) and a KMS key (`gcpkms://`).

    Versioning keeps every earlier state file, so a corrupted or lost checkpoint can be
    restored (pulumi/pulumi#2697 lost state under request bursts).
    """

    bucket: gcp.storage.Bucket
    key: gcp.kms.CryptoKey
    backend_url: str
    secrets_provider: str

    def __init__(
        self, name: str, args: StateBackendArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("cloudrun-tasks-bootstrap:index:StateBackend", name, None, opts)
        kept = pulumi.ResourceOptions(parent=self, protect=args.protect, depends_on=args.depends_on)
        self.bucket = gcp.storage.Bucket(
            f"{name}-bucket",
            project=args.project,
            name=args.bucket_name,
            location=args.location,
            uniform_bucket_level_access=True,
            public_access_prevention="enforced",
            versioning=gcp.storage.BucketVersioningArgs(enabled=True),
            # Deleting the bucket with state in it must be a deliberate, manual act.
            force_destroy=False,
            lifecycle_rules=[
                gcp.storage.BucketLifecycleRuleArgs(
                    action=gcp.storage.BucketLifecycleRuleActionArgs(type="Delete"),
                    condition=gcp.storage.BucketLifecycleRuleConditionArgs(
                        num_newer_versions=args.versions_kept, with_state="ARCHIVED"
                    ),
                )
            ],
            opts=kept,
        )
        key_ring = gcp.kms.KeyRing(
            f"{name}-keyring",
            project=args.project,
            name=args.key_ring_name,
            location=args.location,
            opts=kept,
        )
        self.key = gcp.kms.CryptoKey(
            f"{name}-key",
            name="stack-secrets",
            key_ring=key_ring.id,
            purpose="ENCRYPT_DECRYPT",
            rotation_period=KEY_ROTATION,
            # A destroyed key makes every stack secret unreadable.
            opts=kept,
        )
        self.backend_url = f"gs://{args.bucket_name}"
        self.secrets_provider = (
            f"gcpkms://projects/{args.project}/locations/{args.location}"
            f"/keyRings/{args.key_ring_name}/cryptoKeys/stack-secrets"
        )
        self.register_outputs(
            {"backendUrl": self.backend_url, "secretsProvider": self.secrets_provider}
        )
