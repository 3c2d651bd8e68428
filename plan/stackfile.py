"""Stack files (`Pulumi.<stack>.yaml`) read as the Pulumi CLI reads them, or refused.

The CLI refuses a file that is not UTF-8 or that repeats a key; it hands `secure:` values
to the program decrypted and marks their top-level key secret. Offline there is no key to
decrypt with: a secure value becomes [secret] and its key is marked secret, so nothing
downstream (plan output, errors, PR comments) can print the ciphertext or the plaintext.
YAML's own types that the CLI reads as plain strings (unquoted dates) or not at all
(`!!binary`, `!!set`) are refused with the key that holds them, never a traceback.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

# SECRET is what a `secure:` value becomes (the plan has no key to decrypt it, and must not
# print it): the same mark config errors show for values under secret keys.
from components.settings.validation import SECRET


class StackFileError(ValueError):
    """A stack file the Pulumi CLI would refuse, or that YAML reads differently from it."""


@dataclass(frozen=True)
class StackFile:
    config: dict[str, Any]
    """The `config:` map: keys as written, secure values as SECRET."""
    secret_keys: frozenset[str]
    """Top-level keys holding a secure value, as the CLI reports them to the program."""


@dataclass(frozen=True)
class _Odd:
    """A YAML value of a type the Pulumi CLI does not hand to programs as written."""

    what: str
    text: str
    line: int


class _DuplicateKey(Exception):
    def __init__(self, key: Any, line: int) -> None:
        super().__init__(f"duplicate key {key!r} (line {line}): the Pulumi CLI refuses it")


class _Loader(yaml.SafeLoader):
    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)  # type: ignore[no-untyped-call]
            if not isinstance(key, list | dict) and key in seen:
                raise _DuplicateKey(key, key_node.start_mark.line + 1)
            seen.add(key if not isinstance(key, list | dict) else id(key))
        return super().construct_mapping(node, deep)


def _odd(what: str) -> Any:
    def construct(loader: yaml.SafeLoader, node: yaml.Node) -> _Odd:
        return _Odd(what, str(node.value)[:40], node.start_mark.line + 1)

    return construct


for _tag, _what in (
    ("timestamp", "an unquoted date or time"),
    ("binary", "a !!binary value"),
    ("set", "a !!set"),
    ("omap", "a !!omap"),
    ("pairs", "a !!pairs"),
):
    _Loader.add_constructor(f"tag:yaml.org,2002:{_tag}", _odd(_what))


def _walk(value: Any, path: str) -> Iterator[tuple[str, Any]]:
    yield path, value
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _walk(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _walk(item, f"{path}[{index}]")


def _is_secure(value: Any) -> bool:
    return (
        isinstance(value, dict) and list(value) == ["secure"] and isinstance(value["secure"], str)
    )


def _hide_secure(value: Any) -> tuple[Any, bool]:
    if _is_secure(value):
        return SECRET, True
    if isinstance(value, dict):
        pairs = {key: _hide_secure(item) for key, item in value.items()}
        return {key: item for key, (item, _) in pairs.items()}, any(s for _, s in pairs.values())
    if isinstance(value, list):
        items = [_hide_secure(item) for item in value]
        return [item for item, _ in items], any(s for _, s in items)
    return value, False


def stacks(root: Path) -> list[str]:
    """The stacks of the program in ROOT: one per Pulumi.<stack>.yaml."""
    return sorted(
        p.name.removeprefix("Pulumi.").removesuffix(".yaml") for p in root.glob("Pulumi.*.yaml")
    )


def read_stack_file(path: Path) -> StackFile:
    """The `config:` map of a stack file, checked as the Pulumi CLI checks it."""
    if not path.is_file():
        # A stack's own file missing: say which stacks the program has.
        known = f" (stacks: {', '.join(stacks(path.parent)) or 'none'})"
        named = path.name.startswith("Pulumi.") and path.name.endswith(".yaml")
        raise FileNotFoundError(f"no stack file {path}{known if named else ''}")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as error:
        raise StackFileError(f"{path}: not UTF-8 (byte {error.start})") from None
    try:
        document = yaml.load(text, Loader=_Loader) or {}
    except _DuplicateKey as error:
        raise StackFileError(f"{path}: {error}") from None
    except yaml.YAMLError as error:
        where = getattr(error, "problem_mark", None)
        line = f" (line {where.line + 1})" if where else ""
        raise StackFileError(f"{path}: not valid YAML{line}") from None
    config = document.get("config") if isinstance(document, dict) else None
    if not isinstance(config, dict | None):
        raise StackFileError(f"{path}: `config:` must be a mapping of key: value")
    for key_path, value in _walk(dict(config or {}), "config"):
        if isinstance(value, _Odd):
            key = key_path.removeprefix("config.")
            raise StackFileError(
                f"{path}: {key}: {value.what} ({value.text!r}, line {value.line}) is read"
                " differently by YAML and by the Pulumi CLI: quote it to make it a string"
            )
    for key in config or {}:
        if not isinstance(key, str):
            raise StackFileError(f"{path}: config key {key!r} must be a string NAMESPACE:NAME")
    hidden = {key: _hide_secure(value) for key, value in (config or {}).items()}
    return StackFile(
        config={key: value for key, (value, _) in hidden.items()},
        secret_keys=frozenset(key for key, (_, secret) in hidden.items() if secret),
    )
