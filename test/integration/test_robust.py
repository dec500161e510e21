"""Hostile or odd first packets on raw sockets: the proxy refuses them cleanly and keeps serving."""

import random
import socket
import struct
import threading
import time

import pytest

import pgwire

CLOSE_WITHIN = 5   # seconds a refused connection may take to be closed


def send_raw(p, payload, shut_wr):
    """Sends payload on a new socket (then EOF if shut_wr); returns (bytes received, closed, seconds)."""
    t0 = time.monotonic()
    with pgwire.open_socket(p.host, p.port) as s:
        try:
            s.sendall(payload)
            if shut_wr:
                s.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass   # the peer closed while we were still sending: allowed
        data, closed = pgwire.read_until_close(s, CLOSE_WITHIN)
    return data, closed, time.monotonic() - t0


def error_codes(data):
    """The SQLSTATEs of the ErrorResponses in data; fails on anything that is not an ErrorResponse.

    PostgreSQL answers a protocol 1.x/2.x startup in the old format ('E', text,
    NUL: no length, no fields); that counts as the code "v2-error".
    """
    if data.startswith(b"EFATAL:") and data.endswith(b"\0") and data.count(b"\0") == 1:
        return ["v2-error"]
    codes = []
    for kind, payload in pgwire.parse_messages(data):
        assert kind == "E", f"expected only ErrorResponses, got {kind!r} in {data[:200]!r}"
        codes.append(pgwire.error_fields(payload).get("C"))
    return codes


def startup_with_version(major, minor):
    return pgwire.startup_packet({"user": "app", "database": "appdb"}, version=(major << 16) | minor)


def _garbage(seed, n):
    return random.Random(seed).randbytes(n)


# name -> (bytes, send EOF after them, an ErrorResponse is due from the proxy,
#          SQLSTATEs PostgreSQL itself may answer with, for --direct)
CASES = {
    **{f"garbage-{n}": (_garbage(1000 + n, n), True, False, {"08P01"}) for n in (1, 3, 7, 8, 64, 1000, 20000)},
    "truncated-startup": (pgwire.startup_packet({"user": "app", "database": "appdb"})[:20], True, False, {"08P01"}),
    "length-below-8": (struct.pack("!I", 4), False, True, {"08P01"}),
    "oversized-length": (struct.pack("!II", 1_000_000, 196608) + b"user\0app\0", False, True, {"08P01"}),
    "length-0xffffffff": (struct.pack("!II", 0xFFFFFFFF, 196608), False, True, {"08P01"}),
    "protocol-2.0": (startup_with_version(2, 0), False, True, {"v2-error"}),
    "protocol-1.0": (startup_with_version(1, 0), False, True, {"v2-error"}),
    "protocol-4.0": (startup_with_version(4, 0), False, True, {"0A000"}),
    # 1234.5678 is the CancelRequest code; with 8 bytes it is a malformed cancel: closed, no answer needed.
    "short-cancel-1234.5678": (pgwire.request_packet(pgwire.CANCEL_REQUEST_CODE), True, False, {"08P01"}),
    "cancel-unknown-key": (struct.pack("!IIII", 16, pgwire.CANCEL_REQUEST_CODE, 12345, 67890), True, False, set()),
    "startup-no-user": (pgwire.startup_packet({"database": "appdb"}), False, True, {"28000"}),
    "startup-unterminated": (struct.pack("!II", 17, 196608) + b"user\0app", True, False, {"08P01"}),
}


def check_case(p, name):
    payload, shut_wr, error_due, direct_codes = CASES[name]
    data, closed, secs = send_raw(p, payload, shut_wr)
    assert closed, f"{name}: connection still open {CLOSE_WITHIN}s later (received {data[:200]!r})"
    codes = error_codes(data)
    if p.direct:
        assert set(codes) <= direct_codes | {"08P01"}, f"{name}: {codes}"
    else:
        allowed = {"08P01", "28000"} if name == "startup-no-user" else {"08P01"}
        assert set(codes) <= allowed, f"{name}: answered {codes}, expected {sorted(allowed)}"
        if error_due:
            assert codes, f"{name}: closed without an ErrorResponse"


def assert_still_serving(p):
    assert p.alive(), f"proxy died:\n{p.log}"
    with p.connect() as c:
        assert c.execute("select 'still here'").fetchone() == ("still here",)


@pytest.mark.parametrize("name", list(CASES))
def test_bad_first_packet(proxy, name):
    p = proxy()
    check_case(p, name)
    assert_still_serving(p)


@pytest.mark.deadline(120)
def test_all_bad_packets_at_once(proxy):
    p = proxy()
    failures = []

    def worker(names):
        for name in names:
            try:
                check_case(p, name)
            except AssertionError as e:
                failures.append(str(e))

    threads = [threading.Thread(target=worker, args=(list(CASES) * 3,)) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(90)
    assert not any(t.is_alive() for t in threads), "raw clients still running after 90s"
    assert not failures, failures[:5]
    assert_still_serving(p)


def test_ssl_request_then_startup(proxy):
    p = proxy()
    conn = pgwire.connect(p.host, p.port, "app", "appdb", p.passwords["app"], ssl_request=True)
    try:
        assert conn.encryption_answer == "N"
        assert conn.query("select 42") == [[["42"]]]
    finally:
        conn.close()


def test_gssenc_request(proxy):
    p = proxy()
    with pgwire.open_socket(p.host, p.port) as s:
        s.sendall(pgwire.request_packet(pgwire.GSSENC_REQUEST_CODE))
        s.settimeout(5)
        answer = s.recv(1)
    if p.direct and answer == b"G":
        pytest.skip("this PostgreSQL is built with GSSAPI and offers GSS encryption")
    assert answer == b"N"
    # Then the usual fallbacks libpq takes: GSS refused, SSL refused, plain startup.
    conn = pgwire.connect(p.host, p.port, "app", "appdb", p.passwords["app"], gssenc_request=True, ssl_request=True)
    try:
        assert conn.encryption_answer == "N"
        assert conn.query("select 1") == [[["1"]]]
    finally:
        conn.close()


@pytest.fixture
def login_timeout_1s(pg, direct):
    """With --direct, PostgreSQL's authentication_timeout stands in for client_login_timeout."""
    if direct:
        pg.execute("ALTER SYSTEM SET authentication_timeout = '1s'")
        pg.execute("select pg_reload_conf()")
        time.sleep(0.5)
    yield {"client_login_timeout": "1s"}
    if direct:
        pg.execute("ALTER SYSTEM RESET authentication_timeout")
        pg.execute("select pg_reload_conf()")


@pytest.mark.parametrize("sent", [b"", pgwire.startup_packet({"user": "app", "database": "appdb"})[:10]],
                         ids=["nothing", "half-startup"])
def test_client_login_timeout(proxy, login_timeout_1s, sent):
    p = proxy(**login_timeout_1s)
    t0 = time.monotonic()
    with pgwire.open_socket(p.host, p.port) as s:
        if sent:
            s.sendall(sent)
        data, closed = pgwire.read_until_close(s, 3.5)
    took = time.monotonic() - t0
    assert closed, f"a silent client was not closed within {took:.1f}s; client_login_timeout is 1s"
    assert 0.8 <= took <= 3.5, took
    error_codes(data)   # nothing but (optional) ErrorResponses
    assert_still_serving(p)


def test_client_login_timeout_in_auth(proxy, login_timeout_1s):
    # Startup sent, then the password never comes.
    p = proxy(**login_timeout_1s)
    t0 = time.monotonic()
    with pgwire.open_socket(p.host, p.port) as s:
        s.sendall(pgwire.startup_packet({"user": "app", "database": "appdb"}))
        data, closed = pgwire.read_until_close(s, 3.5)
    took = time.monotonic() - t0
    assert closed, f"a client silent at the password prompt was not closed within {took:.1f}s"
    assert 0.8 <= took <= 3.5, took
    kinds = [k for k, _ in pgwire.parse_messages(data)]
    assert kinds and kinds[0] == "R", kinds   # it was asked for a password first
    assert_still_serving(p)
