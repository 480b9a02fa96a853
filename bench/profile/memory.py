"""Memory per step, in a pass of its own (memory tracking slows what it tracks).

torch: one step-wise forward under `torch.profiler.profile(profile_memory=True)`. Per step:
    allocated_bytes  what the ops inside its ranges allocated (their positive self memory),
    net_bytes        allocated - freed inside the ranges (what the step leaves behind),
on the CPU allocator, or the CUDA one for a GPU case. Summed over a stack's layers.

NumPy: memory-profiler's line-by-line mode, `memory_profiler.LineProfiler`, in this process
(no forked sampler: that one slowed the cases after it). It traces the lines of tfimpl.numpy's
attention, feed-forward, layer-norm, layer and BERT code and of the step-wise forward, and
reads the process RSS after each line: memory_lines.txt has the RSS each line adds. Tracing
follows only the calling thread, so the pass runs on one thread (BLAS and the tile pool too:
map_tiles then works in the caller). Per step, rss_growth_bytes = RSS after - RSS before. RSS
moves in pages and only when the allocator asks the OS for memory (large arrays are mmapped and
returned at once when freed), so it shows what a step keeps, not a short-lived temporary.
"""

from __future__ import annotations

import contextlib
import io
from collections import defaultdict
from typing import Callable

from bench.profile import steps_numpy
from bench.profile.timing import PREFIX
from bench.machine.threads import fixed_threads


def _allocated(event, on_gpu: bool) -> int:
    """Positive self allocations of an event and all its descendants (bytes)."""
    own = event.self_device_memory_usage if on_gpu else event.self_cpu_memory_usage
    return max(own, 0) + sum(_allocated(child, on_gpu) for child in event.cpu_children)


def torch_step_memory(forward: Callable[[Callable], object], device: str = "cpu") -> dict:
    """{step: {"allocated_bytes", "net_bytes"}} of one step-wise forward."""
    import torch
    from torch.profiler import ProfilerActivity, profile, record_function

    on_gpu = device == "cuda"
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if on_gpu else [])
    with profile(activities=activities, profile_memory=True) as prof:
        forward(lambda name: record_function(PREFIX + name))
        if on_gpu:
            torch.cuda.synchronize()
    from torch.autograd import DeviceType

    out: dict = defaultdict(lambda: {"allocated_bytes": 0, "net_bytes": 0})
    for event in prof.events():
        if not event.name.startswith(PREFIX) or event.device_type != DeviceType.CPU:
            continue                          # (a GPU also records each range on its timeline)
        step = out[event.name[len(PREFIX):]]
        step["allocated_bytes"] += _allocated(event, on_gpu)
        step["net_bytes"] += event.device_memory_usage if on_gpu else event.cpu_memory_usage
    return {name: dict(v) for name, v in out.items()}


class RssMarks:
    """marks(name) adds the RSS growth over the step to growth[name]; add() is a no-op."""
    def __init__(self):
        import psutil

        self._process = psutil.Process()
        self.growth: dict[str, int] = defaultdict(int)

    @contextlib.contextmanager
    def __call__(self, name: str):
        before = self._process.memory_info().rss
        try:
            yield
        finally:
            self.growth[name] += self._process.memory_info().rss - before

    def add(self, name: str, seconds: float) -> None:
        pass


def traced_functions() -> list:
    """tfimpl.numpy's layer code and the step-wise forward: the lines memory_lines.txt shows."""
    import importlib


    mods = {name: importlib.import_module(f"tfimpl.numpy.{name}")
            for name in ("attention", "feed_forward", "layer_norm", "layers", "bert")}
    return [mods["attention"].multi_head_attention, mods["attention"].scaled_dot_product_attention,
            mods["feed_forward"].feed_forward, mods["layer_norm"].layer_norm,
            mods["layers"].encoder_layer, mods["layers"]._sublayer, mods["bert"].bert,
            mods["bert"].bert_embeddings, steps_numpy.attention_steps, steps_numpy.mha_steps,
            steps_numpy.ffn_steps, steps_numpy.encoder_layer_steps]


def numpy_step_memory(step_forward: Callable[[object], object],
                      whole_forward: Callable[[], object]) -> dict:
    """Line-by-line RSS of tfimpl's own forward and of the step-wise one, on one thread.

    -> {"steps": {step: {"rss_growth_bytes"}}, "lines": memory-profiler's report (text)}.
    """
    from memory_profiler import LineProfiler, show_results


    profiler = LineProfiler(backend="psutil")
    for fn in traced_functions():
        profiler.add_function(fn)
    marks = RssMarks()
    with fixed_threads(1, backend="numpy"):
        profiler.enable_by_count()
        try:
            whole_forward()
            step_forward(marks)
        finally:
            profiler.disable_by_count()
    stream = io.StringIO()
    show_results(profiler, stream=stream, precision=1)
    return {"steps": {name: {"rss_growth_bytes": value} for name, value in marks.growth.items()},
            "lines": stream.getvalue()}
