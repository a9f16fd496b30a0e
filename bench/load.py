"""Load on `flowers up`'s HTTP API (local mode): concurrent clients, a costly-image client, and
where a single request's time goes.

A real `flowers up` process (tests/local_fixtures.Up) on a free loopback port serves a real model
registered as approved, without training. In one run, on the same real JPEG photos:

  1. closed-loop clients (httpx.AsyncClient, one keep-alive connection each, the next request as soon
     as the answer arrives) posting photos to POST /predict, in four configurations: 1 client,
     16 clients, 16 clients + a "bomb" client posting a 9000 x 9000 16-bit PNG (81 megapixels, over
     the 50-megapixel cap: 413), and 16 clients + a bomb just under the cap (7000 x 7000 16-bit PNG,
     decoded). Each configuration runs --seconds in all, taken in turns of --segment seconds, so that
     a neighbour's load on this shared machine falls on every configuration alike;
  2. one request's time, in rounds of 20 requests per variant: the `predict` handler function
     alone, the app through Chalice's LocalGateway (the Chalice test client, as bench/predict.py's
     "handler"; both in this process, on a second home with the same model), and the HTTP round
     trip to `flowers up` with a keep-alive client, a new connection per request, and a new
     httpx.Client per request.

Goals: 0 errors; 16 clients' p99 under 10x one client's p50; a bomb client raises the others' p99
by at most 2x; one client's p50 (keep-alive) within 2x of the handler's.

    python bench/load.py                       # builds mobilenet_v2 int8 in build/bench-predict first (~1 min) unless there
    python bench/load.py --model DIR           # a converted model folder (model.tflite, metadata.json, labels.txt)
    python bench/load.py --seconds 10          # a quick run (default 60 s per configuration, about 5 minutes in all)
Traffic goes to 127.0.0.1 only; every request has a 30 s timeout and every phase a deadline.
"""
from __future__ import annotations

import argparse
import asyncio
import io
import json
import math
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "bench")]

REQUEST_TIMEOUT = 30.0
JPEG = {"Content-Type": "image/jpeg"}
PNG = {"Content-Type": "image/png"}


# inputs ---------------------------------------------------------------------------------------
def real_photos(photos_root: Path, per_class: int) -> list[tuple[str, bytes]]:
    """The last `per_class` JPEGs of each class of the shared data set (those bench/predict.py also uses)."""
    found = []
    for label in sorted(p for p in photos_root.iterdir() if p.is_dir()):
        for photo in sorted(label.glob("*.jpg"))[-per_class:]:
            found.append((f"{label.name}/{photo.name}", photo.read_bytes()))
    if not found:
        raise SystemExit(f"no photos under {photos_root}")
    return found


def bomb_png(side: int) -> bytes:
    """A side x side 16-bit grey PNG (mode I;16), a horizontal gradient: small to send, costly to decode."""
    import numpy as np
    from PIL import Image

    row = (np.arange(side, dtype=np.uint32) * 65535 // (side - 1)).astype(np.uint16)
    image = Image.fromarray(np.ascontiguousarray(np.broadcast_to(row, (side, side))))
    assert image.mode == "I;16", image.mode
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def model_folder(args: argparse.Namespace) -> Path:
    if args.model:
        return Path(args.model)
    from predict import build  # bench/predict.py: train the head on cached features, convert

    print(f"model: {args.work}/converted (built there if missing: {args.preset} {args.quantize})", flush=True)
    return build(args.work, args.preset, 30, args.quantize) / "converted"


# statistics -----------------------------------------------------------------------------------
def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0-100) of unsorted values."""
    ordered = sorted(values)
    return ordered[min(len(ordered), max(1, math.ceil(q / 100 * len(ordered)))) - 1]


def summary(latencies_ms: list[float]) -> dict[str, float]:
    if not latencies_ms:
        return {"count": 0}
    return {"count": len(latencies_ms), "p50_ms": round(statistics.median(latencies_ms), 2),
            "p90_ms": round(percentile(latencies_ms, 90), 2), "p99_ms": round(percentile(latencies_ms, 99), 2),
            "max_ms": round(max(latencies_ms), 2), "mean_ms": round(statistics.fmean(latencies_ms), 2)}


# 1. load --------------------------------------------------------------------------------------
class Tally:
    def __init__(self) -> None:
        self.latencies_ms: list[float] = []
        self.statuses: dict[str, int] = {}
        self.seconds = 0.0

    def add(self, status: str, ms: float) -> None:
        self.statuses[status] = self.statuses.get(status, 0) + 1
        self.latencies_ms.append(ms)


async def _client(url: str, bodies: list[tuple[bytes, dict[str, str]]], offset: int, deadline: float, tally: Tally,
                  ok: int = 200) -> None:
    async with httpx.AsyncClient(timeout=REQUEST_TIMEOUT, limits=httpx.Limits(max_connections=1)) as client:
        i = offset
        while time.perf_counter() < deadline:
            body, headers = bodies[i % len(bodies)]
            i += 1
            started = time.perf_counter()
            try:
                response = await client.post(url, content=body, headers=headers)
                status = str(response.status_code)
            except httpx.HTTPError as error:
                status = type(error).__name__
            tally.add(status, (time.perf_counter() - started) * 1000)


async def _segment(url: str, photos: list[bytes], clients: int, bomb: bytes | None, seconds: float,
                   normal: Tally, bombs: Tally) -> None:
    started = time.perf_counter()
    deadline = started + seconds
    bodies = [(p, JPEG) for p in photos]
    tasks = [_client(url, bodies, n * len(photos) // max(clients, 1), deadline, normal) for n in range(clients)]
    if bomb is not None:
        tasks.append(_client(url, [(bomb, PNG)], 0, deadline, bombs))
    await asyncio.wait_for(asyncio.gather(*tasks), seconds + 2 * REQUEST_TIMEOUT)
    elapsed = time.perf_counter() - started
    normal.seconds += elapsed
    bombs.seconds += elapsed


def run_load(url: str, photos: list[bytes], configs: list[dict[str, Any]], seconds: float, segment: float) -> dict[str, Any]:
    asyncio.run(_segment(url, photos, 16, None, min(3.0, seconds), Tally(), Tally()))  # warm-up, not counted
    tallies = {c["name"]: (Tally(), Tally()) for c in configs}
    done = 0.0
    while done < seconds - 1e-6:
        turn = min(segment, seconds - done)
        for config in configs:
            normal, bombs = tallies[config["name"]]
            print(f"  {config['name']}: {turn:.0f} s (at {done:.0f} of {seconds:.0f} s)", flush=True)
            asyncio.run(_segment(url, photos, config["clients"], config.get("bomb"), turn, normal, bombs))
        done += turn
    results = {}
    for config in configs:
        normal, bombs = tallies[config["name"]]
        errors = sum(n for status, n in normal.statuses.items() if status != "200")
        entry: dict[str, Any] = {"clients": config["clients"], "seconds": round(normal.seconds, 1),
                                 "requests": len(normal.latencies_ms),
                                 "throughput_rps": round(len(normal.latencies_ms) / normal.seconds, 1),
                                 "errors": errors, "statuses": normal.statuses, **summary(normal.latencies_ms)}
        if config.get("bomb") is not None:
            entry["bomb"] = {"image": config["bomb_name"], "bytes": len(config["bomb"]), "requests": len(bombs.latencies_ms),
                             "statuses": bombs.statuses, **summary(bombs.latencies_ms)}
        results[config["name"]] = entry
    return results


# 2. one request's time ------------------------------------------------------------------------
def in_blocks(variants: dict[str, Callable[[bytes], None]], photos: list[bytes], rounds: int, block: int = 20,
              settle: int = 3) -> dict[str, Any]:
    """Each variant for `block` requests back to back, variant after variant, for `rounds` rounds;
    the first `settle` of each block are not counted. Back to back as a client's loop runs them:
    one request at a time, interleaved with another variant, measures this 2-core machine's
    wake-ups (the model's thread pool, in this process and in `flowers up`, sleeping or
    spinning) more than the code. Rounds spread a neighbour's load over every variant alike."""
    samples: dict[str, list[float]] = {name: [] for name in variants}
    for r in range(rounds):
        for name, fn in variants.items():
            for i in range(settle + block):
                photo = photos[(r * block + i) % len(photos)]
                started = time.perf_counter()
                fn(photo)
                if i >= settle:
                    samples[name].append((time.perf_counter() - started) * 1000)
    return {name: {k: v for k, v in summary(values).items() if k in ("count", "p50_ms", "p90_ms", "p99_ms", "mean_ms")}
            for name, values in samples.items()}


def breakdown(url: str, model: Path, photos: list[bytes], rounds: int, home: Path) -> dict[str, Any]:
    from local_fixtures import cli_env, seed_approved_model

    seed_approved_model(home, model, version="00000000000000b2")
    os.environ.update(cli_env(home), FLOWERS_MODE="local")
    from chalice.test import Client

    import app as chalice_app
    from chalicelib.api import handlers
    from chalicelib import services

    services.reset()

    def expect_200(response: Any) -> None:
        if response.status_code != 200:
            raise RuntimeError(f"{response.status_code}: {response.body if hasattr(response, 'body') else response.text}")

    try:  # the app logs a JSON line per request to stdout
        with open(os.devnull, "w") as devnull, redirect_stdout(devnull), Client(chalice_app.app) as chalice_client, \
                httpx.Client(timeout=REQUEST_TIMEOUT) as keep_alive, \
                httpx.Client(timeout=REQUEST_TIMEOUT, limits=httpx.Limits(max_keepalive_connections=0)) as no_keep_alive:
            def handler_alone(photo: bytes) -> None:
                handlers.predict("image/jpeg", photo, None)

            variants: dict[str, Callable[[bytes], None]] = {
                "handler function (handlers.predict)": handler_alone,
                "app through LocalGateway (Chalice test client, as bench/predict.py)":
                    lambda p: expect_200(chalice_client.http.post("/predict", headers=JPEG, body=p)),
                "HTTP, keep-alive (one httpx.Client)": lambda p: expect_200(keep_alive.post(url, content=p, headers=JPEG)),
                "HTTP, new connection per request (httpx.Client, no keep-alive)":
                    lambda p: expect_200(no_keep_alive.post(url, content=p, headers=JPEG)),
                "HTTP, new httpx.Client per request (httpx.post)":
                    lambda p: expect_200(httpx.post(url, content=p, headers=JPEG, timeout=REQUEST_TIMEOUT)),
            }
            return in_blocks(variants, photos, rounds)
    finally:
        services.reset()


# report ---------------------------------------------------------------------------------------
def listen_overflows() -> int:
    """This machine's count of connections its listening sockets dropped, their accept queue full
    (TcpExt ListenOverflows: machine-wide, so other processes' servers count too)."""
    lines = [line.split() for line in Path("/proc/net/netstat").read_text().splitlines() if line.startswith("TcpExt:")]
    return int(dict(zip(lines[0], lines[1])).get("ListenOverflows", 0)) if len(lines) == 2 else 0


def machine() -> dict[str, Any]:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    memory_kb = next((int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal")), 0)
    return {"cpus": os.cpu_count(), "cpu": cpu, "memory_gb": round(memory_kb / 1024 ** 2, 1), "python": platform.python_version(),
            "httpx": httpx.__version__}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60, help="seconds of load per configuration (default 60)")
    parser.add_argument("--segment", type=float, default=10, help="configurations take turns of this many seconds (default 10)")
    parser.add_argument("--rounds", type=int, default=10,
                        help="rounds of the one-request breakdown, 20 requests per variant each (default 10)")
    parser.add_argument("--model", type=Path, help="a converted model folder; default: build one in --work")
    parser.add_argument("--work", type=Path, default=ROOT / "build" / "bench-predict", help="where the model is built (kept)")
    parser.add_argument("--preset", default="mobilenet_v2")
    parser.add_argument("--quantize", default="int8")
    parser.add_argument("--photos", type=int, default=4, help="real JPEGs per class (default 4: 20 photos)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "load.json")
    args = parser.parse_args()

    from data_fixtures import PHOTOS
    from local_fixtures import Up, seed_approved_model

    folder = model_folder(args)
    metadata = json.loads((folder / "metadata.json").read_text())
    named = real_photos(PHOTOS, args.photos)
    photos = [data for _, data in named]
    print("making the bomb images", flush=True)
    big, under_cap = bomb_png(9000), bomb_png(7000)
    configs = [
        {"name": "1 client", "clients": 1},
        {"name": "16 clients", "clients": 16},
        {"name": "16 clients + bomb 9000x9000", "clients": 16, "bomb": big, "bomb_name": "9000x9000 16-bit PNG (81 MP, over the cap)"},
        {"name": "16 clients + bomb 7000x7000", "clients": 16, "bomb": under_cap,
         "bomb_name": "7000x7000 16-bit PNG (49 MP, under the cap)"},
    ]
    load_before = os.getloadavg()
    scratch = Path(tempfile.mkdtemp(prefix="flowers-bench-load-"))
    up = None
    try:
        home = scratch / "up" / "home"
        seed_approved_model(home, folder)
        up = Up(home)
        url = up.url + "predict"
        print(f"flowers up on {up.url}", flush=True)
        first = up.post("/predict", photos[0], "image/jpeg")
        if first.status != 200:
            raise RuntimeError(f"flowers up answers {first.status}: {first.body[:300]!r}\n{up.log()[-3000:]}")
        print(f"load: {len(configs)} configurations x {args.seconds:.0f} s, in turns of {args.segment:.0f} s", flush=True)
        overflows = listen_overflows()
        load = run_load(url, photos, configs, args.seconds, args.segment)
        overflows = listen_overflows() - overflows
        print(f"one request's time: {args.rounds} rounds", flush=True)
        single = breakdown(url, folder, photos, args.rounds, scratch / "in-process" / "home")
    finally:
        if up is not None:
            up.stop()
        shutil.rmtree(scratch, ignore_errors=True)
    load_after = os.getloadavg()

    one, sixteen = load["1 client"], load["16 clients"]
    handler = single["app through LocalGateway (Chalice test client, as bench/predict.py)"]["p50_ms"]
    http_keep_alive = single["HTTP, keep-alive (one httpx.Client)"]["p50_ms"]
    def check(value: float, limit: float, strict: bool = False) -> dict[str, Any]:
        return {"value": round(value, 2), "target": f"{'<' if strict else '<='} {limit:g}",
                "met": value < limit if strict else value <= limit}

    goals = {
        "errors": check(sum(r["errors"] for r in load.values()), 0),
        "p99 of 16 clients / p50 of 1 client": check(sixteen["p99_ms"] / one["p50_ms"], 10, strict=True),
        **{f"p99 with {name.split(' + ')[1]} / p99 without": check(load[name]["p99_ms"] / sixteen["p99_ms"], 2)
           for name in load if "bomb" in name},
        "single-client HTTP p50 (keep-alive) / handler p50": check(http_keep_alive / handler, 2),
    }
    report: dict[str, Any] = {
        "machine": {**machine(), "load_average_1min_before": round(load_before[0], 2), "load_average_1min_after": round(load_after[0], 2)},
        "model": {"source": str(folder.resolve().relative_to(ROOT)) if folder.resolve().is_relative_to(ROOT) else str(folder), "preset": metadata.get("preset"), "quantization": metadata.get("quantization"),
                  "size_mb": round(metadata["model"]["size_bytes"] / 1e6, 2), "image_size": metadata["image_size"],
                  "classes": len(metadata["labels"])},
        "photos": {"count": len(photos), "mean_bytes": round(statistics.fmean(map(len, photos))), "names": [n for n, _ in named]},
        "settings": {"seconds_per_configuration": args.seconds, "segment_seconds": args.segment,
                     "breakdown_rounds": args.rounds, "breakdown_block": 20,
                     "request_timeout_s": REQUEST_TIMEOUT},
        "load": load, "listen_queue_overflows_during_load": overflows, "single_request": single, "goals": goals,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")

    print(f"\nmodel: {report['model']['preset']} {report['model']['quantization']} {report['model']['size_mb']} MB; "
          f"{len(photos)} photos; {os.cpu_count()} CPUs; load average {load_before[0]:.1f} -> {load_after[0]:.1f}")
    print(f"{'':32}{'req/s':>8}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}{'errors':>8}")
    for name, r in load.items():
        print(f"{name:32}{r['throughput_rps']:8.1f}{r['p50_ms']:9.1f}{r['p99_ms']:9.1f}{r['max_ms']:9.1f}{r['errors']:8}")
        if "bomb" in r:
            b = r["bomb"]
            print(f"{'  the bomb client':32}{b['requests'] / r['seconds']:8.1f}{b['p50_ms']:9.1f}{b['p99_ms']:9.1f}{b['max_ms']:9.1f}"
                  f"  statuses {b['statuses']}")
    print(f"listen queue overflows during the load (machine-wide): {overflows}")
    print(f"\n{'one request':68}{'p50 ms':>9}{'p90 ms':>9}")
    for name, r in single.items():
        print(f"{name:68}{r['p50_ms']:9.2f}{r['p90_ms']:9.2f}")
    print()
    for name, goal in goals.items():
        print(f"{name}: {goal['value']} (target {goal['target']}) {'OK' if goal['met'] else 'MISSED'}")
    print(f"\nwritten to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
