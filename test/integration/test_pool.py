"""Pooling: many clients on few servers, waiting limits, dirty servers, client limits, pgbench."""

import os
import re
import selectors
import signal
import subprocess
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest

from conftest import connect


class BackendMonitor:
    """Polls pg_stat_activity (as superuser, directly) and keeps the highest count of a role's backends."""

    def __init__(self, pg, user, dbname="appdb", interval=0.02):
        self.pg, self.user, self.dbname, self.interval = pg, user, dbname, interval
        self.max = 0
        self.samples = 0
        self._stop = threading.Event()
        self._error = None

    def _run(self):
        try:
            with connect(self.pg.superuser_dsn) as c:
                while not self._stop.is_set():
                    (n,) = c.execute(
                        "select count(*) from pg_stat_activity"
                        " where usename = %s and datname = %s and backend_type = 'client backend'",
                        (self.user, self.dbname)).fetchone()
                    self.max = max(self.max, n)
                    self.samples += 1
                    time.sleep(self.interval)
        except Exception as e:  # reported by __exit__
            self._error = e

    def __enter__(self):
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(10)
        if self._error:
            raise self._error


def wait_no_backends(pg, user, timeout=10):
    """Waits until PostgreSQL has no backend of user (the previous test's servers are gone)."""
    deadline = time.monotonic() + timeout
    while pg.execute("select count(*) from pg_stat_activity where usename = %s", params=(user,))[0][0]:
        assert time.monotonic() < deadline, f"backends of {user} left over from an earlier test"
        time.sleep(0.05)


def run_clients(n, fn, timeout):
    """Runs fn(i) for i in range(n) on n threads started together; returns the results in order."""
    barrier = threading.Barrier(n, timeout=30)

    def one(i):
        barrier.wait()
        return fn(i)

    with ThreadPoolExecutor(max_workers=n) as ex:
        futures = [ex.submit(one, i) for i in range(n)]
        deadline = time.monotonic() + timeout
        return [f.result(timeout=max(0.1, deadline - time.monotonic())) for f in futures]


@pytest.mark.deadline(180)
def test_300_clients_on_10_servers(proxy, pg):
    wait_no_backends(pg, "app")
    p = proxy(databases={"appdb": {"pool_size": 10}})
    # PostgreSQL alone has max_connections 200: --direct runs fewer clients.
    n = 150 if p.direct else 300

    def client(i):
        with p.connect(connect_timeout=60) as c:
            a = c.execute("select %s::int * 2", (i,)).fetchone()[0]
            c.execute("select pg_sleep(0.01)")
            b = c.execute("select 'client-' || %s::text", (i,)).fetchone()[0]
            return a, b

    with BackendMonitor(pg, "app") as mon:
        results = run_clients(n, client, timeout=120)
    assert results == [(2 * i, f"client-{i}") for i in range(n)]
    assert mon.samples > 0
    if not p.direct:
        assert mon.max <= 10, f"PostgreSQL saw {mon.max} backends of app; pool_size is 10"
    assert mon.max >= 1


@pytest.mark.proxy_only
def test_fewer_servers_than_workers(proxy, pg):
    """pool_size 1 over 2 workers, clients on both: the server moves between the workers
    (close here, log in there) at most once per lease, not at every transaction."""
    wait_no_backends(pg, "app")
    p = proxy(workers=2, databases={"appdb": {"pool_mode": "transaction", "pool_size": 1}})
    seconds = 2.0

    def client(i):
        n = 0
        with p.connect() as c:
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                assert c.execute("select %s::int", (i,)).fetchone() == (i,)
                n += 1
        return n

    with BackendMonitor(pg, "app") as mon:
        done = run_clients(8, client, timeout=60)
    # A backend whose server was just closed may linger in pg_stat_activity while the next logs in.
    assert mon.max <= 2, f"PostgreSQL saw {mon.max} backends of app; pool_size is 1"
    assert all(n > 0 for n in done), f"a client got no transaction through: {done}"
    moves = p.log.count("room for another worker")
    # The lease is 100 ms: about 20 moves in 2 s (each transaction used to move it: ~600).
    assert moves <= 2 * seconds / 0.1 + 10, f"the server moved {moves} times in {seconds}s ({sum(done)} txns)"


@pytest.mark.proxy_only
def test_login_takes_no_server(proxy, pg):
    # As with PgBouncer: once a pool has logged in to PostgreSQL, clients finish
    # their login without a server and take one at their first query.
    p = proxy(databases={"appdb": {"pool_size": 1}})
    with p.connect() as first:
        assert first.execute("select pg_backend_pid()").fetchone()[0] > 0  # holds the only server
        t0 = time.monotonic()
        others = [p.connect() for _ in range(20)]
        try:
            assert time.monotonic() - t0 < 5, "logins waited for a server"
            (n,) = pg.execute("select count(*) from pg_stat_activity where usename = 'app'"
                              " and datname = 'appdb' and backend_type = 'client backend'")[0]
            assert n == 1, f"{n} backends for 20 idle logins; pool_size is 1"
            # A waiting client gets the server once the first session ends.
            results = []
            t = threading.Thread(target=lambda: results.append(others[0].execute("select 42").fetchone()))
            t.start()
            time.sleep(0.3)
            assert not results, "a second session got the only server while the first held it"
            first.close()
            t.join(10)
            assert results == [(42,)]
        finally:
            for c in others:
                c.close()


@pytest.mark.proxy_only
def test_query_wait_timeout(proxy):
    p = proxy(query_wait_timeout="1s", databases={"appdb": {"pool_size": 1}})
    with p.connect() as first:
        assert first.execute("select 1").fetchone() == (1,)   # holds the only server (session mode)
        t0 = time.monotonic()
        err = p.login_error(timeout=15)
        waited = time.monotonic() - t0
        assert err is not None, "a second client got a server although pool_size is 1"
        assert err.sqlstate == "53300", err
        assert "appdb" in err.message, f"the message does not name the pool: {err.message!r}"
        assert 0.8 <= waited < 5, f"gave up after {waited:.2f}s; query_wait_timeout is 1s"
        # The first client is unaffected.
        assert first.execute("select 2").fetchone() == (2,)
    # Once the first client is gone, the server is free again.
    with p.connect() as again:
        assert again.execute("select 3").fetchone() == (3,)


@pytest.mark.deadline(120)
def test_failed_server_logins_back_off(proxy, pg):
    """A PostgreSQL that refuses logins is asked again once per server_login_retry, not in a loop
    for as long as clients wait; once it accepts again, clients get servers."""
    role = "limited_" + uuid.uuid4().hex[:8]
    pg.execute(f"CREATE ROLE {role} LOGIN PASSWORD 'limitedpw' CONNECTION LIMIT 1")
    p = None
    try:
        p = proxy(query_wait_timeout="3s", server_login_retry="1s", users={role: {"password": "limitedpw"}},
                  databases={"appdb": {"pool_size": 4}})
        if p.direct:
            pytest.skip("ringbouncer's retry of server logins")
        p.passwords[role] = "limitedpw"
        refused = f'too many connections for role "{role}"'
        with p.connect(user=role) as first:
            assert first.execute("select 1").fetchone() == (1,)   # the role's only backend (session mode)
            t0 = time.monotonic()
            errs = run_clients(4, lambda i: p.login_error(user=role, timeout=20), timeout=30)
            elapsed = time.monotonic() - t0
            assert all(e is not None and e.sqlstate == "53300" for e in errs), errs
            # The server's failure, not the clients' disconnect lines that repeat it.
            attempts = len(re.findall(rf" s\d+\.\d+ appdb/{role}: {re.escape(refused)}", p.log))
            # Each worker's pool tries once, then once a second while its clients wait (3 s).
            assert 2 <= attempts <= 2 * (int(elapsed) + 2), \
                f"{attempts} refused server logins in {elapsed:.1f}s with server_login_retry 1s"
            assert first.execute("select 2").fetchone() == (2,)
        pg.execute(f"ALTER ROLE {role} CONNECTION LIMIT -1")
        # A client that comes within the retry window waits for the next try, which now works.
        deadline = time.monotonic() + 10
        while (err := p.login_error(user=role)) is not None:
            assert err.sqlstate == "53300" and refused in err.message, err
            assert time.monotonic() < deadline, "no server login after the role's limit was lifted"
            time.sleep(0.2)
    finally:
        if p is not None and not p.direct:
            p.signal(signal.SIGTERM)
            assert p.wait(10) == 0
        wait_no_backends(pg, role)
        pg.execute(f"DROP ROLE IF EXISTS {role}")


def _read_until(proc, marker, timeout):
    """Reads proc.stdout until a line equal to marker; fails on timeout or EOF."""
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    seen = b""
    while time.monotonic() < deadline:
        if sel.select(timeout=max(0, deadline - time.monotonic())):
            chunk = os.read(proc.stdout.fileno(), 4096)
            if not chunk:
                break
            seen += chunk
            if marker.encode() in seen.split(b"\n"):
                return
    pytest.fail(f"psql did not print {marker!r} (got {seen!r}); stderr: {proc.stderr.read1(65536)!r}")


def kill_psql_mid_transaction(p, key, on_open=None):
    """A psql through proxy p inserts key inside an open transaction and is SIGKILLed.

    on_open() runs while the transaction is open, before the kill.
    """
    env = dict(os.environ, PGPASSWORD=p.passwords["app"], PGCONNECT_TIMEOUT="10")
    proc = subprocess.Popen(
        ["psql", "-X", "-At", "-v", "ON_ERROR_STOP=1", "-h", p.host, "-p", str(p.port), "-U", "app", "-d", "appdb"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        proc.stdin.write(f"begin;\ninsert into kv values ('{key}', 'uncommitted');\nselect 'inserted';\n".encode())
        proc.stdin.flush()
        _read_until(proc, "inserted", 15)
        if on_open:
            on_open()
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(10)
        for f in (proc.stdin, proc.stdout, proc.stderr):
            f.close()


def test_client_killed_mid_transaction(proxy, pg):
    p = proxy(databases={"appdb": {"pool_size": 1}})
    key = "kill-" + uuid.uuid4().hex

    def open_transaction_seen():
        # PostgreSQL holds an open transaction for app right now.
        open_tx = pg.execute("select count(*) from pg_stat_activity where usename = 'app'"
                             " and state = 'idle in transaction'")[0][0]
        assert open_tx == 1

    kill_psql_mid_transaction(p, key, open_transaction_seen)

    # The next client of the same one-server pool is not inside that transaction.
    with p.connect() as c:
        assert c.execute("select now() = statement_timestamp()").fetchone() == (True,)
        assert c.execute("select count(*) from kv where k = %s", (key,)).fetchone() == (0,)
        assert c.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    assert pg.execute("select count(*) from kv where k = %s", dbname="appdb", params=(key,))[0][0] == 0
    # And no transaction stays open on the server.
    deadline = time.monotonic() + 5
    while pg.execute("select count(*) from pg_stat_activity where usename = 'app'"
                     " and state like 'idle in transaction%'")[0][0]:
        assert time.monotonic() < deadline, "a transaction of the killed client is still open"
        time.sleep(0.05)


@pytest.mark.proxy_only
def test_max_client_connections(proxy):
    p = proxy(max_client_connections=5)
    conns = []
    try:
        for _ in range(5):
            c = p.connect()
            assert c.execute("select 1").fetchone() == (1,)
            conns.append(c)
        err = p.login_error()
        assert err is not None, "a 6th client got in; max_client_connections is 5"
        assert err.sqlstate == "53300", err
        # The five are unaffected; when one leaves, a new client gets in.
        for c in conns:
            assert c.execute("select 2").fetchone() == (2,)
        conns.pop().close()
        deadline = time.monotonic() + 5
        while (err := p.login_error()) is not None:
            assert time.monotonic() < deadline, f"still refused after a client left: {err}"
            time.sleep(0.1)
    finally:
        for c in conns:
            c.close()


@pytest.mark.deadline(180)
@pytest.mark.parametrize("protocol", ["simple", "extended"])
def test_pgbench(proxy, pg, protocol):
    p = proxy(databases={"appdb": {"pool_size": 10}})
    env = dict(os.environ, PGPASSWORD=p.passwords["app"], PGCONNECT_TIMEOUT="10")
    conn = ["-h", p.host, "-p", str(p.port), "-U", "app"]

    def pgbench(*args, timeout=120):
        r = subprocess.run(["pgbench", *conn, *args, "appdb"], capture_output=True, text=True,
                           timeout=timeout, env=env, stdin=subprocess.DEVNULL)
        assert r.returncode == 0, f"pgbench {' '.join(args)} exited {r.returncode}:\n{r.stdout}\n{r.stderr}"
        return r.stdout + r.stderr

    # pgbench's tables have fixed names; one test at a time uses them.
    # Server-side data generation (G): COPY has its own test in test_basic.
    pgbench("-i", "-s", "1", "-I", "dtGvp")
    try:
        # As many clients as servers: pgbench connects every client before running
        # any, so in session mode more clients than servers would wait on each other
        # wherever a server is bound at login.
        out = pgbench("-n", "-c", "10", "-j", "2", "-t", "100", f"--protocol={protocol}")
        assert "number of transactions actually processed: 1000/1000" in out, out
        assert pg.execute("select count(*) from pgbench_history", dbname="appdb")[0][0] == 1000
    finally:
        pg.execute("drop table if exists pgbench_accounts, pgbench_branches, pgbench_history, pgbench_tellers",
                   dbname="appdb")


@pytest.mark.deadline(120)
def test_150_sessions_burst_large_replies(proxy, pg):
    """More data at once than the receive-buffer ring starts with: it must grow, and starved receives resume."""
    n = 150
    p = proxy(databases={"appdb": {"pool_size": n}}, max_client_connections=n + 10)
    conns = [p.connect() for _ in range(n)]
    go = threading.Barrier(n)

    def burst(c):
        go.wait()
        for _ in range(5):
            assert len(c.execute("select repeat('x', 50000)").fetchone()[0]) == 50000

    try:
        with ThreadPoolExecutor(n) as ex:
            for f in [ex.submit(burst, c) for c in conns]:
                f.result(timeout=60)
    finally:
        for c in conns:
            c.close()
