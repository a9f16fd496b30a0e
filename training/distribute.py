"""Pick the tf.distribute strategy for the job's hardware.

One host, several GPUs: MirroredStrategy. Several hosts (a SageMaker job with
InstanceCount > 1): MultiWorkerMirroredStrategy with TF_CONFIG built from SM_HOSTS.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import tensorflow as tf

DEFAULT_PORT = 2222


@dataclass(frozen=True)
class Plan:
    kind: str  # "default" | "mirrored" | "multi_worker"
    tf_config: dict | None = None

    @property
    def is_chief(self) -> bool:
        return self.tf_config is None or self.tf_config["task"]["index"] == 0


def _address(host: str) -> str:
    # SageMaker names hosts algo-1, algo-2...; an explicit host:port is kept (tests on localhost).
    return host if ":" in host else f"{host}:{DEFAULT_PORT}"


def plan(hosts: tuple[str, ...], current_host: str, devices: int) -> Plan:
    """A pure decision: `devices` is the number of GPUs (or logical devices) visible."""
    if len(hosts) > 1:
        if current_host not in hosts:
            raise ValueError(f"current host {current_host!r} is not among the job's hosts {list(hosts)}")
        workers = [_address(h) for h in sorted(hosts)]
        index = sorted(hosts).index(current_host)
        return Plan("multi_worker", {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}})
    if devices > 1:
        return Plan("mirrored")
    return Plan("default")


def make_strategy(p: Plan, devices: list[str] | None = None) -> tf.distribute.Strategy:
    import tensorflow as tf

    if p.kind == "multi_worker":
        os.environ["TF_CONFIG"] = json.dumps(p.tf_config)
        return tf.distribute.MultiWorkerMirroredStrategy()
    if p.kind == "mirrored":
        return tf.distribute.MirroredStrategy(devices=devices)
    return tf.distribute.get_strategy()


def strategy_for(hosts: tuple[str, ...], current_host: str,
                 logical_cpus: int = 0) -> tuple[Plan, tf.distribute.Strategy]:
    """Build the strategy; `logical_cpus` > 1 splits the CPU into devices (tests of MirroredStrategy).

    Only physical devices are listed before the strategy exists: touching logical devices
    would start TensorFlow's runtime, and multi-worker collectives must be set up before that.
    """
    import tensorflow as tf

    devices = None
    if logical_cpus > 1:
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * logical_cpus)
        devices = [f"/cpu:{i}" for i in range(logical_cpus)]
    count = len(devices) if devices else len(tf.config.list_physical_devices("GPU"))
    p = plan(hosts, current_host, count)
    return p, make_strategy(p, devices)
