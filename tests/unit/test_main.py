"""flowers_cli/main.py: the README's `flowers` commands parse."""
from __future__ import annotations

from flowers_cli import main as cli


def test_the_readme_s_aws_commands_parse():
    """Each `flowers` line of the README's AWS section is valid syntax (the push example once was not)."""
    import shlex
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme[readme.index("\n## AWS"):]
    lines = [line.split("#", 1)[0].strip() for line in section.splitlines() if line.strip().startswith("flowers ")]
    assert len(lines) >= 4 and any(line.startswith("flowers push ") and "--bucket" in line for line in lines)
    for line in lines:
        args = cli.build_parser().parse_args(shlex.split(line)[1:])
        assert args.run is not None, line
    push = cli.build_parser().parse_args(shlex.split(next(l for l in lines if l.startswith("flowers push ")))[1:])
    assert push.source and push.bucket == "$DATA"
