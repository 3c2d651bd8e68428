"""The README and the documentation site's pages, as their sources: what the tests read."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
README = ROOT / "README.md"


def pages() -> list[Path]:
    """The README and every page of the site (placeholders of other pages included); not
    docs/mermaid/, where `npm ci` puts Mermaid's packages and their READMEs."""
    return [README, *sorted(p for p in DOCS.rglob("*.md") if "mermaid" not in p.parts)]


def text(page: str) -> str:
    """A page by its path under docs/ ("configuration.md"), or "README.md"."""
    path = README if page == "README.md" else DOCS / page
    return path.read_text(encoding="utf-8")


def blocks(source: str, language: str) -> list[str]:
    """The fenced blocks of one language in a page's source."""
    return re.findall(rf"^```{language}\n(.*?)^```", source, flags=re.M | re.S)


def block_commands(source: str) -> list[str]:
    """Each command of a page's sh blocks: continuation lines joined, comments cut."""
    found = []
    for block in blocks(source, "sh"):
        for line in block.replace("\\\n", " ").splitlines():
            command = line.split(" #", 1)[0].strip()
            if command and not command.startswith("#"):
                found.append(command)
    return found


def snippet(name: str) -> str:
    """A section of the README that the site includes (`--8<-- "README.md:NAME"`)."""
    source = text("README.md")
    start = f"<!-- --8<-- [start:{name}] -->\n"
    return source[source.index(start) + len(start) : source.index(f"<!-- --8<-- [end:{name}]")]
