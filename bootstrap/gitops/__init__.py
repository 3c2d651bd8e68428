"""Components of the bootstrap program, one file per logical entity."""

import sys
from pathlib import Path

# The main program's settings and name rules say which accounts and secrets its stack
# names (stack_needs.py): the repository root, where Pulumi doesn't look, holds them.
_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:
    sys.path.append(_ROOT)
