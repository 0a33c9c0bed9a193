"""bench/cpu.py: a part's CPU is its whole process tree's, and only the time it ran."""

from __future__ import annotations

import os
import subprocess
import sys

from bench.cpu import CpuMeter

# Told to start, spins for 0.3 s of CPU, says so, then waits (idle) to be told to go.
SPIN = """
import os, sys
sys.stdin.readline()
start = os.times().user + os.times().system
while os.times().user + os.times().system < start + 0.3:
    pass
print("spun", flush=True)
sys.stdin.readline()
"""


def spawn(code: str) -> subprocess.Popen:
    return subprocess.Popen(  # noqa: S603
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )


def test_a_busy_tree_is_counted_and_an_idle_one_is_not() -> None:
    # The spinner is a grandchild of its part's root: found through the tree.
    parent = spawn(
        "import subprocess, sys\n"
        f"child = subprocess.Popen([sys.executable, '-c', {SPIN!r}], stdin=sys.stdin)\n"
        "child.wait()\n"
    )
    idle = spawn("import sys; sys.stdin.readline()")
    meter = CpuMeter({"busy": [parent.pid], "idle": [idle.pid]}, alone={"me": [os.getpid()]})
    try:
        meter.start()
        parent.stdin.write("start\n")
        parent.stdin.flush()
        assert parent.stdout.readline().strip() == "spun"
        shares = meter.stop()
    finally:
        for process in (parent, idle):
            process.communicate("go\n", timeout=30)

    used = {name: cores * shares.seconds for name, cores in shares.parts.items()}
    assert used["busy"] >= 0.29  # CPU seconds: the 0.3 s spun (a tick is 0.01 s)
    assert used["idle"] < used["busy"] / 2
    assert set(shares.parts) == {"busy", "idle", "me"}
    assert "of" in shares.describe() and "busy" in shares.describe()
