"""flowers: train and serve a flower classifier on this machine, or drive the cloud's API.

  flowers up                  the whole pipeline locally: watch HOME/bucket, train, convert, serve
  flowers push SRC            copy labelled photos into the local bucket (or --bucket s3://...)
  flowers demo                up + push the flower photos + wait for a model + predict
  flowers status | models     what the pipeline is doing; the model versions
  flowers models VERSION      one model's precision, recall and F1 per class, its most confused classes
  flowers models --photos V   the files model V was trained on (its run's manifest)
  flowers approve|reject VERSION, flowers rollback, flowers retrain [--full]
  flowers predict IMAGE...    top-k labels (--url for a remote API)
  flowers tensorboard         TensorBoard on every local training run
  flowers events [--follow]   runs started / failed, models registered / promoted / rolled back
  flowers classify DIR        every photo's labels as JSON lines (--bucket s3://B/classify/: in the cloud)
  flowers restore VERSION     put back the photos run VERSION trained on, from its manifest (--stack: in the cloud)
  flowers keys create|list|revoke   the deployed API's keys, one per client, each with its own usage plan (--stack)

HOME is --home, else $FLOWERS_HOME, else ~/.flowers.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import warnings
from pathlib import Path
from types import FrameType
from typing import Any, NoReturn

from chalicelib.contract.training_job import PRESET_NAMES
from chalicelib.contract.vocabulary import Action, Quantization, StartKind
from chalicelib.settings import LOCAL_DEFAULTS, QUANTIZE_MODES
from flowers_cli import demo, keys
from flowers_cli.client import Answer, Api, CloudError, region_of, running_url
from flowers_cli.errors import RUNTIME, USAGE, UsageError, describe
from flowers_cli.home import configure, say, start_stack
from flowers_cli.output import format_model, format_models, format_photos, format_server, format_status, predict_table


def api_for(args: argparse.Namespace) -> Api:
    url = getattr(args, "url", None) or os.environ.get("FLOWERS_URL", "")
    api_key = getattr(args, "api_key", None) or os.environ.get("FLOWERS_API_KEY", "")
    stack = getattr(args, "stack", None) or os.environ.get("FLOWERS_STACK", "")
    if stack or (url and (api_key or region_of(url))):  # the deployed stack: the key on every call, operator calls SigV4-signed
        return Api.cloud(url, api_key, stack)
    if url:
        return Api(url)
    home = configure(args)
    url = running_url(home)
    if not url:  # say so: answers then come from this process, not from a server someone else may be watching
        print(f"note: no `flowers up` is running on {home}; answering in this process", file=sys.stderr)
    return Api.local(url, home)


# up -------------------------------------------------------------------------------------------
def cmd_up(args: argparse.Namespace) -> int:
    stack = start_stack(args)
    try:
        stack.wait()
    finally:
        say("stopping (running jobs are stopped; the next `flowers up` runs them again)")
        stack.stop()
    return 0


# push -----------------------------------------------------------------------------------------
def cmd_push(args: argparse.Namespace) -> int:
    from flowers_cli.push import Destination, FolderDestination, S3Destination, push

    destination: Destination
    if not Path(args.source).is_dir():  # before a home is created for nothing
        raise UsageError(f"{args.source} is not a folder of photos")
    if args.bucket:
        try:
            destination = S3Destination(args.bucket)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    else:
        home = configure(args, create=True)
        destination = FolderDestination(home / "bucket", args.prefix or "")
    report = push(Path(args.source), destination, show_progress=not args.quiet)
    print(f"{report.copied} file(s) copied ({report.bytes / 1e6:.1f} MB), {report.unchanged} unchanged, "
          f"{len(report.bad)} not usable (sent all the same: training skips them, `flowers status` lists them)")
    for relative, reason in report.bad[:50]:
        print(f"  not usable {relative}: {reason}")
    if len(report.bad) > 50:
        print(f"  ... and {len(report.bad) - 50} more")
    return 0


# status, models, approve ----------------------------------------------------------------------
def _fail(answer: Answer) -> int:
    print(f"error: {answer.error}", file=sys.stderr)
    return 1


def cmd_status(args: argparse.Namespace) -> int:
    api = api_for(args)
    answer = api.get("status")
    if answer.status != 200:
        return _fail(answer)
    if args.json:
        print(json.dumps(answer.json(), indent=2))
    else:
        print(format_server(api.url, api.home, _server_pid(api)) + "\n" + format_status(answer.json()))
    return 0


def _server_pid(api: Api) -> int | None:
    """The pid of the `flowers up` serving this home, when that is where the answer came from."""
    try:
        document = json.loads((Path(api.home) / "server.json").read_text()) if api.home and api.url else {}
        return int(document["pid"]) if document.get("url", "").rstrip("/") + "/" == api.url else None
    except (OSError, ValueError, KeyError, TypeError):
        return None


def cmd_models(args: argparse.Namespace) -> int:
    if args.photos:
        return _photos(api_for(args), args.photos, args.json)
    api = api_for(args)
    # The operators' rows (full reasons, who asked for each run: GET /models/detail) where this caller is one: the
    # home's own API (its token, or this process), or in the cloud with --detail (signed). Else the key route's rows.
    home = api.signer is None and (not api.url or bool(api.token))
    answer = api.get("models/detail" if args.detail or home else "models")
    if answer.status != 200:
        return _fail(answer)
    models = answer.json()["models"]
    if args.version:
        chosen = [m for m in models if m.get("version") == args.version]
        if not chosen:
            print(f"error: no model version {args.version!r} among the {len(models)} newest (flowers models lists them)",
                  file=sys.stderr)
            return 1
        print(json.dumps(chosen[0], indent=2) if args.json else format_model(chosen[0]))
        return 0
    print(json.dumps(models, indent=2) if args.json else format_models(models))
    return 0


def _photos(api: Api, version: str, as_json: bool) -> int:
    """Every file of the model's manifest, page by page (GET /models/{version}/photos)."""
    pages: list[dict[str, Any]] = []
    offset: int | None = 0
    while offset is not None:
        answer = api.get(f"models/{version}/photos?offset={offset}&limit=5000")
        if answer.status != 200:
            return _fail(answer)
        pages.append(answer.json())
        offset = pages[-1].get("next_offset")
    document = dict(pages[0], files=[f for page in pages for f in page["files"]], offset=0, next_offset=None)
    document["limit"] = len(document["files"])
    print(json.dumps(document, indent=2) if as_json else format_photos(document))
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


def cmd_retrain(args: argparse.Namespace) -> int:
    request: dict[str, Any] = {"reason": args.reason} if args.reason else {}
    if args.full:  # only when asked: an API from before `full` existed still takes the plain request
        request["full"] = True
    answer = api_for(args).post("runs", json.dumps(request).encode(), "application/json")
    if answer.status != 200:
        return _fail(answer)
    document = answer.json()
    if document.get("action") != Action.STARTED:
        print(f"error: the run for {document.get('version')} did not start: {document.get('reason')}", file=sys.stderr)
        return 1
    print(f"training run for data set version {document['version']} started (job {document['job']})")
    if document.get("model_version") and document["model_version"] != document["version"]:  # the version ran before
        print(f"  a new run of a version that ran before: its model will be version {document['model_version']}")
    start = document.get("start_from")
    if isinstance(start, dict):  # an API from before start_from existed answers without it
        where = "the production model (a warm start)" if start.get("kind") == StartKind.PRODUCTION else "ImageNet (a full run)"
        print(f"  starts from {where}: {start.get('reason', '')}")
    return 0


# predict --------------------------------------------------------------------------------------
def cmd_predict(args: argparse.Namespace) -> int:
    text, errors = predict_table(api_for(args), [Path(p) for p in args.images], args.top_k)
    if text:
        print(text)
    for error in errors:  # one line each, on stderr: stdout stays the table a script reads
        print(f"error: {error}", file=sys.stderr)
    return RUNTIME if errors else 0


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
    child: subprocess.Popen[bytes] | None = None
    came: list[int] = []  # the SIGTERM, once one comes

    # SIGTERM (kill, systemd, CI) stops TensorBoard too. The handler is in place before TensorBoard starts, so a
    # signal at any moment is seen: while it starts, it is noted and acted on once the child is known.
    def stop(signum: int, frame: FrameType | None) -> None:
        came.append(signum)
        if child is not None:
            raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        child = subprocess.Popen([program, "--logdir", str(logdir), "--port", str(args.port),
                                  "--bind_all" if args.bind_all else "--host=127.0.0.1"])
        if came:
            raise SystemExit(128 + came[0])
        return child.wait()
    finally:
        signal.signal(signal.SIGTERM, previous)
        if child is not None and child.poll() is None:  # a signal, or Ctrl-C (which reaches the child too)
            child.terminate()
            try:
                child.wait(10)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()


# classify -------------------------------------------------------------------------------------
def cmd_classify(args: argparse.Namespace) -> int:
    from flowers_cli import classify

    api = None if args.bucket else api_for(args)
    return classify.main(api, Path(args.source), args.bucket or "", args.top_k, args.out or "", args.quiet, args.wait)


# events ---------------------------------------------------------------------------------------
def cmd_events(args: argparse.Namespace) -> int:
    from chalicelib.adapters.local.event_log import FILE_NAME
    from flowers_cli.events import show

    return show(configure(args) / FILE_NAME, follow=args.follow, as_json=args.json)


# restore --------------------------------------------------------------------------------------
def cmd_restore(args: argparse.Namespace) -> int:
    from flowers_cli import restore

    return restore.main(args)


# demo -----------------------------------------------------------------------------------------
def cmd_demo(args: argparse.Namespace) -> int:
    return demo.run(args)


# argument parsing -----------------------------------------------------------------------------
def _home(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--home", help="the local home (default $FLOWERS_HOME or ~/.flowers)")


def _url(parser: argparse.ArgumentParser) -> None:
    _home(parser)
    parser.add_argument("--url", help="the API's base URL (default: the `flowers up` running on the home; the cloud's API URL works too)")
    parser.add_argument("--api-key", help="the deployed stack's API key (default $FLOWERS_API_KEY)")
    parser.add_argument("--stack", help="a deployed stack's name: its API URL and key are read from its outputs with your AWS credentials (default $FLOWERS_STACK)")


def _stack_options(parser: argparse.ArgumentParser, port_default: int | None = None) -> None:
    _home(parser)
    parser.add_argument("--port", type=int, default=port_default, help="HTTP port on 127.0.0.1 (default 8000; 0 picks a free one)")
    parser.add_argument("--preset", help=f"one of {', '.join(PRESET_NAMES)} (default {LOCAL_DEFAULTS['preset']}; "
                                         "tiny_cnn trains in seconds, for tries and tests)")
    parser.add_argument("--quiet-period", type=int, help="seconds without uploads before training starts (default 5)")
    parser.add_argument("--min-accuracy", type=float, help="promotion gate: lowest test accuracy approved automatically (default 0.80)")
    parser.add_argument("--min-test-images", type=int, help="promotion gate: fewer test photos and a person decides (default 50)")
    parser.add_argument("--quantize", choices=QUANTIZE_MODES, help=f"conversion (default {Quantization.AUTO})")
    parser.add_argument("--max-training-time", type=int, help="seconds per training run (default 3600)")
    parser.add_argument("-H", "--hyperparameter", action="append", metavar="KEY=VALUE", help="extra training hyperparameter (repeatable)")
    parser.add_argument("--verbose", action="store_true", help="also print the handlers' JSON logs")


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error: `flowers predict: error: ... (flowers predict --help)`; exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="flowers", description=__doc__.split("\n\n")[0],
                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 1)[1])
    commands = parser.add_subparsers(dest="command", required=True)

    up = commands.add_parser("up", help="run the local pipeline and serve the API and web page (foreground)")
    _stack_options(up)
    up.set_defaults(run=cmd_up)

    push = commands.add_parser("push", help="copy a data set (folder per class, or name.jpg + name.txt) into the bucket")
    push.add_argument("source", help="a folder of photos: one sub-folder per class, or name.jpg beside name.txt holding its label")
    _home(push)
    push.add_argument("--bucket", help="s3://BUCKET/PREFIX/: the cloud's dataset bucket instead of the local one")
    push.add_argument("--prefix", help="a sub-folder of the local bucket")
    push.add_argument("--quiet", action="store_true", help="no progress bar")
    push.set_defaults(run=cmd_push)

    status = commands.add_parser("status", help="pending uploads, the running job and its progress, last outcome, bad photos")
    _url(status)
    status.add_argument("--json", action="store_true", help="GET /status's JSON as it is")
    status.set_defaults(run=cmd_status)

    models = commands.add_parser("models", help="model versions, newest first")
    _url(models)
    models.add_argument("--json", action="store_true", help="the answer's JSON as it is (GET /models, or /models/detail)")
    models.add_argument("--detail", action="store_true", help="in the cloud: the operators' view (full reasons, who "
                        "asked for each run; SigV4-signed, GET /models/detail); flowers up's is always that")
    models.add_argument("--photos", metavar="VERSION", help="the files that model was trained on (its run's manifest)")
    models.add_argument("version", nargs="?", help="one model: its test figures per class and most confused classes")
    models.set_defaults(run=cmd_models)

    for name, text in (("approve", "approve a model version (it is served if it is the newest approved)"),
                       ("reject", "reject a model version")):
        command = commands.add_parser(name, help=text)
        command.add_argument("version", help="a model version (16 hexadecimal characters, from `flowers models`)")
        command.add_argument("--reason", help="why, kept with the model's status (default: by hand)")
        _url(command)
        command.set_defaults(run=cmd_set_status)

    rollback = commands.add_parser("rollback", help="reject the served model; the previous approved one serves again")
    rollback.add_argument("--reason", help="why, kept with the rejected model's status")
    _url(rollback)
    rollback.set_defaults(run=cmd_rollback)

    retrain = commands.add_parser("retrain", help="train the data set as it is now, even if its version ran before (after a failure, "
                                                  "a rejected model, or to try again): a new run with a record and a model version of its own")
    retrain.add_argument("--reason", help="why, kept in the run's record with who asked")
    retrain.add_argument("--full", action="store_true",
                         help="this run starts from ImageNet, not warm from the production model (once: the next run decides "
                              "afresh; for every run: training.json's {\"warm_start\": \"none\"})")
    _url(retrain)
    retrain.set_defaults(run=cmd_retrain)

    predict = commands.add_parser("predict", help="top-k labels of photos")
    predict.add_argument("images", nargs="+", help="photo files (JPEG, PNG, WEBP or BMP, up to 4 MiB each)")
    predict.add_argument("--top-k", type=_positive, default=5, help="how many classes to list per photo, best first (default 5)")
    _url(predict)
    predict.set_defaults(run=cmd_predict)

    classify = commands.add_parser("classify", help="classify every photo of a folder: JSON lines (or --bucket: batch classification in the cloud)")
    classify.add_argument("source", help="a folder of photos (any depth), or one photo")
    classify.add_argument("--bucket", help="s3://BUCKET/classify/...: upload there; the pipeline writes s3://BUCKET/predictions/*.jsonl")
    classify.add_argument("--top-k", type=int, default=5, help="how many classes to list per photo, best first (default 5)")
    classify.add_argument("--out", help="write the JSON lines to this file instead of stdout")
    classify.add_argument("--quiet", action="store_true", help="no progress bar")
    classify.add_argument("--wait", type=float, default=0, metavar="SECONDS",
                          help="with --bucket: wait up to SECONDS for every photo's prediction and print the lines")
    _url(classify)
    classify.set_defaults(run=cmd_classify)

    events = commands.add_parser("events", help="the local pipeline's events (runs started and failed, models registered, promoted, rolled back)")
    _home(events)
    events.add_argument("--follow", "-f", action="store_true", help="wait for more events (Ctrl-C stops)")
    events.add_argument("--json", action="store_true", help="one JSON object a line, as HOME/events.jsonl holds them")
    events.set_defaults(run=cmd_events)

    restore = commands.add_parser("restore", help="put back the photos a run trained on that were deleted or replaced since, "
                                  "from the bucket's versions (its manifest names them)")
    restore.add_argument("version", help="the run's data set version (16 hexadecimal characters, from `flowers models`)")
    restore.add_argument("--dry-run", action="store_true", help="say what would be restored, change nothing")
    _home(restore)
    restore.add_argument("--stack", default=os.environ.get("FLOWERS_STACK") or None,
                         help="a deployed stack's name: its artifact bucket from its outputs, with your AWS credentials "
                              "(default $FLOWERS_STACK)")
    restore.add_argument("--artifact-bucket", help="the cloud's artifact bucket by name (output ArtifactBucketName), instead of --stack")
    restore.set_defaults(run=cmd_restore)

    keys.add_parser(commands, lambda action: action.add_argument(
        "--stack", help="the deployed stack's name: its API and key limits from its outputs, with your AWS credentials "
                        "(default $FLOWERS_STACK)"))

    tensorboard = commands.add_parser("tensorboard", help="TensorBoard over the local training runs")
    _home(tensorboard)
    tensorboard.add_argument("--port", type=int, default=6006, help="TensorBoard's HTTP port (default 6006)")
    tensorboard.add_argument("--bind-all", action="store_true", help="listen on every network interface, not only 127.0.0.1")
    tensorboard.set_defaults(run=cmd_tensorboard)

    demo = commands.add_parser("demo", help="up + push flower photos + wait for the first approved model + predictions")
    _stack_options(demo)
    demo.add_argument("--data", help="the photos (default ../shared/datasets/flower_photos, else downloaded)")
    demo.add_argument("--exit", action="store_true", help="stop after the predictions instead of serving on")
    demo.add_argument("--timeout", type=float, default=7200, help="seconds to wait for an approved model")
    demo.set_defaults(run=cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    # Chalice's local gateway warns on every operator call that it does not check IAM: local mode has no
    # authentication by design (operator routes refuse cross-site requests instead), so it is noise here.
    warnings.filterwarnings("ignore", message="IAMAuthorizer is not a supported in local mode")
    args = build_parser().parse_args(argv)
    try:
        return args.run(args) or 0
    except CloudError as exc:  # the cloud as asked cannot be reached: say what to do, no traceback
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return USAGE
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # every other failure: one line, no traceback (FLOWERS_DEBUG=1 shows it)
        if os.environ.get("FLOWERS_DEBUG"):
            raise
        print(f"error: {describe(exc, getattr(args, 'url', None) or os.environ.get('FLOWERS_URL', ''))}", file=sys.stderr)
        return RUNTIME


if __name__ == "__main__":
    sys.exit(main())
