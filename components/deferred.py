"""Outputs among a component's args: checked when they resolve, with the checks and the
lines plain values get before any resource.

`checked` runs a component's check on its args through `split`: each Output at a
position that takes one (a `Spec`) is set aside and a placeholder that passes every check
takes its place, so the plain values are checked at once, before any resource, exactly as
before; an Output anywhere else is a problem of its own ("must be a plain value"). `gate`
then returns, for each Output set aside, an Output of the same value that resolves only
once the whole args, with every Output resolved in place, passed the same check again: a
bad resolved value fails the resources that would take it, with the line a plain value
would have got. In a preview an unknown value is not checked (nothing to check yet), and
neither is anything that waits for it.
"""

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import pulumi

from .inputs import ArgsError
from .settings.validation import SECRET

T = TypeVar("T")

Path = tuple[str | int, ...]
"""Where a value sits in the args: keys and list indexes, e.g. ("pipeline", "enqueuers", 0)."""

ANY = "*"
"""In a Spec's pattern: any key of a map or index of a list."""

# Fields whose keys are the user's (label, env names), not field names to camel-case.
_MAPS = frozenset({"labels", "env", "secrets", "schedules"})


@dataclass(frozen=True)
class Spec:
    """A position that takes an Output, and a placeholder checked in its stead."""

    pattern: Path
    placeholder: Callable[[Path], Any]
    """The value checked while the Output is unknown, from the Output's path: it must pass
    every check, and differ from any other placeholder where the checks want distinct
    values (members of one list)."""


def key(path: Path) -> str:
    """PATH as problem lines spell it: args.pipeline.service.maxInstances, args.labels.team."""
    parts: list[str] = []
    for index, part in enumerate(path):
        user_key = index > 0 and path[index - 1] in _MAPS
        parts.append(str(part) if isinstance(part, int) or user_key else _camel(part))
    return ".".join(["args", *parts])


def _camel(name: str) -> str:
    first, *rest = name.split("_")
    return first + "".join(part.title() for part in rest)


def _matches(pattern: Path, path: Path) -> bool:
    return len(pattern) == len(path) and all(
        p in (ANY, q) for p, q in zip(pattern, path, strict=True)
    )


def split(
    args: Mapping[str, Any], specs: Sequence[Spec], reasons: Mapping[Path, str] | None = None
) -> tuple[dict[str, Any], dict[Path, pulumi.Output[Any]], list[str]]:
    """ARGS with each Output a SPEC allows replaced by its placeholder; the Outputs by path;
    and a problem line per Output where a plain value is needed (REASONS: why, by
    pattern)."""
    outputs: dict[Path, pulumi.Output[Any]] = {}
    problems: list[str] = []

    def walk(value: Any, path: Path) -> Any:
        if isinstance(value, pulumi.Output):
            spec = next((s for s in specs if _matches(s.pattern, path)), None)
            if spec is None:
                why = next(
                    (r for p, r in (reasons or {}).items() if _matches(p, path)),
                    "it is checked before any resource",
                )
                problems.append(f"{key(path)}: must be a plain value, not an Output ({why})")
                return None
            outputs[path] = value
            return spec.placeholder(path)
        if isinstance(value, Mapping):
            return {k: walk(v, (*path, k)) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [walk(v, (*path, i)) for i, v in enumerate(value)]
        return value

    plain = {k: walk(v, (k,)) for k, v in args.items()}
    return plain, outputs, problems


def put(args: Mapping[str, Any], values: Mapping[Path, Any]) -> dict[str, Any]:
    """ARGS (as `split` returned them) with VALUES set at their paths."""

    def walk(value: Any, path: Path) -> Any:
        if path in values:
            return values[path]
        if isinstance(value, Mapping):
            return {k: walk(v, (*path, k)) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v, (*path, i)) for i, v in enumerate(value)]
        return value

    return {k: walk(v, (k,)) for k, v in args.items()}


def redact(problems: Sequence[str], secret: set[Path]) -> list[str]:
    """PROBLEMS with the value a line shows (after its last ", got ") replaced by
    [secret] where the line is about a value that came as a secret Output."""
    keys = {key(path) for path in secret}
    shown: list[str] = []
    for line in problems:
        where = line.split(":", 1)[0]
        if where in keys and ", got " in line:
            line = line.rsplit(", got ", 1)[0] + f", got {SECRET}"
        shown.append(line)
    return shown


def gate(
    outputs: Mapping[Path, pulumi.Output[Any]],
    check: Callable[[dict[Path, Any], set[Path]], None],
    together: Sequence[Sequence[Path]] = (),
) -> dict[Path, pulumi.Output[Any]]:
    """Each of OUTPUTS as an Output that resolves to its value once CHECK accepted it,
    told whether it was secret (CHECK raises otherwise, and the Output fails with its
    error). Outputs matching the patterns of one TOGETHER group are checked together, all
    resolved (rules between them); every other one on its own, the others left as
    placeholders: an Output waits for no other, so one unknown in a preview (an image
    being built) leaves the rest known (the project every resource takes, whose change
    would mean replacement).

    Each keeps its own secretness: the check's outcome is a bare "passed", unsecreted, so
    a secret label does not make the image secret too."""
    groups: dict[object, dict[Path, pulumi.Output[Any]]] = {}
    for path, output in outputs.items():
        joint = next(
            (i for i, patterns in enumerate(together) if any(_matches(p, path) for p in patterns)),
            None,
        )
        groups.setdefault(path if joint is None else joint, {})[path] = output
    return {
        path: value for group in groups.values() for path, value in _gate_one(group, check).items()
    }


def _gate_one(
    outputs: Mapping[Path, pulumi.Output[Any]],
    check: Callable[[dict[Path, Any], set[Path]], None],
) -> dict[Path, pulumi.Output[Any]]:
    paths = list(outputs)
    secret = [pulumi.Output.from_input(output.is_secret()) for output in outputs.values()]

    def checked(resolved: list[Any]) -> bool:
        values, flags = resolved[: len(paths)], resolved[len(paths) :]
        check(
            dict(zip(paths, values, strict=True)),
            {path for path, flag in zip(paths, flags, strict=True) if flag},
        )
        return True

    passed = pulumi.Output.unsecret(pulumi.Output.all(*outputs.values(), *secret).apply(checked))
    return {
        path: pulumi.Output.all(passed, output).apply(lambda both: both[1])
        for path, output in outputs.items()
    }


def checked(
    what: str,
    args: Mapping[str, object],
    specs: Sequence[Spec],
    check: Callable[[dict[str, object]], T],
    resolved_rules: Callable[[dict[str, object], Sequence[Path]], list[str]] | None = None,
    together: Sequence[Sequence[Path]] = (),
) -> tuple[T, dict[Path, pulumi.Output[Any]]]:
    """CHECK's result on ARGS, Outputs replaced by SPECS' placeholders, with every problem
    at once (an Output where a plain value is needed among them), and the Outputs gated
    on CHECK (and RESOLVED_RULES, for rules about values that came as Outputs) passing on
    ARGS with the Output resolved in place (with those of its TOGETHER group). CHECK
    raises an ArgsError."""
    plain, outputs, not_plain = split(args, specs)
    try:
        result = check(plain)
    except ArgsError as error:
        # What the check says of a refused Output's stand-in (None) is already said.
        refused = [line.split(":")[0] for line in not_plain]
        others = [
            line
            for line in error.problems
            if not any(line.split(":")[0] == key or line.startswith(key + ".") for key in refused)
        ]
        raise ArgsError(what, sorted([*others, *not_plain])) from None
    if not_plain:
        raise ArgsError(what, sorted(not_plain))

    def recheck(values: dict[Path, Any], secret: set[Path]) -> None:
        resolved = put(plain, values)
        problems: list[str] = []
        try:
            check(resolved)
        except ArgsError as error:
            problems += error.problems
        problems += resolved_rules(resolved, list(values)) if resolved_rules else []
        if problems:
            raise ArgsError(what, sorted(redact(problems, secret)))

    return result, gate(outputs, recheck, together)
