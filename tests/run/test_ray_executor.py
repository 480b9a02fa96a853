"""bench.run.executors.ray_exec: cases as Ray tasks, on a real local Ray instance and a 2-node cluster.

One local instance (fake GPUs, one `bench_node`) is shared by the `TestLocal` class; the
2-node `ray.cluster_utils.Cluster` comes after it (one Ray connection per driver at a time).
The scripted prepare below is pickled by value so Ray workers need not import this file.
"""

import functools
import json
import os
import socket
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

ray = pytest.importorskip("ray")

from bench.case import Case, Measure  # noqa: E402
from bench.run.executors import make_executor  # noqa: E402
from bench.run.executors.inline import InlineExecutor  # noqa: E402
from bench.run.executors.process import ProcessExecutor  # noqa: E402
from bench.run.executors.ray_exec import (  # noqa: E402
    DEVICE_SHARE, NODE_RESOURCE, RayExecutor, capacity, require_bench_node, task_options)
from bench.impls.prepare import Prepared  # noqa: E402
from bench.run.runner import RECORD_KEYS  # noqa: E402

MEASURE = Measure(warmup=1, min_repeats=3, min_time_s=0.0, max_time_s=1.0, accuracy=False,
                  count_flops=False, measure_memory=False)
FAKE_GPUS = 2
RAY_QUIET = {"include_dashboard": False, "log_to_driver": False}


def _case(seq_len: int, device: str = "cpu") -> Case:
    return Case(impl="numpy", block="ffn", batch=1, seq_len=seq_len, d_model=16, n_heads=2,
                d_ff=32, threads=1, device=device)


# seq_len picks the behaviour of scripted_prepare
SLEEP, DIE_ONCE, HANG = 1000, 2000, 3000


def scripted_prepare(log_dir: str, case: Case) -> Prepared:
    """Log where the case ran (GPU given by Ray, pid), then behave as its seq_len says.

    SLEEP..: hold the node/GPU for 1 s (so overlaps, if the scheduling allowed any, are seen);
    DIE_ONCE..: the worker exits on the first attempt (marker file), succeeds on the retry;
    HANG: sleeps past any test timeout.
    """
    log = Path(log_dir)
    entry = {"case_id": case.case_id, "pid": os.getpid(),
             "gpus": os.environ.get("CUDA_VISIBLE_DEVICES"), "time": time.time()}
    with open(log / f"{case.case_id}.{os.getpid()}.json", "w") as fh:
        json.dump(entry, fh)
    if DIE_ONCE <= case.seq_len < HANG:
        marker = log / f"{case.case_id}.died"
        if not marker.exists():
            marker.touch()
            os._exit(1)
    if case.seq_len == HANG:
        time.sleep(120)
    if SLEEP <= case.seq_len < DIE_ONCE:
        time.sleep(1.0)
    x = np.ones((4, 4))
    return Prepared(fn=lambda: x @ x, output=lambda: x, backend="numpy", device="cpu")


def _prepare(tmp_path) -> functools.partial:
    return functools.partial(scripted_prepare, str(tmp_path))


def _gpu_log(tmp_path) -> dict:
    """case_id -> CUDA_VISIBLE_DEVICES its worker was given (last attempt)."""
    out = {}
    for path in sorted(Path(tmp_path).glob("*.json"), key=lambda p: p.stat().st_mtime):
        entry = json.loads(path.read_text())
        out[entry["case_id"]] = entry["gpus"]
    return out


def _overlap(a: dict, b: dict) -> bool:
    return a["start_time"] < b["end_time"] and b["start_time"] < a["end_time"]


@pytest.fixture(scope="module", autouse=True)
def _pickle_this_module_by_value():
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    yield
    ray.cloudpickle.unregister_pickle_by_value(sys.modules[__name__])


# ------------------------------------------------------------------------------------------
# the resource scheme (no Ray instance needed)


def test_task_options_cpu_cases_take_the_whole_node_whatever_exclusive_says():
    for exclusive in ("node", "device"):
        options = task_options(_case(8), exclusive, retries=2)
        assert options["resources"] == {NODE_RESOURCE: 1}
        assert "num_gpus" not in options and options["max_retries"] == 2
        assert options["retry_exceptions"] is False


def test_task_options_gpu_cases():
    node = task_options(_case(8, "cuda"), "node", retries=0)
    device = task_options(_case(8, "cuda"), "device", retries=0)
    assert node["num_gpus"] == device["num_gpus"] == 1
    assert node["resources"] == {NODE_RESOURCE: 1}
    assert device["resources"] == {NODE_RESOURCE: DEVICE_SHARE}


def test_a_cluster_without_bench_node_is_a_clear_error():
    with pytest.raises(ValueError, match="ray start .*--resources=.*bench_node"):
        require_bench_node({"CPU": 8.0, "GPU": 1.0})
    assert require_bench_node({NODE_RESOURCE: 2.0})[NODE_RESOURCE] == 2.0


def test_capacity():
    cluster = {NODE_RESOURCE: 3.0, "GPU": 8.0, "CPU": 64.0}
    assert capacity(cluster, "cpu", "device") == 3
    assert capacity(cluster, "cuda", "node") == 3
    assert capacity(cluster, "cuda", "device") == 8
    assert capacity({NODE_RESOURCE: 1.0}, "cuda", "device") == 0


@pytest.mark.parametrize("kwargs, match", [
    ({"exclusive": "gpu"}, "exclusive must be one of node, device"),
    ({"retries": -1}, "retries must be an integer >= 0"),
    ({"timeout_s": 0}, "timeout_s must be > 0"),
    ({"max_in_flight": 0}, "max_in_flight must be >= 1"),
])
def test_bad_options_name_the_option(kwargs, match):
    with pytest.raises(ValueError, match=match):
        RayExecutor(**kwargs)


def test_make_executor_passes_the_config_options():
    executor = make_executor("ray", address=None, exclusive="device", retries=2, timeout_s=30.0)
    assert isinstance(executor, RayExecutor)
    assert (executor.exclusive, executor.retries, executor.timeout_s) == ("device", 2, 30.0)


# ------------------------------------------------------------------------------------------
# a local instance: one node with a bench_node and fake GPUs


@pytest.fixture(scope="class")
def local_ray():
    if ray.is_initialized():
        ray.shutdown()
    ray.init(num_cpus=8, num_gpus=FAKE_GPUS, resources={NODE_RESOURCE: 1}, **RAY_QUIET)
    yield ray.get_runtime_context().get_node_id()
    ray.shutdown()


@pytest.mark.usefixtures("local_ray")
class TestLocal:

    def test_same_sweep_same_cases_and_schema_as_inline_and_process(self, local_ray):
        cases = [Case(impl="numpy", block="ffn", batch=1, seq_len=8, d_model=16, n_heads=2,
                      d_ff=32, threads=1),
                 Case(impl="torch", block="attention", batch=1, seq_len=8, d_model=16,
                      n_heads=2, d_ff=32, threads=1)]
        runs = {
            "inline": list(InlineExecutor().run(cases, MEASURE)),
            "process": list(ProcessExecutor(timeout_s=120).run(cases, MEASURE)),
            "ray": list(RayExecutor(timeout_s=120).run(cases, MEASURE)),
        }
        want = sorted(c.case_id for c in cases)
        for name, records in runs.items():
            assert sorted(r["case_id"] for r in records) == want, name
            assert all(tuple(r) == RECORD_KEYS for r in records), name
            assert [r["status"] for r in records] == ["ok", "ok"], (name, records)
            assert all(r["executor"] == name for r in records)
        for record in runs["ray"]:
            assert record["node_id"] == local_ray
            assert record["hostname"] == socket.gethostname()
            assert record["pid"] != os.getpid() and record["median_s"] > 0
        assert len({r["pid"] for r in runs["ray"]}) == 2          # a fresh worker per case
        assert all(r["node_id"] is None for r in runs["inline"] + runs["process"])

    def test_cpu_cases_own_the_node_and_gpu_cases_one_per_gpu(self, tmp_path):
        cpu = [_case(SLEEP + i) for i in range(1)]
        gpu = [_case(SLEEP + 10 + i, "cuda") for i in range(FAKE_GPUS + 1)]
        started = []
        executor = RayExecutor(prepare=_prepare(tmp_path), exclusive="device", timeout_s=120)
        records = list(executor.run(cpu + gpu, MEASURE, on_start=started.append))
        assert sorted(started, key=lambda c: c.seq_len) == cpu + gpu
        assert sorted(r["case_id"] for r in records) == sorted(c.case_id for c in cpu + gpu)
        assert all(r["status"] == "ok" for r in records), [r["status"] for r in records]
        by_id = {r["case_id"]: r for r in records}
        gpus = _gpu_log(tmp_path)
        cpu_records = [by_id[c.case_id] for c in cpu]
        gpu_records = [by_id[c.case_id] for c in gpu]
        # a CPU case shares its node with no other case
        for a in cpu_records:
            for b in records:
                if a is not b:
                    assert not _overlap(a, b), (a["case_id"], b["case_id"])
        # each GPU case had exactly one GPU, and no two cases on one GPU at once
        assert all(gpus[r["case_id"]] in {str(i) for i in range(FAKE_GPUS)} for r in gpu_records)
        assert all(gpus[r["case_id"]] is None for r in cpu_records)
        for i, a in enumerate(gpu_records):
            for b in gpu_records[i + 1:]:
                if gpus[a["case_id"]] == gpus[b["case_id"]]:
                    assert not _overlap(a, b)
        # and device exclusivity did let GPU cases run side by side
        assert any(_overlap(a, b) for i, a in enumerate(gpu_records) for b in gpu_records[i + 1:])

    def test_a_worker_dying_once_is_retried_and_recorded_once(self, tmp_path):
        case = _case(DIE_ONCE)
        records = list(RayExecutor(prepare=_prepare(tmp_path), retries=1,
                                   timeout_s=120).run([case], MEASURE))
        assert len(records) == 1
        (record,) = records
        assert record["status"] == "ok" and record["case_id"] == case.case_id
        assert (tmp_path / f"{case.case_id}.died").exists()
        attempts = list(tmp_path.glob(f"{case.case_id}.*.json"))
        assert len(attempts) == 2                                 # two workers, one record
        assert record["pid"] in {int(p.name.split(".")[1]) for p in attempts}

    def test_a_worker_dying_without_retries_is_one_failed_record(self, tmp_path):
        case = _case(DIE_ONCE + 1)
        records = list(RayExecutor(prepare=_prepare(tmp_path), retries=0,
                                   timeout_s=120).run([case], MEASURE))
        assert len(records) == 1
        (failed,) = records
        assert failed["case_id"] == case.case_id
        assert failed["status"].startswith("failed: worker died (")
        assert "after 1 attempt(s)" in failed["status"]
        assert tuple(failed) == RECORD_KEYS and failed["median_s"] is None
        assert failed["executor"] == "ray" and failed["end_time"] >= failed["start_time"]

    def test_a_case_past_its_timeout_is_failed_by_the_worker(self, tmp_path):
        start = time.monotonic()
        (record,) = RayExecutor(prepare=_prepare(tmp_path), timeout_s=2.0).run(
            [_case(HANG)], MEASURE)
        assert record["status"] == "failed: timeout after 2 s"
        assert record["executor"] == "ray" and record["node_id"] is not None
        assert time.monotonic() - start < 60

    def test_closing_early_cancels_what_is_in_flight(self, tmp_path):
        # device-exclusive GPU cases run side by side: the HANG case is still in flight when
        # the driver closes the generator after the first record (what it does on Ctrl-C)
        hang = _case(HANG, "cuda")
        records = RayExecutor(prepare=_prepare(tmp_path), exclusive="device",
                              timeout_s=120).run([_case(8, "cuda"), hang], MEASURE)
        assert next(records)["status"] == "ok"
        deadline = time.monotonic() + 60
        while not list(tmp_path.glob(f"{hang.case_id}.*.json")):
            assert time.monotonic() < deadline, "the second case never started"
            time.sleep(0.2)
        records.close()
        while ray.available_resources().get("GPU", 0) < FAKE_GPUS:
            assert time.monotonic() < deadline, ray.available_resources()
            time.sleep(0.2)

    def test_the_local_instance_offers_bench_node(self):
        assert RayExecutor().check_cluster()[NODE_RESOURCE] == 1


# ------------------------------------------------------------------------------------------
# a real 2-node cluster on this machine


@pytest.fixture
def two_nodes():
    from ray.cluster_utils import Cluster

    if ray.is_initialized():
        ray.shutdown()
    cluster = Cluster(initialize_head=True,
                      head_node_args={"num_cpus": 2, "resources": {NODE_RESOURCE: 1}})
    worker = cluster.add_node(num_cpus=2, resources={NODE_RESOURCE: 1})
    ray.init(address=cluster.address, **RAY_QUIET)
    cluster.wait_for_nodes()
    yield cluster, worker
    ray.shutdown()
    cluster.shutdown()


@pytest.mark.slow
def test_two_nodes_both_used_and_a_node_lost_mid_case_is_retried_once(two_nodes, tmp_path):
    cluster, worker = two_nodes
    cases = [_case(50 + i) for i in range(2)]
    records = RayExecutor(prepare=functools.partial(_slow_prepare, str(tmp_path)), retries=2,
                          timeout_s=120).run(cases, MEASURE)
    got = []
    driver = threading.Thread(target=lambda: got.extend(records))
    driver.start()
    # node-exclusive: the two cases start at once, one on each node ...
    deadline = time.monotonic() + 90
    while len(list(tmp_path.glob("*.json"))) < 2:
        assert time.monotonic() < deadline, "the cases did not both start"
        time.sleep(0.2)
    first_nodes = {json.loads(p.read_text())["node_id"] for p in tmp_path.glob("*.json")}
    assert first_nodes == {cluster.head_node.node_id, worker.node_id}
    # ... then the worker node goes away mid-case: its case is retried on the head node
    cluster.remove_node(worker, allow_graceful=False)
    driver.join(timeout=120)
    assert not driver.is_alive()
    assert sorted(r["case_id"] for r in got) == sorted(c.case_id for c in cases)
    assert [r["status"] for r in got] == ["ok", "ok"]
    assert {r["node_id"] for r in got} == {cluster.head_node.node_id}
    assert len(list(tmp_path.glob("*.json"))) == 3              # 2 starts + 1 retry
    for i, a in enumerate(got):                                   # one at a time on the head
        for b in got[i + 1:]:
            assert not _overlap(a, b)


def _slow_prepare(log_dir: str, case: Case) -> Prepared:
    """Log the Ray node, then hold it 3 s: long enough to lose the node mid-case."""
    entry = {"case_id": case.case_id, "pid": os.getpid(),
             "node_id": ray.get_runtime_context().get_node_id()}
    with open(Path(log_dir) / f"{case.case_id}.{os.getpid()}.json", "w") as fh:
        json.dump(entry, fh)
    time.sleep(4.0)
    x = np.ones((4, 4))
    return Prepared(fn=lambda: x @ x, output=lambda: x, backend="numpy", device="cpu")
