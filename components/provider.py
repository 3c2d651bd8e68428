"""The component provider: the package's components for programs in any language.

`pulumi package add` runs provider/__main__.py (PulumiPlugin.yaml beside it), which calls
`main`; Pulumi's analyzer infers the schema from the components' TypedDict args and
annotated outputs (pulumi.provider.experimental), and generates the consumer's SDK.
"""

from importlib import metadata

from packaging.version import InvalidVersion, Version
from pulumi import ComponentResource

from .package import AlertChannels, IdempotencyStore, ProjectApis, StackDashboard, TaskPipeline

NAME = "cloudrun-tasks"
"""The package name: type tokens are `cloudrun-tasks:index:<Component>`, as in this
repository's own stacks."""
COMPONENTS: list[type[ComponentResource]] = [
    ProjectApis,
    IdempotencyStore,
    TaskPipeline,
    AlertChannels,
    StackDashboard,
]
DISTRIBUTION = "cloudrun-tasks"


def semver(version: str) -> str:
    """The distribution's PEP 440 VERSION as the semantic version a package schema needs.

    Pulumi's binder refuses a schema whose version is not semver (pkg/codegen/schema/
    bind.go, "failed to parse semver"), and setuptools-scm's versions off a tag are PEP 440
    only: `0.1.dev261+g0a7f696c1` (no tag yet) is `0.1.0-dev.261+g0a7f696c1`,
    `0.2.1.dev3+g1234abcd.d20261207` (3 commits past v0.2.0, dirty) is
    `0.2.1-dev.3+g1234abcd.d20261207`. Semver's precedence agrees with PEP 440's: a
    development version sorts before its release. A post-release keeps its number as build
    metadata (`1.0.0+post.2`): semver has no later-than-release marker.
    """
    try:
        parsed = Version(version)
    except InvalidVersion:
        raise ValueError(f"version {version!r}: not a PEP 440 version") from None
    if parsed.epoch or len(parsed.release) > 3:
        raise ValueError(f"version {version!r}: no semver for an epoch or over 3 numbers")
    core = ".".join(str(n) for n in (*parsed.release, 0, 0)[:3])
    pre = [
        *((parsed.pre[0], str(parsed.pre[1])) if parsed.pre else ()),
        *(("dev", str(parsed.dev)) if parsed.dev is not None else ()),
    ]
    build = [
        *(("post", str(parsed.post)) if parsed.post is not None else ()),
        *(parsed.local.split(".") if parsed.local else ()),
    ]
    return core + (f"-{'.'.join(pre)}" if pre else "") + (f"+{'.'.join(build)}" if build else "")


def version() -> str:
    """The schema's version: the installed distribution's, as semver."""
    return semver(metadata.version(DISTRIBUTION))


def main() -> None:
    from pulumi.provider.experimental import component_provider_host

    component_provider_host(COMPONENTS, NAME, version=version())
