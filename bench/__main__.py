"""`python -m bench`: the command line (bench.cli).

Before torch loads: large torch CPU buffers are backed by transparent huge pages
(THP_MEM_ALLOC_ENABLE=1, read once by torch's CPU allocator). Without it a fresh (B, H, T, T)
score matrix of tens of MB is faulted in 4 KiB page by page on every call, and whether the kernel
happens to give it huge pages anyway decided the time: torch attention at T=1344 measured 61 ms
or 41 ms from run to run on one machine. NumPy already asks for huge pages for its large arrays.
Set THP_MEM_ALLOC_ENABLE=0 to measure without; meta.json records the setting.
"""

import os
import sys

os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")

from bench.cli import main  # noqa: E402  (after the allocator setting)

if __name__ == "__main__":
    sys.exit(main())
