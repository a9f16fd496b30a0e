"""training.distribute: real runs of both distributed modes on the CPU (the plan: tests/unit/test_distribute.py)."""
import json
import signal
import socket
import subprocess
import sys
import time

from data_fixtures import ROOT, TINY, Job


def run(cmd_env, job):
    return subprocess.Popen([sys.executable, "-m", "training.train"], env=cmd_env, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_mirrored_strategy_on_two_logical_cpus(job):
    proc = run(job.env(FLOWERS_CPU_DEVICES="2"), job)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out[-3000:]
    assert "strategy=mirrored replicas=2" in out
    meta = job.metadata()
    assert meta["training"]["strategy"] == "mirrored" and meta["training"]["replicas"] == 2
    assert (job.model / "saved_model" / "saved_model.pb").exists()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def finish_together(procs: list[subprocess.Popen], timeout: float) -> list[str]:
    """Both workers' output. A worker that has not ended by `timeout` (a collective waiting for a peer that
    died or never came) gets SIGABRT, so faulthandler prints where every thread of it stood; the test then
    fails with both workers' logs rather than a bare TimeoutExpired."""
    deadline = time.monotonic() + timeout
    outs, hung = [], []
    for i, proc in enumerate(procs):
        try:
            outs.append(proc.communicate(timeout=max(1.0, deadline - time.monotonic()))[0])
        except subprocess.TimeoutExpired:
            hung.append(i)
            proc.send_signal(signal.SIGABRT)
            outs.append(proc.communicate(timeout=60)[0])
    assert not hung, "\n\n".join(f"--- worker {i}{' (hung)' if i in hung else ''}, exit {p.returncode}:\n{out[-6000:]}"
                                   for i, (p, out) in enumerate(zip(procs, outs)))
    return outs


def test_multi_worker_on_localhost(tmp_path, colour_data):
    hosts = [f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"]
    jobs = [Job(tmp_path / f"worker{i}", colour_data).hyperparameters(**TINY) for i in range(2)]
    procs = [run(job.env(SM_HOSTS=json.dumps(hosts), SM_CURRENT_HOST=host, PYTHONFAULTHANDLER="1"), job)
             for job, host in zip(jobs, hosts)]
    outs = finish_together(procs, timeout=300)
    for p, out in zip(procs, outs):
        assert p.returncode == 0, out[-3000:]
        assert "strategy=multi_worker replicas=2" in out
    chief = jobs[sorted(hosts).index(hosts[0])]
    worker = jobs[1 - jobs.index(chief)]
    assert chief.metadata()["training"]["strategy"] == "multi_worker"
    assert not worker.model.exists()  # only the chief writes the model
