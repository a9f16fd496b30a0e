"""flowers: train and serve a flower classifier on this machine, or drive the cloud's API.

  flowers up                  the whole pipeline locally: watch HOME/bucket, train, convert, serve
  flowers push SRC            copy labelled photos into the local bucket (or --bucket s3://...)
  flowers demo                up + push the flower photos + wait for a model + predict
  flowers status | models     what the pipeline is doing; the model versions
  flowers approve|reject VERSION, flowers rollback
  flowers predict IMAGE...    top-k labels (--url for a remote API)
  flowers tensorboard         TensorBoard on every local training run

HOME is --home, else $FLOWERS_HOME, else ~/.flowers.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"


def _say(line: str) -> None:
    print(line, flush=True)


# environment -> settings ----------------------------------------------------------------------
def configure(args: argparse.Namespace) -> Path:
    """Local-mode settings from the flags (chalicelib.settings reads them from the environment)."""
    env = os.environ
    env["FLOWERS_MODE"] = "local"
    home = Path(getattr(args, "home", None) or env.get("FLOWERS_HOME") or Path.home() / ".flowers").expanduser().resolve()
    env["FLOWERS_HOME"] = str(home)
    for flag, variable in (("port", "FLOWERS_PORT"), ("preset", "PRESET"), ("quiet_period", "QUIET_PERIOD"),
                           ("min_accuracy", "MIN_ACCURACY"), ("quantize", "FLOWERS_QUANTIZE"),
                           ("max_training_time", "MAX_TRAINING_TIME")):
        value = getattr(args, flag, None)
        if value is not None:
            env[variable] = str(value)
    extra = getattr(args, "hyperparameter", None)
    if extra:
        merged = json.loads(env.get("FLOWERS_HYPERPARAMETERS") or "{}")
        for item in extra:
            key, sep, value = item.partition("=")
            if not sep:
                raise SystemExit(f"error: -H takes key=value, got {item!r}")
            merged[key] = value
        env["FLOWERS_HYPERPARAMETERS"] = json.dumps(merged)
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


def api_for(args: argparse.Namespace):
    from flowers_cli.client import Api, running_url

    url = getattr(args, "url", None) or os.environ.get("FLOWERS_URL", "")
    if url:
        return Api(url)
    home = configure(args)
    return Api(running_url(home), home)


# up -------------------------------------------------------------------------------------------
def start_stack(args: argparse.Namespace):
    configure(args)
    seed_weights()
    from chalicelib import settings as settings_module
    from chalicelib.local.stack import AlreadyRunning, LocalStack

    try:
        stack = LocalStack(say=_say)
        stack.start()
    except (AlreadyRunning, settings_module.SettingsError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    except OSError as exc:
        print(f"error: cannot start: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    return stack


def cmd_up(args: argparse.Namespace) -> int:
    stack = start_stack(args)
    try:
        stack.wait()
    finally:
        _say("stopping (running jobs are stopped; the next `flowers up` runs them again)")
        stack.stop()
    return 0


# push -----------------------------------------------------------------------------------------
def cmd_push(args: argparse.Namespace) -> int:
    from flowers_cli.push import FolderDestination, S3Destination, push

    if args.bucket:
        destination = S3Destination(args.bucket)
    else:
        home = configure(args)
        destination = FolderDestination(home / "bucket", args.prefix or "")
    try:
        report = push(Path(args.source), destination, show_progress=not args.quiet)
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{report.copied} file(s) copied ({report.bytes / 1e6:.1f} MB), {report.unchanged} unchanged, "
          f"{len(report.bad)} not usable")
    for relative, reason in report.bad[:50]:
        print(f"  skipped {relative}: {reason}")
    if len(report.bad) > 50:
        print(f"  ... and {len(report.bad) - 50} more")
    return 0


# status, models, approve ----------------------------------------------------------------------
def _fail(answer) -> int:
    print(f"error: {answer.error}", file=sys.stderr)
    return 1


def format_status(s: dict) -> str:
    lines = []
    dataset = s.get("dataset") or {}
    lines.append(f"data set      {dataset.get('uri', '')}  version {dataset.get('version') or '-'}")
    if s.get("local"):
        lines.append(f"bucket folder {s['local']['bucket_folder']}")
    lines.append(f"pending       {s.get('pending_uploads', 0)} upload(s); last at {s.get('last_upload_at') or '-'}")
    job = s.get("running_job")
    if job:
        progress = job.get("progress") or {}
        bits = [job["stage"], job["version"]]
        if progress.get("attempt", 1) > 1:
            bits.append(f"attempt {progress['attempt']}")
        if progress.get("epoch"):
            bits.append(f"{progress.get('phase') or ''} epoch {progress['epoch']}".strip())
        bits += [f"{k}={v:.4f}" for k, v in (progress.get("metrics") or {}).items() if k in ("accuracy", "val_accuracy", "loss")]
        lines.append("running       " + "  ".join(bits))
        for earlier in progress.get("earlier_attempts") or []:
            lines.append(f"              attempt {earlier['attempt']} {earlier['status'].lower()}: {earlier['reason']}")
        if progress.get("log"):
            lines.append(f"              log: {progress['log']}")
    else:
        lines.append("running       nothing")
    nxt = s.get("next_run") or {}
    lines.append(f"next run      {nxt.get('action', '-')}: {nxt.get('reason', '')}")
    outcome = s.get("last_outcome")
    if outcome:
        status = outcome["status"] + (f" ({outcome['model_status']})" if outcome.get("model_status") else "")
        lines.append(f"last outcome  {status} {outcome['version']} at {outcome.get('at')}: {outcome.get('reason', '')}")
    if s.get("bad_photo_count"):
        lines.append(f"bad photos    {s['bad_photo_count']} skipped (checked by {s.get('bad_photos_checked_by')}):")
        for bad in s["bad_photos"][:30]:
            lines.append(f"  {bad['file']}: {bad['reason']}" + (f" ({bad['detail']})" if bad.get("detail") else ""))
    return "\n".join(lines)


def format_models(models: list[dict]) -> str:
    if not models:
        return "no models yet"
    lines = [f"{'version':16}  {'status':9}  {'test acc':>8}  {'created':25}  reason"]
    for m in models:
        accuracy = (m.get("metrics") or {}).get("test_accuracy")
        shown = f"{accuracy:.4f}" if isinstance(accuracy, (int, float)) else "-"
        lines.append(f"{m['version']:16}  {m['status']:9}  {shown:>8}  {m.get('created_at', ''):25}  {m.get('reason', '')}")
    return "\n".join(lines)


def cmd_status(args: argparse.Namespace) -> int:
    api = api_for(args)
    answer = api.get("status")
    if answer.status != 200:
        return _fail(answer)
    print(json.dumps(answer.json(), indent=2) if args.json else format_status(answer.json()))
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    answer = api_for(args).get("models")
    if answer.status != 200:
        return _fail(answer)
    models = answer.json()["models"]
    print(json.dumps(models, indent=2) if args.json else format_models(models))
    return 0


def cmd_set_status(args: argparse.Namespace) -> int:
    body = json.dumps({"reason": args.reason}).encode() if args.reason else None
    answer = api_for(args).post(f"models/{args.version}/{args.command}", body, "application/json")
    if answer.status != 200:
        return _fail(answer)
    document = answer.json()
    print(f"model {document['version']} is now {document['status']} ({document['reason']})")
    return 0


def cmd_rollback(args: argparse.Namespace) -> int:
    body = json.dumps({"reason": args.reason}).encode() if args.reason else None
    answer = api_for(args).post("models/rollback", body, "application/json")
    if answer.status != 200:
        return _fail(answer)
    document = answer.json()
    print(f"rejected {document['rejected']}; serving {document['current']}")
    return 0


# predict --------------------------------------------------------------------------------------
CONTENT_TYPES = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png", ".webp": "image/webp", ".bmp": "image/bmp"}


def predict_table(api, images: list[Path], top_k: int = 5) -> tuple[str, int]:
    lines, failures = [], 0
    for image in images:
        try:
            data = Path(image).read_bytes()
        except OSError as exc:
            lines.append(f"{image}: cannot read: {exc}")
            failures += 1
            continue
        started = time.perf_counter()
        answer = api.post(f"predict?top_k={top_k}", data, CONTENT_TYPES.get(Path(image).suffix.lower(), "application/octet-stream"))
        ms = (time.perf_counter() - started) * 1000
        if answer.status != 200:
            lines.append(f"{image}: {answer.error}")
            failures += 1
            continue
        document = answer.json()
        lines.append(f"{image}  (model {document['model']['version']}, {ms:.0f} ms)")
        for rank, p in enumerate(document["predictions"], 1):
            lines.append(f"  {rank}. {p['label']:<14} {p['score']:.3f}  {'#' * round(p['score'] * 30)}")
    return "\n".join(lines), failures


def cmd_predict(args: argparse.Namespace) -> int:
    text, failures = predict_table(api_for(args), [Path(p) for p in args.images], args.top_k)
    print(text)
    return 1 if failures else 0


# tensorboard ----------------------------------------------------------------------------------
def cmd_tensorboard(args: argparse.Namespace) -> int:
    home = configure(args)
    logdir = home / "artifacts" / "tensorboard"
    logdir.mkdir(parents=True, exist_ok=True)
    program = shutil.which("tensorboard") or str(Path(sys.executable).with_name("tensorboard"))
    if not Path(program).exists():
        print("error: TensorBoard is not installed here (pip install tensorboard)", file=sys.stderr)
        return 2
    print(f"TensorBoard on every local training run: {logdir}", flush=True)
    return subprocess.call([program, "--logdir", str(logdir), "--port", str(args.port), "--bind_all" if args.bind_all else "--host=127.0.0.1"])


# demo -----------------------------------------------------------------------------------------
def cmd_demo(args: argparse.Namespace) -> int:
    from flowers_cli import demo

    return demo.run(args)


# argument parsing -----------------------------------------------------------------------------
def _home(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--home", help="the local home (default $FLOWERS_HOME or ~/.flowers)")


def _url(parser: argparse.ArgumentParser) -> None:
    _home(parser)
    parser.add_argument("--url", help="the API's base URL (default: the `flowers up` running on the home; the cloud's API URL works too)")


def _stack_options(parser: argparse.ArgumentParser, port_default: int | None = None) -> None:
    _home(parser)
    parser.add_argument("--port", type=int, default=port_default, help="HTTP port on 127.0.0.1 (default 8000; 0 picks a free one)")
    parser.add_argument("--preset", help="mobilenet_v2 (default), resnet_v1_50 or tiny_cnn (seconds, for tries and tests)")
    parser.add_argument("--quiet-period", type=int, help="seconds without uploads before training starts (default 5)")
    parser.add_argument("--min-accuracy", type=float, help="promotion gate: lowest test accuracy approved automatically (default 0.80)")
    parser.add_argument("--quantize", choices=("auto", "fp32", "fp16", "dynamic", "int8"), help="conversion (default auto)")
    parser.add_argument("--max-training-time", type=int, help="seconds per training run (default 3600)")
    parser.add_argument("-H", "--hyperparameter", action="append", metavar="KEY=VALUE", help="extra training hyperparameter (repeatable)")
    parser.add_argument("--verbose", action="store_true", help="also print the handlers' JSON logs")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="flowers", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 1)[1])
    commands = parser.add_subparsers(dest="command", required=True)

    up = commands.add_parser("up", help="run the local pipeline and serve the API and web page (foreground)")
    _stack_options(up)
    up.set_defaults(run=cmd_up)

    push = commands.add_parser("push", help="copy a data set (folder per class, or name.jpg + name.txt) into the bucket")
    push.add_argument("source")
    _home(push)
    push.add_argument("--bucket", help="s3://BUCKET/PREFIX/: the cloud's dataset bucket instead of the local one")
    push.add_argument("--prefix", help="a sub-folder of the local bucket")
    push.add_argument("--quiet", action="store_true", help="no progress bar")
    push.set_defaults(run=cmd_push)

    status = commands.add_parser("status", help="pending uploads, the running job and its progress, last outcome, bad photos")
    _url(status)
    status.add_argument("--json", action="store_true")
    status.set_defaults(run=cmd_status)

    models = commands.add_parser("models", help="model versions, newest first")
    _url(models)
    models.add_argument("--json", action="store_true")
    models.set_defaults(run=cmd_models)

    for name, text in (("approve", "approve a model version (it is served if it is the newest approved)"),
                       ("reject", "reject a model version")):
        command = commands.add_parser(name, help=text)
        command.add_argument("version")
        command.add_argument("--reason")
        _url(command)
        command.set_defaults(run=cmd_set_status)

    rollback = commands.add_parser("rollback", help="reject the served model; the previous approved one serves again")
    rollback.add_argument("--reason")
    _url(rollback)
    rollback.set_defaults(run=cmd_rollback)

    predict = commands.add_parser("predict", help="top-k labels of photos")
    predict.add_argument("images", nargs="+")
    predict.add_argument("--top-k", type=int, default=5)
    _url(predict)
    predict.set_defaults(run=cmd_predict)

    tensorboard = commands.add_parser("tensorboard", help="TensorBoard over the local training runs")
    _home(tensorboard)
    tensorboard.add_argument("--port", type=int, default=6006)
    tensorboard.add_argument("--bind-all", action="store_true")
    tensorboard.set_defaults(run=cmd_tensorboard)

    demo = commands.add_parser("demo", help="up + push flower photos + wait for the first approved model + predictions")
    _stack_options(demo)
    demo.add_argument("--data", help="the photos (default ../shared/datasets/flower_photos, else downloaded)")
    demo.add_argument("--exit", action="store_true", help="stop after the predictions instead of serving on")
    demo.add_argument("--timeout", type=float, default=7200, help="seconds to wait for an approved model")
    demo.set_defaults(run=cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args) or 0
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
