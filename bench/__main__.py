"""`python -m bench`: the command line (bench.cli.main, the same entry as the `tfbench` script:
the process settings of bench.machine.process first, then the command).

Tests: tests/machine/test_process.py.
"""

import sys

from bench.cli import main

if __name__ == "__main__":
    sys.exit(main())
