"""`python -m bench`: the command line (bench.cli).

Before NumPy or torch load, bench.machine.process sets what makes timings repeat (huge pages for torch's
large buffers, OpenBLAS workers that sleep instead of spinning, an allocator that keeps freed
memory); its docstring gives the measurements behind each and how to turn it off. meta.json
records what was in effect.
"""

import sys

from bench.machine import process as steady

steady.apply()

from bench.cli import main  # noqa: E402  (after the process settings)

if __name__ == "__main__":
    sys.exit(main())
