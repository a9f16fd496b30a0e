"""training.distribute: the strategy plan."""
import pytest

from training.distribute import plan


def test_plan_single_host():
    assert plan((), "", devices=0).kind == "default"
    assert plan(("algo-1",), "algo-1", devices=1).kind == "default"
    assert plan(("algo-1",), "algo-1", devices=4).kind == "mirrored"


def test_plan_multi_host_builds_tf_config():
    p = plan(("algo-2", "algo-1"), "algo-2", devices=1)
    assert p.kind == "multi_worker" and not p.is_chief
    assert p.tf_config == {"cluster": {"worker": ["algo-1:2222", "algo-2:2222"]}, "task": {"type": "worker", "index": 1}}
    assert plan(("algo-2", "algo-1"), "algo-1", devices=0).is_chief
    with pytest.raises(ValueError):
        plan(("algo-1", "algo-2"), "algo-3", devices=0)
