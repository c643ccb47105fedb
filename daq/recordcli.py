"""``daq record`` and ``daq replay``: byte transcripts of an instrument session.

    daq record tcp --target HOST:PORT --out FILE [--listen 127.0.0.1:0]
                   [--protocol modbus-tcp|raw] [--duration S] [--note TEXT]
    daq record serial --device URL --out FILE [--baudrate 9600] [--link PATH]
                      [--duration S] [--note TEXT]
    daq replay FILE [--listen 127.0.0.1:0 | --pty [--link PATH]] [--strict] [--realtime]

``record`` starts a proxy (daq/recorder.py), prints one JSON line with the address the daemon
should use instead of the instrument's, and records until SIGTERM/SIGINT or ``--duration``.
``replay`` serves a transcript from the instrument's side (simulators/replay.py) and prints one
JSON line with its address. The replay server lives with the simulators, which the core may not
import, so the composition root (daq/cli.py) hands it in: ``run_command(args, serve_replay)``.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Protocol

from daq.errors import HallmarkError
from daq.progress import ProgressMode
from daq.recorder import SerialRecordingProxy, TcpRecordingProxy

__all__ = ["ServeReplay", "add_commands", "run_command"]

_WAIT_SLICE_S = 0.2


class ServeReplay(Protocol):
    """The replay entry point (``simulators.replay.serve_replay``)."""

    def __call__(
        self,
        path: Path,
        *,
        listen: str | None = None,
        pty: bool = False,
        link: Path | None = None,
        strict: bool = False,
        realtime: bool = False,
        progress: ProgressMode = "auto",
    ) -> int: ...


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``record`` and ``replay`` to the ``daq`` command's subparsers."""
    rec = sub.add_parser("record", help="record an instrument session's bytes through a proxy")
    rsub = rec.add_subparsers(dest="record_transport", required=True, metavar="TRANSPORT")

    tcp = rsub.add_parser("tcp", help="a TCP instrument (Modbus TCP, a serial server...)")
    tcp.add_argument("--target", required=True, help="the instrument, HOST:PORT")
    tcp.add_argument("--listen", default="127.0.0.1:0", help="where the daemon connects")
    tcp.add_argument("--protocol", choices=("modbus-tcp", "raw"), default="raw")

    ser = rsub.add_parser("serial", help="a serial instrument, through a pty the daemon opens")
    ser.add_argument("--device", required=True, help="pyserial URL: /dev/ttyUSB0, socket://...")
    ser.add_argument("--baudrate", type=int, default=None, help="the device's baud rate")
    ser.add_argument("--link", type=Path, default=None, help="a symlink to the pty to publish")

    for p in (tcp, ser):
        p.add_argument("--out", required=True, type=Path, help="the transcript (.jsonl) to write")
        p.add_argument("--duration", type=float, default=None, help="stop after S seconds")
        p.add_argument("--note", default="", help="free text kept in the transcript's header")

    rep = sub.add_parser("replay", help="serve a recorded transcript as the instrument")
    rep.add_argument("file", type=Path, help="the transcript (.jsonl)")
    where = rep.add_mutually_exclusive_group()
    where.add_argument("--listen", default=None, help="TCP address (default 127.0.0.1:0)")
    where.add_argument("--pty", action="store_true", help="serve on a pty instead of TCP")
    rep.add_argument("--link", type=Path, default=None, help="with --pty: symlink to the pty")
    rep.add_argument("--strict", action="store_true", help="end with exit 1 at a mismatch")
    rep.add_argument("--realtime", action="store_true", help="keep the recorded reply delays")
    rep.add_argument(
        "--progress",
        action="store_const",
        const="on",
        default="auto",
        help="report the exchanges played on stderr even when it is not a terminal",
    )
    test = rep.add_argument_group("turn the session into a test (SESSION.expected.json)")
    test.add_argument("--make-test", metavar="DRIVER", default=None,
                      help="replay to this driver and keep what it read")  # fmt: skip
    test.add_argument("--options", default="{}", help="the driver's options, as JSON")
    test.add_argument("--polls", type=int, default=1, help="polls after connecting")
    test.add_argument(
        "--address",
        default=None,
        help="the driver's address form, e.g. 'TCPIP::{host}::{port}::SOCKET'",
    )


def run_command(args: argparse.Namespace, serve_replay: ServeReplay) -> int:
    """Run ``record`` or ``replay``; returns the exit status."""
    if args.command == "replay":
        if args.link is not None and not args.pty:
            print("error: --link goes with --pty", file=sys.stderr)
            return 2
        return serve_replay(
            args.file,
            listen=args.listen,
            pty=args.pty,
            link=args.link,
            strict=args.strict,
            realtime=args.realtime,
            progress=args.progress,
        )
    return _record(args)


def _record(args: argparse.Namespace) -> int:
    proxy: TcpRecordingProxy | SerialRecordingProxy
    try:
        if args.record_transport == "tcp":
            proxy = TcpRecordingProxy(
                args.target, args.out, listen=args.listen, protocol=args.protocol, note=args.note
            )
        else:
            proxy = SerialRecordingProxy(
                args.device, args.out, baudrate=args.baudrate, link=args.link, note=args.note
            )
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.duration is not None and args.duration <= 0:
        print("error: --duration must be a positive number of seconds", file=sys.stderr)
        return 2
    stop = threading.Event()

    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        try:
            address = proxy.start()
        except (OSError, HallmarkError) as exc:
            print(f"error: cannot start recording: {exc}", file=sys.stderr)
            proxy.stop()
            return 1
        try:
            line: dict[str, object] = {
                "record": args.record_transport,
                "address": address,
                "out": str(args.out),
            }
            if isinstance(proxy, TcpRecordingProxy):
                line.update({"host": proxy.host, "port": proxy.port, "target": args.target})
            else:
                line.update({"pty": proxy.pty_path, "device": args.device})
            print(json.dumps(line), flush=True)
            deadline = None if args.duration is None else time.monotonic() + args.duration
            while not stop.wait(_WAIT_SLICE_S):
                if deadline is not None and time.monotonic() >= deadline:
                    break
        finally:
            proxy.stop()
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
    writer = proxy.writer
    summary = {"chunks": 0, "tx_bytes": 0, "rx_bytes": 0}
    if writer is not None:
        summary = {
            "chunks": writer.chunks,
            "tx_bytes": writer.bytes["tx"],
            "rx_bytes": writer.bytes["rx"],
        }
    print(json.dumps({"recorded": str(args.out), **summary}), flush=True)
    for problem in proxy.errors:
        print(f"warning: {problem}", file=sys.stderr)
    return 0
