"""`python -m chalicelib.local_stack.orphan_guard PARENT_PID -- COMMAND...`: run COMMAND, dying with `flowers up`.

Linux's PR_SET_PDEATHSIG survives exec: when the `flowers up` thread that started the job
goes (kill -9 included), the kernel kills the job too, so a restarted `flowers up` never
races an orphan writing into the same folders. Elsewhere the restart kills it by pid.
"""
from __future__ import annotations

import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG = 1


def main(argv: list[str]) -> int:
    parent, separator, command = int(argv[0]), argv[1], argv[2:]
    if separator != "--" or not command:
        print("usage: python -m chalicelib.local_stack.orphan_guard PARENT_PID -- COMMAND...", file=sys.stderr)
        return 2
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass  # not Linux
    if os.getppid() != parent:
        return 75  # the parent died before we could watch it: do not start an orphan
    os.execvp(command[0], command)
    return 127


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
