"""The local runtime as a hostile client meets it: raw bytes over 127.0.0.1, one behaviour each."""
import http.client
import json
import shutil
import socket
import threading

import pytest

from support import LocalRuntime, chunked, example, exchange

SECURITY = {"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY",
            "Referrer-Policy": "no-referrer"}
BODY = json.dumps({"features": example("malignant")}).encode()
POST = b"POST /api/predict?explain=false HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"


@pytest.fixture(scope="module")
def server():
    """The runtime with a 2-second timeout for idle and slow connections."""
    rt = LocalRuntime(args=["--timeout", "2"])
    yield rt
    rt.stop()


def test_chunked_bodies_are_read(server):
    resp = exchange(server.port, POST + b"Transfer-Encoding: chunked\r\n\r\n" + chunked(BODY))
    assert resp.status == 200
    assert json.loads(resp.body)["predictions"] == ["malignant"]


@pytest.mark.parametrize("length", [b"5", str(len(chunked(BODY))).encode()])
def test_a_request_with_both_lengths_is_a_400_naming_them(server, length):
    # Two framings at once is how requests are smuggled past a proxy that reads the other.
    resp = exchange(server.port, POST + b"Transfer-Encoding: chunked\r\nContent-Length: " + length
                    + b"\r\n\r\n" + chunked(BODY))
    assert resp.status == 400
    assert json.loads(resp.body)["error"] == {
        "code": "conflicting_lengths", "details": [],
        "message": "the request has both Content-Length and Transfer-Encoding: chunked; send one"}
    assert resp.getheader("X-Frame-Options") == "DENY"


@pytest.mark.parametrize("lengths", [
    [b"abc"], [b"1_0"], [b"+2"], [b"-1"], [str(len(BODY)).encode(), b"5"],
], ids=["text", "underscore", "plus", "negative", "two different"])
def test_malformed_or_conflicting_lengths_are_a_400_with_the_error_body(server, lengths):
    head = b"".join(b"Content-Length: " + n + b"\r\n" for n in lengths)
    resp = exchange(server.port, POST + head + b"\r\n" + BODY)
    assert resp.status == 400
    assert json.loads(resp.body)["error"]["code"] == "bad_request"
    for key, value in SECURITY.items():
        assert resp.getheader(key) == value


def test_an_unknown_transfer_coding_is_refused_with_the_error_body(server):
    resp = exchange(server.port, POST + b"Transfer-Encoding: gzip\r\n\r\n" + BODY)
    assert resp.status == 501
    assert set(json.loads(resp.body)["error"]) == {"code", "message", "details"}
    assert resp.getheader("X-Frame-Options") == "DENY"


def test_a_body_over_the_payload_limit_is_a_413_with_the_security_headers(server):
    resp = exchange(server.port, POST + b"Content-Length: 99999999\r\n\r\n")
    assert resp.status == 413
    assert json.loads(resp.body)["error"] == {
        "code": "payload_too_large", "details": [],
        "message": f"the body is over {6 * 1024 * 1024} bytes, the most accepted"}
    assert resp.getheader("X-Content-Type-Options") == "nosniff"


@pytest.mark.parametrize("path", [b"/%00", b"/index.html%00.js", b"/api/predict%00"])
def test_a_null_byte_in_the_path_is_the_404_page(server, path):
    resp = exchange(server.port, b"GET " + path + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert resp.status == 404
    assert b"<html" in resp.body
    assert resp.getheader("X-Content-Type-Options") == "nosniff"


def test_a_path_segment_over_255_bytes_is_a_414_with_the_error_body(server):
    resp = exchange(server.port, b"GET /" + b"a" * 256 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    assert resp.status == 414
    assert json.loads(resp.body)["error"]["message"] == "a path segment is longer than 255 bytes"
    assert resp.getheader("X-Frame-Options") == "DENY"


@pytest.mark.parametrize("extension", [b"", b".html"])
def test_a_path_over_2048_bytes_is_a_414_with_the_error_body(server, extension):
    path = b"/" + b"/".join([b"a" * 250] * 20) + extension
    resp = exchange(server.port, b"GET " + path + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    assert resp.status == 414
    assert json.loads(resp.body)["error"]["message"] == "the path is longer than 2048 bytes"
    assert resp.getheader("X-Frame-Options") == "DENY"


@pytest.mark.parametrize("path", ["/", "/card", "/style.css", "/api/health", "/api/model"])
def test_head_works_where_get_does(server, path):
    conn = http.client.HTTPConnection(server.host, server.port, timeout=20)
    conn.request("GET", path)
    get = conn.getresponse()
    length = len(get.read())
    conn.request("HEAD", path)
    head = conn.getresponse()
    assert head.status == get.status == 200
    assert head.read() == b""
    assert int(head.getheader("Content-Length")) == length
    conn.close()


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
@pytest.mark.parametrize("path", ["/", "/card.html", "/style.css"])
def test_other_methods_on_static_paths_are_a_405(server, method, path):
    conn = http.client.HTTPConnection(server.host, server.port, timeout=20)
    conn.request(method, path, body=b"x")
    resp = conn.getresponse()
    resp.read()
    assert resp.status == 405
    assert resp.getheader("Allow") == "GET, HEAD"
    assert resp.getheader("X-Content-Type-Options") == "nosniff"


def test_api_errors_carry_the_security_headers(server):
    conn = http.client.HTTPConnection(server.host, server.port, timeout=20)
    conn.request("DELETE", "/api/predict")
    resp = conn.getresponse()
    assert resp.status == 405
    assert json.loads(resp.read())["error"]["code"] == "method_not_allowed"
    for key, value in SECURITY.items():
        assert resp.getheader(key) == value


@pytest.mark.parametrize("partial", [
    b"GET / HTTP/1.1\r\nHost: x\r\n",                      # headers that never end
    POST + b"Content-Length: 100\r\n\r\n" + b"{",        # a body shorter than its length
    b"GET /",                                              # a request line that never ends
], ids=["endless headers", "short body", "endless request line"])
def test_a_slow_client_is_cut_off_while_others_are_answered(server, partial):
    slow = socket.create_connection((server.host, server.port), timeout=30)
    slow.sendall(partial)
    conn = http.client.HTTPConnection(server.host, server.port, timeout=20)
    conn.request("POST", "/api/predict", body=BODY, headers={"Content-Type": "application/json"})
    assert conn.getresponse().status == 200
    # The runtime closes the slow connection after its timeout (2 s): recv sees the end of
    # the stream; were it held open, recv would raise socket.timeout after 30 s.
    while slow.recv(1000):
        pass
    slow.close()


def test_keep_alive_serves_many_requests_on_one_connection(server):
    conn = http.client.HTTPConnection(server.host, server.port, timeout=20)
    for _ in range(20):
        conn.request("POST", "/api/predict?explain=false", body=BODY,
                     headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        assert resp.status == 200
        assert json.loads(resp.read())["predictions"] == ["malignant"]
    conn.close()


def test_a_cold_start_hit_by_32_clients_loads_once_and_answers_all():
    rt = LocalRuntime()
    try:
        barrier = threading.Barrier(32)
        answers = []

        def client():
            conn = http.client.HTTPConnection(rt.host, rt.port, timeout=60)
            barrier.wait()
            conn.request("POST", "/api/predict", body=BODY,
                         headers={"Content-Type": "application/json"})
            resp = conn.getresponse()
            resp.read()
            answers.append((resp.status, resp.getheader("Server-Timing")))

        threads = [threading.Thread(target=client) for _ in range(32)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert [status for status, _ in answers] == [200] * 32
        assert sum("load;dur=" in timing for _, timing in answers) == 1
    finally:
        rt.stop()


def test_64_simultaneous_connections_are_all_answered(server):
    barrier = threading.Barrier(64)
    statuses = []

    def client():
        barrier.wait()
        conn = http.client.HTTPConnection(server.host, server.port, timeout=60)
        conn.request("GET", "/api/health")
        statuses.append(conn.getresponse().status)

    threads = [threading.Thread(target=client) for _ in range(64)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert statuses == [200] * 64


@pytest.mark.skipif(not shutil.which("wrk"), reason="needs Debian's wrk: bash scripts/setup.sh --dev")
def test_a_short_load_run_has_no_errors_and_no_failed_answers(capsys):
    import load
    rows, _ = load.run(duration=1, connections=[8, 256], explain="false")
    assert [(r["socket_errors"], r["non_2xx"]) for r in rows] == [(0, 0), (0, 0)], rows
    assert all(r["requests"] > 0 for r in rows), rows
