"""`python -m plan.comment`: a plan's markdown diff made into a pull-request comment that fits.

GitHub refuses a comment body over 65,536 characters ("Body is too long (maximum is
65536 characters)": telia-oss/github-pr-resource#259; measured per character and per
byte in dead-claudia/github-limits#13). Counting UTF-8 bytes keeps under both. A diff
that would not fit loses its per-setting detail lines from the end, whole lines only,
and says how many it left out; the replacements, deletions, policy verdicts and
counts are always kept. The full plan and diff are in the workflow run's artifact,
which the comment links.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

LIMIT = 65_536
"""GitHub's limit on a comment body (see above), in UTF-8 bytes to be safe either way."""
DETAIL = "      "
"""How a setting's line under a changed resource starts (plan.diff): what may be left out."""


def _size(lines: list[str]) -> int:
    return len("\n".join(lines).encode("utf-8")) + 1


def fit(markdown: str, header: str, footer: str, limit: int = LIMIT) -> str:
    """HEADER, MARKDOWN and FOOTER in at most LIMIT bytes, leaving out detail lines."""
    lines = [*header.splitlines(), *markdown.splitlines(), "", *footer.splitlines()]
    if _size(lines) <= limit:
        return "\n".join(lines) + "\n"
    details = [i for i, line in enumerate(lines) if line.startswith(DETAIL)]
    dropped: set[int] = set()
    note_at = details[-1] if details else len(lines) - 1
    while details:
        dropped.add(details.pop())
        kept = [line for i, line in enumerate(lines) if i not in dropped]
        note = f"      … {len(dropped)} more changed settings: see the full diff in the artifact"
        kept.insert(note_at - len(dropped) + 1, note)
        if _size(kept) <= limit:
            return "\n".join(kept) + "\n"
    raise ValueError(
        f"even without its {len(dropped)} detail lines the comment is over {limit} bytes"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m plan.comment", description=__doc__)
    parser.add_argument("markdown", type=Path, help="a plan written with --format markdown")
    parser.add_argument("--marker", required=True, help="first line, to find the comment again")
    parser.add_argument("--link", required=True, help="where the full plan and diff are")
    parser.add_argument("--output", "-o", type=Path, required=True)
    args = parser.parse_args(argv)
    footer = f"Full plan, graph and diff: [workflow artifact]({args.link})"
    try:
        body = fit(args.markdown.read_text(encoding="utf-8"), args.marker, footer)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    args.output.write_text(body, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
