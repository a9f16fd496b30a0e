"""The Lambda zip the stack deploys (Chalice's deployment package, staged into the cloud assembly) holds
exactly the locked Lambda set, requirements.txt: the same packages at the same versions, wheels Lambda's
python3.11 (glibc 2.26) can load, and no file that neither a locked wheel nor the app brought."""
from __future__ import annotations

import csv
import io
import json
import re
import zipfile
from pathlib import Path

import pytest

from lock_files import LAMBDA_LOCK, canonical, read_lock
from test_infra import STACK, cdk_out  # noqa: F401  (fixture)

APP_FILES = re.compile(r"^(app\.py|chalicelib/.*|chalice/.*)$")  # the app, and the runtime chalice adds


@pytest.fixture(scope="module")
def lambda_zip(cdk_out) -> zipfile.ZipFile:  # noqa: F811
    assets = json.loads((cdk_out / f"{STACK}.assets.json").read_text())
    (source,) = [a["source"] for a in assets["files"].values() if a["displayName"] == "Chalice/ChaliceAppCode"]
    return zipfile.ZipFile(Path(cdk_out) / source["path"])


def _dist_infos(archive: zipfile.ZipFile) -> set[str]:
    return {name.split("/")[0] for name in archive.namelist() if name.split("/")[0].endswith(".dist-info")}


def test_the_lambda_zip_holds_exactly_the_locked_set(lambda_zip):
    shipped = {}
    for dist_info in _dist_infos(lambda_zip):
        name, version = dist_info.removesuffix(".dist-info").rsplit("-", 1)
        shipped[canonical(name)] = version
    locked = {name: entry.version for name, entry in read_lock(LAMBDA_LOCK).items()}
    assert shipped == locked


def test_every_file_in_the_zip_comes_from_a_locked_wheel_or_the_app(lambda_zip):
    names = set(lambda_zip.namelist())
    recorded = set()
    for dist_info in _dist_infos(lambda_zip):
        rows = csv.reader(io.TextIOWrapper(lambda_zip.open(f"{dist_info}/RECORD")))
        recorded |= {row[0] for row in rows if row}
    assert recorded <= names, sorted(recorded - names)[:5]
    assert not [name for name in names - recorded if not APP_FILES.match(name)]
    assert "app.py" in names and any(name.startswith("chalicelib/") for name in names)


def test_every_wheel_in_the_zip_loads_on_lambdas_python_3_11(lambda_zip):
    for dist_info in _dist_infos(lambda_zip):
        tags = [line.split(": ", 1)[1] for line in lambda_zip.read(f"{dist_info}/WHEEL").decode().splitlines()
                if line.startswith("Tag: ")]
        assert tags, dist_info
        for tag in tags:
            python, abi, platform = tag.split("-")
            if platform == "any":
                assert abi == "none", tag
                continue
            assert (python, abi) == ("cp311", "cp311"), f"{dist_info}: {tag}"
            glibc = re.fullmatch(r"manylinux_2_(\d+)_x86_64|manylinux(2014)_x86_64", platform)
            assert glibc and (glibc.group(2) or int(glibc.group(1)) <= 26), f"{dist_info}: {tag}"


def test_chalices_pip_fetches_hash_checked_wheels_for_the_platforms_its_packager_accepts():
    """Were the first pass to fetch a wheel chalice finds unfit (a manylinux_2_28 one, say, as pip picks
    on a newer machine), chalice would fetch another by bare name, without hashes."""
    from chalice.deploy.packager import DependencyBuilder
    from chalice.utils import OSUtils
    from flowers_infra.chalice_app import LAMBDA_PIP_ENVIRONMENT

    assert LAMBDA_PIP_ENVIRONMENT["PIP_PLATFORM"].split() == DependencyBuilder(OSUtils())._get_pip_platforms("cp311")
    assert LAMBDA_PIP_ENVIRONMENT["PIP_REQUIRE_HASHES"] == "1" and LAMBDA_PIP_ENVIRONMENT["PIP_ONLY_BINARY"] == ":all:"
    assert (LAMBDA_PIP_ENVIRONMENT["PIP_PYTHON_VERSION"], LAMBDA_PIP_ENVIRONMENT["PIP_ABI"]) == ("3.11", "cp311")
