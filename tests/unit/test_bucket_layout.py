"""chalicelib/contract/bucket_layout.py: a name a report lists stays inside the prefix it is joined to."""
from __future__ import annotations

import pytest

from chalicelib.contract.bucket_layout import is_inside


@pytest.mark.parametrize("name, inside", [
    ("daisy/a.jpg", True), ("a.jpg", True), ("a..b/c.jpg", True),
    ("../../etc/passwd", False), ("daisy/../../x", False), ("/etc/passwd", False), ("./a.jpg", False),
    ("daisy//a.jpg", False), ("daisy\\..\\x", False), ("", False), ("daisy/", False),
])
def test_a_listed_name_is_inside_the_data_set_or_refused(name, inside):
    assert is_inside(name) is inside
