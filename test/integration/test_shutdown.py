"""Graceful shutdown on SIGTERM/SIGINT."""

import signal
import threading
import time

import psycopg
import pytest

import pgwire

pytestmark = pytest.mark.proxy_only


def test_sigterm_with_idle_client(proxy):
    p = proxy(shutdown_timeout="2s")
    c = p.connect()
    try:
        assert c.execute("select 1").fetchone() == (1,)
        t0 = time.monotonic()
        p.signal(signal.SIGTERM)
        time.sleep(0.3)
        # Shutting down: no new client gets in (refused, or an ErrorResponse).
        try:
            err = pgwire.login_error(p.host, p.port, "app", "appdb", p.passwords["app"], timeout=5)
            assert err is not None, "a new client logged in after SIGTERM"
        except (OSError, pgwire.ProtocolError):
            pass
        rc = p.wait(2 + 3)
        took = time.monotonic() - t0
        assert rc == 0, f"exit code {rc} {took:.1f}s after SIGTERM (shutdown_timeout 2s):\n{p.log}"
        # The idle client's connection is gone.
        with pytest.raises(psycopg.OperationalError):
            c.execute("select 1")
    finally:
        c.close()


def test_sigterm_lets_running_query_finish(proxy):
    p = proxy(shutdown_timeout="5s")
    c = p.connect()
    result, errors = [], []

    def query():
        try:
            result.append(c.execute("select 'done' from pg_sleep(1)").fetchone())
        except Exception as e:
            errors.append(e)

    try:
        t = threading.Thread(target=query)
        t.start()
        time.sleep(0.3)
        p.signal(signal.SIGTERM)
        t.join(10)
        assert not t.is_alive(), "query still running 10s after SIGTERM"
        assert not errors, errors
        assert result == [("done",)]
    finally:
        c.close()
    rc = p.wait(5 + 3)
    assert rc == 0, f"exit code {rc} after SIGTERM:\n{p.log}"


def test_sigint_without_clients(proxy):
    p = proxy()
    with p.connect() as c:
        assert c.execute("select 1").fetchone() == (1,)
    t0 = time.monotonic()
    p.signal(signal.SIGINT)
    rc = p.wait(5)
    assert rc == 0, f"exit code {rc} {time.monotonic() - t0:.1f}s after SIGINT:\n{p.log}"
