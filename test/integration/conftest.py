"""Fixtures for the integration tests: one real PostgreSQL per run, a fresh ringbouncer per test.

Options:
  --ringbouncer PATH   the binary under test (default: build/ringbouncer of this repo)
  --direct             (hidden) point every client at PostgreSQL itself instead of a
                       proxy, to check the tests against the reference; tests marked
                       proxy_only are skipped.

Every test runs under a deadline (marker `deadline(seconds)`, default 120 s) so
nothing can hang the suite. The fixtures only ever signal processes they
started, by PID.
"""

import argparse
import contextlib
import faulthandler
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import pgwire  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"

# Server-side roles, their passwords, and the pg_hba method each one meets.
PASSWORDS = {"app": "app", "md5user": "md5pw", "pwuser": "pwpw", "trustuser": "trustpw"}
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "runtime error:", "WARNING: ThreadSanitizer", "LeakSanitizer")
DEFAULT_DEADLINE = 120


# ---------------------------------------------------------------- options, markers, deadlines

def pytest_addoption(parser):
    parser.addoption("--ringbouncer", default=str(REPO / "build" / "ringbouncer"),
                     help="path of the ringbouncer binary under test (default: build/ringbouncer)")
    parser.addoption("--direct", action="store_true", default=False, help=argparse.SUPPRESS)


def pytest_collection_modifyitems(config, items):
    if not config.getoption("--direct"):
        return
    skip = pytest.mark.skip(reason="tests the proxy itself (--direct points clients at PostgreSQL)")
    for item in items:
        if "proxy_only" in item.keywords:
            item.add_marker(skip)


@contextlib.contextmanager
def _deadline(seconds, what):
    """Raises TimeoutError in the main thread after seconds (SIGALRM), dumping every thread's stack."""
    def on_alarm(signum, frame):
        faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
        raise TimeoutError(f"{what} took longer than {seconds}s")

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(int(seconds))
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def _item_deadline(item):
    m = item.get_closest_marker("deadline")
    return m.args[0] if m else DEFAULT_DEADLINE


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item):
    with _deadline(180, f"setup of {item.nodeid}"):
        yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    with _deadline(_item_deadline(item), item.nodeid):
        yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item):
    with _deadline(120, f"teardown of {item.nodeid}"):
        yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" and report.failed:
        for p in getattr(item, "_rb_proxies", []):
            if p.proc is not None:
                report.sections.append((f"ringbouncer :{p.port} log (tail)", _tail(p.log)))


def _tail(text, lines=200):
    return "\n".join(text.splitlines()[-lines:])


# ---------------------------------------------------------------- helpers

def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def wait_port(port, timeout, proc=None, log=lambda: ""):
    """Waits until 127.0.0.1:port accepts a connection; fails early if proc exits."""
    deadline = time.monotonic() + timeout
    while True:
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"process exited with {proc.returncode} before listening on {port}:\n{log()}")
        try:
            with socket.create_connection((HOST, port), timeout=0.5):
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"nothing listens on {port} after {timeout}s:\n{log()}")
        time.sleep(0.05)


def pg_bindir():
    """PostgreSQL's server programs: $RB_PG_BINDIR, the newest /usr/lib/postgresql/*/bin, or PATH."""
    env = os.environ.get("RB_PG_BINDIR")
    if env:
        return Path(env)
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"),
                      key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0)
    if versions:
        return versions[-1].parent
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).parent
    pytest.fail("PostgreSQL server programs not found (install postgresql, or set RB_PG_BINDIR)")


def yaml_dump(value, indent=0):
    """Block-style YAML for dicts, lists and scalars; strings are quoted unless plainly safe."""
    pad = "  " * indent
    if isinstance(value, dict):
        if not value:
            return "{}\n"
        out = ""
        for k, v in value.items():
            key = _yaml_scalar(str(k))
            if isinstance(v, (dict, list)) and v:
                out += f"{pad}{key}:\n{yaml_dump(v, indent + 1)}"
            else:
                out += f"{pad}{key}: {yaml_dump(v, 0).strip()}\n"
        return out
    if isinstance(value, list):
        if not value:
            return "[]\n"
        out = ""
        for v in value:
            if isinstance(v, (dict, list)) and v:
                body = yaml_dump(v, indent + 1).lstrip()
                out += f"{pad}- {body}"
            else:
                out += f"{pad}- {yaml_dump(v, 0).strip()}\n"
        return out
    return _yaml_scalar(value) + "\n"


def _yaml_scalar(v):
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return str(v)
    s = str(v)
    special = {"", "null", "~", "true", "false", "yes", "no", "on", "off", "y", "n"}
    if (s.lower() not in special and all(c.isalnum() or c in "_-./" for c in s)
            and not s[0].isdigit() and not s.startswith(("-", "."))):
        return s
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def deep_merge(base, over):
    """base updated with over, recursively for dicts; a None value in over deletes the key."""
    out = dict(base)
    for k, v in over.items():
        if v is None:
            out.pop(k, None)
        elif isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = v
    return out


def connect(dsn, **kw):
    """psycopg connection with autocommit and a bounded connect."""
    kw.setdefault("autocommit", True)
    kw.setdefault("connect_timeout", 10)
    return psycopg.connect(dsn, **kw)


# ---------------------------------------------------------------- PostgreSQL

class Postgres:
    """A throwaway PostgreSQL cluster owned by the test run."""

    def __init__(self, root):
        self.root = Path(root)
        self.datadir = self.root / "data"
        self.sockdir = self.root / "run"
        self.logfile = self.root / "postgres.log"
        self.bindir = pg_bindir()
        self.host = HOST
        self.port = free_port()
        self.as_postgres = os.geteuid() == 0

    @property
    def superuser_dsn(self):
        return f"host={self.sockdir} port={self.port} user=postgres dbname=postgres connect_timeout=10"

    def dsn(self, user="app", dbname="appdb", password=None):
        password = PASSWORDS.get(user, "") if password is None else password
        return psycopg.conninfo.make_conninfo(host=HOST, port=self.port, user=user, dbname=dbname,
                                              password=password, connect_timeout=10)

    def _run(self, *args, timeout=120):
        cmd = [str(self.bindir / args[0]), *map(str, args[1:])]
        if self.as_postgres:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        r = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout,
                           cwd="/")
        if r.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} exited {r.returncode}:\n{r.stdout}{r.stderr}\n{self.log()}")
        return r

    def log(self):
        try:
            return _tail(self.logfile.read_text(errors="replace"), 50)
        except OSError:
            return ""

    def init(self):
        self.sockdir.mkdir(parents=True)
        if self.as_postgres:
            os.chmod(self.root, 0o755)
            shutil.chown(self.root, "postgres", "postgres")
            shutil.chown(self.sockdir, "postgres", "postgres")
        self._run("initdb", "-D", self.datadir, "-U", "postgres", "-E", "UTF8", "--no-locale", "-N",
                  "--auth-local=trust", "--auth-host=scram-sha-256")
        with open(self.datadir / "postgresql.conf", "a") as f:
            f.write(f"""
# ringbouncer integration tests
listen_addresses = '{HOST}'
port = {self.port}
unix_socket_directories = '{self.sockdir}'
max_connections = 200
fsync = off
synchronous_commit = off
full_page_writes = off
log_connections = on
log_disconnections = on
log_line_prefix = '%m [%p] %q%u@%d '
""")
        (self.datadir / "pg_hba.conf").write_text(
            "local all all trust\n"
            f"host all trustuser {HOST}/32 trust\n"
            f"host all md5user {HOST}/32 md5\n"
            f"host all pwuser {HOST}/32 password\n"
            f"host all all {HOST}/32 scram-sha-256\n")

    def start(self):
        self._run("pg_ctl", "-D", self.datadir, "-l", self.logfile, "-w", "-t", "60", "start")

    def stop(self, mode="fast"):
        self._run("pg_ctl", "-D", self.datadir, "-m", mode, "-w", "-t", "60", "stop")

    def restart(self):
        """pg_ctl restart -m fast on the same port; returns once it accepts connections again."""
        self._run("pg_ctl", "-D", self.datadir, "-l", self.logfile, "-m", "fast", "-w", "-t", "60", "restart")

    def running(self):
        return (self.datadir / "postmaster.pid").exists()

    def execute(self, sql, dbname="postgres", params=None):
        """Runs sql as the superuser; returns the rows of the last statement if it has any."""
        with connect(self.superuser_dsn.replace("dbname=postgres", f"dbname={dbname}")) as c:
            cur = c.execute(sql, params)
            return cur.fetchall() if cur.description else None

    def setup_roles(self):
        self.execute("CREATE ROLE app LOGIN PASSWORD 'app'")
        self.execute("SET password_encryption = 'md5'; CREATE ROLE md5user LOGIN PASSWORD 'md5pw'")
        self.execute("CREATE ROLE pwuser LOGIN PASSWORD 'pwpw'")
        self.execute("CREATE ROLE trustuser LOGIN")
        self.execute("CREATE DATABASE appdb OWNER app")
        self.execute("CREATE TABLE kv (k text PRIMARY KEY, v text); ALTER TABLE kv OWNER TO app", dbname="appdb")


@pytest.fixture(scope="session")
def pg():
    """A real PostgreSQL for the whole run: host, port, superuser_dsn, dsn(), execute(), restart()."""
    root = tempfile.mkdtemp(prefix="rb-pg-")
    server = Postgres(root)
    try:
        server.init()
        server.start()
        server.setup_roles()
    except BaseException:
        with contextlib.suppress(Exception):
            server.stop("immediate")
        print(server.log(), file=sys.stderr)
        shutil.rmtree(root, ignore_errors=True)
        raise
    yield server
    try:
        if server.running():
            server.stop()
    except Exception:
        server.stop("immediate")
    if not os.environ.get("RB_KEEP_PG"):
        shutil.rmtree(root, ignore_errors=True)


# ---------------------------------------------------------------- ringbouncer

@pytest.fixture(scope="session")
def direct(pytestconfig):
    return pytestconfig.getoption("--direct")


@pytest.fixture(scope="session")
def ringbouncer_bin(pytestconfig, direct):
    if direct:
        pytest.skip("needs the ringbouncer binary (--direct)")
    path = Path(pytestconfig.getoption("--ringbouncer"))
    if not path.is_absolute() and not path.exists():
        path = REPO / path
    if not path.exists():
        pytest.fail(f"ringbouncer binary not found: {path} (build it, or pass --ringbouncer)")
    return path.resolve()


def base_config(pg, port):
    return {
        "listen": [f"{HOST}:{port}"],
        "workers": 2,
        "max_client_connections": 1000,
        "log": {"level": "debug"},
        "auth": {"method": "scram-sha-256"},
        "shutdown_timeout": "5s",
        "users": {u: {"password": p} for u, p in PASSWORDS.items()},
        "databases": {
            "appdb": {"host": HOST, "port": pg.port, "dbname": "appdb",
                      "pool_mode": "session", "pool_size": 10},
        },
    }


class Proxy:
    """One ringbouncer process (or, with --direct, PostgreSQL standing in for it)."""

    def __init__(self, pg, port, proc=None, log_path=None, config=None, config_path=None):
        self.pg = pg
        self.host = HOST
        self.port = port
        self.proc = proc
        self.log_path = log_path
        self.config = config
        self.config_path = config_path
        self.passwords = dict(PASSWORDS)
        self.expect_exit = 0

    @property
    def direct(self):
        return self.proc is None

    @property
    def log(self):
        if self.log_path is None:
            return ""
        try:
            return Path(self.log_path).read_text(errors="replace")
        except OSError:
            return ""

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def alive(self):
        return self.proc is None or self.proc.poll() is None

    def dsn(self, user="app", dbname="appdb", password=None, **kw):
        if password is None:
            password = self.passwords.get(user, "")
        return psycopg.conninfo.make_conninfo(host=HOST, port=self.port, user=user, dbname=dbname,
                                              password=password, connect_timeout=10, **kw)

    def connect(self, user="app", dbname="appdb", password=None, **kw):
        """A psycopg connection through the proxy, autocommit on."""
        return connect(self.dsn(user, dbname, password), **kw)

    def wire(self, user="app", dbname="appdb", password=None, **kw):
        """A pgwire.Conn through the proxy (raises pgwire.WireError on a refused login)."""
        if password is None:
            password = self.passwords.get(user, "")
        return pgwire.connect(HOST, self.port, user, dbname, password, **kw)

    def login_error(self, user="app", dbname="appdb", password=None, timeout=10):
        """The WireError of a login + 'select 1', or None if both work."""
        if password is None:
            password = self.passwords.get(user, "")
        return pgwire.login_error(HOST, self.port, user, dbname, password, timeout=timeout)

    def signal(self, sig):
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, sig)

    def wait(self, timeout):
        """Waits for exit; returns the exit code, or None if still running after timeout."""
        if self.proc is None:
            return 0
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def sanitizer_reports(self):
        log = self.log
        return [m for m in SANITIZER_MARKERS if m in log]


@pytest.fixture
def proxy(request, pg, pytestconfig, tmp_path):
    """A factory: proxy(**config_overrides) -> a started Proxy (several per test are fine).

    Overrides deep-merge into base_config(); a None value deletes a key. At
    teardown every proxy gets SIGTERM and must exit 0 within 10 s with no
    sanitizer report in its log.
    """
    started = []
    request.node._rb_proxies = started
    direct_mode = pytestconfig.getoption("--direct")

    def start(**overrides):
        if direct_mode:
            p = Proxy(pg, pg.port)
            started.append(p)
            return p
        binary = request.getfixturevalue("ringbouncer_bin")
        port = free_port()
        n = len(started)
        cfg = deep_merge(base_config(pg, port), overrides)
        cfg_path = tmp_path / f"ringbouncer{n}.yaml"
        cfg_path.write_text(yaml_dump(cfg))
        log_path = tmp_path / f"ringbouncer{n}.log"
        with open(log_path, "ab") as logf:
            proc = subprocess.Popen([str(binary), "-c", str(cfg_path)], stdin=subprocess.DEVNULL,
                                    stdout=logf, stderr=subprocess.STDOUT, cwd=tmp_path)
        p = Proxy(pg, port, proc, log_path, cfg, cfg_path)
        started.append(p)
        try:
            wait_port(port, 10, proc, lambda: p.log)
        except BaseException:
            p.expect_exit = None   # already reported, with its log
            raise
        return p

    yield start

    problems = []
    for p in reversed(started):
        if p.proc is None:
            continue
        rc = p.proc.poll()
        if rc is None:
            os.kill(p.proc.pid, signal.SIGTERM)
            rc = p.wait(10)
            if rc is None:
                os.kill(p.proc.pid, signal.SIGKILL)
                p.proc.wait(10)
                problems.append(f"ringbouncer :{p.port} still running 10s after SIGTERM (killed)")
        if rc is not None and p.expect_exit is not None and rc != p.expect_exit:
            problems.append(f"ringbouncer :{p.port} exited with {rc}, expected {p.expect_exit}")
        found = p.sanitizer_reports()
        if found:
            problems.append(f"ringbouncer :{p.port} log has sanitizer reports: {found}")
    if problems:
        pytest.fail("\n".join(problems) + "\n" + "\n".join(
            f"----- ringbouncer :{p.port} log (tail) -----\n{_tail(p.log)}" for p in started if p.proc))

