"""Transaction pooling: servers change hands at transaction boundaries, never inside one."""

import hashlib
import os
import subprocess
import threading
import time
import uuid

import psycopg
import pytest

import pgwire
from pgwire import bind, close_stmt, data_values, describe, execute, parse, sync
from test_pool import kill_psql_mid_transaction

pytestmark = pytest.mark.proxy_only

TX = {"pool_mode": "transaction"}


def _pgbench(p, *args, timeout=120):
    env = dict(os.environ, PGPASSWORD=p.passwords["app"], PGCONNECT_TIMEOUT="10")
    r = subprocess.run(["pgbench", "-h", p.host, "-p", str(p.port), "-U", "app", *args, "appdb"],
                       capture_output=True, text=True, timeout=timeout, env=env, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, f"pgbench {' '.join(args)} exited {r.returncode}:\n{r.stdout}\n{r.stderr}"
    return r.stdout + r.stderr


@pytest.mark.deadline(300)
@pytest.mark.parametrize("protocol", ["simple", "extended", "prepared"])
@pytest.mark.parametrize("script", ["tpcb-like", "simple-update", "select-only"])
def test_pgbench_16_clients_on_4_servers(proxy, pg, script, protocol):
    p = proxy(databases={"appdb": {**TX, "pool_size": 4}})
    _pgbench(p, "-i", "-s", "1", "-I", "dtGvp")
    try:
        out = _pgbench(p, "-n", "-b", script, "-M", protocol, "-c", "16", "-j", "2", "-t", "50")
        assert "number of transactions actually processed: 800/800" in out, out
        assert "number of failed transactions: 0" in out, out
        if script == "tpcb-like":
            (bal, delta, n), = pg.execute("select (select sum(abalance) from pgbench_accounts),"
                                          " (select sum(delta) from pgbench_history),"
                                          " (select count(*) from pgbench_history)", dbname="appdb")
            assert n == 800 and bal == delta, (bal, delta, n)
        (n,) = pg.execute("select count(*) from pg_stat_activity where usename = 'app'"
                          " and datname = 'appdb' and backend_type = 'client backend'")[0]
        assert n <= 4, f"{n} backends for pool_size 4"
    finally:
        pg.execute("drop table if exists pgbench_accounts, pgbench_branches, pgbench_history, pgbench_tellers",
                   dbname="appdb")


def test_clients_share_one_server(proxy, pg):
    # One worker: a pool's servers are per worker, so only then is it one backend.
    p = proxy(workers=1, query_wait_timeout="10s", databases={"appdb": {**TX, "pool_size": 1}})
    with p.connect() as a, p.connect() as b:
        pid_a = a.execute("select pg_backend_pid()").fetchone()[0]
        pid_b = b.execute("select pg_backend_pid()").fetchone()[0]
        assert pid_a == pid_b, "two clients of a one-server pool saw different backends"
        # Between transactions the clients take turns on the one server.
        for i in range(20):
            assert a.execute("select %s::int", (i,)).fetchone() == (i,)
            assert b.execute("select %s::int", (-i,)).fetchone() == (-i,)
        # An open transaction keeps its server: b waits until a commits.
        a.execute("begin")
        a.execute("select 1")
        done = []
        t = threading.Thread(target=lambda: done.append(b.execute("select 'b ran'").fetchone()))
        t.start()
        time.sleep(0.5)
        assert not done, "b got the server while a's transaction held it"
        a.execute("commit")
        t.join(10)
        assert done == [("b ran",)]


def test_killed_client_is_rolled_back_and_server_kept(proxy, pg):
    p = proxy(workers=1, databases={"appdb": {**TX, "pool_size": 1}})
    key = "txkill-" + uuid.uuid4().hex
    with p.connect() as c:
        backend = c.execute("select pg_backend_pid()").fetchone()[0]
    kill_psql_mid_transaction(p, key)
    with p.connect() as c:
        # Same backend (rolled back, not closed), outside any transaction, without the row.
        assert c.execute("select pg_backend_pid()").fetchone()[0] == backend
        assert c.execute("select now() = statement_timestamp()").fetchone() == (True,)
        assert c.execute("select count(*) from kv where k = %s", (key,)).fetchone() == (0,)


def test_copy_in_and_out(proxy, pg):
    p = proxy(databases={"appdb": {**TX, "pool_size": 1}})
    table = "copy_tx_" + uuid.uuid4().hex[:8]
    with p.connect() as c, p.connect() as other:
        c.execute(f"create table {table} (a int, b text)")
        try:
            with c.cursor() as cur:
                with cur.copy(f"copy {table} from stdin") as cp:
                    for i in range(100000):
                        cp.write_row((i, f"row {i}"))
            # Another client shares the one server between the copies.
            assert other.execute(f"select count(*), sum(a) from {table}").fetchone() == (100000, 4999950000)
            out = bytearray()
            with c.cursor() as cur:
                with cur.copy(f"copy {table} to stdout") as cp:
                    for data in cp:
                        out += data
            assert out.count(b"\n") == 100000
            assert out.startswith(b"0\trow 0\n")
        finally:
            c.execute(f"drop table {table}")


@pytest.mark.deadline(60)
def test_cancel_reaches_the_current_server(proxy):
    p = proxy(databases={"appdb": {**TX, "pool_size": 2}})
    with p.connect() as c, p.connect() as idle:
        idle.execute("select 1")
        timer = threading.Timer(0.5, c.cancel)
        timer.start()
        t0 = time.monotonic()
        with pytest.raises(psycopg.errors.QueryCanceled):
            c.execute("select pg_sleep(30)")
        assert time.monotonic() - t0 < 3
        timer.join(5)
        assert c.execute("select 'usable'").fetchone() == ("usable",)


def _kinds(messages):
    return [k for k, _ in messages]


@pytest.mark.deadline(120)
def test_named_statement_follows_the_client_across_servers(proxy):
    # One worker, three servers, 50 clients churning the pool: the statement's
    # client lands on different servers, and its statement is there every time.
    p = proxy(workers=1, databases={"appdb": {**TX, "pool_size": 3}})
    w = p.wire()
    try:
        w.send_raw(parse("double", "select $1::int * 2"), parse("whoami", "select pg_backend_pid()"), sync())
        assert _kinds(w.read_until_ready()) == ["1", "1", "Z"]
        stop = threading.Event()
        errors = []

        def churn():
            try:
                with p.connect() as c:  # psycopg prepares its own statements after a few runs
                    while not stop.is_set():
                        assert c.execute("select %s::int + 1", (41,)).fetchone() == (42,)
            except Exception as e:  # reported below
                errors.append(e)

        threads = [threading.Thread(target=churn) for _ in range(50)]
        for t in threads:
            t.start()
        backends = set()
        try:
            for i in range(300):
                w.send_raw(bind("", "double", [i]), execute(), bind("", "whoami"), execute(), sync())
                msgs = w.read_until_ready()
                rows = [data_values(v) for k, v in msgs if k == "D"]
                assert _kinds(msgs) == ["2", "D", "C", "2", "D", "C", "Z"], msgs
                assert rows[0] == [str(2 * i)]
                backends.add(rows[1][0])
        finally:
            stop.set()
            for t in threads:
                t.join(30)
        assert not errors, errors[:3]
        assert len(backends) >= 2, "the client never changed servers; the test proves nothing"
        # Describe and Close of the named statement after all those switches.
        w.send_raw(describe("S", "double"), sync())
        msgs = w.read_until_ready()
        assert _kinds(msgs) == ["t", "T", "Z"], msgs
        w.send_raw(close_stmt("double"), sync())
        assert _kinds(w.read_until_ready()) == ["3", "Z"]
        # Closed means gone for this client, as in PostgreSQL (26000).
        w.send_raw(bind("", "double", [1]), execute(), sync())
        msgs = w.read_until_ready()
        errs = [pgwire.WireError(pgwire.error_fields(v)) for k, v in msgs if k == "E"]
        assert errs and errs[0].sqlstate == "26000", msgs
    finally:
        w.close()


@pytest.mark.deadline(120)
def test_pipelines_through_one_server(proxy):
    # 20 clients, one server: 100 Parse/Bind/Execute under one Sync, then 10 Syncs in flight.
    p = proxy(databases={"appdb": {**TX, "pool_size": 1}})
    errors = []

    def client(n):
        try:
            w = p.wire()
            try:
                pipeline = []
                for i in range(100):
                    pipeline += [parse(f"s{i}", f"select {i} + {n}"), bind("", f"s{i}"), execute()]
                w.send_raw(*pipeline, sync())
                msgs = w.read_until_ready()
                assert _kinds(msgs).count("1") == 100 and _kinds(msgs).count("2") == 100
                rows = [data_values(v)[0] for k, v in msgs if k == "D"]
                assert rows == [str(i + n) for i in range(100)]
                w.send_raw(*[m for i in range(10) for m in (bind("", f"s{i}"), execute(), sync())])
                for i in range(10):
                    msgs = w.read_until_ready()
                    assert [data_values(v)[0] for k, v in msgs if k == "D"] == [str(i + n)]
            finally:
                w.close()
        except Exception as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(90)
    assert not errors, errors[:3]


def test_set_timezone_follows_each_client(proxy):
    # One worker, one server: two clients with their own TimeZone take turns on it.
    p = proxy(workers=1, databases={"appdb": {**TX, "pool_size": 1}})
    with p.connect() as a, p.connect() as b, p.connect() as plain:
        a.execute("set TimeZone = 'Asia/Tokyo'")
        b.execute("set timezone to 'America/New_York'")
        for _ in range(5):
            assert a.execute("show TimeZone").fetchone() == ("Asia/Tokyo",)
            assert b.execute("show TimeZone").fetchone() == ("America/New_York",)
            # A client that never set it sees the server's default, not another's SET.
            assert plain.execute("show TimeZone").fetchone()[0] not in ("Asia/Tokyo", "America/New_York")
            assert a.execute("select pg_backend_pid()").fetchone() == b.execute("select pg_backend_pid()").fetchone()
        # Inside a transaction a SET that is rolled back does not stick.
        a.execute("begin")
        a.execute("set TimeZone = 'UTC'")
        a.execute("rollback")
        assert b.execute("show TimeZone").fetchone() == ("America/New_York",)
        assert a.execute("show TimeZone").fetchone() == ("Asia/Tokyo",)
        # The client's view of the parameter is its own.
        assert a.info.parameter_status("TimeZone") == "Asia/Tokyo"


def test_listen_is_refused(proxy):
    p = proxy(databases={"appdb": {**TX, "pool_size": 2}})
    with p.connect() as c:
        with pytest.raises(psycopg.errors.FeatureNotSupported) as e:
            c.execute("LISTEN some_channel")
        assert e.value.sqlstate == "0A000"
        assert "LISTEN" in str(e.value)
        # The session goes on.
        assert c.execute("select 'still here'").fetchone() == ("still here",)
        c.execute("notify some_channel")  # NOTIFY works: it needs no session


def test_listen_is_refused_in_the_extended_protocol(proxy):
    # The same refusal for a Parse of LISTEN, named or not, in order among other replies.
    p = proxy(databases={"appdb": {**TX, "pool_size": 2}})
    if p.direct:
        pytest.skip("LISTEN works on PostgreSQL itself")
    w = p.wire()
    try:
        w.send_raw(parse("", "select 1"), bind("", ""), execute(), sync(),
                   parse("", "  listen some_channel"), bind("", ""), execute(), sync(),
                   parse("l1", "LISTEN other_channel"), sync(),
                   parse("", "select 2"), bind("", ""), execute(), sync())
        first, refused, named, last = (w.read_until_ready() for _ in range(4))
        assert [data_values(v) for k, v in first if k == "D"] == [["1"]]
        for msgs in (refused, named):
            errs = [pgwire.error_fields(v) for k, v in msgs if k == "E"]
            assert len(errs) == 1 and errs[0]["C"] == "0A000" and "LISTEN" in errs[0]["M"], msgs
        assert [data_values(v) for k, v in last if k == "D"] == [["2"]]
        # The refused named statement was never made.
        w.send_raw(bind("", "l1"), execute(), sync())
        errs = [pgwire.error_fields(v) for k, v in w.read_until_ready() if k == "E"]
        assert errs and errs[0]["C"] == "26000", errs
    finally:
        w.close()


def test_options_search_path_follows_the_client(proxy, pg):
    # search_path is not reported by PostgreSQL 15: the proxy remembers what it set,
    # and resets it for a client that asked for none.
    schema = "sp_" + uuid.uuid4().hex[:8]
    pg.execute(f"create schema {schema} authorization app", dbname="appdb")
    try:
        p = proxy(workers=1, databases={"appdb": {**TX, "pool_size": 1}})
        with psycopg.connect(p.dsn(options=f"-c search_path={schema}"), autocommit=True) as c, \
                p.connect() as other:
            default = other.execute("show search_path").fetchone()[0]
            assert default != schema
            for _ in range(3):
                assert c.execute("show search_path").fetchone() == (schema,)
                assert other.execute("show search_path").fetchone() == (default,)
    finally:
        pg.execute(f"drop schema {schema}", dbname="appdb")


def test_unsupported_options_are_refused(proxy):
    p = proxy(databases={"appdb": {**TX}})
    with pytest.raises(psycopg.OperationalError) as e:
        psycopg.connect(p.dsn(options="-d 5"), connect_timeout=5)
    assert "unsupported startup options" in str(e.value)


def test_cancel_without_a_server_is_ignored(proxy):
    p = proxy(databases={"appdb": {**TX, "pool_size": 1}})
    with p.connect() as c, p.connect() as busy:
        assert c.execute("select 1").fetchone() == (1,)   # c holds no server now
        busy.execute("begin")
        busy.execute("select 1")                          # busy holds the only one
        c.cancel()                                        # nothing to cancel: ignored
        time.sleep(0.3)
        busy.execute("commit")
        assert busy.execute("select 'not cancelled'").fetchone() == ("not cancelled",)
        assert c.execute("select 'fine'").fetchone() == ("fine",)


def test_prepared_statements_past_the_limit(proxy):
    # More statements than max_prepared_statements: the least recently used are
    # deallocated before a client's next transaction, and prepared again on use.
    p = proxy(workers=1, max_prepared_statements=3, databases={"appdb": {**TX, "pool_size": 1}})
    w = p.wire()
    try:
        names = [f"q{i}" for i in range(8)]
        w.send_raw(*[parse(n, f"select {i} * 10") for i, n in enumerate(names)], sync())
        assert _kinds(w.read_until_ready()) == ["1"] * 8 + ["Z"]
        for _ in range(3):
            for i, n in enumerate(names):
                w.send_raw(bind("", n), execute(), sync())
                msgs = w.read_until_ready()
                assert [data_values(v) for k, v in msgs if k == "D"] == [[str(i * 10)]], msgs
        with p.connect() as c:
            c.prepare_threshold = None
            (n,) = c.execute("select count(*) from pg_prepared_statements").fetchone()
            assert 1 <= n <= 3, f"{n} statements kept; max_prepared_statements is 3"
    finally:
        w.close()


def test_large_query_while_waiting_for_a_server(proxy):
    # 300 KB sent while queued: reading pauses (backpressure), nothing is dropped.
    p = proxy(workers=1, databases={"appdb": {**TX, "pool_size": 1}})
    with p.connect() as busy, p.connect() as c:
        c.prepare_threshold = None
        busy.execute("begin")
        busy.execute("select 1")                      # holds the only server
        blob = bytes(range(256)) * 1200               # 307,200 bytes
        out = []
        t = threading.Thread(target=lambda: out.append(
            c.execute("select length(%s::bytea), md5(%s::bytea)", (blob, blob)).fetchone()))
        t.start()
        time.sleep(0.5)
        assert not out
        busy.execute("commit")
        t.join(20)
        assert out == [(len(blob), hashlib.md5(blob).hexdigest())]


def test_many_evictions_at_one_link(proxy):
    # 200 statements in one transaction on a server that keeps 10: the next link evicts 190,
    # more than one setup query holds; the rest wait for later links, and nothing fails.
    p = proxy(workers=1, max_prepared_statements=10, databases={"appdb": {**TX, "pool_size": 1}})
    w = p.wire()
    try:
        pipeline = []
        for i in range(200):
            pipeline += [parse(f"s{i}", f"select {i}"), bind("", f"s{i}"), execute()]
        w.send_raw(*pipeline, sync())
        assert _kinds(w.read_until_ready()).count("2") == 200
        for _ in range(6):
            assert w.query("select 1") == [[["1"]]]
        # The server kept no more than max_prepared_statements: the evictions did run.
        (((kept,),),) = w.query("select count(*) from pg_prepared_statements")
        assert int(kept) <= 10, f"the server still has {kept} statements"
        # Every name still works: evicted ones are prepared again where they are used.
        w.send_raw(*[m for i in (0, 150, 199) for m in (bind("", f"s{i}"), execute())], sync())
        assert [data_values(v)[0] for k, v in w.read_until_ready() if k == "D"] == ["0", "150", "199"]
    finally:
        w.close()


def test_parse_of_a_taken_name_is_42P05(proxy):
    p = proxy(databases={"appdb": {**TX, "pool_size": 2}})
    w = p.wire()
    try:
        for _ in range(2):  # the second time with no server held: answered in place
            w.send_raw(parse("s", "select 1"), sync())
            assert "E" not in _kinds(w.read_until_ready())   # the second time: Close freed the name
            w.send_raw(parse("s", "select 2"), bind("", "s"), execute(), sync())
            msgs = w.read_until_ready()
            codes = [pgwire.error_fields(v)["C"] for k, v in msgs if k == "E"]
            assert codes == ["42P05"], msgs
            # The first statement stands; Close frees the name.
            w.send_raw(bind("", "s"), execute(), close_stmt("s"), sync())
            assert [data_values(v)[0] for k, v in w.read_until_ready() if k == "D"] == ["1"]
    finally:
        w.close()
