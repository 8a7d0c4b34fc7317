"""Keep freed memory in the process, so that large feature maps don't cost page faults on every synthesis.

Why: glibc's malloc hands every block over 32 MB (a 256x256 map of 128 channels is 33.5 MB) straight from the
operating system with mmap and gives it back on free; the next synthesis then touches fresh pages, each one a page
fault and a page of zeroes. On a 2-core CPU that was about 40% of a 256 px StyleGAN2 synthesis (NVIDIA's code
and ganedit's eager path alike: 480 ms -> 290 ms with freed memory kept). Telling malloc never to use mmap and
never to give the top of the heap back makes a freed block the next one's, already mapped. The cost: the
process keeps the memory of its largest synthesis instead of returning it between requests.

It is a setting of the whole process, so it is made only where speed was asked for (``G.optimize()`` on a CPU,
which the app and catalog building use), and only with glibc; elsewhere nothing changes.
"""

import ctypes
import logging
import threading

log = logging.getLogger("ganedit")
_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4  # glibc's mallopt parameters (malloc.h)
_lock = threading.Lock()
kept = False  # True once malloc keeps freed memory in this process


def keep_freed_memory():
    """Ask glibc's malloc to serve large blocks from the heap and keep freed memory; True when it does."""
    global kept
    with _lock:
        if not kept:
            try:
                mallopt = ctypes.CDLL(None).mallopt
            except (OSError, AttributeError):  # not glibc: its allocator's defaults stand
                return False
            mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
            kept = bool(mallopt(_M_MMAP_MAX, 0) and mallopt(_M_TRIM_THRESHOLD, 2**31 - 1))
            if not kept:
                log.warning("ganedit: malloc refused to keep freed memory; large syntheses stay slower")
    return kept
