"""The machine and the process: environment, process settings, threads, matmul peak, bandwidth."""
