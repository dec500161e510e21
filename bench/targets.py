"""What bench/run measures: the targets (direct PostgreSQL, PgBouncer, ringbouncer),
each with the pool mode it runs and whether it can run yet, and how each one is
started and stopped. One table, TARGETS, below.
"""

import math
import os
import re
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

from common import (BENCH_DB, BENCH_PASSWORD, BENCH_USER, HOST, NCPU, BenchError, chown_pg, free_port,
                    run, tail_of, wait_tcp)

SESSION_POOL_SIZE = 1000   # session mode: one server per client, so >= the most clients of any case
TXN_POOL_SIZE = 20         # transaction mode: a small pool, the same for every pooler
IDLE_POOL_SIZE = 20        # the idle-scale test: idle clients need no server
MAX_CLIENTS = 20000        # client connection limit of every pooler (idle scale needs 10,000+)
SERVER_HOST = HOST         # poolers reach PostgreSQL over TCP loopback, as pgbench reaches them

# PgBouncer's auth_file holds the bench password in plain text, so that it logs
# clients in with SCRAM and derives the SCRAM keys itself at each login (as a
# pooler without stored secrets does). "scram" gives it PostgreSQL's stored
# secret instead (it then logs in to the server with the client's proof);
# RB_BENCH_PGBOUNCER_SECRET=scram in the environment selects that for one run.
PGBOUNCER_AUTH_FILE_SECRET = os.environ.get("RB_BENCH_PGBOUNCER_SECRET", "plain")


@dataclass
class Target:
    name: str
    kind: str                      # postgres | pgbouncer | ringbouncer
    pool_mode: str = None          # session | transaction (None for direct)
    procs: int = 1                 # PgBouncer: that many processes on one port (so_reuseport)
    unsupported: str = None        # why this target cannot run at all yet (None: it can)
    note: str = ""
    tenant: bool = False           # ringbouncer: its user belongs to a tenant with every limit set
    optional: bool = False         # not in the full or quick matrix; bench/run --tenant runs it


TARGETS = [
    Target("direct", "postgres", note="PostgreSQL itself, the reference"),
    Target("pgbouncer-session", "pgbouncer", "session"),
    Target("pgbouncer-txn", "pgbouncer", "transaction"),
    Target("pgbouncer-rp-session", "pgbouncer", "session", procs=NCPU,
           note=f"{NCPU} PgBouncer processes sharing the port with so_reuseport"),
    Target("pgbouncer-rp-txn", "pgbouncer", "transaction", procs=NCPU,
           note=f"{NCPU} PgBouncer processes sharing the port with so_reuseport, "
                f"pool {math.ceil(TXN_POOL_SIZE / NCPU)} each"),
    Target("ringbouncer-session", "ringbouncer", "session"),
    Target("ringbouncer-txn", "ringbouncer", "transaction"),
    Target("ringbouncer-tenant", "ringbouncer", "transaction", tenant=True, optional=True,
           note="ringbouncer-txn with the bench user in a tenant that has every limit set, none reached"),
]

BY_NAME = {t.name: t for t in TARGETS}


def baseline_for(target, kind):
    """The PgBouncer target a ratio compares `target` with: kind 'pgbouncer'
    (one process) or 'pgbouncer-rp' (so_reuseport), same pool mode."""
    mode = {"session": "session", "transaction": "txn"}.get(target.pool_mode)
    if mode is None:
        return None
    return BY_NAME.get(f"{kind}-{mode}")


def pgbouncer_version_tuple(text):
    m = re.search(r"(\d+)\.(\d+)(?:\.(\d+))?", text or "")
    return tuple(int(x or 0) for x in m.groups()) if m else (0, 0, 0)


def why_unsupported(target, case, env):
    """None if target can run case, else the reason shown in the results."""
    if target.unsupported:
        return target.unsupported
    if target.kind == "pgbouncer" and target.pool_mode == "transaction" and case.proto == "prepared":
        if pgbouncer_version_tuple(env.pgbouncer_version) < (1, 21):
            return (f"PgBouncer {env.pgbouncer_version_short} cannot relay protocol-level prepared "
                    "statements in transaction mode (1.21+ can, with max_prepared_statements)")
    return None


def pool_size(target, per_process=True):
    if target.pool_mode == "transaction":
        return math.ceil(TXN_POOL_SIZE / target.procs) if per_process else TXN_POOL_SIZE
    return SESSION_POOL_SIZE


# ---------------------------------------------------------------- running targets

@dataclass
class Running:
    target: Target
    port: int
    procs: list = field(default_factory=list)   # Popen objects of the pooler (empty for direct)
    logs: list = field(default_factory=list)
    env: object = None

    @property
    def pids(self):
        return [p.pid for p in self.procs]

    def alive(self):
        return all(p.poll() is None for p in self.procs)

    def stop(self):
        codes = [self.env.procs.stop(p) for p in self.procs]
        self.procs = []
        return codes


def ringbouncer_yaml(target, env, port, pool, level="warn"):
    mode = target.pool_mode
    return f"""\
# bench/run: ringbouncer target {target.name}
listen: ["{HOST}:{port}"]
workers: auto
max_client_connections: {MAX_CLIENTS}
log: {{level: {level}}}
auth: {{method: scram-sha-256}}
users:
  {BENCH_USER}: {{password: {BENCH_PASSWORD}}}
databases:
  {BENCH_DB}: {{host: {SERVER_HOST}, port: {env.pg.port}, dbname: {BENCH_DB}, user: {BENCH_USER}, pool_mode: {mode}, pool_size: {pool}}}
client_login_timeout: 60s
shutdown_timeout: 2s
{tenant_yaml(env) if target.tenant else ""}"""


def tenant_yaml(env):
    """Every limit of a tenant, each far above what a bench run reaches: the cost of checking them."""
    return f"""\
tenants:
  bench:
    users: [{BENCH_USER}]
    max_client_connections: {MAX_CLIENTS}
    max_server_connections: 1000
    queries_per_second: 10000000
    burst: 10000000
    rate_limit_action: delay
    max_delay: 1s
    query_timeout: 60s
    idle_transaction_timeout: 60s
    max_rows: 100000000
    max_result_bytes: 10GB
    budgets:
      - {{metric: queries, limit: 100000000000, per: day}}
      - {{metric: bytes_out, limit: 100000GB, per: hour}}
      - {{metric: rows, limit: 100000000000, per: day}}
      - {{metric: server_time, limit: 1000h, per: hour}}
    deny: ['^\\s*(drop|truncate)\\b']
    read_only: false
quota:
  state_file: {env.tmp}/ringbouncer-quota.state
"""


def pgbouncer_ini(target, env, port, sockdir, pool, logfile):
    extra = ""
    if target.procs > 1:
        extra += "so_reuseport = 1\n"
    if target.pool_mode == "transaction" and pgbouncer_version_tuple(env.pgbouncer_version) >= (1, 21):
        extra += "max_prepared_statements = 200\n"
    return f"""\
;; bench/run: PgBouncer target {target.name}
[databases]
{BENCH_DB} = host={SERVER_HOST} port={env.pg.port} dbname={BENCH_DB}

[pgbouncer]
listen_addr = {HOST}
listen_port = {port}
unix_socket_dir = {sockdir}
pidfile = {sockdir}/pgbouncer.pid
logfile = {logfile}
auth_type = scram-sha-256
auth_file = {env.tmp}/userlist.txt
pool_mode = {target.pool_mode}
default_pool_size = {pool}
max_client_conn = {MAX_CLIENTS}
max_db_connections = 0
listen_backlog = 4096
log_connections = 0
log_disconnections = 0
server_reset_query = DISCARD ALL
ignore_startup_parameters = extra_float_digits
{extra}"""


def write_pgbouncer_userlist(env):
    if PGBOUNCER_AUTH_FILE_SECRET == "scram":
        secret = env.pg.scram_secret(BENCH_USER)
    else:
        secret = BENCH_PASSWORD
    path = Path(env.tmp) / "userlist.txt"
    path.write_text(f'"{BENCH_USER}" "{secret}"\n')
    chown_pg(path)
    path.chmod(0o600)
    return path


def start_target(target, env, *, pool=None, level="warn", wrapper=(), ready_timeout=30):
    """Starts the pooler(s) of target on a fresh port and waits until they listen.
    wrapper: argv prefix for ringbouncer (e.g. valgrind)."""
    if target.kind == "postgres":
        return Running(target, env.pg.port, env=env)
    port = free_port()
    env.run_no += 1
    base = Path(env.tmp) / "poolers" / f"{env.run_no:05d}-{target.name}"
    base.mkdir(parents=True)
    chown_pg(base)
    running = Running(target, port, env=env)
    if target.kind == "ringbouncer":
        cfg = base / "ringbouncer.yaml"
        cfg.write_text(ringbouncer_yaml(target, env, port, pool or pool_size(target), level))
        logf = base / "ringbouncer.log"
        p = env.procs.start(target.name, [*wrapper, str(env.ringbouncer), "-c", str(cfg)], log_path=logf)
        running.procs.append(p)
        running.logs.append(logf)
        try:
            wait_tcp(port, ready_timeout, [p], target.name, logf)
        except BenchError:
            running.stop()
            raise
        return running
    if target.kind == "pgbouncer":
        for i in range(target.procs):
            sockdir = base / f"p{i}"
            sockdir.mkdir()
            logf = sockdir / "pgbouncer.log"
            chown_pg(sockdir)
            ini = sockdir / "pgbouncer.ini"
            ini.write_text(pgbouncer_ini(target, env, port, sockdir, pool or pool_size(target), logf))
            # PgBouncer refuses to run as root: it runs as the user postgres.
            p = env.procs.start(f"{target.name}[{i}]", [env.pgbouncer, str(ini)], as_pg=True,
                                stop_signal=signal.SIGTERM, log_path=base / f"p{i}.stderr")
            running.procs.append(p)
            running.logs.append(logf)
            # Each process is ready once its unix socket exists.
            sock = sockdir / f".s.PGSQL.{port}"
            deadline = time.monotonic() + 30
            while not sock.exists():
                if p.poll() is not None or time.monotonic() > deadline:
                    running.stop()
                    raise BenchError(f"{target.name}[{i}] did not start (status {p.poll()})"
                                     + tail_of(logf) + tail_of(base / f"p{i}.stderr"))
                time.sleep(0.02)
        try:
            wait_tcp(port, ready_timeout, running.procs, target.name, running.logs[0])
        except BenchError:
            running.stop()
            raise
        return running
    raise BenchError(f"unknown target kind {target.kind}")


def sample_configs(env):
    """One configuration file of each kind, for the results file."""
    out = {}
    out["PgBouncer auth_file"] = ("", f'"{BENCH_USER}" "{"<the SCRAM secret from pg_authid>" if PGBOUNCER_AUTH_FILE_SECRET == "scram" else BENCH_PASSWORD}"'
                                  f"\n# {'SCRAM secret' if PGBOUNCER_AUTH_FILE_SECRET == 'scram' else 'plain-text password: PgBouncer derives the SCRAM keys at each login'}\n")
    rb = BY_NAME["ringbouncer-session"]
    out["ringbouncer (session targets)"] = ("yaml", ringbouncer_yaml(rb, env, "PORT", SESSION_POOL_SIZE))
    for name in ("pgbouncer-session", "pgbouncer-rp-txn"):
        t = BY_NAME[name]
        out[f"PgBouncer ({name}, per process)"] = (
            "ini", pgbouncer_ini(t, env, "PORT", "RUNDIR", pool_size(t), "RUNDIR/pgbouncer.log"))
    return out


def pgbouncer_version(binary):
    r = run([binary, "--version"], check=False)
    return (r.stdout or r.stderr).strip().splitlines()[0] if r.returncode == 0 else "unknown"
