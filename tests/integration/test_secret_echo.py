"""A database that echoes the credentials it was sent (in a 401 body) must not put them into
Hallmark's errors and logs: each sink scrubs its own secret from the server's words."""

import base64
import http.server
import threading

import pytest

from daq.errors import HallmarkError
from daq.sinks import InfluxV1Sink, InfluxV2Sink

PASSWORD = "s3cret-Pa55"
TOKEN = "tok-ABCDEF0123456789"


class Echo(http.server.BaseHTTPRequestHandler):
    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        if self.path.startswith("/ping"):  # alive; it is the write that is refused
            self.send_response(204)
            self.send_header("X-Influxdb-Version", "1.8.10")
            self.end_headers()
            return
        body = f'{{"error": "bad auth {self.headers.get("Authorization")}"}}'.encode()
        self.send_response(401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer

    def log_message(self, *args: object) -> None:
        return


@pytest.fixture
def echo_url():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        thread.join(5)
        server.server_close()


def refused(sink) -> str:
    with pytest.raises(HallmarkError) as info:
        sink.open()
        sink.write(["m,t=a v=1 1"])
    sink.close()
    return str(info.value)


def test_v1_password_and_basic_auth_are_scrubbed(echo_url):
    message = refused(InfluxV1Sink(echo_url, "db", username="lab", password=PASSWORD,
                                   create_database=False))  # fmt: skip
    basic = base64.b64encode(f"lab:{PASSWORD}".encode()).decode()
    assert "***" in message
    assert PASSWORD not in message and basic not in message


def test_v2_token_is_scrubbed(echo_url):
    message = refused(InfluxV2Sink(echo_url, "bucket", "org", TOKEN))
    assert "***" in message and TOKEN not in message
