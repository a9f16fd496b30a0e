"""Every `flowers` command, used wrongly or against something that is not there: one line on
stderr, exit 2 for a usage mistake and 1 for a run-time failure, never a traceback. The
commands run as a user runs them (python -m flowers_cli.main, a real home, a real socket)."""
from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from data_fixtures import ROOT, make_modelarts_dataset
from local_fixtures import cli_env

VERSION = "00000000000000ff"
NO_AWS = {"AWS_SHARED_CREDENTIALS_FILE": "/nonexistent", "AWS_CONFIG_FILE": "/nonexistent", "AWS_EC2_METADATA_DISABLED": "true",
          "AWS_DEFAULT_REGION": "us-east-1"}


def run(home: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "flowers_cli.main", *args], cwd=ROOT, env={**cli_env(home), **NO_AWS, **(env or {})},
                          capture_output=True, text=True, timeout=timeout)


def fails(home: Path, code: int, expected: str, *args: str, **kwargs) -> subprocess.CompletedProcess:
    done = run(home, *args, **kwargs)
    lines = [line for line in done.stderr.strip().splitlines() if not line.startswith("note: ")]  # notes are not failures
    assert done.returncode == code and len(lines) == 1 and expected in lines[0], (args, done.returncode, done.stderr)
    assert "Traceback" not in done.stderr + done.stdout
    return done


@pytest.fixture
def home(tmp_path) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    return home


@pytest.fixture
def photo(tmp_path) -> Path:
    return sorted(make_modelarts_dataset(tmp_path / "photos", per_class=1).glob("*.jpg"))[0]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# usage mistakes: exit 2 -------------------------------------------------------------------------
@pytest.mark.parametrize("args", [
    ["status"], ["models"], ["approve", VERSION], ["reject", VERSION], ["rollback"], ["retrain"], ["predict", "PHOTO"],
    ["tensorboard"], ["events"], ["classify", "PHOTO"],
])
def test_a_home_that_does_not_exist_is_a_usage_error_not_a_new_home(tmp_path, photo, args):
    typo = tmp_path / "hoem"
    fails(typo, 2, f"no flowers home at {typo}", *[str(photo) if a == "PHOTO" else a for a in args], "--home", str(typo))
    assert not typo.exists()


def test_a_home_that_is_a_file(tmp_path):
    (tmp_path / "file").write_text("")
    fails(tmp_path / "file", 2, "is a file, not a flowers home", "up", "--home", str(tmp_path / "file"))


def test_up_and_push_create_their_home_and_say_so(tmp_path):
    new = tmp_path / "new-home"
    done = run(new, "push", str(make_modelarts_dataset(tmp_path / "photos", per_class=1)), "--quiet", "--home", str(new))
    assert done.returncode == 0 and f"created the flowers home {new}" in done.stderr and (new / "bucket").is_dir(), done.stderr


def test_argument_mistakes_are_one_line_with_the_command_and_its_help(home):
    done = fails(home, 2, "flowers predict: error: the following arguments are required: images (see flowers predict --help)", "predict")
    assert done.stdout == ""
    fails(home, 2, "argument --top-k: must be 1 or more, got 0", "predict", "x.jpg", "--top-k", "0")
    fails(home, 2, "flowers: error: argument command: invalid choice: 'stauts'", "stauts")


def test_up_on_a_busy_port_says_which_and_how_to_pick_another(home):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = fails(home, 2, f"port {port} is in use", "up", "--home", str(home), "--port", str(port), "--preset", "tiny_cnn")
    assert "pick another with --port N, or --port 0 for any free one" in done.stderr


def test_push_usage_mistakes(home, tmp_path):
    photos = make_modelarts_dataset(tmp_path / "photos", per_class=1)
    fails(home, 2, "--bucket takes s3://BUCKET/PREFIX/, got 'mybucket'", "push", str(photos), "--bucket", "mybucket")
    fails(home, 2, f"{tmp_path / 'nothing'} is not a folder of photos", "push", str(tmp_path / "nothing"), "--home", str(home))


def test_demo_with_photos_that_are_not_there(home, tmp_path):
    fails(home, 2, "is not a folder of photos", "demo", "--home", str(home), "--data", str(tmp_path / "nothing"))


# run-time failures: exit 1 -------------------------------------------------------------------
def test_push_to_s3_without_aws_credentials(home, tmp_path):
    photos = make_modelarts_dataset(tmp_path / "photos", per_class=1)
    fails(home, 1, "AWS: Unable to locate credentials", "push", str(photos), "--bucket", "s3://b/p/")


@pytest.mark.parametrize("args", [["status"], ["models"], ["predict", "PHOTO"], ["retrain"]])
def test_an_api_that_does_not_answer(home, photo, args):
    url = f"http://127.0.0.1:{_free_port()}/"
    done = fails(home, 1, f"cannot reach the API {url}: [Errno 111] Connection refused",
                 *[str(photo) if a == "PHOTO" else a for a in args], "--url", url)
    assert done.stdout == ""


@pytest.mark.parametrize("args, expected", [
    (["models", "--photos", VERSION], "error: not_found: "),
    (["approve", "not-a-version"], "error: bad_version: a model version is 16 hexadecimal characters"),
    (["reject", VERSION], "error: not_found: "),
    (["rollback"], "error: conflict: "),
    (["retrain"], "error: conflict: the data set is empty"),
    (["predict", "PHOTO"], "error: PHOTO: no_model: no model has been approved yet"),
    (["predict", "MISSING"], "error: MISSING: cannot read: No such file or directory"),
])
def test_the_api_says_no(home, photo, tmp_path, args, expected):
    """The API's refusals (an empty home answered in this process): its code and message, on stderr."""
    names = {"PHOTO": str(photo), "MISSING": str(tmp_path / "missing.jpg")}
    for placeholder, path in names.items():
        expected = expected.replace(placeholder, path)
    done = fails(home, 1, expected, *[names.get(a, a) for a in args], "--home", str(home))
    assert done.stdout == ""


def test_status_says_whether_the_server_runs_and_where(home):
    done = run(home, "status", "--home", str(home))
    assert done.returncode == 0 and done.stdout.startswith(f"server        not running on {home} (`flowers up` starts it)"), done


def test_tensorboard_stops_its_tensorboard_on_sigterm(home):
    """`kill` (SIGTERM) on `flowers tensorboard` stops the TensorBoard it started, not only itself."""
    port = _free_port()
    cli = subprocess.Popen([sys.executable, "-m", "flowers_cli.main", "tensorboard", "--home", str(home), "--port", str(port)],
                           cwd=ROOT, env=cli_env(home), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        children: list[int] = []
        while time.monotonic() < deadline and not children and cli.poll() is None:
            time.sleep(0.2)
            children = [int(p) for p in Path(f"/proc/{cli.pid}/task/{cli.pid}/children").read_text().split()]
        assert children, cli.communicate(timeout=10)
        cli.send_signal(signal.SIGTERM)
        assert cli.wait(30) == 128 + signal.SIGTERM
        for child in children:
            assert not Path(f"/proc/{child}").exists() or "Z" in Path(f"/proc/{child}/stat").read_text().split()[2], child
    finally:
        if cli.poll() is None:
            cli.kill()
            cli.wait(10)


def test_every_command_and_option_has_help():
    from flowers_cli.main import build_parser

    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, type(parser._subparsers._group_actions[0])))  # noqa: SLF001
    missing = []
    for name, command in commands.choices.items():
        helps = {a.help for a in commands._choices_actions if a.dest == name}  # noqa: SLF001
        if not all(helps):
            missing.append(name)
        missing += [f"{name} {a.option_strings or a.dest}" for a in command._actions if not a.help]  # noqa: SLF001
    assert missing == []
