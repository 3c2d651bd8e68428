"""`python -m local.die_with_parent PID -- COMMAND...`: become COMMAND, killed when PID dies.

local.processes starts its children through this: it asks the kernel for SIGKILL on its
parent's death (PR_SET_PDEATHSIG, which execve keeps), exits if PID is already gone, then
execs COMMAND in its place. Done here, in a fresh interpreter, not in a preexec_fn: that makes
Python fork() instead of vfork(), and gRPC's fork handlers, registered once a gRPC client
exists in the starting process (the tests' clients), then abort the child now and then
("epoll_wait error: Bad file descriptor", exit -6).
"""

import os
import signal
import sys

import pyprctl

USAGE = "usage: python -m local.die_with_parent PID -- COMMAND [ARGS...]"


def die_with(parent: int | None, signum: signal.Signals) -> bool:
    """Asks for SIGNUM when this process's parent dies; False if PARENT (when given) is
    already gone, having died before that could take effect."""
    pyprctl.set_pdeathsig(signum)
    return parent is None or os.getppid() == parent


def main(argv: list[str]) -> int:
    if len(argv) < 3 or not argv[0].isdigit() or argv[1] != "--":
        print(USAGE, file=sys.stderr)
        return 2
    # SIGKILL, not SIGTERM: with the parent gone nobody would escalate a hung shutdown.
    if not die_with(int(argv[0]), signal.SIGKILL):
        return 1
    os.execvp(argv[2], argv[2:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
