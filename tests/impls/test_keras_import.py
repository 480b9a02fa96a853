"""TensorFlow is imported only when a Keras block is asked for (no import cost for other commands).

Runs without the [tf] extra too: importing the harness and the other backends must not pull in
tensorflow or keras, whether or not they are installed.
"""

import subprocess
import sys

CHECK = """
import sys
import bench.cli, bench.impls.prepare, bench.run.runner, bench.commands.run, bench.commands.report
import bench.commands.explain, bench.commands.validate
import tfimpl, tfimpl.numpy, tfimpl.torch, tfimpl.costs, tfimpl.loaders
loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras'))
print(loaded)
"""


def test_harness_and_other_backends_do_not_import_tensorflow():
    done = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "[]"
