"""The daemon as a service: sd_notify messages on a real datagram socket, and `daq status`
reading the status file a running daemon writes (no network listener)."""

import os
import signal
import socket
import subprocess
import sys
import time

from simulators.watlow_f4t import running_chamber


def test_notify_and_status(tmp_path):
    sock_path = tmp_path / "notify.sock"
    messages: list[str] = []
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock, running_chamber(seed=2) as sim:
        sock.bind(str(sock_path))
        sock.settimeout(0.2)
        config = tmp_path / "bench.toml"
        config.write_text(
            'schema = 1\n[bench]\nid = "svc"\nhealth_interval = 0.5\n[journal]\npath = "j.db"\n'
            '[[instrument]]\nname = "c1"\ndriver = "watlow_f4t"\n'
            f'address = "{sim.address}"\npoll_interval = 0.2\n'
        )
        env = {**os.environ, "NOTIFY_SOCKET": str(sock_path)}
        proc = subprocess.Popen(
            [sys.executable, "-m", "daq", "run", str(config)],
            env=env, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and sum("WATCHDOG=1" in m for m in messages) < 2:
                try:
                    messages.append(sock.recv(4096).decode())
                except TimeoutError:
                    continue
            running = subprocess.run(
                [sys.executable, "-m", "daq", "status", str(config)],
                capture_output=True, text=True, timeout=30, check=False,
            )  # fmt: skip
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
        while True:
            try:
                messages.append(sock.recv(4096).decode())
            except TimeoutError:
                break
    assert messages[0].startswith("READY=1\nSTATUS=bench svc: 1 instrument(s)")
    assert "STOPPING=1" in messages
    assert running.returncode == 0, running.stderr
    assert running.stdout.startswith("bench svc: running")
    assert "c1" in running.stdout and "online" in running.stdout
    status_file = tmp_path / "j.db.status.json"
    assert oct(status_file.stat().st_mode & 0o777) == "0o600"
    stopped = subprocess.run(
        [sys.executable, "-m", "daq", "status", str(config)],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert stopped.stdout.startswith("bench svc: STOPPED")


def test_status_without_a_daemon(tmp_path):
    config = tmp_path / "bench.toml"
    config.write_text('schema = 1\n[bench]\nid = "svc"\n[journal]\npath = "j.db"\n')
    result = subprocess.run(
        [sys.executable, "-m", "daq", "status", str(config)],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert result.returncode == 1
    assert "no status from a daemon of this bench yet" in result.stdout
