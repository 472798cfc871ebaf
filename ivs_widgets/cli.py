"""``ivs-sandbox``: run the local IVS Chat and IVS sandbox in the foreground, for boto3 and the AWS CLI.

It prints the endpoints and the ``export`` lines another shell needs, then a ``ready`` line once
both endpoints accept connections (scripts and tests wait for that line, not for a delay).
Ctrl-C or SIGTERM closes every connection and exits 0.

``--workshop`` serves a room full of attendees: TLS, credentials only the presenter sees, and a
room opened to attendees whose URL, room code and certificate fingerprint it prints to share.
``--network`` (which implies it) listens on every interface. ``ivs-sandbox reset`` empties a
running sandbox between two workshop sessions.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import shlex
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ivs_widgets.protocol import facts as c
from ivs_widgets.sandbox.core import validation
from ivs_widgets.sandbox.core.errors import ApiError
from ivs_widgets.sandbox.ivs.rtmp import RTMP_PORT
from ivs_widgets.sandbox.workshop.models import DEFAULT_MAX_TOKENS, MAX_TOKENS_LIMIT, check_invite

if TYPE_CHECKING:
    from ivs_widgets.sandbox import Sandbox

#: LocalStack's port: tools that already talk to a local AWS stand-in often expect it.
DEFAULT_PORT = 4566
READY = "ivs-sandbox ready"
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}
#: Tasks the banner started (kept referenced until done).
_background: set[asyncio.Task[None]] = set()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="ivs-sandbox", description="A local Amazon IVS Chat (control plane and messaging WebSocket) and "
        "Amazon IVS control plane (channels, stream keys, streams).")
    parser.add_argument("--host", default=None,
                        help="address to bind (default: 127.0.0.1, or 0.0.0.0 with --network); an address "
                             "beyond this machine needs --network")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT,
                        help=f"control-plane (HTTP) port, 0 picks a free one (default: {DEFAULT_PORT})")
    parser.add_argument("--messaging-port", type=int, default=0,
                        help="messaging (WebSocket) port (default: 0, a free one)")
    parser.add_argument("--ingest-port", type=int, default=None,
                        help=f"RTMP ingest port encoders publish to, 0 picks a free one (default: {RTMP_PORT}, "
                             "or a free one while another program holds it)")
    parser.add_argument("--region", default=c.SANDBOX_REGION, help=f"region to emulate (default: {c.SANDBOX_REGION})")
    parser.add_argument("--account-id", default=c.SANDBOX_ACCOUNT_ID,
                        help=f"account id in ARNs (default: {c.SANDBOX_ACCOUNT_ID})")
    parser.add_argument("--state", type=Path, metavar="FILE",
                        help="sqlite file keeping rooms, logging configurations, channels and stream keys across "
                             "restarts")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every request")
    parser.add_argument("--max-connections", type=int, default=c.QUOTA_CONCURRENT_CONNECTIONS, metavar="N",
                        help="the account quota of concurrent chat connections, all rooms together "
                             f"(default: {c.QUOTA_CONCURRENT_CONNECTIONS:,}, as on IVS)")
    parser.add_argument("--no-rate-quotas", dest="rate_quotas", action="store_false",
                        help="do not throttle the control plane at IVS Chat's per-operation TPS quotas "
                             "(CreateChatToken 200, room operations 5, ...): for load generators")
    parser.add_argument("--realistic-log-delivery", dest="log_delivery_scale", type=float, nargs="?", const=1.0,
                        default=None, metavar="SCALE",
                        help="deliver chat logs after the delays AWS documents (S3 5 minutes, CloudWatch Logs and "
                             "Firehose 10 s), times SCALE if given (0.01: a hundred times faster); default: ~1 s")
    parser.add_argument("--test-stream", action="store_true",
                        help="also serve a live HLS test stream (clock and tone) for the player; in workshop mode "
                             "it is the room's stream")
    parser.add_argument("--go-live", action="store_true",
                        help="publish the built-in clock-and-tone source to a new 'test-card' channel over RTMP, "
                             "as an encoder would, and print its playback URL")
    workshop = parser.add_argument_group("workshop", "one sandbox for a room full of attendees")
    workshop.add_argument("--workshop", action="store_true",
                          help="TLS, presenter-only credentials, and a room opened to attendees")
    workshop.add_argument("--network", action="store_true",
                          help="listen on every interface so attendees on your network can join (implies --workshop)")
    workshop.add_argument("--certfile", type=Path, help="TLS certificate chain (PEM) instead of the sandbox's own CA")
    workshop.add_argument("--keyfile", type=Path, help="private key (PEM) of --certfile")
    workshop.add_argument("--room-name", default="Workshop", help="the room opened to attendees (default: Workshop)")
    workshop.add_argument("--attendee-capabilities", default="SEND_MESSAGE", metavar="LIST",
                          help="comma-separated capabilities attendees get (default: SEND_MESSAGE)")
    workshop.add_argument("--max-tokens", type=int, default=DEFAULT_MAX_TOKENS,
                          help=f"chat tokens the room code may mint in all (default: {DEFAULT_MAX_TOKENS})")
    args = parser.parse_args(argv)
    args.workshop = args.workshop or args.network
    if args.host is None:
        args.host = "0.0.0.0" if args.network else "127.0.0.1"
    elif args.host not in _LOOPBACK and not args.network:
        parser.error(f"--host {args.host} lets other machines in: add --network (TLS and presenter-only "
                     "credentials); without it the sandbox's public credentials would be open to them")
    if args.max_connections < 1:
        parser.error("--max-connections must be at least 1")
    if args.log_delivery_scale is not None and not args.log_delivery_scale > 0:
        parser.error("--realistic-log-delivery SCALE must be above 0")
    if bool(args.certfile) != bool(args.keyfile):
        parser.error("--certfile and --keyfile go together")
    # The room is opened without the HTTP route's checks: the same rules, before anything starts.
    args.attendee_capabilities = [cap.strip() for cap in args.attendee_capabilities.split(",") if cap.strip()]
    known = validation.operation("CreateChatToken").input_shape.members["capabilities"].member.enum
    unknown = [cap for cap in args.attendee_capabilities if cap not in known]
    if unknown:
        parser.error(f"--attendee-capabilities: unknown {', '.join(unknown)} (choose from {', '.join(known)})")
    try:
        check_invite(args.attendee_capabilities, args.max_tokens)
    except ApiError as error:
        if "maxTokens" in error.fields:
            parser.error(f"--max-tokens must be from 1 to {MAX_TOKENS_LIMIT}")
        parser.error(f"--attendee-capabilities: {error.message}")
    try:
        validation.validate(validation.operation("CreateRoom").input_shape, {"name": args.room_name})
    except ApiError as error:
        parser.error(f"--room-name: {error.message}")
    return args


def parse_reset_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="ivs-sandbox reset", description="Disconnect everyone and delete every room, room code and logging "
        "configuration of a running sandbox. Uses the export lines it printed (AWS_ENDPOINT_URL_IVSCHAT, "
        "AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_CA_BUNDLE).")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["reset"]:
        return reset(argv[1:])
    args = parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    from ivs_widgets.sandbox import Sandbox  # after parsing, so that ``--help`` answers at once
    from ivs_widgets.sandbox.stream.models import StreamError

    sandbox = Sandbox(host=args.host, port=args.port, messaging_port=args.messaging_port,
                      ingest_port=args.ingest_port, region=args.region,
                      account_id=args.account_id, state_path=args.state, workshop=args.workshop,
                      certfile=args.certfile, keyfile=args.keyfile, rate_quotas=args.rate_quotas,
                      max_connections=args.max_connections, log_delivery_scale=args.log_delivery_scale)
    try:
        if args.test_stream:
            sandbox.start_test_stream()
        asyncio.run(_serve(sandbox, args))
    except OSError as exc:  # most often: the port is taken
        print(f"ivs-sandbox: cannot listen on {args.host}: {exc.strerror or exc} "
              "(choose another --port / --messaging-port / --ingest-port, or 0 for a free one)", file=sys.stderr)
        return 1
    except StreamError as exc:
        print(f"ivs-sandbox: cannot start the test stream: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # where the loop cannot handle signals itself (Windows)
        pass
    finally:
        sandbox.stop()  # the test stream, if any
    print("ivs-sandbox stopped", flush=True)
    return 0


def reset(argv: list[str]) -> int:
    parse_reset_args(argv)
    from ivs_widgets.workshop import Presenter, WorkshopError

    try:
        presenter = Presenter.from_environment()
        presenter.reset()
    except (RuntimeError, WorkshopError) as exc:
        print(f"ivs-sandbox reset: {exc}", file=sys.stderr)
        return 1
    print(f"reset {presenter.url}: no rooms, room codes or connections left")
    return 0


async def _serve(sandbox: Sandbox, args: argparse.Namespace) -> None:
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(signum, sandbox.request_stop)
        except NotImplementedError:  # Windows: Ctrl-C arrives as KeyboardInterrupt instead
            pass
    await sandbox.serve(ready=lambda: _announce(sandbox, args))


def _open_workshop_room(sandbox: Sandbox, args: argparse.Namespace, playback_url: str | None) -> dict[str, Any]:
    """The room attendees join: the one of that name still open from a previous run (``--state``), or a new one."""
    rooms = sandbox.control.ListRooms({"name": args.room_name})["rooms"]
    for invite in sandbox.workshop.invites():
        if invite["open"] and any(invite["roomArn"] == room["arn"] for room in rooms):
            return sandbox.workshop.set_playback_url(invite["code"], playback_url) if playback_url else invite
    room_arn = rooms[0]["arn"] if rooms else sandbox.control.CreateRoom({"name": args.room_name})["arn"]
    return sandbox.workshop.open_room(room_arn, args.attendee_capabilities, args.max_tokens,
                                      playback_url=playback_url)


def _go_live(sandbox: Sandbox) -> str:
    """Feed a new channel the built-in source; a ``test card live:`` line follows once it is playable."""
    feed = sandbox.start_feed()

    async def announce_live() -> None:
        try:
            await sandbox.ingest.wait_for_segments(feed.channel_arn, timeout=60)
        except TimeoutError:
            print(f"ivs-sandbox: the test card did not go live:\n{feed.log_tail()}", file=sys.stderr, flush=True)
            return
        print(f"test card live: {feed.playback_url}", flush=True)

    _background.add(task := asyncio.get_running_loop().create_task(announce_live()))
    task.add_done_callback(_background.discard)
    return feed.channel_arn


def _log_destinations(sandbox: Sandbox) -> str:
    """Where chat logs go when that is not simply the local folders at once."""
    apis = {"s3": "S3", "cloudWatchLogs": "CloudWatch Logs"}
    where = [f"{apis[kind]} to {url}" for kind, url in sandbox.log_apis.endpoints.items()]
    scale = sandbox.config.log_delivery_scale
    if scale:
        where.append("after AWS's delays" + ("" if scale == 1 else f" x{scale:g}"))
    return ", ".join(where)


def _announce(sandbox: Sandbox, args: argparse.Namespace) -> None:
    state = args.state
    lines = [
        f"control plane (ivschat, ivs): {sandbox.control_endpoint}",
        f"messaging (WebSocket):        {sandbox.messaging_endpoint}",
        f"RTMP ingest (ivs):            {sandbox.rtmp_url}  (server; the stream key follows it)",
        f"region:                       {sandbox.region}",
        f"account:                      {sandbox.config.account_id}",
        f"state:                        {state or 'in memory (lost on exit; use --state FILE to keep it)'}",
        f"connections:                  up to {min(sandbox.connection_capacity, sandbox.config.max_connections):,} "
        f"(file descriptors: {sandbox.descriptor_limit:,}; account quota: {sandbox.config.max_connections:,})",
        *([f"test stream (HLS):            {sandbox.test_stream_url_for(args.host)}"] if args.test_stream else []),
        *([f"test card channel:            {_go_live(sandbox)}"] if args.go_live else []),
        *([f"chat logs:                    {_log_destinations(sandbox)}"]
          if sandbox.log_apis.endpoints or sandbox.config.log_delivery_scale else []),
        "",
        "# The presenter's shell only: these credentials control the sandbox. Keep them to yourself."
        if args.workshop else
        '# Point boto3, the AWS CLI and connect("aws") at it from another shell (local stand-in credentials):',
        *(f"export {name}={shlex.quote(value)}" for name, value in sandbox.environment().items()),
        "",
    ]
    if args.workshop:
        from ivs_widgets.sandbox.core import tls

        host = tls.lan_address() if args.host in ("0.0.0.0", "::", "") else args.host
        invite = _open_workshop_room(sandbox, args, sandbox.test_stream_url_for(host) if args.test_stream else None)
        assert sandbox.certificate is not None
        lines += [
            f"# Share with attendees (room {invite['roomName']!r}, capabilities {', '.join(invite['capabilities'])}):",
            f"url:         {sandbox.control_endpoint_for(host)}",
            f"room code:   {invite['code']}",
            f"fingerprint: {sandbox.certificate.fingerprint}",
            f"rtmp ingest: {sandbox.rtmp_url_for(host)}",
            *([f"stream:      {invite['playbackUrl']}"] if "playbackUrl" in invite else []),
            "",
        ]
    lines.append(f"{READY} (Ctrl-C to stop)")
    print("\n".join(lines), flush=True)
