"""Client authentication by the proxy: each auth.method, stored md5 and SCRAM secrets, unknown database.

Each method is tried with the role whose pg_hba method is the same, so that
with --direct PostgreSQL itself checks the same expectations.
"""

import hashlib
import secrets

import pytest

# auth.method -> the role whose pg_hba line uses that method
METHOD_USER = {"trust": "trustuser", "password": "pwuser", "md5": "md5user", "scram-sha-256": "app"}
# AuthenticationRequest codes the client must be asked for
METHOD_CODE = {"trust": None, "password": 3, "md5": 5, "scram-sha-256": 10}


@pytest.mark.parametrize("method", list(METHOD_USER))
def test_good_login(proxy, method):
    p = proxy(auth={"method": method})
    user = METHOD_USER[method]
    # psycopg (libpq) logs in and queries.
    with p.connect(user=user) as c:
        assert c.execute("select current_user").fetchone() == (user,)
    # The raw client sees the expected challenge.
    conn = p.wire(user=user)
    try:
        code = METHOD_CODE[method]
        if code is None:
            assert conn.auth_methods == [0]
        else:
            assert conn.auth_methods[0] == code
            assert conn.auth_methods[-1] == 0
        assert conn.query("select 7") == [[["7"]]]
    finally:
        conn.close()


@pytest.mark.parametrize("method", ["password", "md5", "scram-sha-256"])
def test_wrong_password(proxy, method):
    p = proxy(auth={"method": method})
    err = p.login_error(user=METHOD_USER[method], password="wrong-" + method)
    assert err is not None, "login with a wrong password succeeded"
    assert err.sqlstate == "28P01", err
    assert err.fields.get("S") == "FATAL"
    # A good login still works afterwards.
    assert p.login_error(user=METHOD_USER[method]) is None


def test_unknown_user(proxy):
    p = proxy(auth={"method": "scram-sha-256"})
    err = p.login_error(user="nosuchuser", password="x")
    assert err is not None, "login as an unknown user succeeded"
    # 28P01 like a wrong password (saying nothing about which users exist), or 28000.
    assert err.sqlstate in ("28P01", "28000"), err


def test_md5_secret_in_users(proxy):
    # users: md5user: {password: md5<hex>} -- the proxy never sees the plain password.
    secret = "md5" + hashlib.md5(b"md5pw" + b"md5user").hexdigest()
    p = proxy(auth={"method": "md5"},
              users={"md5user": {"password": secret}},
              databases={"appdb": {"user": "app", "password": "app"}})
    err = p.login_error(user="md5user", password="md5pw")
    assert err is None, err
    with p.connect(user="md5user", password="md5pw") as c:
        assert c.execute("select 1").fetchone() == (1,)
    assert p.login_error(user="md5user", password="nope").sqlstate == "28P01"


def test_scram_secret_in_users(proxy, pg):
    # Ask PostgreSQL for a SCRAM secret of a fresh password; the role lives
    # during the test so that --direct can log in with it too.
    role = "scram_" + secrets.token_hex(4)
    password = "pw-" + secrets.token_hex(8)
    pg.execute(f"SET password_encryption = 'scram-sha-256'; CREATE ROLE {role} LOGIN PASSWORD '{password}'")
    try:
        (secret,) = pg.execute("select rolpassword from pg_authid where rolname = %s", params=(role,))[0]
        assert secret.startswith("SCRAM-SHA-256$")
        p = proxy(auth={"method": "scram-sha-256"},
                  users={role: {"password": secret}},
                  databases={"appdb": {"user": "app", "password": "app"}})
        p.passwords[role] = password
        assert p.login_error(user=role) is None
        with p.connect(user=role) as c:
            assert c.execute("select 1").fetchone() == (1,)
        err = p.login_error(user=role, password="wrong")
        assert err is not None and err.sqlstate == "28P01", err
    finally:
        pg.execute(f"DROP ROLE IF EXISTS {role}")


def test_unknown_database(proxy):
    p = proxy()
    err = p.login_error(user="app", dbname="nosuchdb")
    assert err is not None, "login to an unknown database succeeded"
    assert err.sqlstate == "3D000", err
    assert "nosuchdb" in err.message
