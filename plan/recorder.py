"""Run a Pulumi program offline under mocks and record every resource it registers.

The mock monitor records what `MockResourceArgs` leaves out (parent, dependencies,
protect), so tests, the offline plan and the policy pack all see the resource graph
the engine would see. No Pulumi CLI, no network, no credentials.

Resource outputs the cloud computes (emails, URLs, auto-generated names) are
fabricated deterministically, in the shapes Google returns, so a test can follow a
value from one resource into another. With `preview=True` they stay unknown instead,
as in `pulumi preview`.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import gc
import hashlib
import json
import runpy
import sys
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import yaml
from pulumi.output import Unknown
from pulumi.runtime import mocks, rpc, settings
from pulumi.runtime import resource as sdk_resource
from pulumi.runtime.proto import resource_pb2, source_pb2
from pulumi.runtime.sync_await import _ensure_event_loop, _sync_await

from plan.stackfile import SECRET, read_stack_file

UNKNOWN = "<unknown until deployed>"
"""Stands in for values only a real deployment knows (preview mode)."""

# Types whose `name` Pulumi auto-generates (logical name + random suffix) when unset.
AUTONAMED = frozenset(
    {
        "gcp:cloudtasks/queue:Queue",
        "gcp:cloudrunv2/service:Service",
        "gcp:pubsub/topic:Topic",
        "gcp:pubsub/subscription:Subscription",
    }
)


@dataclass(frozen=True)
class RecordedResource:
    type: str
    name: str
    urn: str
    parent: str
    """Parent URN; the stack's URN for top-level resources."""
    dependencies: tuple[str, ...]
    """URNs this resource waits for (explicit depends_on and input dependencies)."""
    property_dependencies: Mapping[str, tuple[str, ...]]
    protect: bool
    custom: bool
    """False for component resources."""
    aliases: tuple[str, ...]
    """URNs its aliases name: where it was before a rename or a move to a new parent."""
    inputs: Mapping[str, Any]
    """Inputs as the engine sees them (camelCase); unknowns are UNKNOWN."""
    outputs: Mapping[str, Any]


@dataclass
class Recording:
    project: str
    stack: str
    resources: list[RecordedResource] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)
    """Stack outputs; unknowns are UNKNOWN."""

    def of_type(self, type_: str) -> list[RecordedResource]:
        return [r for r in self.resources if r.type == type_]

    def one(self, type_: str, name: str) -> RecordedResource:
        found = [r for r in self.resources if r.type == type_ and r.name == name]
        if len(found) != 1:
            raise LookupError(f"expected one {type_} named {name!r}, found {len(found)}")
        return found[0]

    def children(self, parent: RecordedResource) -> list[RecordedResource]:
        return [r for r in self.resources if r.parent == parent.urn]


def _plain(value: Any) -> Any:
    """Replace Pulumi's unknown sentinel with UNKNOWN and secrets with SECRET, recursively."""
    if isinstance(value, Unknown) or value == rpc.UNKNOWN:
        return UNKNOWN
    if isinstance(value, dict) and value.get(rpc._special_sig_key) == rpc._special_secret_sig:
        return SECRET
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _digest(text: str, length: int) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def project_number(project: str) -> str:
    """A stable fake project number for a project id."""
    return str(int(_digest(project, 10), 16) % 10**12).zfill(12)


class CloudMocks(pulumi.runtime.Mocks):
    """Answers registrations with the outputs Google would compute, in their real shapes."""

    def __init__(self, preview: bool) -> None:
        self.preview = preview

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        state = dict(args.inputs)
        if args.typ in AUTONAMED and "name" not in state:
            # What the provider's auto-naming does at check time, so known in preview too.
            state["name"] = f"{args.name}-{_digest(args.typ + args.name, 7)}"
        if not self.preview:
            state.update(self._computed(args.typ, state))
        return f"{args.name}-id", state

    @staticmethod
    def _computed(type_: str, state: dict[str, Any]) -> dict[str, Any]:
        project = state.get("project", "project")
        if type_ == "gcp:serviceaccount/account:Account":
            email = f"{state['accountId']}@{project}.iam.gserviceaccount.com"
            return {
                "email": email,
                "member": f"serviceAccount:{email}",
                "name": f"projects/{project}/serviceAccounts/{email}",
            }
        if type_ == "gcp:projects/serviceIdentity:ServiceIdentity":
            agent = state["service"].split(".")[0]
            email = f"service-{project_number(project)}@gcp-sa-{agent}.iam.gserviceaccount.com"
            return {"email": email, "member": f"serviceAccount:{email}"}
        if type_ == "docker-build:index:Image":
            # A pushed build: its digest, and ref = the first tag with that digest.
            digest = f"sha256:{_digest(json.dumps(state, sort_keys=True, default=str), 64)}"
            return {"digest": digest, "ref": f"{state['tags'][0]}@{digest}"}
        if type_ == "gcp:cloudrunv2/service:Service":
            url = f"https://{state['name']}-{project_number(project)}.{state['location']}.run.app"
            return {"uri": url, "urls": [url]}
        return {}

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[Any]]:
        raise NotImplementedError(f"the program made an invoke ({args.token}); none is mocked")


class RecordingMonitor(mocks.MockMonitor):
    """A mock monitor that keeps every registration request, which carries the graph.

    It answers RegisterResource as MockMonitor does, but without pumping the event loop
    (MockMonitor serializes the state with `_sync_await`), so the SDK's calls can run
    inline on the loop's thread; see `_lean_sdk`.
    """

    def __init__(self, cloud_mocks: CloudMocks, recording: Recording) -> None:
        super().__init__(cloud_mocks)
        self.cloud = cloud_mocks
        self.recording = recording
        self.stack_urn = ""

    def RegisterResource(self, request: Any) -> Any:
        urn = self.make_urn(request.parent, request.type, request.name)
        if request.type == "pulumi:pulumi:Stack":
            self.stack_urn = urn
            return resource_pb2.RegisterResourceResponse(urn=urn)
        # MockMonitor deserializes without keep_unknowns, but in preview the SDK keeps
        # unknowns anyway and outside it there are none: one deserialization serves both.
        inputs = rpc.deserialize_properties(request.object, keep_unknowns=True)
        recorded_inputs = _plain(inputs)
        id_, state = self.cloud.new_resource(
            mocks.MockResourceArgs(
                typ=request.type,
                name=request.name,
                inputs=inputs,
                provider=request.provider,
                resource_id=request.importId,
                custom=request.custom,
                transforms=mocks._resolve_callbacks(request.transforms),
            )
        )
        self.resources[urn] = mocks.MockMonitor.ResourceRegistration(urn, id_, state)
        response = resource_pb2.RegisterResourceResponse(
            urn=urn, id=id_, object=_serialize_plain(state)
        )
        self.recording.resources.append(
            RecordedResource(
                type=request.type,
                name=request.name,
                urn=urn,
                parent=request.parent,
                dependencies=tuple(request.dependencies),
                property_dependencies={
                    key: tuple(deps.urns) for key, deps in request.propertyDependencies.items()
                },
                protect=bool(request.protect),
                custom=bool(request.custom),
                aliases=self._former_urns(request),
                inputs=recorded_inputs,
                outputs=_plain(rpc.deserialize_properties(response.object, keep_unknowns=True)),
            )
        )
        return response

    def _former_urns(self, request: Any) -> tuple[str, ...]:
        """Each alias as the URN this monitor gave the resource where it was before.

        An alias spec names only what changed (name, type, parent); the rest is the
        resource's own. Aliases to another stack or project match nothing in this plan.
        """
        here = (settings.get_stack(), settings.get_project())
        urns: set[str | None] = set()
        for alias in [*request.aliasURNs, *request.aliases]:
            if isinstance(alias, str) or alias.WhichOneof("alias") == "urn":
                urns.add(_as_mock_urn(alias if isinstance(alias, str) else alias.urn, here))
                continue
            spec = alias.spec
            if (spec.stack or here[0], spec.project or here[1]) == here:
                parent = self.stack_urn if spec.noParent else spec.parentUrn or request.parent
                name, type_ = spec.name or request.name, spec.type or request.type
                urns.add(self.make_urn(parent, type_, name))
        return tuple(sorted(urn for urn in urns if urn))


def _as_mock_urn(urn: str, here: tuple[str, str]) -> str | None:
    """URN as this monitor spells it: `Parent$Type::name`, with only the parent's own
    type, and the stack as the parent of top-level resources (the engine writes full
    type chains and leaves the stack out). None for another stack or project."""
    stack, project, chain, name = urn.removeprefix("urn:pulumi:").split("::", 3)
    if (stack, project) != here:
        return None
    types = ["pulumi:pulumi:Stack", *chain.split("$")]
    return f"urn:pulumi:{stack}::{project}::{types[-2]}${types[-1]}::{name}"


def _serialize_plain(state: dict[str, Any]) -> Any:
    """`rpc.serialize_properties` of plain values, without an event loop.

    Its coroutine only suspends to await Outputs and futures; mock states hold neither.
    """
    serializing = rpc.serialize_properties(state, {})
    try:
        serializing.send(None)
    except StopIteration as done:
        return done.value
    serializing.close()
    raise TypeError("a mock resource state must hold plain values, not Outputs or futures")


class _InlineExecutor(concurrent.futures.ThreadPoolExecutor):
    """Runs each call at once on the calling thread (asyncio takes only ThreadPoolExecutors)."""

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> concurrent.futures.Future[Any]:
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as error:  # raised in the awaiting coroutine, as from a thread
            future.set_exception(error)
        return future


def stack_config(program_dir: Path, stack: str) -> dict[str, Any]:
    """The `config:` map of Pulumi.<stack>.yaml, secure values as SECRET."""
    return read_stack_file(program_dir / f"Pulumi.{stack}.yaml").config


def _as_config_text(value: Any) -> str:
    """How the Pulumi CLI hands config to a program: strings as is, the rest as JSON text."""
    return value if isinstance(value, str) else json.dumps(value)


def _resolve_exports() -> dict[str, Any]:
    root = settings.get_root_resource()
    exported: dict[str, Any] = getattr(root, "outputs", {}) or {}
    struct = _sync_await(rpc.serialize_properties(exported, {}))
    return _plain(rpc.deserialize_properties(struct, keep_unknowns=True)) or {}


@contextlib.contextmanager
def _lean_sdk() -> Iterator[None]:
    """Skip work whose result nothing here reads; it is most of a large stack's run time.

    - The SDK captures a Python stack trace per resource, for the engine to show source
      positions; mocks discard it. It costs about a tenth of the run.
    - A run allocates hundreds of thousands of objects (Outputs, futures), which set off
      full garbage collections of an ever larger heap: time grew faster than the number
      of pipelines. The collector is off for the run only. Afterwards the run's objects
      join the oldest generation unscanned (freeze, then unfreeze): re-enabling the
      collector would otherwise scan them all at once, for half a second at 100 pipelines.
    - The SDK sends each call to the engine from a thread pool, so as not to block the
      event loop on gRPC. The mock monitor answers in microseconds from memory: the
      handoffs between threads cost more than the calls. They run inline for the run.
    """
    capture = sdk_resource._get_stack_trace
    collecting = gc.isenabled()
    loop = _ensure_event_loop()
    executor = getattr(loop, "_default_executor", None)  # asyncio has no getter
    sdk_resource._get_stack_trace = source_pb2.StackTrace
    gc.disable()
    loop.set_default_executor(_InlineExecutor())
    try:
        yield
    finally:
        setattr(loop, "_default_executor", executor)  # noqa: B010 no public way back
        sdk_resource._get_stack_trace = capture
        gc.freeze()
        gc.unfreeze()
        if collecting:
            gc.enable()


def run_program(
    program_dir: Path,
    stack: str,
    config: Mapping[str, Any] | None = None,
    *,
    secret_keys: Collection[str] = (),
    preview: bool = False,
    into: Recording | None = None,
) -> Recording:
    """Run PROGRAM_DIR/__main__.py for STACK under mocks and return what it registered.

    `config` replaces the stack file's config (keys like "gcp:project"), with
    `secret_keys` the keys Pulumi would hold as secrets (`--secret`). Errors the
    program raises (a ConfigError for bad config) propagate unchanged; pass `into` to
    see what was registered before the error.
    """
    program_dir = program_dir.resolve()
    project = yaml.safe_load((program_dir / "Pulumi.yaml").read_text())["name"]
    if config is None:
        stack_file = read_stack_file(program_dir / f"Pulumi.{stack}.yaml")
        values, secret_keys = stack_file.config, stack_file.secret_keys
    else:
        values = dict(config)
    recording = into if into is not None else Recording(project=project, stack=stack)
    cloud = CloudMocks(preview=preview)

    settings.reset_options(project=project, stack=stack, preview=preview)
    pulumi.runtime.set_all_config(
        {k: _as_config_text(v) for k, v in values.items()}, secret_keys=list(secret_keys)
    )
    pulumi.runtime.set_mocks(
        cloud,
        project=project,
        stack=stack,
        preview=preview,
        monitor=RecordingMonitor(cloud, recording),
    )

    # The exports are read once the run is over (every Output resolved by then), not
    # awaited as one Output: lifting a nested dict of hundreds of Outputs into a single
    # Output costs a tenth of a large stack's run.
    @mocks.test
    def execute() -> None:
        runpy.run_path(str(program_dir / "__main__.py"), run_name="__main__")

    sys.path.insert(0, str(program_dir))
    try:
        with _lean_sdk():
            execute()
    finally:
        sys.path.remove(str(program_dir))
    recording.outputs = _resolve_exports()
    return recording
