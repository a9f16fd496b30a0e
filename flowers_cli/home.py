"""The local home: local-mode settings from the CLI's flags, offline weights, and starting `flowers up`."""
from __future__ import annotations

import argparse
import errno
import json
import os
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from chalicelib import settings
from chalicelib.contract.vocabulary import Mode
from flowers_cli.errors import UsageError

if TYPE_CHECKING:
    from chalicelib.local_stack.stack import LocalStack

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
# The flags of `flowers up` (and demo) that set the setting of the same name (chalicelib/settings.py).
SETTING_FLAGS = ("port", "preset", "quiet_period", "min_accuracy", "min_test_images", "quantize", "max_training_time")


def say(line: str) -> None:
    print(line, flush=True)


def configure(args: argparse.Namespace, create: bool = False) -> Path:
    """Local-mode settings from the flags (chalicelib.settings reads them from the environment).

    The home must exist unless `create` (`flowers up`, `push`, `demo`): a typo in --home would
    otherwise answer from a new, empty home as if the pipeline had nothing."""
    env = os.environ
    home = Path(getattr(args, "home", None) or env.get(settings.variable("home")) or Path.home() / ".flowers").expanduser().resolve()
    if home.exists() and not home.is_dir():
        raise UsageError(f"{home} is a file, not a flowers home (--home or $FLOWERS_HOME names a folder)")
    if not home.is_dir():
        if not create:
            raise UsageError(f"no flowers home at {home} (a typo in --home or $FLOWERS_HOME? `flowers up` or `flowers push` creates one)")
        home.mkdir(parents=True)
        print(f"created the flowers home {home}", file=sys.stderr, flush=True)
    flags = {flag: getattr(args, flag, None) for flag in SETTING_FLAGS}
    env.update(settings.environment({"mode": Mode.LOCAL, "home": home, **{k: v for k, v in flags.items() if v is not None}}))
    extra = getattr(args, "hyperparameter", None)
    if extra:
        variable = settings.variable("extra_hyperparameters")
        merged = json.loads(env.get(variable) or "{}")
        for item in extra:
            key, sep, value = item.partition("=")
            if not sep:
                raise SystemExit(f"error: -H takes key=value, got {item!r}")
            merged[key] = value
        env[variable] = json.dumps(merged)
    if not getattr(args, "verbose", False):
        env.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
    env.setdefault("POWERTOOLS_METRICS_DISABLED", "true")  # no CloudWatch here: no EMF lines on the console
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from chalicelib import services

    services.reset()
    return home


def keras_models_dir() -> Path:
    return Path(os.environ.get("KERAS_HOME") or Path.home() / ".keras") / "models"


def seed_weights() -> None:
    """../shared/weights seeds the Keras cache (what `make weights` does), so ImageNet weights load offline."""
    source = SHARED / "weights"
    if not source.is_dir():
        return
    target = keras_models_dir()
    for weights in source.glob("*.h5"):
        if not (target / weights.name).exists():
            target.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(weights, target / weights.name)


def start_stack(args: argparse.Namespace) -> LocalStack:
    configure(args, create=True)
    seed_weights()
    from chalicelib.local_stack.stack import AlreadyRunning, LocalStack

    stack = None
    try:
        stack = LocalStack(say=say)
        stack.start()
    except (AlreadyRunning, settings.SettingsError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            port = stack.settings.port if stack else os.environ.get(settings.variable("port"), settings.Settings.port)
            print(f"error: port {port} is in use (another `flowers up`, or another program): "
                  f"pick another with --port N, or --port 0 for any free one", file=sys.stderr)
        else:
            print(f"error: cannot start: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    return stack
