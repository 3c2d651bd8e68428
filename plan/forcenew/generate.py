"""Regenerate plan/forcenew/table.json: which input of each resource type forces a replacement.

pulumi-gcp bridges terraform-provider-google-beta: the bridged provider asks Terraform for
a plan and replaces the resource when the plan says RequiresNew, which an attribute does
when its schema says `ForceNew: true`. The Pulumi schema does not carry it, so this reads
it from the provider's Go source, in a git mirror (`fetch github:hashicorp/terraform-
provider-google-beta`), at the tag pulumi-gcp pins (its `upstream` submodule), and maps
Terraform names to Pulumi input paths with the bridge's own metadata (the Pulumi type
token of each Terraform resource, and which list blocks it flattens to one object).

    python -m plan.forcenew.generate \\
        --provider /work/.mirror/hashicorp+terraform-provider-google-beta/repo \\
        --pulumi-gcp /work/.mirror/pulumi+pulumi-gcp/repo

By default it reads the release requirements.in pins (`pulumi-gcp==X`, tag vX) and the
provider tag that release's `upstream` submodule points at, so the table follows the pin;
tests/plan/test_forcenew.py fails when the pin and the table's source disagree.

The Go it reads is the SDKv2 schema literal (`map[string]*schema.Schema{...}`), nested
blocks through `Elem: &schema.Resource{...}` or a function returning one, and IAM member
resources as `tpgiamresource.ResourceIamMember(<Parent>IamSchema, ...)` (the parent's
schema plus IamMemberBaseSchema). Anything else stops the script with the resource named.
"""

from __future__ import annotations

import argparse
import datetime
import json
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TABLE = Path(__file__).with_name("table.json")
REQUIREMENTS = Path(__file__).resolve().parents[2] / "requirements.in"
DESCRIPTION = "Regenerate plan/forcenew/table.json from the provider's ForceNew schema."

# The Pulumi types the program creates. A type the program starts using that is missing
# here fails tests/plan/test_forcenew.py until it is added and the table regenerated.
TYPES = (
    "gcp:cloudrunv2/service:Service",
    "gcp:cloudrunv2/serviceIamMember:ServiceIamMember",
    "gcp:cloudscheduler/job:Job",
    "gcp:cloudtasks/queue:Queue",
    "gcp:cloudtasks/queueIamMember:QueueIamMember",
    "gcp:firestore/database:Database",
    "gcp:firestore/field:Field",
    "gcp:logging/metric:Metric",
    "gcp:monitoring/alertPolicy:AlertPolicy",
    "gcp:monitoring/dashboard:Dashboard",
    "gcp:monitoring/notificationChannel:NotificationChannel",
    "gcp:projects/iAMMember:IAMMember",
    "gcp:projects/service:Service",
    "gcp:projects/serviceIdentity:ServiceIdentity",
    "gcp:pubsub/subscription:Subscription",
    "gcp:pubsub/subscriptionIAMMember:SubscriptionIAMMember",
    "gcp:pubsub/topic:Topic",
    "gcp:pubsub/topicIAMMember:TopicIAMMember",
    "gcp:secretmanager/secretIamMember:SecretIamMember",
    "gcp:serviceaccount/account:Account",
    "gcp:serviceaccount/iAMMember:IAMMember",
    "gcp:storage/bucket:Bucket",
    "gcp:storage/bucketIAMMember:BucketIAMMember",
)


class SourceError(RuntimeError):
    """The Go source is not in a shape this script reads."""


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "--git-dir", str(repo), *args], check=True, capture_output=True, text=True
    ).stdout


def _skip_literal(text: str, i: int) -> int:
    """Index past the string, rune or comment starting at I (I itself if none does)."""
    if text.startswith("//", i):
        end = text.find("\n", i)
        return len(text) if end < 0 else end
    if text.startswith("/*", i):
        return text.index("*/", i + 2) + 2
    quote = text[i]
    if quote == "`":
        return text.index("`", i + 1) + 1
    if quote in "\"'":
        j = i + 1
        while text[j] != quote:
            j += 2 if text[j] == "\\" else 1
        return j + 1
    return i


def _closing(text: str, open_at: int) -> int:
    """Index of the brace closing the one at OPEN_AT, skipping strings and comments."""
    depth, i = 0, open_at
    while i < len(text):
        skipped = _skip_literal(text, i)
        if skipped != i:
            i = skipped
            continue
        if text[i] == "{":
            depth += 1
        elif text[i] == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    raise SourceError("unbalanced braces")


def _top_level(body: str) -> str:
    """BODY with every nested {...} and comment blanked: what is said at this level only."""
    out, i = [], 0
    while i < len(body):
        skipped = _skip_literal(body, i)
        if skipped != i:
            comment = body.startswith(("//", "/*"), i)
            out.append(" " * (skipped - i) if comment else body[i:skipped])
            i = skipped
        elif body[i] == "{":
            end = _closing(body, i)
            out.append("{" + " " * (end - i - 1) + "}")
            i = end + 1
        else:
            out.append(body[i])
            i += 1
    return "".join(out)


@dataclass
class Package:
    """The Go files of one provider package (services/<svc> or tpgiamresource)."""

    text: str
    shared: Package | None = None
    """tpgresource, whose functions some schema entries call (`DeletionPolicySchemaEntry`)."""

    def block_after(self, pattern: str) -> str:
        """The {...} body that follows the first match of PATTERN."""
        match = re.search(pattern, self.text)
        if not match:
            raise SourceError(f"not found: {pattern}")
        open_at = self.text.index("{", match.end() - 1)
        return self.text[open_at + 1 : _closing(self.text, open_at)]


def _schema_map(package: Package, body: str, where: str) -> dict[str, str]:
    """The entries `"name": {...}` of a schema map literal's BODY, name -> entry body."""
    entries: dict[str, str] = {}
    flat = _top_level(body)
    for match in re.finditer(r'"(\w+)"\s*:\s*\{', flat):
        open_at = match.end() - 1
        entries[match.group(1)] = body[open_at + 1 : _closing(body, open_at)]
    # An entry given by a function call: read the schema literal it returns, never skip it.
    for match in re.finditer(r'"(\w+)"\s*:\s*([\w.]+)\(', flat):
        name, call = match.groups()
        module, _, function = call.rpartition(".")
        source = package.shared if module == "tpgresource" else package if not module else None
        if source is None:
            raise SourceError(
                f"{where}.{name}: schema from {call}(), which this script doesn't read"
            )
        returned = source.block_after(rf"func {function}\([^)]*\) \*schema\.Schema \{{")
        ret = re.search(r"return\s*&schema\.Schema\{", _top_level(returned))
        if not ret:
            raise SourceError(f"{where}.{name}: {call}() does not return a literal")
        open_at = ret.end() - 1
        entries[name] = returned[open_at + 1 : _closing(returned, open_at)]
    if not entries and "." not in where:  # nested blocks may be empty (`avro_format {}`)
        raise SourceError(f"{where}: empty schema map")
    return entries


def _resource_schema(package: Package, resource_body: str, where: str) -> dict[str, str]:
    """The Schema map of a `schema.Resource{...}` body."""
    flat = _top_level(resource_body)
    match = re.search(r"\bSchema:\s*map\[string\]\*schema\.Schema\{", flat)
    if not match:
        raise SourceError(f"{where}: no `Schema: map[string]*schema.Schema{{...}}`")
    open_at = match.end() - 1
    return _schema_map(
        package, resource_body[open_at + 1 : _closing(resource_body, open_at)], where
    )


def _elem_schema(package: Package, entry: str, where: str) -> dict[str, str] | None:
    """The nested block's schema of an entry, None for a primitive or a primitive list."""
    flat = _top_level(entry)
    literal = re.search(r"\bElem:\s*&schema\.Resource\{", flat)
    if literal:
        open_at = literal.end() - 1
        return _resource_schema(package, entry[open_at + 1 : _closing(entry, open_at)], where)
    call = re.search(r"\bElem:\s*(\w+)\(\)", flat)
    if call:
        body = package.block_after(rf"func {call.group(1)}\(\) \*schema\.Resource \{{")
        inner = _top_level(body)
        ret = re.search(r"return\s*&schema\.Resource\{", inner)
        if not ret:
            raise SourceError(f"{where}: {call.group(1)}() does not return a literal")
        open_at = ret.end() - 1
        return _resource_schema(package, body[open_at + 1 : _closing(body, open_at)], where)
    return None


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def _pulumi_name(name: str, is_list: bool, max_items_one: bool) -> str:
    """The bridge's name for a Terraform attribute: camelCase, and a list or set of
    several items gets a plural name (`env` -> `envs`, `command` -> `commands`)."""
    camel = _camel(name)
    if is_list and not max_items_one and not camel.endswith("s"):
        camel = camel[:-1] + "ies" if camel.endswith("y") else camel + "s"
    return camel


def _walk(
    package: Package,
    schema: dict[str, str],
    meta: dict[str, Any],
    prefix: str,
    forced_above: str | None,
    where: str,
    into: dict[str, dict[str, Any]],
) -> None:
    for tf_name, entry in sorted(schema.items()):
        flat = _top_level(entry)
        kind = re.search(r"\bType:\s*schema\.(\w+)", flat)
        if not kind:
            raise SourceError(f"{where}.{tf_name}: no Type")
        is_list = kind.group(1) in ("TypeList", "TypeSet")
        field_meta = (meta.get("fields") or {}).get(tf_name, {})
        # The bridge's record wins: it keeps a block a list when MaxItems became 1 later.
        if "maxItemsOne" in field_meta:
            one = bool(field_meta["maxItemsOne"])
        else:
            one = re.search(r"\bMaxItems:\s*1\b", flat) is not None
        name = _pulumi_name(tf_name, is_list, one)
        path = f"{prefix}.{name}" if prefix else name
        computed_only = re.search(r"\bComputed:\s*true", flat) and not re.search(
            r"\b(Optional|Required):\s*true", flat
        )
        if computed_only:
            continue  # an output: the program can't set it
        own = re.search(r"\bForceNew:\s*true", flat) is not None
        forced_by = f"{where}.{tf_name}" if own else forced_above
        nested = _elem_schema(package, entry, f"{where}.{tf_name}") if is_list else None
        entry_out: dict[str, Any] = {
            "terraform": f"{where}.{tf_name}".split(".", 1)[1],
            "forceNew": forced_by is not None,
            "kind": "map" if kind.group(1) == "TypeMap" else "block" if nested else "value",
        }
        if forced_by and not own:
            entry_out["inheritedFrom"] = forced_by.split(".", 1)[1]
        into[path] = entry_out
        if nested is not None:
            child_prefix = path if one else f"{path}[]"
            _walk(
                package,
                nested,
                field_meta.get("elem", {}),
                child_prefix,
                forced_by,
                f"{where}.{tf_name}",
                into,
            )
        elif is_list and not one:
            into[f"{path}[]"] = {**entry_out, "kind": "value"}


def _package(repo: Path, tag: str, directory: str, shared: bool = True) -> Package:
    names = _git(repo, "ls-tree", "--name-only", f"{tag}:{directory}").split()
    files = [n for n in names if n.endswith(".go") and not n.endswith("_test.go")]
    text = "\n".join(_git(repo, "show", f"{tag}:{directory}/{n}") for n in files)
    helpers = _package(repo, tag, "google-beta/tpgresource", shared=False) if shared else None
    return Package(text, helpers)


def _registration(repo: Path, tag: str, tf_name: str) -> tuple[str, str]:
    """(package directory, Schema expression) of the registry entry naming TF_NAME."""
    found = _git(
        repo, "grep", "-l", "-E", f'Name:\\s*"{tf_name}",', tag, "--", "google-beta/services"
    )
    for line in found.split():
        path = line.split(":", 1)[1]
        text = _git(repo, "show", f"{tag}:{path}")
        for block in re.finditer(r"registry\.Schema\{", text):
            body = text[block.end() : _closing(text, block.end() - 1)]
            if re.search(rf'Name:\s*"{tf_name}",', body) and re.search(
                r"Type:\s*registry\.SchemaType(Resource|IAMResource)\b", body
            ):
                expr = re.search(r"\bSchema:\s*(.+?),?\n", body)
                if expr:
                    return path.rsplit("/", 1)[0], expr.group(1).strip().rstrip(",")
    raise SourceError(f"{tf_name}: no resource registration under google-beta/services")


def _iam_member(
    repo: Path, tag: str, package: Package, parent: str, where: str
) -> tuple[Package, dict[str, str]]:
    """`tpgiamresource.ResourceIamMember(PARENT, ...)`: the parent's schema plus the member's."""
    own = _schema_map(
        package, package.block_after(rf"var {parent} = map\[string\]\*schema\.Schema\{{"), where
    )
    base_pkg = _package(repo, tag, "google-beta/tpgiamresource")
    base = _schema_map(
        base_pkg,
        base_pkg.block_after(r"var IamMemberBaseSchema = map\[string\]\*schema\.Schema\{"),
        where,
    )
    return Package(package.text + base_pkg.text), {**own, **base}


IAM_MEMBER = r"tpgiamresource\.ResourceIamMember\(\s*(\w+),"


def _schema_of(repo: Path, tag: str, tf_name: str) -> tuple[Package, dict[str, str]]:
    directory, expr = _registration(repo, tag, tf_name)
    package = _package(repo, tag, directory)
    iam = re.match(IAM_MEMBER, expr)
    if iam:
        return _iam_member(repo, tag, package, iam.group(1), tf_name)
    func = re.fullmatch(r"(\w+)\(\)", expr)
    if not func:
        raise SourceError(f"{tf_name}: schema given as {expr!r}, which this script doesn't read")
    body = package.block_after(rf"func {func.group(1)}\(\) \*schema\.Resource \{{")
    iam = re.search(r"return\s*" + IAM_MEMBER, body)
    if iam:
        return _iam_member(repo, tag, package, iam.group(1), tf_name)
    ret = re.search(r"return\s*&schema\.Resource\{", _top_level(body))
    if not ret:
        raise SourceError(
            f"{tf_name}: {func.group(1)}() returns neither a literal nor an IAM member"
        )
    open_at = ret.end() - 1
    return package, _resource_schema(package, body[open_at + 1 : _closing(body, open_at)], tf_name)


def pinned_pulumi_gcp(requirements: Path = REQUIREMENTS) -> str:
    """The pulumi-gcp version the program's requirements.in pins."""
    found = re.findall(r"^pulumi-gcp==(\S+)\s*$", requirements.read_text(), re.M)
    if len(found) != 1:
        raise SourceError(f"{requirements}: no single `pulumi-gcp==VERSION` line")
    return found[0]


def upstream_tag(provider: Path, pulumi_gcp: Path, pulumi_tag: str) -> str:
    """The provider tag pulumi-gcp PULUMI_TAG's `upstream` submodule points at."""
    submodule = _git(pulumi_gcp, "ls-tree", pulumi_tag, "upstream").split()
    if not submodule:
        raise SourceError(f"pulumi-gcp {pulumi_tag} has no upstream submodule")
    tags = _git(provider, "tag", "--points-at", submodule[2]).split()
    releases = sorted(t for t in tags if re.fullmatch(r"v\d+\.\d+\.\d+", t))
    if not releases:
        raise SourceError(
            f"pulumi-gcp {pulumi_tag} pins upstream {submodule[2]}, which no tag names"
        )
    return releases[-1]


def generate(provider: Path, tag: str, pulumi_gcp: Path, pulumi_tag: str) -> dict[str, Any]:
    submodule = _git(pulumi_gcp, "ls-tree", pulumi_tag, "upstream").split()
    pinned = submodule[2] if submodule else ""
    commit = _git(provider, "rev-parse", f"{tag}^{{commit}}").strip()
    if pinned and pinned != commit:
        raise SourceError(f"pulumi-gcp {pulumi_tag} pins upstream {pinned}, not {tag} ({commit})")
    metadata = json.loads(
        _git(
            pulumi_gcp,
            "show",
            f"{pulumi_tag}:provider/cmd/pulumi-resource-gcp/bridge-metadata.json",
        )
    )["auto-aliasing"]["resources"]
    by_token = {entry["current"]: (tf, entry) for tf, entry in metadata.items()}
    types: dict[str, Any] = {}
    for token in TYPES:
        if token not in by_token:
            raise SourceError(f"{token}: not in pulumi-gcp {pulumi_tag}'s bridge metadata")
        tf_name, meta = by_token[token]
        package, schema = _schema_of(provider, tag, tf_name)
        inputs: dict[str, dict[str, Any]] = {}
        _walk(package, schema, meta, "", None, tf_name, inputs)
        types[token] = {"terraform": tf_name, "inputs": dict(sorted(inputs.items()))}
    date = _git(provider, "log", "-1", "--format=%cs", commit).strip()
    return {
        "source": {
            "repository": "https://github.com/hashicorp/terraform-provider-google-beta",
            "tag": tag,
            "commit": commit,
            "commitDate": date,
            "bridgedBy": f"pulumi-gcp {pulumi_tag} (upstream submodule), bridge-metadata.json",
            "pulumiGcp": pulumi_tag.removeprefix("v"),
            "generated": datetime.date.today().isoformat(),
            "generator": "python -m plan.forcenew.generate",
        },
        "types": types,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m plan.forcenew.generate", description=DESCRIPTION
    )
    parser.add_argument(
        "--provider", type=Path, required=True, help="terraform-provider-google-beta git mirror"
    )
    parser.add_argument("--tag", help="provider tag (default: what --pulumi-gcp-tag pins)")
    parser.add_argument("--pulumi-gcp", type=Path, required=True, help="pulumi-gcp git mirror")
    parser.add_argument("--pulumi-gcp-tag", help="default: v + requirements.in's pin")
    parser.add_argument("--output", type=Path, default=TABLE)
    args = parser.parse_args(argv)
    try:
        pulumi_tag = args.pulumi_gcp_tag or f"v{pinned_pulumi_gcp()}"
        tag = args.tag or upstream_tag(args.provider, args.pulumi_gcp, pulumi_tag)
        table = generate(args.provider, tag, args.pulumi_gcp, pulumi_tag)
    except (SourceError, subprocess.CalledProcessError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    args.output.write_text(json.dumps(table, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
