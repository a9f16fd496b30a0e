"""The import graph, as grimp builds it from the source (every import, those inside functions included; imports
under `if TYPE_CHECKING:` left out, since they never run): no loops anywhere, and the rooms keep their roles."""
from __future__ import annotations

import grimp
import pytest

PACKAGES = ("chalicelib", "training", "flowers_cli")


# cache_dir=None: grimp's cache, keyed on file times, kept a removed import after a merge and failed this test
@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph(*PACKAGES, exclude_type_checking_imports=True, cache_dir=None)


def loops(graph: grimp.ImportGraph) -> list[list[str]]:
    """Every set of modules that import one another in a circle (Tarjan's strongly connected components)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for imported in sorted(graph.find_modules_directly_imported_by(module)):
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in on_stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    return found


def test_no_import_loops(graph):
    assert loops(graph) == []


def test_a_loop_is_found():
    """The check itself: two modules importing each other are reported."""
    made = grimp.ImportGraph()
    for name in ("pkg", "pkg.a", "pkg.b", "pkg.c"):
        made.add_module(name)
    made.add_import(importer="pkg.a", imported="pkg.b")
    made.add_import(importer="pkg.b", imported="pkg.a")
    made.add_import(importer="pkg.c", imported="pkg.a")
    assert loops(made) == [["pkg.a", "pkg.b"]]


def imports_of(graph: grimp.ImportGraph, package: str) -> set[tuple[str, str]]:
    return {(importer, imported) for importer in graph.find_descendants(package) | {package}
            for imported in graph.find_modules_directly_imported_by(importer)}


def test_training_imports_only_the_contract(graph):
    """The training image copies chalicelib/contract/ alone (training/Dockerfile)."""
    outside = {(a, b) for a, b in imports_of(graph, "training")
               if b.startswith("chalicelib") and not (b == "chalicelib.contract" or b.startswith("chalicelib.contract."))}
    assert outside == set()


def test_the_contract_stands_alone(graph):
    """The contract imports nothing else of the project, so training and the Lambdas can both carry it."""
    outside = {(a, b) for a, b in imports_of(graph, "chalicelib.contract")
               if b.split(".")[0] in PACKAGES and not b.startswith("chalicelib.contract")}
    assert outside == set()


def test_the_pipeline_knows_no_edge(graph):
    """Decisions and records never reach for the HTTP API, the adapters or flowers up's runtime: they talk to ports."""
    edges = ("chalicelib.api", "chalicelib.adapters", "chalicelib.local_stack", "chalicelib.services", "flowers_cli")
    reached = {(a, b) for a, b in imports_of(graph, "chalicelib.pipeline") if b.startswith(edges)}
    assert reached == set()


def test_training_calls_no_aws_api():
    """Training and conversion jobs run network-isolated (chalicelib/adapters/aws/sagemaker_jobs.py): SageMaker moves
    their inputs and outputs; the code inside never reaches for an AWS SDK (the image does not even install one)."""
    graph = grimp.build_graph(*PACKAGES, include_external_packages=True, exclude_type_checking_imports=True, cache_dir=None)
    sdk = ("boto3", "botocore", "s3transfer", "aiobotocore", "s3fs", "sagemaker")
    reached = {(a, b) for a, b in imports_of(graph, "training") if b.split(".")[0] in sdk}
    assert reached == set()
    # what the training image installs: no SDK there either
    from pathlib import Path

    requirements = (Path(__file__).resolve().parents[2] / "training" / "requirements.txt").read_text().lower()
    assert not any(line.split("==")[0].strip() in sdk for line in requirements.splitlines())


def test_the_lambdas_never_import_tensorflow():
    graph = grimp.build_graph(*PACKAGES, include_external_packages=True, exclude_type_checking_imports=True, cache_dir=None)
    heavy = {(a, b) for a, b in imports_of(graph, "chalicelib") if b.split(".")[0] in ("tensorflow", "keras")}
    assert heavy == set()
