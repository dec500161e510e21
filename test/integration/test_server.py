"""The server side: PostgreSQL restarting, unreachable servers, query cancellation."""

import threading
import time

import psycopg
import pytest

from conftest import HOST, free_port


@pytest.mark.deadline(120)
def test_postgres_restart(proxy, pg):
    p = proxy()
    old = p.connect()
    try:
        assert old.execute("select 1").fetchone() == (1,)
        pg.restart()
        # The session's server is gone: the client hears about it (error or disconnect).
        with pytest.raises(psycopg.OperationalError):
            old.execute("select 1")
    finally:
        old.close()
    # New clients get fresh servers (PostgreSQL accepts again once restart() returns).
    deadline = time.monotonic() + 10
    while True:
        try:
            with p.connect() as c:
                assert c.execute("select 'back'").fetchone() == ("back",)
                break
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    assert p.alive()
    # Several clients in a row work too (no dead server left in the pool).
    for i in range(12):
        with p.connect() as c:
            assert c.execute("select %s::int", (i,)).fetchone() == (i,)


@pytest.mark.proxy_only
def test_server_unreachable(proxy):
    closed_port = free_port()
    p = proxy(server_connect_timeout="2s",
              databases={"down": {"host": HOST, "port": closed_port, "dbname": "appdb", "pool_size": 2}})
    t0 = time.monotonic()
    err = p.login_error(dbname="down", timeout=15)
    took = time.monotonic() - t0
    assert err is not None, "a login to a database whose server is down worked"
    assert err.sqlstate == "08006", err
    assert err.message.strip(), "the error has no message"
    assert took < 10, f"took {took:.1f}s; server_connect_timeout is 2s"
    # The other database is unaffected.
    with p.connect() as c:
        assert c.execute("select 1").fetchone() == (1,)


@pytest.mark.deadline(90)
def test_cancel(proxy):
    p = proxy()
    with p.connect() as c:
        # Several rounds: the cancel request's connection may land on any worker.
        for _ in range(4):
            cancelled_at = []

            def cancel():
                cancelled_at.append(time.monotonic())
                c.cancel()

            timer = threading.Timer(0.5, cancel)
            timer.start()
            try:
                with pytest.raises(psycopg.errors.QueryCanceled) as e:
                    c.execute("select pg_sleep(30)")
                failed_at = time.monotonic()
            finally:
                timer.cancel()
                timer.join(5)
            assert e.value.sqlstate == "57014"
            assert cancelled_at, "the cancel never ran"
            assert failed_at - cancelled_at[0] < 2, f"query ended {failed_at - cancelled_at[0]:.2f}s after the cancel"
            # The connection is usable afterwards.
            assert c.execute("select 'after cancel'").fetchone() == ("after cancel",)
