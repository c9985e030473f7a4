"""`crm dev` stops on SIGTERM whichever of its threads the signal is delivered to."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# The signal goes to a thread other than the main one (as the kernel may choose for a
# process-directed signal): Python runs the handler only when the main thread runs
# bytecode again, so `LocalCloud.wait` must not block in one endless wait.
PROGRAM = """
import signal, threading, time
from infra.local.dev import LocalCloud

cloud = LocalCloud.__new__(LocalCloud)
cloud._stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: cloud.request_stop())
started = threading.Event()

def busy_elsewhere():
    started.set()
    time.sleep(60)

other = threading.Thread(target=busy_elsewhere, daemon=True)
other.start()
started.wait()
threading.Timer(0.3, lambda: signal.pthread_kill(other.ident, signal.SIGTERM)).start()
cloud.wait()
print("stopped")
"""


def test_a_sigterm_delivered_to_another_thread_stops_the_wait() -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROGRAM], cwd=ROOT, capture_output=True, text=True, timeout=20
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "stopped"
