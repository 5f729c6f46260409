"""The fast web service's heap settings give a request's big buffers back to the OS."""

import subprocess
import sys

from tests.helpers.paths import ROOT

# Threads each build and drop 12 MB buffers, as requests' images do; then the process's RSS.
PROBE = """
import sys, threading
import numpy as np
from pdserving import malloc
if sys.argv[1] == "tuned":
    malloc.for_fast_web_service()

def work():
    for _ in range(20):
        a = np.ones(12 << 20, np.uint8)
        b = np.ones(1 << 20, np.uint8)  # small ones in between, as in real requests
        del a

threads = [threading.Thread(target=work) for _ in range(8)]
[t.start() for t in threads]
[t.join() for t in threads]
print(next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmRSS")))
"""


def rss_kb(mode: str) -> int:
    out = subprocess.run([sys.executable, "-c", PROBE, mode], cwd=ROOT, capture_output=True,
                         text=True, timeout=60, check=True)
    return int(out.stdout)


def test_big_freed_buffers_go_back_to_the_os():
    default, tuned = rss_kb("default"), rss_kb("tuned")
    assert 2 * tuned < default, (default, tuned)  # glibc's defaults keep ~60-100 MB more
