"""Load test of `text-recognizer serve` (`make loadtest CKPT=...`): Locust, headless, against
servers this starts on loopback, posting line images of the synthetic test split.

Two servers run side by side, dynamic batching on (`--max-batch 32`) and off (`--max-batch 1`),
and take turns: 1, 8 and 32 concurrent users on each, so that a change in the machine's load
falls on both alike. Then a phase at 32 users where 10% of the posts are bad inputs. Each phase
lasts `--seconds`. It reports p50/p95/p99 latency and requests/s per phase (Locust's figures,
over HTTP end to end), the 5xx answers each server counted in /metrics, and whether a server
process ended, and writes `benchmarks/results/serve.json`. Before the servers start, the
decoder's own speed on the same lines, alone and in batches of 16, is measured in this process:
the ceiling the HTTP figures are read against. `--smoke` runs 2 s phases at 2 users (each mode,
then the bad inputs) on 8 lines: it checks the code.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import dataclasses
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import torch
from PIL import Image

from benchmarks.common import (
    LINES,
    add_arguments,
    checkpoint_name,
    experiment,
    machine,
    print_table,
    results_folder,
    write,
)
from text_recognizer.data.processed import reading
from text_recognizer.data.synthetic.lines import SyntheticLines
from text_recognizer.decode import DECODERS
from text_recognizer.serve.model import load_model
from text_recognizer.serve.server import default_threads
from text_recognizer.spec import read_checkpoint

BAD_USERS, BAD_FRACTION = 32, 0.1
MODES = {"on": 32, "off": 1}  # batching: the server's --max-batch
LOCUSTFILE = Path(__file__).with_name("locustfile.py")  # not imported: Locust patches the stdlib


@dataclass(frozen=True)
class Settings:
    """How long and how hard the servers are loaded."""

    seconds: int  # each phase
    users: tuple[int, ...]
    lines: int  # distinct test lines the users pick from
    in_process_lines: int


FULL = Settings(seconds=20, users=(1, 8, 32), lines=200, in_process_lines=64)
SMOKE = Settings(seconds=2, users=(2,), lines=8, in_process_lines=4)


def test_lines(checkpoint: Path, count: int) -> list[np.ndarray]:
    """Lines of the synthetic test split the checkpoint's datamodule names (the default
    experiment's, if it was trained on another), from the data root: nothing is rendered here."""
    spec = read_checkpoint(checkpoint)[1]
    datamodule = spec.build_datamodule(checkpoint) if spec.datamodule else None
    if not isinstance(datamodule, SyntheticLines):
        datamodule = experiment(*LINES).datamodule
    assert isinstance(datamodule, SyntheticLines)
    path = datamodule.path
    if not path.is_file():
        sys.exit(
            f"error: no synthetic lines at {path}: run `make generate`, or point "
            "TEXT_RECOGNIZER_DATA_DIR at the data root the model was trained with"
        )
    with reading(path) as f:
        return list(f["test"]["images"][:count])


@contextlib.contextmanager
def server(checkpoint: Path, flags: list[str], log: Path) -> Iterator[tuple[str, subprocess.Popen]]:
    port = free_port()
    command = [sys.executable, "-m", "text_recognizer.cli", "serve", "--checkpoint"]
    command += [str(checkpoint), "--port", str(port), *flags]
    with log.open("w") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None or time.monotonic() > deadline:
                sys.exit(f"error: the server did not start:\n{log.read_text()}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{url}/healthz").status_code == 200:
                    break
            time.sleep(0.2)
        yield url, process
    finally:
        process.terminate()
        process.wait(60)


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def warm_up(url: str, images: list[bytes]) -> None:
    with httpx.Client(base_url=url, timeout=60) as client:
        for data in images[:10]:
            client.post("/v1/recognize", files={"image": ("line.png", data)}).raise_for_status()


def statuses(url: str) -> dict[str, float]:
    """Responses to /v1/recognize by status, as the server counted them."""
    counts: dict[str, float] = {}
    prefix = 'text_recognizer_requests_total{path="/v1/recognize",status="'
    for line in httpx.get(f"{url}/metrics").text.splitlines():
        if line.startswith(prefix):
            status, _, value = line[len(prefix) :].partition('"} ')
            counts[status] = float(value)
    return counts


def batches(url: str) -> tuple[float, float]:
    found = {}
    for line in httpx.get(f"{url}/metrics").text.splitlines():
        name, _, value = line.partition(" ")
        if name.startswith("text_recognizer_batch_size_"):
            found[name.removeprefix("text_recognizer_batch_size_")] = float(value)
    return found.get("count", 0.0), found.get("sum", 0.0)


def locust(url: str, users: int, seconds: int, options: list[str], out: Path) -> list[dict]:
    """One headless Locust run; its stats rows (one per request name, and `Aggregated`)."""
    prefix = out / "locust"
    command = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", *options]
    command += ["--host", url, "--users", str(users), "--spawn-rate", str(users)]
    command += ["--run-time", f"{seconds}s", "--csv", str(prefix), "--only-summary"]
    command += ["--loglevel", "WARNING", "--stop-timeout", "10"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=seconds * 4 + 60)
    stats = Path(f"{prefix}_stats.csv")
    if not stats.is_file():
        sys.exit(f"error: locust wrote no stats:\n{result.stderr[-3000:]}")
    with stats.open() as f:
        return list(csv.DictReader(f))


def phase(
    mode: str, url: str, users: int, bad: float, seconds: int, options: list[str], out: Path
) -> tuple[dict[str, Any], dict[str, Any]]:
    before, (batches_before, images_before) = statuses(url), batches(url)
    out.mkdir()
    options = [*options, "--bad-fraction", str(bad)]
    rows = {row["Name"]: row for row in locust(url, users, seconds, options, out)}
    after, (batches_after, images_after) = statuses(url), batches(url)
    total = rows["Aggregated"]
    delta = {k: int(after.get(k, 0) - before.get(k, 0)) for k in after}
    decoded = images_after - images_before
    row = {
        "batching": mode,
        "users": users,
        "bad": bad,
        "requests": int(total["Request Count"]),
        "failures": int(total["Failure Count"]),
        "p50_ms": number(total["50%"]),
        "p95_ms": number(total["95%"]),
        "p99_ms": number(total["99%"]),
        "rps": number(total["Requests/s"]),
        "mean_batch": decoded / max(1.0, batches_after - batches_before),
        "5xx": sum(v for k, v in delta.items() if k.startswith("5")),
    }
    detail = {
        "statuses": delta,
        "by_name": {
            name: {
                "requests": int(r["Request Count"]),
                "failures": int(r["Failure Count"]),
                "p50_ms": number(r["50%"]),
                "p95_ms": number(r["95%"]),
            }
            for name, r in rows.items()
            if name != "Aggregated"
        },
    }
    return row, detail


def number(cell: str) -> float | None:
    """Locust writes N/A where a phase had no answer to measure."""
    return None if cell == "N/A" else float(cell)


def in_process(
    checkpoint: Path, lines: list[np.ndarray], threads: int, count: int, decoder: str | None
) -> dict[str, Any]:
    """The decoder's own speed on the same lines, before any server runs: alone, and in batches
    of 16 as a server gets them (the lines in their order, each batch cropped to its widest and
    decoded until its longest ends). No HTTP, no other process: the ceiling of the figures."""
    torch.set_num_threads(threads)
    recognizer = load_model(checkpoint, decoder=decoder).recognizer  # as the servers read
    fitted = [recognizer.fit(line) for line in lines[:count]]
    recognizer.predict_fitted(fitted[:4])
    result: dict[str, Any] = {
        "threads": threads,
        "decoder": recognizer.decoder,
        "lines": len(fitted),
    }
    for batch in (1, 16):
        began = time.perf_counter()
        for start in range(0, len(fitted), batch):
            recognizer.predict_fitted(fitted[start : start + batch], batch)
        seconds = (time.perf_counter() - began) / len(fitted)
        result[f"batch{batch}_ms_per_line"] = seconds * 1000
        result[f"batch{batch}_lines_per_s"] = 1 / seconds
    return result


def measure(
    checkpoint: Path,
    settings: Settings,
    threads: int,
    flags: list[str],
    folder: Path,
    decoder: str | None,
) -> dict[str, Any]:
    images = folder / "images"
    images.mkdir()
    pngs = []
    lines = test_lines(checkpoint, settings.lines)
    reference = in_process(checkpoint, lines, threads, settings.in_process_lines, decoder)
    print(f"in process: {reference}")
    for i, line in enumerate(lines):
        Image.fromarray(line).save(images / f"{i:04d}.png")
        pngs.append((images / f"{i:04d}.png").read_bytes())
    rows, details = [], []
    with contextlib.ExitStack() as stack:
        servers = {
            mode: stack.enter_context(
                server(checkpoint, [*flags, "--max-batch", str(b)], folder / f"{mode}.log")
            )
            for mode, b in MODES.items()
        }
        described = httpx.get(f"{servers['on'][0]}/v1/model").json()
        limits = described["limits"]
        options = ["--images", str(images), "--max-upload-bytes", str(limits["max_upload_bytes"])]
        for url, _ in servers.values():
            warm_up(url, pngs)
        plan = [(mode, count, 0.0) for count in settings.users for mode in MODES]
        plan.append(("on", min(max(settings.users), BAD_USERS), BAD_FRACTION))
        for mode, count, bad in plan:
            url, _ = servers[mode]
            out = folder / f"{mode}-{count}-{bad}"
            row, detail = phase(mode, url, count, bad, settings.seconds, options, out)
            print_table([row])
            rows.append(row)
            details.append(detail)
        ended = {mode: process.poll() for mode, (_, process) in servers.items()}
    return {
        "decoder": described["decoder"],
        "rows": rows,
        "details": details,
        "servers_ended": ended,
        "limits": limits,
        "in_process": reference,
    }


def targets(rows: list[dict[str, Any]], ended: dict[str, int | None]) -> dict[str, Any]:
    clean = {(r["batching"], r["users"]): r for r in rows if r["bad"] == 0}
    on, off, one = clean.get(("on", 32)), clean.get(("off", 32)), clean.get(("on", 1))
    result: dict[str, Any] = {
        "zero_5xx": all(r["5xx"] == 0 for r in rows),
        "no_server_ended": all(code is None for code in ended.values()),
    }
    if on and off and on["rps"] and off["rps"]:
        result["rps_32_users_on_over_off"] = on["rps"] / off["rps"]
        result["rps_ratio_at_least_3"] = on["rps"] >= 3 * off["rps"]
    if on:
        result["p95_32_users_on_under_1s"] = (on["p95_ms"] or float("inf")) < 1000
    if one:
        result["p50_1_user_under_50ms"] = (one["p50_ms"] or float("inf")) < 50
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--checkpoint", required=True, type=Path)
    parser.add_argument("--seconds", type=int, help="length of each phase (default: 20)")
    parser.add_argument("--threads", type=int, help="the servers' torch threads")
    parser.add_argument("--max-wait-ms", type=float, help="the batching server's max wait")
    parser.add_argument("--decoder", choices=DECODERS, help="the servers' (default: theirs)")
    parser.add_argument("--note", default="", help="what else ran on the machine, for the JSON")
    add_arguments(parser)
    args = parser.parse_args(argv)
    threads = args.threads or default_threads()  # the servers' default, stated
    flags = [f"--threads={threads}"]
    if args.decoder:
        flags.append(f"--decoder={args.decoder}")
    if args.max_wait_ms is not None:
        flags.append(f"--max-wait-ms={args.max_wait_ms}")
    if not args.checkpoint.is_file():
        sys.exit(f"error: {args.checkpoint}: no such checkpoint")
    settings = SMOKE if args.smoke else FULL
    if args.seconds:
        settings = dataclasses.replace(settings, seconds=args.seconds)
    load_before = machine()
    with tempfile.TemporaryDirectory() as folder:
        measured = measure(args.checkpoint, settings, threads, flags, Path(folder), args.decoder)
    rows = measured["rows"]
    print()
    print_table(rows)
    results = {
        "note": "Locust (FastHttpUser, closed loop: each user posts its next line as soon as "
        "its answer is in) against `text-recognizer serve` on loopback, on the same cores; "
        f"{settings.lines} lines of the synthetic test split, multipart PNG; latencies end to end "
        "over HTTP in ms (Locust rounds those over 100 ms to 2 significant figures). The bad phase "
        f"sends {BAD_FRACTION:.0%} bad inputs: not an image, too many bytes, too many pixels, "
        f"truncated; each must get its 4xx. {args.note}".strip(),
        "checkpoint": checkpoint_name(args.checkpoint),
        "decoder": measured["decoder"],
        "seconds_per_phase": settings.seconds,
        "servers": {mode: {"max_batch": b, "flags": flags} for mode, b in MODES.items()},
        "limits": measured["limits"],
        "in_process": measured["in_process"],
        "rows": rows,
        "details": measured["details"],
        "servers_ended": measured["servers_ended"],
        "targets": targets(rows, measured["servers_ended"]),
        "machine_before": load_before,
        "machine_after": machine(),
    }
    print(json.dumps(results["targets"], indent=2))
    write("serve", results, results_folder(args))


if __name__ == "__main__":
    main()
