"""The component provider: the package's components for programs in any language.

`pulumi package add` runs provider/__main__.py (PulumiPlugin.yaml beside it), which calls
`main`; Pulumi's analyzer infers the schema from the components' TypedDict args and
annotated outputs (pulumi.provider.experimental), and generates the consumer's SDK.
"""

from importlib import metadata

from pulumi import ComponentResource

from .package import AlertChannels, IdempotencyStore, ProjectApis, TaskPipeline

NAME = "cloudrun-tasks"
"""The package name: type tokens are `cloudrun-tasks:index:<Component>`, as in this
repository's own stacks."""
COMPONENTS: list[type[ComponentResource]] = [
    ProjectApis,
    IdempotencyStore,
    TaskPipeline,
    AlertChannels,
]
DISTRIBUTION = "cloudrun-tasks"


def main() -> None:
    from pulumi.provider.experimental import component_provider_host

    component_provider_host(COMPONENTS, NAME, version=metadata.version(DISTRIBUTION))
