"""Another Python process, for tests of what one process holds against another."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def another_process_holding(setup: str, *args: str) -> Iterator[None]:
    """Runs ``setup`` (Python code; ``sys`` is imported, ``args`` are in
    ``sys.argv[1:]``) in another interpreter, which then holds what it opened
    while the ``with`` block runs, and exits cleanly when the block ends.
    """
    code = f"import sys\n{setup}\nprint('ready', flush=True)\nsys.stdin.readline()"
    other = subprocess.Popen([sys.executable, "-c", code, *args], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    try:
        assert other.stdout is not None and other.stdout.readline().strip() == "ready"
        yield
    finally:
        assert other.stdin is not None
        other.stdin.close()
        assert other.wait(timeout=60) == 0
