"""One module per `python -m bench` sub-command (see bench/cli.py)."""
