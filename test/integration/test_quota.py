"""Per-tenant quotas and guardrails: each limit, hit by real clients, is a proper error and holds exactly."""

import threading
import time
import uuid

import psycopg
import pytest

import pgwire
from pgwire import bind, execute, parse, sync

pytestmark = pytest.mark.proxy_only

TX = {"pool_mode": "transaction"}


def tenant_proxy(proxy, tenant, pool=None, pool_size=5, **overrides):
    """A proxy whose user app belongs to tenant acme with the given limits."""
    t = {"users": ["app"], **tenant}
    return proxy(tenants={"acme": t}, databases={"appdb": {**(pool or TX), "pool_size": pool_size}},
                 **overrides)


def sqlstate(excinfo):
    return excinfo.value.sqlstate


@pytest.fixture
def table(pg):
    """A fresh table of the app user's, for counting what reached PostgreSQL."""
    name = "q_" + uuid.uuid4().hex[:10]
    pg.execute(f"create table {name} (i int); alter table {name} owner to app", dbname="appdb")
    yield name
    pg.execute(f"drop table if exists {name}", dbname="appdb")


def server_count(pg, table):
    return pg.execute(f"select count(*) from {table}", dbname="appdb")[0][0]


def wait_utc_margin(seconds, per=86400):
    """Sleeps past a window boundary that is less than `seconds` away, so a test's window holds."""
    left = per - time.time() % per
    if left < seconds:
        time.sleep(left + 0.1)


# ---------------------------------------------------------------- connections

def test_max_client_connections_per_tenant(proxy):
    p = tenant_proxy(proxy, {"max_client_connections": 2})
    with p.connect() as a, p.connect() as b:
        err = p.login_error()
        assert err is not None and err.sqlstate == "53300", err
        assert 'tenant "acme"' in str(err) and "max_client_connections is 2" in str(err)
        # Another user, in no tenant, is not counted.
        assert p.login_error(user="md5user") is None
        a.execute("select 1")
        b.execute("select 1")
    # Room again once they left.
    with p.connect() as c:
        assert c.execute("select 1").fetchone() == (1,)


def test_max_server_connections_queues_then_serves(proxy, pg, table):
    p = tenant_proxy(proxy, {"max_server_connections": 1}, query_wait_timeout="10s", workers=1)
    with p.connect() as a, p.connect() as b:
        a.execute("begin")
        a.execute(f"insert into {table} values (1)")
        done = threading.Event()

        def other():
            b.execute(f"insert into {table} values (2)")
            done.set()

        t = threading.Thread(target=other)
        t.start()
        # b waits while a holds the tenant's one server.
        assert not done.wait(0.7)
        assert server_count(pg, table) == 0
        a.execute("commit")
        assert done.wait(5), "the waiting client never got the freed server"
        t.join()
    assert server_count(pg, table) == 2


def test_max_server_connections_wait_times_out(proxy):
    p = tenant_proxy(proxy, {"max_server_connections": 1}, query_wait_timeout="1s")
    with p.connect() as a:
        a.execute("begin")
        a.execute("select 1")
        err = p.login_error(timeout=15)
        assert err is not None and err.sqlstate == "53300", err
        assert 'tenant "acme"' in err.message and "max_server_connections is 1" in err.message
        a.execute("commit")


# ---------------------------------------------------------------- rate

def test_rate_reject(proxy, pg, table):
    p = tenant_proxy(proxy, {"queries_per_second": 5, "burst": 5, "rate_limit_action": "reject"})
    ok = refused = 0
    with p.connect() as c:
        t0 = time.monotonic()
        for i in range(20):
            try:
                c.execute(f"insert into {table} values ({i})")
                ok += 1
            except psycopg.Error as e:
                assert e.sqlstate == "53400", e
                assert 'tenant "acme"' in str(e) and "queries_per_second is 5" in str(e)
                refused += 1
        elapsed = time.monotonic() - t0
        # The session stays usable, and nothing refused reached PostgreSQL.
        time.sleep(0.3)
        assert c.execute("select 7").fetchone() == (7,)
    assert refused >= 5
    assert ok <= 5 + 5 * elapsed + 1, (ok, elapsed)
    assert server_count(pg, table) == ok


def test_rate_delay_paces_queries(proxy, pg, table):
    p = tenant_proxy(proxy, {"queries_per_second": 20, "burst": 1, "max_delay": "2s"})
    with p.connect() as c:
        t0 = time.monotonic()
        for i in range(21):
            c.execute(f"insert into {table} values ({i})")
        elapsed = time.monotonic() - t0
    # 21 queries at 20 per second with a burst of one: a second at least, none refused.
    assert elapsed >= 0.95, elapsed
    assert server_count(pg, table) == 21


def test_rate_delay_past_max_delay_is_refused(proxy, pg, table):
    p = tenant_proxy(proxy, {"queries_per_second": 2, "burst": 1, "max_delay": "700ms"})
    conns = [p.connect() for _ in range(4)]
    results = [None] * 4
    go = threading.Barrier(4)

    def one(k):
        go.wait()
        try:
            conns[k].execute(f"insert into {table} values ({k})")
            results[k] = "ok"
        except psycopg.Error as e:
            results[k] = e

    try:
        threads = [threading.Thread(target=one, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        for c in conns:
            c.close()
    # Four at once at 2 per second: waits of 0, 0.5, 1 and 1.5 s; the last two pass max_delay.
    refused = [r for r in results if r != "ok"]
    assert results.count("ok") == 2, results
    for e in refused:
        assert e.sqlstate == "53400" and "max_delay" in str(e), e
    assert server_count(pg, table) == 2


def test_rate_limit_extended_protocol_and_pipeline(proxy, pg, table):
    p = tenant_proxy(proxy, {"queries_per_second": 3, "burst": 3, "rate_limit_action": "reject"})
    c = p.wire()
    try:
        msgs = []
        for i in range(6):
            msgs += [parse("", f"insert into {table} values ({i})"), bind("", ""), execute(), sync()]
        c.send_raw(*msgs)
        codes = []
        for _ in range(6):
            replies = c.read_until_ready()
            codes += [pgwire.error_fields(payload)["C"] for kind, payload in replies if kind == "E"]
        assert codes == ["53400"] * 3, codes
        time.sleep(0.4)  # a token frees every 333 ms: the session goes on
        assert c.query("select 1") == [[["1"]]]
    finally:
        c.close()
    assert server_count(pg, table) == 3


# ---------------------------------------------------------------- budgets

def test_budget_queries(proxy, pg, table):
    wait_utc_margin(10)
    p = tenant_proxy(proxy, {"budgets": [{"metric": "queries", "limit": 5, "per": "day"}]})
    with p.connect() as c:
        for i in range(5):
            c.execute(f"insert into {table} values ({i})")
        with pytest.raises(psycopg.Error) as e:
            c.execute(f"insert into {table} values (99)")
        assert sqlstate(e) == "53400"
        msg = str(e.value)
        assert 'tenant "acme"' in msg and "queries per day is limited to 5" in msg
        assert "resets" in (e.value.diag.message_hint or "")
        # Still connected: every new query is refused the same way, without a hang.
        with pytest.raises(psycopg.Error) as e:
            c.execute("select 1")
        assert sqlstate(e) == "53400"
    assert server_count(pg, table) == 5


def test_budget_rows_lets_the_running_query_finish(proxy):
    wait_utc_margin(10)
    p = tenant_proxy(proxy, {"budgets": [{"metric": "rows", "limit": 10, "per": "day"}]})
    with p.connect() as c:
        assert len(c.execute("select generate_series(1, 8)").fetchall()) == 8
        # Starts under the limit: runs to the end past it.
        assert len(c.execute("select generate_series(1, 5)").fetchall()) == 5
        with pytest.raises(psycopg.Error) as e:
            c.execute("select 1")
        assert sqlstate(e) == "53400" and "rows per day" in str(e.value)


@pytest.mark.parametrize("metric,limit,sql", [
    ("bytes_out", "10KB", "select repeat('x', 20000)"),
    ("server_time", "300ms", "select pg_sleep(0.4)"),
])
def test_budget_spent_by_one_query(proxy, metric, limit, sql):
    wait_utc_margin(10)
    p = tenant_proxy(proxy, {"budgets": [{"metric": metric, "limit": limit, "per": "day"}]})
    with p.connect() as c:
        c.execute(sql).fetchall()
        with pytest.raises(psycopg.Error) as e:
            c.execute("select 1")
        assert sqlstate(e) == "53400" and f"{metric} per day" in str(e.value)


# ---------------------------------------------------------------- deny / allow

@pytest.mark.parametrize("pool", ["transaction", "session"])
def test_deny_rules(proxy, pg, table, pool):
    p = tenant_proxy(proxy, {"deny": [r"^\s*(drop|truncate)\b"]}, pool={"pool_mode": pool})
    with p.connect() as c:
        for sql in (f"drop table {table}", f"/* hidden */ DROP TABLE {table}",
                    f"select 1; truncate {table}", f"-- c\ntruncate {table}"):
            with pytest.raises(psycopg.Error) as e:
                c.execute(sql)
            assert sqlstate(e) == "42501", sql
            assert 'tenant "acme"' in str(e.value) and "deny rule" in str(e.value)
        # Extended protocol (psycopg with parameters): refused at Parse.
        with pytest.raises(psycopg.Error) as e:
            c.execute(f"truncate {table} restart identity", prepare=False)
        assert sqlstate(e) == "42501"
        c.execute(f"insert into {table} values (%s)", (1,))
        assert c.execute("select 'drop table x'").fetchone() == ("drop table x",)
        # Inside a transaction the refusal aborts it, as a PostgreSQL error would.
        c.execute("begin")
        c.execute(f"insert into {table} values (2)")
        with pytest.raises(psycopg.Error) as e:
            c.execute(f"drop table {table}")
        assert sqlstate(e) == "42501"
        with pytest.raises(psycopg.errors.InFailedSqlTransaction):
            c.execute("select 1")
        c.execute("rollback")
    assert server_count(pg, table) == 1


def test_allow_rules(proxy, pg, table):
    p = tenant_proxy(proxy, {"allow": [r"^select\b", r"^insert\b"]})
    with p.connect() as c:
        c.execute(f"insert into {table} values (1)")
        assert c.execute(f"select count(*) from {table}").fetchone() == (1,)
        with pytest.raises(psycopg.Error) as e:
            c.execute(f"delete from {table}")
        assert sqlstate(e) == "42501" and "no allow rule" in str(e.value)
        with pytest.raises(psycopg.Error) as e:
            c.execute(f"select 1; delete from {table}")
        assert sqlstate(e) == "42501"
    assert server_count(pg, table) == 1


# ---------------------------------------------------------------- concurrency

@pytest.mark.deadline(120)
def test_rate_holds_under_8_threads(proxy, pg, table):
    rate, burst, secs = 200, 50, 5.0
    p = tenant_proxy(proxy, {"queries_per_second": rate, "burst": burst, "rate_limit_action": "reject"},
                     pool_size=8)
    admitted = [0] * 8
    stop = time.monotonic() + secs
    start = time.monotonic()

    def hammer(k):
        with p.connect() as c:
            while time.monotonic() < stop:
                try:
                    c.execute(f"insert into {table} values ({k})")
                    admitted[k] += 1
                except psycopg.Error as e:
                    assert e.sqlstate == "53400", e

    threads = [threading.Thread(target=hammer, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - start
    total = sum(admitted)
    assert total <= burst + rate * elapsed + 2, (total, elapsed)
    assert total >= rate * secs * 0.5, (total, elapsed)
    assert server_count(pg, table) == total


@pytest.mark.deadline(120)
def test_budget_holds_under_8_threads(proxy, pg, table):
    wait_utc_margin(30)
    limit = 300
    p = tenant_proxy(proxy, {"budgets": [{"metric": "queries", "limit": limit, "per": "day"}]},
                     pool_size=8)
    refused = [0] * 8

    def hammer(k):
        with p.connect() as c:
            while refused[k] < 5:
                try:
                    c.execute(f"insert into {table} values ({k})")
                except psycopg.Error as e:
                    assert e.sqlstate == "53400", e
                    refused[k] += 1

    threads = [threading.Thread(target=hammer, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # Queries are counted exactly: not one past the budget.
    assert server_count(pg, table) == limit


# ---------------------------------------------------------------- state and logs

def test_usage_survives_restart_and_corrupt_state(proxy, tmp_path):
    wait_utc_margin(20)
    state = tmp_path / "usage.state"
    tenant = {"budgets": [{"metric": "queries", "limit": 4, "per": "day"}]}
    p = tenant_proxy(proxy, tenant, quota={"state_file": str(state)})
    with p.connect() as c:
        for _ in range(3):
            c.execute("select 1")
    p.signal(15)
    assert p.wait(10) == 0
    assert state.exists()
    p2 = tenant_proxy(proxy, tenant, quota={"state_file": str(state)})
    with p2.connect() as c:
        c.execute("select 1")  # the fourth of the day
        with pytest.raises(psycopg.Error) as e:
            c.execute("select 1")
        assert sqlstate(e) == "53400"
    p2.signal(15)
    assert p2.wait(10) == 0
    state.write_text("this is not a state file\n")
    p3 = tenant_proxy(proxy, tenant, quota={"state_file": str(state)})
    with p3.connect() as c:
        assert c.execute("select 1").fetchone() == (1,)
    assert "corrupt" in p3.log


def test_periodic_usage_log(proxy):
    p = tenant_proxy(proxy, {"max_client_connections": 9,
                             "budgets": [{"metric": "queries", "limit": 1000, "per": "hour"}]},
                     quota={"log_interval": "1s"})
    with p.connect() as c:
        c.execute("select 1")
        deadline = time.monotonic() + 5
        while "tenant acme:" not in p.log and time.monotonic() < deadline:
            time.sleep(0.2)
    assert "tenant acme:" in p.log


# ---------------------------------------------------------------- timeouts

@pytest.mark.parametrize("pool", ["transaction", "session"])
def test_query_timeout_cancels_on_the_server(proxy, pg, table, pool):
    p = tenant_proxy(proxy, {"query_timeout": "500ms"}, pool={"pool_mode": pool})
    with p.connect() as c:
        t0 = time.monotonic()
        with pytest.raises(psycopg.Error) as e:
            c.execute(f"insert into {table} select 1 from pg_sleep(5)")
        waited = time.monotonic() - t0
        assert sqlstate(e) == "57014"
        assert 'tenant "acme"' in str(e.value) and "query_timeout" in str(e.value)
        assert 0.4 <= waited < 3, waited
        # Canceled on the server, not just abandoned: the insert never happened, the session goes on.
        assert c.execute("select 1").fetchone() == (1,)
        c.execute(f"insert into {table} values (1)")
    assert server_count(pg, table) == 1
    # No backend is left running the sleep.
    assert pg.execute("select count(*) from pg_stat_activity where query like '%pg_sleep(5)%'"
                      " and state = 'active' and pid <> pg_backend_pid()")[0][0] == 0


@pytest.mark.parametrize("pool", ["transaction", "session"])
def test_idle_transaction_timeout(proxy, pg, table, pool):
    p = tenant_proxy(proxy, {"idle_transaction_timeout": "500ms"}, pool={"pool_mode": pool})
    c = p.wire()
    c.query("begin")
    c.query(f"insert into {table} values (1)")
    time.sleep(1.2)
    with pytest.raises((pgwire.WireError, pgwire.ProtocolError, OSError)) as e:
        c.query("commit")
    if isinstance(e.value, pgwire.WireError):
        assert e.value.sqlstate == "25P03", e.value
        assert 'tenant "acme"' in e.value.message
    c.sock.close()
    # Rolled back, and a client that is not idle in a transaction is left alone.
    assert server_count(pg, table) == 0
    with p.connect() as d:
        d.execute("begin")
        d.execute(f"insert into {table} values (2)")
        d.execute("select pg_sleep(0.8)")
        d.execute("commit")
    assert server_count(pg, table) == 1


# ---------------------------------------------------------------- result limits

@pytest.mark.parametrize("limit", [{"max_rows": 1000}, {"max_result_bytes": "64KB"}])
@pytest.mark.parametrize("pool", ["transaction", "session"])
def test_result_limit(proxy, limit, pool):
    p = tenant_proxy(proxy, limit, pool={"pool_mode": pool})
    with p.connect() as c:
        assert len(c.execute("select g, repeat('x', 10) from generate_series(1, 500) g").fetchall()) == 500
        with pytest.raises(psycopg.Error) as e:
            c.execute("select g, repeat('x', 100) from generate_series(1, 10000000) g").fetchall()
        assert sqlstate(e) == "54000"
        key = next(iter(limit))
        assert 'tenant "acme"' in str(e.value) and key in str(e.value)
        # The session is usable right after, with nothing of the cut result left over.
        assert c.execute("select 42").fetchone() == (42,)
        # Extended protocol too.
        with pytest.raises(psycopg.Error) as e:
            c.execute("select g from generate_series(1, %s) g", (10000000,)).fetchall()
        assert sqlstate(e) == "54000"
        assert c.execute("select %s::int", (7,)).fetchone() == (7,)


def test_result_limit_raw_stream_ends_with_ready(proxy):
    p = tenant_proxy(proxy, {"max_rows": 10})
    c = p.wire()
    try:
        with pytest.raises(pgwire.WireError) as e:
            c.query("select generate_series(1, 100000)")
        assert e.value.sqlstate == "54000"
        assert c.status == "I"
        assert c.query("select 1") == [[["1"]]]
    finally:
        c.close()


# ---------------------------------------------------------------- read_only

@pytest.mark.parametrize("pool", ["transaction", "session"])
def test_read_only_tenant(proxy, pg, table, pool):
    p = proxy(tenants={"ro": {"users": ["app"], "read_only": True}},
              databases={"appdb": {"pool_mode": pool, "pool_size": 2}}, workers=1)
    pg.execute(f"insert into {table} values (1)", dbname="appdb")
    with p.connect() as c:
        assert c.execute(f"select count(*) from {table}").fetchone() == (1,)
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            c.execute(f"insert into {table} values (2)")
        for sql in ("set default_transaction_read_only = off", "set transaction_read_only to off",
                    "begin read write", "set session characteristics as transaction read write",
                    "reset all", "discard all", "set u&\"default_transaction_read\\005fonly\" = off",
                    "select set_config('default_transaction_' || 'read_only', 'off', false)",
                    "select \"set_config\"('default_transaction_' || 'read_only', 'off', false)",
                    "do $$ begin execute 'set default_transaction_read' || '_only = off'; end $$",
                    "/* x */ SET default_transaction_read_only=off"):
            with pytest.raises(psycopg.Error) as e:
                c.execute(sql)
            assert sqlstate(e) == "42501", sql
            assert "read-only" in str(e.value)
        c.execute("select set_config('app.tenant', 'a', false)")
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            c.execute(f"delete from {table}")
    assert server_count(pg, table) == 1


# ---------------------------------------------------------------- paths around the rules

def test_rules_cover_local_prepare_and_function_calls(proxy, pg, table):
    import struct
    p = tenant_proxy(proxy, {"deny": [r"^\s*(drop|truncate)\b"]})
    c = p.wire()
    try:
        # PQprepare with no server held is answered by the proxy: the rules still judge it.
        c.send_raw(parse("s1", f"drop table {table}"), sync())
        errs = [pgwire.error_fields(pl) for k, pl in c.read_until_ready() if k == "E"]
        assert [e["C"] for e in errs] == ["42501"], errs
        c.send_raw(bind("", "s1"), execute(), sync())
        kinds = [k for k, _ in c.read_until_ready()]
        assert "C" not in kinds, kinds
        # A FunctionCall (here pg_backend_pid, OID 2026) cannot be judged by a rule: refused.
        c.send_raw((b"F", struct.pack("!IhhH", 2026, 0, 0, 0)))
        errs = [pgwire.error_fields(pl) for k, pl in c.read_until_ready() if k == "E"]
        assert [e["C"] for e in errs] == ["42501"], errs
        assert c.query("select 1") == [[["1"]]]
    finally:
        c.close()
    assert pg.execute(f"select to_regclass('{table}') is not null", dbname="appdb")[0][0]


def test_result_cut_keeps_pipeline_bookkeeping(proxy):
    # One server for everyone: if the cut left it looking busy, the second client would wait forever.
    p = tenant_proxy(proxy, {"max_rows": 10}, pool_size=1, workers=1, query_wait_timeout="5s")
    c = p.wire()
    try:
        c.send_raw(parse("", "select generate_series(1, 100000)"), bind("", ""), execute(),
                   parse("s2", "select 2"), sync())
        replies = c.read_until_ready()
        codes = [pgwire.error_fields(pl)["C"] for k, pl in replies if k == "E"]
        assert codes == ["54000"], replies[-3:]
        c.send_raw(bind("", "s2"), execute(), sync())
        assert [k for k, _ in c.read_until_ready()][-2:] == ["C", "Z"]
        with p.connect() as other:
            assert other.execute("select 3").fetchone() == (3,)
    finally:
        c.close()
