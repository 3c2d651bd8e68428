"""`python -m plan.pin_image`: pin a stack file's handler image to one digest.

The image workflow (.github/workflows/image.yml) builds `handler/` once, pushes it and
runs `--image REPOSITORY@sha256:DIGEST` on Pulumi.dev.yaml; promotion
(.github/workflows/promote.yml) runs `--from Pulumi.dev.yaml` (or staging's) on the next
stack's file: the digest the earlier stage runs, copied, never rebuilt. Each opens a pull
request with the result, which goes through the offline plan and the previews.

Every `image:` of the file whose repository is the image's (any tag or digest it had) is
rewritten to `REPOSITORY@DIGEST`; nothing else changes, comments included. A file that
names the repository nowhere, an image that is not pinned by a digest, or a source file
whose pipelines run different digests of it is refused, naming the file.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from docker_image.reference import InvalidReference, Reference

IMAGE_LINE = re.compile(
    r"^(?P<lead>\s*image:\s*)(?P<quote>[\"']?)(?P<ref>[^\s\"'#]+)(?P=quote)(?P<tail>\s*(?:#.*)?)$"
)
DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


class PinError(ValueError):
    """The stack file or image can't be pinned as asked."""


def _parts(reference: str) -> tuple[str, str | None]:
    """(repository, digest or None) of an image reference, as distribution/reference reads it."""
    try:
        parsed = Reference.parse(reference)
    except InvalidReference as error:
        raise PinError(f"{reference!r} is not an image reference: {error}") from None
    return parsed["name"], parsed["digest"]


def pinned(image: str) -> tuple[str, str]:
    """(repository, digest) of IMAGE, which must be REPOSITORY@sha256:<64 hex>."""
    repository, digest = _parts(image)
    if digest is None or not DIGEST.fullmatch(str(digest)) or str(digest)[7:] == "0" * 64:
        raise PinError(f"{image!r} is not pinned by a real digest (REPOSITORY@sha256:<64 hex>)")
    return repository, str(digest)


def digest_in(text: str, repository: str, where: str) -> str:
    """The one digest the stack file TEXT runs REPOSITORY at."""
    digests = set()
    for line in text.splitlines():
        match = IMAGE_LINE.match(line)
        if match and _parts(match["ref"])[0] == repository:
            digest = _parts(match["ref"])[1]
            digests.add(str(digest) if digest else "(no digest)")
    if len(digests) != 1 or "(no digest)" in digests:
        found = ", ".join(sorted(digests)) or "no image of it"
        raise PinError(f"{where}: {repository} must run at one digest to promote, found {found}")
    return digests.pop()


def pin(text: str, image: str, where: str) -> str:
    """TEXT with every image of IMAGE's repository pinned to IMAGE's digest."""
    repository, digest = pinned(image)
    lines, changed = [], 0
    for line in text.splitlines(keepends=True):
        body = line.rstrip("\r\n")
        match = IMAGE_LINE.match(body)
        if match and _parts(match["ref"])[0] == repository:
            quote = match["quote"]
            body = f"{match['lead']}{quote}{repository}@{digest}{quote}{match['tail']}"
            changed += 1
        lines.append(body + line[len(line.rstrip("\r\n")) :])
    if not changed:
        raise PinError(f"{where}: no `image:` of {repository} to pin")
    return "".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m plan.pin_image", description=__doc__)
    parser.add_argument("stack_file", type=Path, help="the Pulumi.<stack>.yaml to change")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--image", help="REPOSITORY@sha256:DIGEST, as the build pushed it")
    source.add_argument("--from", dest="from_file", type=Path, help="copy its digest")
    parser.add_argument("--repository", help="with --from: the image's repository")
    args = parser.parse_args(argv)
    try:
        text = args.stack_file.read_text(encoding="utf-8")
        image = args.image
        if args.from_file is not None:
            if not args.repository:
                raise PinError("--from needs --repository")
            earlier = args.from_file.read_text(encoding="utf-8")
            image = f"{args.repository}@{digest_in(earlier, args.repository, str(args.from_file))}"
        args.stack_file.write_text(pin(text, image, str(args.stack_file)), encoding="utf-8")
    except (OSError, PinError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"{args.stack_file}: {image}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
