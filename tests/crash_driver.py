"""Run ``made`` and SIGKILL it at one exact moment, for the resume tests and benchmarks/resume_check.py.

    python tests/crash_driver.py MOMENT made-arguments...

``MOMENT`` is ``step:S`` (right after the S-th optimizer step this process takes) or ``write:FILE`` /
``write:FILE@N`` (the first / N-th time a file named FILE is complete and synced under its temporary
name, before it replaces FILE). The library knows nothing of this: the driver counts steps with torch's
optimizer-step hook and catches the rename of :func:`made.io.atomic.atomic_write` at ``os.replace``.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path

from torch.optim.optimizer import register_optimizer_step_post_hook


def kill_at(moment: str) -> None:
    """Arrange for this process to SIGKILL itself at ``moment`` (see the module docstring)."""
    kind, _, target = moment.partition(":")
    target, _, nth = target.partition("@")
    count = 0

    def reached() -> None:
        nonlocal count
        count += 1
        if count == int(nth or 1):
            os.kill(os.getpid(), signal.SIGKILL)

    if kind == "step":
        steps = 0

        def after_step(*_: object) -> None:
            nonlocal steps
            steps += 1
            if steps == int(target):
                reached()

        register_optimizer_step_post_hook(after_step)
    elif kind == "write":
        replace: Callable[..., None] = os.replace

        def replace_or_die(source: str | Path, destination: str | Path, *args: object, **kwargs: object) -> None:
            if Path(destination).name == target:
                reached()
            replace(source, destination, *args, **kwargs)

        os.replace = replace_or_die
    else:
        raise SystemExit(f"crash_driver: unknown moment {moment!r} (step:S or write:FILE[@N])")


if __name__ == "__main__":
    kill_at(sys.argv[1])
    from made.cli import main

    sys.exit(main(sys.argv[2:]))
