"""Queries, results, errors, COPY and server-side logins through the proxy."""

import hashlib
import os
import subprocess

import psycopg
import pytest


def psql(p, *args, user="app", dbname="appdb", input=None, timeout=60):
    """Runs psql against the proxy; returns the CompletedProcess (text)."""
    env = dict(os.environ, PGPASSWORD=p.passwords[user], PGCONNECT_TIMEOUT="10")
    cmd = ["psql", "-X", "-v", "ON_ERROR_STOP=1", "-h", p.host, "-p", str(p.port), "-U", user, "-d", dbname, *args]
    return subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=timeout, env=env,
                          stdin=None if input is not None else subprocess.DEVNULL)


def test_psql_select_1(proxy):
    p = proxy()
    r = psql(p, "-At", "-c", "select 1")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "1\n"


def test_multi_statement_simple_query(proxy):
    p = proxy()
    # One Query message with two statements: both result sets come back.
    with p.connect() as c:
        cur = c.cursor()
        cur.execute("select 1 as a; select 2 as b")
        assert cur.fetchall() == [(1,)]
        assert cur.nextset()
        assert cur.fetchall() == [(2,)]
        assert not cur.nextset()
    # The same through the raw protocol, and through psql -f (one statement per Query).
    conn = p.wire()
    try:
        assert conn.query("select 1; select 2") == [[["1"]], [["2"]]]
    finally:
        conn.close()
    r = psql(p, "-At", "-f", "-", input="select 1;\nselect 2;\n")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["1", "2"]


def test_error_then_reuse(proxy):
    p = proxy()
    with p.connect() as c:
        with pytest.raises(psycopg.errors.SyntaxError) as e:
            c.execute("selec 1")
        assert e.value.sqlstate == "42601"
        assert c.execute("select 2").fetchone() == (2,)
        # An error inside an explicit transaction, then rollback, then work again.
        with pytest.raises(psycopg.errors.DivisionByZero):
            with c.transaction():
                c.execute("select 1/0")
        assert c.execute("select 3").fetchone() == (3,)


@pytest.mark.deadline(240)
def test_million_rows_checksum(proxy, pg):
    p = proxy()
    query = "select g, md5(g::text) from generate_series(1, 1000000) g"
    expected = pg.execute(
        "select count(*), sum(g), md5(string_agg(md5(g::text), '' order by g))"
        " from generate_series(1, 1000000) g")[0]
    with p.connect() as c:
        cur = c.cursor()
        cur.execute(query)
        h = hashlib.md5()
        n = total = 0
        for g, m in cur:
            h.update(m.encode())
            n += 1
            total += g
        assert (n, total, h.hexdigest()) == (expected[0], expected[1], expected[2])
        # The connection is still in step afterwards.
        assert c.execute("select 'after'").fetchone() == ("after",)


@pytest.mark.deadline(180)
def test_copy_in_and_out(proxy, pg):
    p = proxy()
    table = "copy_t"
    rows = [(i, hashlib.sha1(str(i).encode()).hexdigest()) for i in range(100_000)]
    client_sum = sum(r[0] for r in rows)
    client_hash = hashlib.md5("".join(r[1] for r in rows).encode()).hexdigest()
    with p.connect() as c:
        c.execute(f"drop table if exists {table}")
        c.execute(f"create table {table} (id int primary key, v text not null)")
        try:
            with c.cursor() as cur:
                with cur.copy(f"copy {table} (id, v) from stdin") as cp:
                    for r in rows:
                        cp.write_row(r)
            # What PostgreSQL itself holds now.
            n, s, hsh = pg.execute(
                f"select count(*), sum(id), md5(string_agg(v, '' order by id)) from {table}", dbname="appdb")[0]
            assert (n, s, hsh) == (len(rows), client_sum, client_hash)
            # COPY out through the proxy.
            out = []
            with c.cursor() as cur:
                with cur.copy(f"copy (select id, v from {table} order by id) to stdout") as cp:
                    for row in cp.rows():
                        out.append((int(row[0]), row[1]))
            assert len(out) == len(rows)
            assert out == rows
            assert c.execute(f"select count(*) from {table}").fetchone() == (len(rows),)
        finally:
            c.execute(f"drop table if exists {table}")


@pytest.mark.parametrize("user", ["app", "md5user", "pwuser", "trustuser"])
def test_server_side_auth_methods(proxy, user):
    # pg_hba gives each role another method (scram, md5, password, trust); the
    # proxy knows every password from its users list.
    p = proxy()
    with p.connect(user=user) as c:
        assert c.execute("select current_user, current_database()").fetchone() == (user, "appdb")


@pytest.mark.proxy_only
def test_options_apply_in_session_mode(proxy):
    p = proxy()
    with psycopg.connect(p.dsn(options="-c statement_timeout=4321 --application-name=from_options"),
                         autocommit=True) as c:
        assert c.execute("show statement_timeout").fetchone() == ("4321ms",)
        assert c.execute("show application_name").fetchone() == ("from_options",)
