"""Files named by URL, fetched from a real HTTP server on 127.0.0.1: only from the hosts allowed
(and so only redirects within them: a server fetching any URL is an SSRF hole), within the size
limit (declared or streamed) and the time limit, every failure a clear client error."""

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from pdserving.errors import BadRequest, PayloadTooLarge
from pdserving.web.download import MAX_REDIRECTS, download, is_url
from tests.helpers.images import encode, text_image

PNG = encode(text_image())
MAX_BYTES = 100_000
TIMEOUT = 0.5
HOSTS = ("127.0.0.1",)


class Handler(BaseHTTPRequestHandler):
    """The routes below; ``server.seen`` records the paths asked for, ``server.stop`` ends the
    slow ones early at teardown."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        self.server.seen.append(self.path)
        self.close_connection = True
        route = self.path.strip("/").split("/")
        try:
            getattr(self, "route_" + route[0].replace(".", "_").replace("-", "_"),
                    self.route_missing)(*route[1:])
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client stopped reading: as it should

    def answer(self, status: int, body: bytes = b"", **headers):
        self.send_response(status)
        for name, value in {"Content-Length": str(len(body)), **headers}.items():
            self.send_header(name.replace("_", "-"), value)
        self.end_headers()
        self.wfile.write(body)

    def chunks(self, pieces, pause: float = 0.0):
        """A chunked body (no Content-Length) of ``pieces``, ``pause`` seconds apart."""
        self.send_response(200)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for piece in pieces:
            if self.server.stop.wait(pause):
                return
            self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")

    def route_ok_png(self):
        self.answer(200, PNG, Content_Type="image/png")

    def route_missing(self, *_):
        self.answer(404, b"no such file")

    def route_big(self):
        self.send_response(200)
        self.send_header("Content-Length", str(10 * MAX_BYTES))
        self.end_headers()  # and no body: the client must refuse from the header alone

    def route_chunked_big(self):
        self.chunks([b"x" * 16_384] * 60)  # ~1 MB, ten times the limit

    def route_slow(self):
        self.server.stop.wait(4 * TIMEOUT)  # nothing at all until long after the timeout
        self.answer(200, PNG)

    def route_slow_body(self):
        self.chunks([b"x" * 10] * 40, pause=0.1)  # 4 s of a byte trickle, each within timeout

    def route_slow_headers(self):
        self.wfile.write(b"HTTP/1.1 200 OK\r\n")
        for i in range(20):  # 2 s of header lines, each well within the read timeout
            if self.server.stop.wait(0.1):
                return
            self.wfile.write(b"X-Pad-%d: a\r\n" % i)
            self.wfile.flush()
        self.wfile.write(b"Content-Length: %d\r\n\r\n%s" % (len(PNG), PNG))

    def route_slow_hops(self, n):
        self.server.stop.wait(0.4 * TIMEOUT)  # each hop in time; all of them together, not
        n = int(n)
        self.answer(302, Location=f"/slow-hops/{n - 1}" if n else "/ok.png")

    def route_redirect_here(self):
        self.answer(302, Location="/ok.png")

    def route_redirect_away(self):
        self.answer(302, Location=f"http://localhost:{self.server.server_port}/ok.png")

    def route_redirect_to_file(self):
        self.answer(302, Location="file:///etc/passwd")

    def route_hops(self, n):
        n = int(n)
        self.answer(302, Location=f"/hops/{n - 1}" if n else "/ok.png")

    def route_loop(self):
        self.answer(302, Location="/loop")


@pytest.fixture(scope="module")
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True  # a handler still sleeping does not hold up the end
    httpd.seen, httpd.stop = [], threading.Event()
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    yield httpd
    httpd.stop.set()
    httpd.shutdown()
    httpd.server_close()
    thread.join(5)


@pytest.fixture
def url(server):
    """``url(path)``: the server's URL of ``path``; the paths asked for start afresh."""
    server.seen.clear()
    return lambda path, host="127.0.0.1": f"http://{host}:{server.server_port}{path}"


def fetch(target: str, hosts: tuple[str, ...] = HOSTS) -> bytes:
    return download(target, hosts, MAX_BYTES, TIMEOUT)


def refusal(target: str, hosts: tuple[str, ...] = HOSTS, error=BadRequest) -> str:
    with pytest.raises(error) as refused:
        fetch(target, hosts)
    return refused.value.message


def test_an_allowed_host_gives_the_body(url):
    assert fetch(url("/ok.png")) == PNG


def test_no_allowed_hosts_refuses_every_url(url, server):
    assert "--allow_url_hosts" in refusal(url("/ok.png"), hosts=())
    assert server.seen == []


def test_a_host_not_allowed_is_refused_unasked(url, server):
    message = refusal(url("/ok.png"), hosts=("localhost",))
    assert "'127.0.0.1'" in message and "--allow_url_hosts: localhost" in message
    assert server.seen == []


def test_user_info_does_not_disguise_the_host(url, server):
    message = refusal(url("/ok.png", host=f"127.0.0.1:{server.server_port}@localhost"))
    assert "'localhost'" in message
    assert server.seen == []


def test_a_redirect_to_another_host_is_refused(url, server):
    assert "'localhost'" in refusal(url("/redirect-away"))
    assert server.seen == ["/redirect-away"]  # the other host's URL was never asked for


def test_a_redirect_to_another_scheme_is_refused(url, server):
    refusal(url("/redirect-to-file"))
    assert server.seen == ["/redirect-to-file"]


def test_a_refused_scheme_is_named_in_the_message(url):
    assert "'file'" in refusal(url("/redirect-to-file"))


def test_a_redirect_on_the_same_host_is_followed(url, server):
    assert fetch(url("/redirect-here")) == PNG
    assert server.seen == ["/redirect-here", "/ok.png"]


def test_redirects_up_to_the_limit_are_followed(url):
    assert fetch(url(f"/hops/{MAX_REDIRECTS - 1}")) == PNG


def test_a_redirect_loop_is_refused(url, server):
    assert refusal(url("/loop")) == f"file URL redirects more than {MAX_REDIRECTS} times"
    assert len(server.seen) == MAX_REDIRECTS + 1


def test_a_declared_length_over_the_limit_is_refused(url):
    message = refusal(url("/big"), error=PayloadTooLarge)
    assert message == f"file URL's body is {10 * MAX_BYTES} bytes, over the limit of {MAX_BYTES}"


def test_a_streamed_body_over_the_limit_is_refused(url):
    start = time.monotonic()
    message = refusal(url("/chunked-big"), error=PayloadTooLarge)
    assert message == f"file URL's body is over the limit of {MAX_BYTES} bytes"
    assert time.monotonic() - start < 2 * TIMEOUT


def test_a_server_that_does_not_answer_in_time_is_refused(url):
    start = time.monotonic()
    assert refusal(url("/slow")) == f"file URL did not answer within {TIMEOUT:g} s"
    assert time.monotonic() - start < 3 * TIMEOUT


def test_a_body_trickling_past_the_timeout_is_refused(url):
    start = time.monotonic()
    assert refusal(url("/slow-body")) == f"file URL did not answer within {TIMEOUT:g} s"
    assert time.monotonic() - start < 3 * TIMEOUT


def test_headers_trickling_past_the_timeout_are_refused(url):
    start = time.monotonic()
    with pytest.raises(BadRequest):
        fetch(url("/slow-headers"))
    assert time.monotonic() - start < 3 * TIMEOUT


def test_redirects_slower_together_than_the_timeout_are_refused(url):
    assert refusal(url("/slow-hops/4")) == f"file URL did not answer within {TIMEOUT:g} s"


def test_an_error_status_is_refused_with_it(url):
    assert refusal(url("/missing")) == "file URL answered HTTP 404"


def test_a_closed_port_is_refused(server):
    with ThreadingHTTPServer(("127.0.0.1", 0), Handler) as closed:
        port = closed.server_port  # bound, then closed as the block ends: nothing listens
    assert refusal(f"http://127.0.0.1:{port}/ok.png") == "file URL cannot be fetched: ConnectError"


def test_only_http_and_https_are_urls():
    assert is_url("http://example.com/a.png") and is_url("https://example.com/a.pdf")
    for not_url in ("file:///etc/passwd", "ftp://example.com/a.png", "iVBORw0KGgo=", ""):
        assert not is_url(not_url)
