"""What the CLI prints: the status and models tables, and predictions."""
from __future__ import annotations

import io
import time
from pathlib import Path
from typing import Any

from flowers_cli.client import Api
from flowers_cli.push import CONTENT_TYPES

SKIPPED_SHOWN = 50  # skipped files `flowers status` prints; --json has the API's list


def table(columns: list[str], rows: list[list[str]]) -> str:
    """Rows under a header, in columns sized to fit, as plain text (rich's Table without a box or colour:
    what a terminal, a log and `grep` all read). A column name starting with ">" is right-aligned."""
    from rich.console import Console
    from rich.table import Table

    grid = Table(box=None, pad_edge=False, show_edge=False, header_style="", padding=(0, 2, 0, 0))
    for name in columns:
        grid.add_column(name.lstrip(">"), justify="right" if name.startswith(">") else "left", no_wrap=True)
    for row in rows:
        grid.add_row(*row)
    text = io.StringIO()
    Console(file=text, width=1000, color_system=None, highlight=False, emoji=False, markup=False).print(grid)
    return "\n".join(line.rstrip() for line in text.getvalue().splitlines())


def format_status(s: dict[str, Any]) -> str:
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
        version = outcome["version"]
        if outcome.get("model_version") and outcome["model_version"] != version:  # a rerun: its model has a version of its own
            version = f"{version} (model {outcome['model_version']})"
        lines.append(f"last outcome  {status} {version} at {outcome.get('at')}: {outcome.get('reason', '')}")
    lines += _validation_lines(s.get("validation"))
    lines += _data_lines(s.get("validation") or {})
    lines += _action_lines(s.get("operator_actions") or [])
    return "\n".join(lines)


ACTIONS_SHOWN = 10  # operator actions `flowers status` prints; --json has the API's list


def actor(by: Any) -> str:
    """Who did an operator action (GET /status's Actor), in a few words."""
    if not isinstance(by, dict):
        return "the pipeline"
    return f"{by.get('principal', '?')} ({by.get('kind', '?')}, {by.get('via', '?')})"


def _action_lines(actions: list[dict[str, Any]], limit: int = ACTIONS_SHOWN) -> list[str]:
    """Who did what, newest first: runs by hand, approve, reject, rollback."""
    if not actions:
        return []
    lines = ["operator actions (newest first)"]
    for a in actions[:limit]:
        what = a.get("model_version", "") if a.get("command") != "run" else f"data set {a.get('dataset_version', '')}"
        lines.append(f"  {a.get('at', '')} {a.get('command', '?'):<8} {what} by {actor(a.get('by'))}: {a.get('reason', '')}")
    return lines


def _validation_lines(v: dict[str, Any] | None, limit: int = SKIPPED_SHOWN) -> list[str]:
    """The last run's validation report: every skipped file with its reason, the first `limit` by name."""
    if not v:
        return []
    reasons = ", ".join(f"{reason} {count}" for reason, count in (v.get("skipped_by_reason") or {}).items())
    lines = [f"photos        {v.get('usable_images', 0)} used, {v.get('skipped_count', 0)} skipped"
             + (f" ({reasons})" if reasons else "") + f", checked by {v.get('training_job')}"]
    skipped = v.get("skipped") or []
    for bad in skipped[:limit]:
        lines.append(f"  {bad['file']}: {bad['reason']}" + (f" ({bad['detail']})" if bad.get("detail") else ""))
    more = len(skipped) - min(limit, len(skipped)) + int(v.get("skipped_not_listed") or 0)
    if more:
        lines.append(f"  ... and {more} more (flowers status --json lists {len(skipped)}; the job's validation.json all)")
    ignored = v.get("ignored_files") or []
    if v.get("ignored_count"):
        lines.append(f"ignored       {v['ignored_count']} file(s) neither a photo nor its label: " + ", ".join(ignored[:10])
                     + (" ..." if v["ignored_count"] > 10 else ""))
    return lines


LABEL_ISSUES_SHOWN = 20  # likely mislabelled photos `flowers status` prints; --json has the API's list


def _data_lines(v: dict[str, Any], limit: int = LABEL_ISSUES_SHOWN) -> list[str]:
    """The class balance's warnings and the likely mislabelled photos, most likely first (suggestions only)."""
    lines: list[str] = []
    balance = v.get("class_balance") or {}
    if balance.get("status"):
        lines.append(f"classes       {balance['status']}")
    lines += [f"  warning: {warning}" for warning in balance.get("warnings") or []]
    found = v.get("label_issues")
    if not found:
        return lines
    if found.get("skipped"):
        return lines + [f"labels        not checked: {found['skipped']}"]
    lines.append(f"labels        {found['count']} of {found.get('photos', 0)} photos look mislabelled"
                 + (" (suggestions: nothing is relabelled or dropped)" if found["count"] else ""))
    issues = found.get("issues") or []
    for issue in issues[:limit]:
        lines.append(f"  {issue['file']}: labelled {issue['given']}, looks like {issue['suggested']} "
                     f"({100 * issue['confidence']:.0f} %)")
    more = found["count"] - min(limit, len(issues))
    if more:
        lines.append(f"  ... and {more} more (flowers status --json lists {len(issues)}; the job's validation.json more)")
    return lines


def format_models(models: list[dict[str, Any]]) -> str:
    if not models:
        return "no models yet"
    rows = []
    for m in models:
        accuracy = (m.get("metrics") or {}).get("test_accuracy")
        shown = f"{100 * accuracy:.1f} %" if isinstance(accuracy, (int, float)) else "-"  # as the web page shows it
        rows.append([m["version"], m["status"], shown, m.get("created_at", ""), m.get("reason", "")])
    return table(["version", "status", ">test acc", "created", "reason"], rows)


def format_model(m: dict[str, Any]) -> str:
    """One model of GET /models: its line, then each class's test precision, recall, F1 and photos, and the most
    confused pairs (true class taken for another)."""
    metrics = m.get("metrics") or {}
    lines = [format_models([m]).splitlines()[1]]
    per_class = metrics.get("per_class") or {}
    if not per_class:
        return "\n".join(lines + ["no per-class figures for this model"])
    baseline = (metrics.get("baseline") or {}).get("per_class") or {}  # the served model then, on the same photos

    def shown(value: Any) -> str:
        return f"{100 * value:.1f} %" if isinstance(value, (int, float)) else "-"

    columns = ["class", ">precision", ">recall", ">F1", ">photos"] + ([">F1 of the model served then"] if baseline else [])
    rows = [[label, shown(v.get("precision")), shown(v.get("recall")), shown(v.get("f1")), str(v.get("support", "-"))]
            + ([shown((baseline.get(label) or {}).get("f1"))] if baseline else []) for label, v in per_class.items()]
    lines.append(table(columns, rows))
    pairs = metrics.get("confused_pairs")  # None: a model from before they were counted
    if isinstance(pairs, list):
        lines.append("most confused " + (", ".join(f"{p['true']} taken for {p['predicted']} ({p['count']})" for p in pairs)
                                         or "none"))
    return "\n".join(lines)


def format_photos(document: dict[str, Any]) -> str:
    """The files a model was trained on: one line each (key, size, ETag), after where they come from."""
    manifest = document.get("manifest") or {}
    check = {True: "matches the model's record", False: "DIFFERS from the model's record", None: "no record to check"}
    lines = [f"model {document['version']}: {document['count']} file(s), {document.get('bytes') or 0} bytes, "
             f"keys relative to {document.get('dataset_uri', '')}",
             f"manifest {manifest.get('uri', '')}  sha256 {manifest.get('sha256', '')} ({check[manifest.get('matches')]})"]
    lines += [f"{f['key']}  {f['size']}  {f['etag']}" + (f"  version {f['version_id']}" if f.get("version_id") else "")
              for f in document.get("files", [])]
    return "\n".join(lines)


def format_server(url: str, home: Path | None, pid: int | None = None) -> str:
    """Where the answer came from: the server (`flowers up`'s or --url's), or none and this process."""
    if url:
        return f"server        {url}" + (f"  (flowers up, pid {pid})" if pid else "")
    return f"server        not running on {home} (`flowers up` starts it); this answer comes from the home's files"


def predict_table(api: Api, images: list[Path], top_k: int = 5) -> tuple[str, list[str]]:
    """The answers as a table, and one line per photo that got none (for stderr)."""
    lines: list[str] = []
    errors: list[str] = []
    for image in images:
        try:
            data = Path(image).read_bytes()
        except OSError as exc:
            errors.append(f"{image}: cannot read: {exc.strerror or exc}")
            continue
        started = time.perf_counter()
        answer = api.post(f"predict?top_k={top_k}", data, CONTENT_TYPES.get(Path(image).suffix.lower(), "application/octet-stream"))
        ms = (time.perf_counter() - started) * 1000
        if answer.status != 200:
            errors.append(f"{image}: {answer.error}")
            continue
        document = answer.json()
        lines.append(f"{image}  (model {document['model']['version']}, {ms:.0f} ms)")
        if "label" in document:  # servers before thresholds did not say
            threshold = document.get("threshold")
            below = f" (top score below {100 * threshold:.1f} %)" if isinstance(threshold, (int, float)) else ""
            lines.append(f"  -> {document['label']}" if document["label"] is not None else f"  -> not recognised{below}")
        for rank, p in enumerate(document["predictions"], 1):
            lines.append(f"  {rank}. {p['label']:<14} {100 * p['score']:5.1f} %  {'#' * round(p['score'] * 30)}")
    return "\n".join(lines), errors
