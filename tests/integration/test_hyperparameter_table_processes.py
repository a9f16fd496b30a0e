"""The hyperparameter table (tests/unit/test_hyperparameter_table.py) in fresh processes: the README rewritten by
`python -m chalicelib.contract.hyperparameters --write`, and no heavy import for the Lambdas."""
from __future__ import annotations

import json
import subprocess
import sys

from chalicelib.contract import hyperparameters as table
from data_fixtures import ROOT


def test_the_readme_table_has_a_row_per_hyperparameter_and_is_rewritten_in_place(tmp_path):
    rows = table.readme_table().splitlines()
    assert rows[0] == table.README_HEADER and [r.split("|")[1].strip(" `") for r in rows[2:]] == list(table.BY_NAME)
    assert "| `epochs` | `6` | an integer from 0 to 1000 | fine-tuning epochs (0: head only) |" in rows
    stale = tmp_path / "README.md"
    stale.write_text("intro\n\n| hyperparameter | default | meaning |\n| --- | --- | --- |\n| `epochs` | 5 | old |\n\nafter\n")
    done = subprocess.run([sys.executable, "-m", "chalicelib.contract.hyperparameters", "--write", str(stale)], cwd=ROOT)
    assert done.returncode == 0
    assert stale.read_text() == "intro\n\n" + table.readme_table() + "\nafter\n"
    printed = subprocess.run([sys.executable, "-m", "chalicelib.contract.hyperparameters", "--readme"], cwd=ROOT,
                             capture_output=True, text=True, check=True)
    assert printed.stdout == table.readme_table()


def test_no_heavy_imports():
    """The Lambdas import the table: no TensorFlow, no NumPy."""
    code = ("import sys, chalicelib.contract.hyperparameters, chalicelib.contract.warm_start; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', 'numpy', 'training')))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert json.loads(done.stdout.replace("'", '"')) == []
