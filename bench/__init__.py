"""tfbench's harness: configs, sweeps, measurement, records, analysis.

`bench` knows how to measure and nothing about attention; what is measured lives in `tfimpl`.
"""

__version__ = "0.1.0"
