"""chalicelib/pipeline/domain_events.py: the same state change gives the same event id."""
from __future__ import annotations

from chalicelib.pipeline import domain_events as domain


def test_the_same_state_change_gives_the_same_id_and_another_one_another():
    first = domain.run_started("b/p/", "0123456789abcdef", "flowers-0123456789abcdef", 1, 10.0)
    again = domain.run_started("b/p/", "0123456789abcdef", "flowers-0123456789abcdef", 1, 99.0)  # redelivered later
    retry = domain.run_started("b/p/", "0123456789abcdef", "flowers-0123456789abcdef-a2", 2, 10.0)
    assert first.id == again.id != retry.id
    promoted = {domain.model_promoted("b/p/", "v2", previous, "r", 1.0).id for previous in ("v1", "v0", "")}
    assert len(promoted) == 3
    document = first.as_dict()
    assert document["type"] == "Run Started" and document["source"] == "flowers" and document["id"] == first.id
    assert document["time"] == "1970-01-01T00:00:10+00:00" and document["version"] == "0123456789abcdef"
