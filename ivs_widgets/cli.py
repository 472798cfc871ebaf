"""``ivs-sandbox``: run the local IVS Chat sandbox in the foreground, for boto3 and the AWS CLI.

It prints the endpoints and the ``export`` lines another shell needs, then a ``ready`` line once
both endpoints accept connections (scripts and tests wait for that line, not for a delay).
Ctrl-C or SIGTERM closes every connection and exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import shlex
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from ivs_widgets import constants as c

if TYPE_CHECKING:
    from ivs_widgets.sandbox import Sandbox

#: LocalStack's port: tools that already talk to a local AWS stand-in often expect it.
DEFAULT_PORT = 4566
READY = "ivs-sandbox ready"
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="ivs-sandbox", description="A local Amazon IVS Chat (control plane and messaging WebSocket).")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to bind (default: 127.0.0.1; the credentials are public, keep it local)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT,
                        help=f"control-plane (HTTP) port, 0 picks a free one (default: {DEFAULT_PORT})")
    parser.add_argument("--messaging-port", type=int, default=0,
                        help="messaging (WebSocket) port (default: 0, a free one)")
    parser.add_argument("--region", default=c.SANDBOX_REGION, help=f"region to emulate (default: {c.SANDBOX_REGION})")
    parser.add_argument("--account-id", default=c.SANDBOX_ACCOUNT_ID,
                        help=f"account id in ARNs (default: {c.SANDBOX_ACCOUNT_ID})")
    parser.add_argument("--state", type=Path, metavar="FILE",
                        help="sqlite file keeping rooms and logging configurations across restarts")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every request")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    from ivs_widgets.sandbox import Sandbox  # after parsing, so that ``--help`` answers at once

    sandbox = Sandbox(host=args.host, port=args.port, messaging_port=args.messaging_port, region=args.region,
                      account_id=args.account_id, state_path=args.state)
    if args.host not in _LOOPBACK:
        print(f"warning: binding {args.host}: anyone who can reach it can use the sandbox's public credentials",
              file=sys.stderr)
    try:
        asyncio.run(_serve(sandbox, args.state))
    except OSError as exc:  # most often: the port is taken
        print(f"ivs-sandbox: cannot listen on {args.host}: {exc.strerror or exc} "
              "(choose another --port / --messaging-port, or 0 for a free one)", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # where the loop cannot handle signals itself (Windows)
        pass
    print("ivs-sandbox stopped", flush=True)
    return 0


async def _serve(sandbox: Sandbox, state: Path | None) -> None:
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(signum, sandbox.request_stop)
        except NotImplementedError:  # Windows: Ctrl-C arrives as KeyboardInterrupt instead
            pass
    await sandbox.serve(ready=lambda: _announce(sandbox, state))


def _announce(sandbox: Sandbox, state: Path | None) -> None:
    lines = [
        f"control plane (ivschat API): {sandbox.control_endpoint}",
        f"messaging (WebSocket):       {sandbox.messaging_endpoint}",
        f"region:                      {sandbox.region}",
        f"account:                     {sandbox.config.account_id}",
        f"state:                       {state or 'in memory (lost on exit; use --state FILE to keep it)'}",
        "",
        "# Point boto3 and the AWS CLI at it from another shell (local stand-in credentials, not AWS's):",
        *(f"export {name}={shlex.quote(value)}" for name, value in sandbox.environment().items()),
        "",
        f"{READY} (Ctrl-C to stop)",
    ]
    print("\n".join(lines), flush=True)
