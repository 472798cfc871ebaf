"""How long until the sandbox answers, measured against baselines taken in the same run.

    python benchmarks/startup.py [--runs 10] [--profile]

Figures (median and p90, milliseconds):
- ``ivs-sandbox --port 0``: process spawn → ready line, and spawn → first successful signed
  request (boto3 ``ListRooms`` with the printed settings). This is what a user waits for.
- ``Sandbox().start()`` in a fresh interpreter (imports included: a notebook's first cell), and
  again in a process that has imported everything already (the pure cost of binding and serving).
- Baselines: ``python -c pass`` (the interpreter floor nothing can beat) and a minimal tornado app
  started the same way and answering one GET. The ratio is against the tornado app: it pays the same
  interpreter and HTTP-server start-up, so what is left is the sandbox's own cost.
The target is under 500 ms from spawn to the first answered request. ``--profile`` lists the
imports that dominate (``python -X importtime``).
"""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import boto3

from ivs_widgets.cli import READY
from ivs_widgets.sandbox import Sandbox

TARGET_MS = 500.0
IVS_SANDBOX = str(Path(sys.executable).with_name("ivs-sandbox"))
TORNADO_APP = """
import tornado.ioloop, tornado.web, tornado.netutil, tornado.httpserver
class Hello(tornado.web.RequestHandler):
    def get(self): self.write("ok")
sockets = tornado.netutil.bind_sockets(0, "127.0.0.1")
tornado.httpserver.HTTPServer(tornado.web.Application([(r"/", Hello)])).add_sockets(sockets)
print(sockets[0].getsockname()[1], flush=True)
tornado.ioloop.IOLoop.current().start()
"""
COLD_START = """
import time; t0 = time.perf_counter()
from ivs_widgets.sandbox import Sandbox
t1 = time.perf_counter(); sandbox = Sandbox().start(); t2 = time.perf_counter(); sandbox.stop()
print((t1 - t0) * 1000, (t2 - t1) * 1000)
"""


def sandbox_cli(session: boto3.session.Session) -> tuple[float, float]:
    """(spawn → ready line, spawn → first signed ListRooms answered), in ms."""
    start = time.perf_counter()
    process = subprocess.Popen([IVS_SANDBOX, "--port", "0"], stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    env: dict[str, str] = {}
    for line in process.stdout:
        if line.startswith("export "):
            name, _, value = shlex.split(line.removeprefix("export "))[0].partition("=")
            env[name] = value
        if line.startswith(READY):
            break
    else:
        raise RuntimeError("ivs-sandbox exited before it was ready")
    ready = time.perf_counter()
    client = session.client("ivschat", endpoint_url=env["AWS_ENDPOINT_URL_IVSCHAT"],
                            region_name=env["AWS_DEFAULT_REGION"], aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"])
    client.list_rooms()
    answered = time.perf_counter()
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=15)
    return (ready - start) * 1000, (answered - start) * 1000


def python_pass() -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    return (time.perf_counter() - start) * 1000


def tornado_app() -> float:
    """Spawn → a minimal tornado app answered one GET, in ms."""
    start = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-c", TORNADO_APP], stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    port = int(process.stdout.readline())
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=15) as response:
        response.read()
    elapsed = (time.perf_counter() - start) * 1000
    process.terminate()
    process.wait(timeout=15)
    return elapsed


def cold_start() -> tuple[float, float]:
    """(import, start()) in a fresh interpreter, in ms."""
    out = subprocess.run([sys.executable, "-c", COLD_START], check=True, capture_output=True, text=True).stdout
    imported, started = out.split()
    return float(imported), float(started)


def warm_start() -> float:
    start = time.perf_counter()
    sandbox = Sandbox().start()
    elapsed = (time.perf_counter() - start) * 1000
    sandbox.stop()
    return elapsed


def summary(values: list[float]) -> tuple[float, float]:
    ordered = sorted(values)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]


def measure(name: str, runs: int, fn: Callable[[], float]) -> float:
    values = [fn() for _ in range(runs)]
    median, p90 = summary(values)
    print(f"  {name:<50} median {median:7.1f} ms   p90 {p90:7.1f} ms", flush=True)
    return median


def profile(top: int = 10, runs: int = 5) -> None:
    """Print where importing the CLI's modules spends its time, summed by top-level package.

    Each package's figure is its best over ``runs`` fresh interpreters: load from other processes
    only ever adds time, so the minimum is the steadiest estimate.
    """
    best: dict[str, int] = {}
    for _ in range(runs):
        err = subprocess.run([sys.executable, "-X", "importtime", "-c", "import ivs_widgets.cli, ivs_widgets.sandbox"],
                             check=True, capture_output=True, text=True).stderr
        own: dict[str, int] = {}
        for line in err.splitlines()[1:]:  # "import time: self [us] | cumulative | imported package"
            self_us, _, module = line.split(":", 1)[1].split("|")
            package = module.strip().split(".")[0]
            own[package] = own.get(package, 0) + int(self_us)
        best = {package: min(micros, best.get(package, micros)) for package, micros in own.items()}
    print(f"\nimporting ivs_widgets.sandbox under -X importtime (best of {runs}): "
          f"{sum(best.values()) / 1000:.0f} ms; by package:")
    for package, micros in sorted(best.items(), key=lambda item: -item[1])[:top]:
        print(f"  {micros / 1000:7.1f} ms  {package}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--profile", action="store_true", help="also list the slowest imports")
    args = parser.parse_args()
    session = boto3.session.Session()
    sandbox_cli(session)  # warm the OS file cache and boto3's model loading; not counted
    print(f"start-up over {args.runs} runs ({sys.version.split()[0]}, {os.cpu_count()} CPUs)")

    print("baselines")
    floor = measure("python -c pass (spawn → exit)", args.runs, python_pass)
    tornado = measure("minimal tornado app (spawn → one GET answered)", args.runs, tornado_app)

    print("sandbox")
    cli = [sandbox_cli(session) for _ in range(args.runs)]
    for label, values in (("ivs-sandbox --port 0 (spawn → ready line)", [r for r, _ in cli]),
                          ("ivs-sandbox --port 0 (spawn → ListRooms answered)", [a for _, a in cli])):
        median, p90 = summary(values)
        print(f"  {label:<50} median {median:7.1f} ms   p90 {p90:7.1f} ms")
    first_answer = summary([a for _, a in cli])[0]
    cold = [cold_start() for _ in range(args.runs)]
    for label, values in (("fresh interpreter: import ivs_widgets.sandbox", [i for i, _ in cold]),
                          ("fresh interpreter: Sandbox().start()", [s for _, s in cold])):
        median, p90 = summary(values)
        print(f"  {label:<50} median {median:7.1f} ms   p90 {p90:7.1f} ms")
    measure("warm process: Sandbox().start()", args.runs, warm_start)

    verdict = "within" if first_answer < TARGET_MS else "OVER"
    print(f"\nivs-sandbox first answer: {first_answer:.0f} ms = {first_answer / tornado:.1f}x the minimal tornado "
          f"app, {first_answer / floor:.1f}x the bare interpreter; {verdict} the {TARGET_MS:.0f} ms target")
    if args.profile:
        profile()


if __name__ == "__main__":
    main()
