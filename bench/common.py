"""Shared by bench.py and profile.py: processes, the throwaway PostgreSQL, builds,
/proc readings and machine facts.

Every process is started through Procs and stopped by its PID (SIGTERM or the
program's own shutdown signal, then SIGKILL after a grace period), also when
the run is interrupted.
"""

import os
import platform
import pwd
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "bench"
HOST = "127.0.0.1"
CLK_TCK = os.sysconf("SC_CLK_TCK")
NCPU = os.cpu_count() or 1

BENCH_USER = "bench"        # the PostgreSQL role and database pgbench uses
BENCH_PASSWORD = "bench"
BENCH_DB = "bench"
NOFILE_WANTED = 65536       # hard RLIMIT_NOFILE we raise to (as root) when it is below NOFILE_MIN_HARD
NOFILE_MIN_HARD = 25000


class BenchError(Exception):
    """A failure that ends the run with a message (no traceback)."""


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def is_root():
    return os.geteuid() == 0


# ---------------------------------------------------------------- processes

class Procs:
    """Every long-running process the run started, so that all of them are
    stopped by PID at the end, on errors and on Ctrl-C."""

    def __init__(self):
        self.live = []   # (Popen, stop signal, name)

    def start(self, name, argv, *, stop_signal=signal.SIGTERM, as_pg=False, log_path=None,
              stdout=None, env=None, cwd=None):
        kw = {}
        if as_pg and is_root():
            kw.update(user="postgres", group="postgres", extra_groups=[])
        out = open(log_path, "ab") if log_path else subprocess.DEVNULL
        try:
            p = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                 stdout=stdout if stdout is not None else out,
                                 stderr=out, env=env, cwd=cwd or "/", **kw)
        finally:
            if log_path:
                out.close()
        self.live.append((p, stop_signal, name))
        return p

    def stop(self, p, timeout=15):
        """Stops one process we started: its stop signal, then SIGKILL after timeout."""
        entry = next((e for e in self.live if e[0] is p), None)
        if entry is None:
            return p.poll()
        _, sig, _ = entry
        if p.poll() is None:
            try:
                os.kill(p.pid, sig)
            except ProcessLookupError:
                pass
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                log(f"{entry[2]} (pid {p.pid}) did not stop in {timeout}s: SIGKILL")
                os.kill(p.pid, signal.SIGKILL)
                p.wait()
        self.live.remove(entry)
        return p.returncode

    def stop_all(self):
        for p, _, _ in reversed(list(self.live)):
            self.stop(p)


def install_signal_handlers():
    """SIGTERM and SIGHUP end the run like Ctrl-C does, through the finally blocks."""
    def handler(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGHUP, handler)
    # also when started in the background, where SIGINT comes in ignored
    signal.signal(signal.SIGINT, signal.default_int_handler)


def raise_nofile():
    """Soft RLIMIT_NOFILE = hard, the hard limit first raised to NOFILE_WANTED
    if it is below NOFILE_MIN_HARD and we may (root); children inherit it.
    Returns (soft limit in force, why the hard limit could not be raised or None)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    why = None
    if hard != resource.RLIM_INFINITY and hard < NOFILE_MIN_HARD:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (NOFILE_WANTED, NOFILE_WANTED))
            soft = hard = NOFILE_WANTED
        except (ValueError, OSError) as e:
            why = f"cannot raise the hard RLIMIT_NOFILE from {hard} to {NOFILE_WANTED}: {e}"
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        soft = hard
    return soft, why


def free_port():
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def wait_tcp(port, timeout, procs=(), what="process", logfile=None):
    """Waits until HOST:port accepts a connection; fails early if a process exits."""
    deadline = time.monotonic() + timeout
    while True:
        for p in procs:
            if p.poll() is not None:
                raise BenchError(f"{what} exited with status {p.returncode} before listening on {port}"
                                 + tail_of(logfile))
        try:
            with socket.create_connection((HOST, port), timeout=0.5):
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise BenchError(f"{what}: nothing listens on {HOST}:{port} after {timeout}s" + tail_of(logfile))
        time.sleep(0.02)


def tail_of(path, lines=15):
    if not path or not Path(path).exists():
        return ""
    text = Path(path).read_text(errors="replace").splitlines()[-lines:]
    return "\n  log tail (" + str(path) + "):\n    " + "\n    ".join(text)


def run(argv, *, check=True, capture=True, env=None, cwd=None, timeout=None, as_pg=False):
    kw = {}
    if as_pg and is_root():
        kw.update(user="postgres", group="postgres", extra_groups=[])
    r = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=capture, text=True, env=env,
                       cwd=cwd or "/", timeout=timeout, **kw)
    if check and r.returncode != 0:
        out = ((r.stdout or "") + (r.stderr or "")).strip()
        raise BenchError(f"{' '.join(map(str, argv))} exited with {r.returncode}:\n{out[-3000:]}")
    return r


# ---------------------------------------------------------------- /proc

def proc_cpu_ticks(pid):
    """utime + stime of the whole process (all threads), in clock ticks."""
    with open(f"/proc/{pid}/stat") as f:
        s = f.read()
    fields = s[s.rindex(")") + 2:].split()
    # fields[0] is field 3 (state); utime and stime are fields 14 and 15
    return int(fields[11]) + int(fields[12])


def proc_status_kb(pid, key):
    """A kB value such as VmRSS or VmHWM from /proc/PID/status."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise BenchError(f"no {key} in /proc/{pid}/status")


class Sampler(threading.Thread):
    """Samples the summed CPU ticks of some PIDs every `interval` seconds, with
    wall-clock (epoch) timestamps, so the CPU spent inside any time window
    (such as pgbench's measured interval) can be interpolated afterwards."""

    def __init__(self, pids, interval=0.05):
        super().__init__(daemon=True)
        self.pids, self.interval = list(pids), interval
        self.samples = []
        self.error = None
        self._stop_ev = threading.Event()

    def sample(self):
        try:
            self.samples.append((time.time(), sum(proc_cpu_ticks(p) for p in self.pids)))
        except (OSError, ValueError) as e:
            self.error = f"reading /proc: {e}"

    def run(self):
        while not self._stop_ev.is_set():
            self.sample()
            self._stop_ev.wait(self.interval)

    def stop(self):
        self._stop_ev.set()
        self.join()
        self.sample()

    def ticks_at(self, t):
        s = self.samples
        if not s:
            return None
        if t <= s[0][0]:
            return s[0][1]
        for (t0, c0), (t1, c1) in zip(s, s[1:]):
            if t0 <= t <= t1:
                return c0 + (c1 - c0) * ((t - t0) / (t1 - t0) if t1 > t0 else 1.0)
        return s[-1][1]


# ---------------------------------------------------------------- PostgreSQL

def pg_bindir():
    env = os.environ.get("RB_PG_BINDIR")
    if env:
        return Path(env)
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"),
                   key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0)
    if found:
        return found[-1].parent
    w = shutil.which("initdb")
    if w:
        return Path(w).parent
    raise BenchError("PostgreSQL's initdb not found (install postgresql or set RB_PG_BINDIR)")


PG_SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    "max_connections": 1100,
    "superuser_reserved_connections": 3,
    "shared_buffers": "'256MB'",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_wal_size": "'8GB'",
    "checkpoint_timeout": "'30min'",
    "password_encryption": "'scram-sha-256'",
    "log_min_messages": "warning",
}

PG_HBA = f"""\
# TYPE DATABASE USER   ADDRESS       METHOD
local  all      all                  trust
host   all      {BENCH_USER}  127.0.0.1/32  scram-sha-256
host   all      all    127.0.0.1/32  scram-sha-256
"""


class Postgres:
    """A throwaway cluster in tmp/pg, run in the foreground of our Popen."""

    def __init__(self, procs, tmp):
        self.procs, self.tmp = procs, Path(tmp)
        self.bindir = pg_bindir()
        self.data = self.tmp / "pg" / "data"
        self.sockdir = self.tmp / "pg" / "run"
        self.logfile = self.tmp / "pg" / "postgres.log"
        self.port = None
        self.proc = None

    def init(self):
        (self.tmp / "pg").mkdir()
        self.data.mkdir(mode=0o700)
        self.sockdir.mkdir()
        for p in (self.tmp / "pg", self.data, self.sockdir):
            chown_pg(p)
        run([self.bindir / "initdb", "-D", self.data, "-U", "postgres", "-E", "UTF8", "--no-locale",
             "-N", "--auth-local=trust", "--auth-host=scram-sha-256"], as_pg=True)
        self.port = free_port()
        conf = "\n# bench/run: a throwaway cluster tuned for benchmarking, not for keeping data\n"
        settings = dict(PG_SETTINGS, port=self.port, unix_socket_directories=f"'{self.sockdir}'")
        conf += "".join(f"{k} = {v}\n" for k, v in settings.items())
        with open(self.data / "postgresql.conf", "a") as f:
            f.write(conf)
        (self.data / "pg_hba.conf").write_text(PG_HBA)
        self.conf_text = conf

    def start(self):
        self.proc = self.procs.start("postgres", [self.bindir / "postgres", "-D", self.data],
                                     stop_signal=signal.SIGINT, as_pg=True, log_path=self.logfile)
        # A unix-socket connection as the superuser is the ready check.
        deadline = time.monotonic() + 60
        while True:
            if self.proc.poll() is not None:
                raise BenchError(f"postgres exited with {self.proc.returncode}" + tail_of(self.logfile))
            r = self.psql("select 1", check=False)
            if r.returncode == 0:
                break
            if time.monotonic() > deadline:
                raise BenchError("postgres did not accept connections in 60s" + tail_of(self.logfile))
            time.sleep(0.1)

    def psql(self, sql, check=True, db="postgres"):
        return run([self.bindir / "psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-h", self.sockdir,
                    "-p", str(self.port), "-U", "postgres", "-d", db, "-c", sql], check=check)

    def setup_bench_db(self, scale):
        self.psql(f"CREATE ROLE {BENCH_USER} LOGIN PASSWORD '{BENCH_PASSWORD}'")
        self.psql(f"CREATE DATABASE {BENCH_DB} OWNER {BENCH_USER}")
        t = time.monotonic()
        run([self.bindir / "pgbench", "-i", "-q", "-s", str(scale), "-h", self.sockdir, "-p", str(self.port),
             "-U", BENCH_USER, BENCH_DB], timeout=600)
        self.psql("VACUUM ANALYZE", db=BENCH_DB)
        self.psql("CHECKPOINT")
        return time.monotonic() - t

    def scram_secret(self, role):
        return self.psql(f"select rolpassword from pg_authid where rolname = '{role}'").stdout.strip()

    def version(self):
        return run([self.bindir / "postgres", "--version"]).stdout.strip()

    def client_backends(self):
        """How many of the cluster's backends serve the bench role right now
        (read from /proc: costs no connection slot)."""
        n = 0
        me = str(self.proc.pid)
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                with open(f"/proc/{d}/stat") as f:
                    s = f.read()
                if s[s.rindex(")") + 2:].split()[1] != me:
                    continue
                with open(f"/proc/{d}/cmdline", "rb") as f:
                    if f.read().startswith(f"postgres: {BENCH_USER} ".encode()):
                        n += 1
            except (OSError, ValueError):
                continue
        return n

    def wait_backends_gone(self, timeout=60):
        """Waits until no backend of the bench role is left (from the previous
        target), so that every case starts from the same state and
        max_connections is never exceeded."""
        deadline = time.monotonic() + timeout
        while self.client_backends() > 0:
            if time.monotonic() > deadline:
                raise BenchError(f"{self.client_backends()} bench backends still alive after {timeout}s")
            time.sleep(0.05)

    def stop(self):
        if self.proc is not None:
            self.procs.stop(self.proc, timeout=60)
            self.proc = None


# ---------------------------------------------------------------- builds

def build_ringbouncer(build_dir, build_type="Release", cflags=None):
    """Configures and builds the ringbouncer target into REPO/build_dir; returns the binary."""
    args = ["cmake", "-S", str(REPO), "-B", str(REPO / build_dir), f"-DCMAKE_BUILD_TYPE={build_type}",
            "-DRB_SANITIZE="]
    if cflags is not None:
        args.append(f"-DCMAKE_C_FLAGS={cflags}")
    t = time.monotonic()
    run(args, cwd=REPO)
    run(["cmake", "--build", str(REPO / build_dir), f"-j{NCPU}", "--target", "ringbouncer"], cwd=REPO,
        timeout=1200)
    log(f"built {build_dir}/ringbouncer ({build_type}{', CFLAGS=' + cflags if cflags else ''}) "
        f"in {time.monotonic() - t:.1f}s")
    return REPO / build_dir / "ringbouncer"


def build_idle(out_dir):
    """Builds bench/idle.c (the idle-scale load generator) into out_dir."""
    out = Path(out_dir) / "idle"
    flags = run(["pkg-config", "--cflags", "--libs", "wolfssl"]).stdout.split()
    run([os.environ.get("CC", "cc"), "-O2", "-Wall", "-Wextra", "-o", str(out), str(BENCH / "idle.c"), *flags])
    return out


def chown_pg(path):
    """Gives path to the user postgres when we run as root (PostgreSQL and
    PgBouncer run as postgres and must write there)."""
    if is_root():
        pg = pwd.getpwnam("postgres")
        os.chown(path, pg.pw_uid, pg.pw_gid)


def make_tmp():
    """A private temporary folder that the user postgres can traverse."""
    tmp = Path(tempfile.mkdtemp(prefix="rb-bench-"))
    os.chmod(tmp, 0o755)
    return tmp


# ---------------------------------------------------------------- facts

def cpu_model():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def mem_total():
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    return "unknown"


def git_commit():
    try:
        head = run(["git", "-C", str(REPO), "rev-parse", "HEAD"]).stdout.strip()
        # Results of an earlier run are not what is measured.
        dirty = run(["git", "--no-optional-locks", "-C", str(REPO), "status", "--porcelain",
                     "--untracked-files=no", "--", ".", ":!bench/results"]).stdout.strip()
        return head + (" (with uncommitted changes)" if dirty else "")
    except (BenchError, OSError):
        return "unknown (not a git checkout)"


def pkg_version(pkg):
    r = run(["dpkg-query", "-W", "-f=${Version}", pkg], check=False)
    return r.stdout.strip() if r.returncode == 0 else "not installed"


def pgbench_path():
    return pg_bindir() / "pgbench"


def check_python():
    if sys.version_info < (3, 9):
        raise BenchError("needs Python 3.9 or later")
