"""MkDocs hook: Mermaid's script, from the npm lock in docs/mermaid, served with the site.

Material for MkDocs renders `mermaid` blocks with a global `mermaid` when a page has one
(extra_javascript), and otherwise fetches it from a CDN, which fails offline and then stops
the page's other scripts, search included. `make docs` installs it (`make mermaid`).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

SCRIPT = Path(__file__).resolve().parent / "mermaid/node_modules/mermaid/dist/mermaid.min.js"
SERVED = "assets/javascripts/mermaid.min.js"


def on_pre_build(**_: Any) -> None:
    if not SCRIPT.is_file():
        raise FileNotFoundError(f"{SCRIPT} is missing: run `make mermaid` (or `make docs`)")


def on_post_build(config: Any, **_: Any) -> None:
    target = Path(config["site_dir"]) / SERVED
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(SCRIPT, target)
