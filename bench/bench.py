"""bench/run: pgbench against ringbouncer, PgBouncer and PostgreSQL itself, side by
side in one run. See bench/README.md. Run through bench/run, which installs the
Debian packages first; this file only needs Debian's /usr/bin/python3.
"""

import argparse
import math
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import report  # noqa: E402
import targets as T  # noqa: E402
from common import (BENCH, BENCH_DB, BENCH_PASSWORD, BENCH_USER, CLK_TCK, HOST, NCPU, BenchError,  # noqa: E402
                    Postgres, Procs, Sampler, build_idle, build_ringbouncer, check_python, cpu_model,
                    git_commit, install_signal_handlers, log, make_tmp, mem_total, pgbench_path,
                    pkg_version, proc_cpu_ticks, proc_status_kb, raise_nofile, run)

SCRIPTS = {"select-only": ["-S"], "tpcb-like": ["-b", "tpcb-like"]}
PROTOS = ("simple", "extended", "prepared")
CLIENTS = (1, 16, 64, 256, 1000)
IDLE_CLIENTS = 10000
IDLE_TARGETS = ("ringbouncer-session", "pgbouncer-session")
IDLE_STALL_S = 15   # the idle generator gives up when no login has completed for this long


@dataclass(frozen=True)
class Case:
    script: str
    proto: str
    clients: int
    connect: bool = False      # pgbench -C: a new connection per transaction

    @property
    def label(self):
        return f"{self.script} {self.proto} c={self.clients}{' -C' if self.connect else ''}"

    @property
    def group(self):
        """The results table the case goes in."""
        return f"{self.script}, -C (new connection per transaction)" if self.connect \
            else f"{self.script}, {self.proto} protocol"


@dataclass
class Mode:
    name: str
    cases: list
    reps: int
    duration: int
    scale: int
    targets: list
    idle_clients: int = 0        # 0: no idle-scale test
    idle_targets: tuple = IDLE_TARGETS
    idle_pool: int = T.IDLE_POOL_SIZE
    write_results: bool = True


def full_cases():
    cases = [Case(s, p, c) for s in SCRIPTS for p in PROTOS for c in CLIENTS]
    cases += [Case("select-only", "simple", 16, True), Case("tpcb-like", "simple", 16, True)]
    return cases


def tenant_cases():
    """What a tenant's checks cost: the hot paths of issue 5's limits, each with and without them."""
    return [Case("select-only", p, c) for p in PROTOS for c in (16, 64)] + [Case("tpcb-like", "simple", 16)]


def quick_cases():
    return [Case("select-only", "simple", 16), Case("select-only", "simple", 256),
            Case("select-only", "prepared", 16), Case("select-only", "prepared", 256),
            Case("tpcb-like", "simple", 16)]


def make_mode(args):
    all_targets = [t.name for t in T.TARGETS if not t.optional]
    if args.smoke:
        m = Mode("smoke", [Case("select-only", "simple", 4)], reps=1, duration=2, scale=1,
                 targets=["direct", "ringbouncer-session"], idle_clients=50,
                 idle_targets=("ringbouncer-session",), idle_pool=T.SESSION_POOL_SIZE, write_results=False)
    elif args.tenant:
        m = Mode("tenant", tenant_cases(), reps=7, duration=5, scale=10,
                 targets=["ringbouncer-txn", "ringbouncer-tenant"])
    elif args.quick:
        m = Mode("quick", quick_cases(), reps=1, duration=2, scale=10, targets=all_targets)
    else:
        m = Mode("full", full_cases(), reps=3, duration=5, scale=10, targets=all_targets,
                 idle_clients=IDLE_CLIENTS)
    if args.reps:
        m.reps = args.reps
    if args.duration:
        m.duration = args.duration
    if args.targets:
        names = args.targets.split(",")
        bad = [n for n in names if n not in T.BY_NAME]
        if bad:
            raise BenchError(f"unknown target(s) {', '.join(bad)}; known: {', '.join(T.BY_NAME)}")
        m.targets = names
        m.idle_targets = tuple(n for n in m.idle_targets if n in names)
    if args.only:
        m.cases = [c for c in m.cases if any(re.search(o, c.label) for o in args.only)]
        if not m.cases:
            raise BenchError(f"--only {args.only}: no case of mode {m.name} matches")
    if args.idle_clients is not None:
        m.idle_clients = args.idle_clients
    if args.idle_only:
        m.cases = []
        m.idle_clients = m.idle_clients or IDLE_CLIENTS
    if args.no_idle:
        m.idle_clients = 0
    if args.no_results:
        m.write_results = False
    return m


# ---------------------------------------------------------------- estimate and --list

def login_guess(case, target):
    """Seconds pgbench's clients may take to log in (SCRAM; PgBouncer with a
    plain-text auth_file derives the keys at each login, one thread per
    process) before we know better."""
    per_client = 0.012 / target.procs if target.kind == "pgbouncer" else 0.005
    return 0.5 + (0 if case.connect else case.clients * per_client)


def run_overhead(case, target):
    """Rough seconds a run costs beyond its duration: pooler start, warm-up
    (logins, filling the pool), the measured run's logins, teardown. Fitted on
    the 2-core machine (PgBouncer's logins derive SCRAM keys)."""
    per_client = {"pgbouncer": 0.02, "ringbouncer": 0.012}.get(target.kind, 0.008)
    return 1.0 + (16 * per_client + 1 if case.connect else case.clients * per_client)


def estimate(mode, env_like):
    runs = secs = 0
    for case in mode.cases:
        for name in mode.targets:
            t = T.BY_NAME[name]
            if T.why_unsupported(t, case, env_like) is None:
                runs += mode.reps
                secs += mode.reps * (mode.duration + run_overhead(case, t))
    idle = sum(5 + 2 * mode.idle_clients * (0.005 if T.BY_NAME[n].kind == "pgbouncer" else 0.0005)
               for n in mode.idle_targets) if mode.idle_clients else 0
    setup = 15 + mode.scale * 1.5
    return runs, secs + idle + setup


def print_list(mode, env_like):
    print(f"mode {mode.name}: {len(mode.cases)} cases x {len(mode.targets)} targets, "
          f"{mode.reps} repetitions of {mode.duration}s, pgbench scale {mode.scale}")
    print("targets:")
    for name in mode.targets:
        t = T.BY_NAME[name]
        info = f"pool_mode {t.pool_mode}, pool_size {T.pool_size(t, per_process=False)}" if t.pool_mode else ""
        if t.procs > 1:
            info += f", {t.procs} processes"
        print(f"  {name:22} {info:45} {'UNSUPPORTED: ' + t.unsupported if t.unsupported else t.note}")
    print("cases (targets that run x repetitions; targets unsupported for the case):")
    notes = []
    for case in mode.cases:
        runs = [n for n in mode.targets if T.why_unsupported(T.BY_NAME[n], case, env_like) is None]
        line = f"  {case.label:32} {len(runs)} targets x {mode.reps}"
        skipped = {}
        for n in mode.targets:
            why = T.why_unsupported(T.BY_NAME[n], case, env_like)
            if why and not T.BY_NAME[n].unsupported:
                skipped.setdefault(why, []).append(n)
        for why, names in skipped.items():
            if why not in notes:
                notes.append(why)
            line += f"   unsupported: {', '.join(names)} [{notes.index(why) + 1}]"
        print(line)
    for i, why in enumerate(notes, 1):
        print(f"  [{i}] {why}")
    if mode.idle_clients:
        print(f"idle scale: {mode.idle_clients} idle clients through {', '.join(mode.idle_targets)}")
    runs, secs = estimate(mode, env_like)
    print(f"estimate: {runs} pgbench runs, about {secs / 60:.0f} minutes ({secs:.0f}s)")


# ---------------------------------------------------------------- one pgbench run

PGB_RE = {
    "tps": re.compile(r"^tps = ([\d.]+)", re.M),
    "processed": re.compile(r"^number of transactions actually processed: (\d+)", re.M),
    "failed": re.compile(r"^number of failed transactions: (\d+)", re.M),
    "conn_ms": re.compile(r"^(?:initial|average) connection time = ([\d.]+) ms", re.M),
}


def pgbench_env():
    env = dict(os.environ, PGPASSWORD=BENCH_PASSWORD, PGSSLMODE="disable", PGGSSENCMODE="disable")
    env.pop("PGSERVICE", None)
    return env


def percentile(sorted_vals, q):
    if not sorted_vals:
        return None
    k = max(0, min(len(sorted_vals) - 1, int(round(q / 100 * len(sorted_vals) + 0.5)) - 1))
    return sorted_vals[k]


def parse_logs(logdir):
    """pgbench -l per-transaction lines: client_id txn_no latency_us script_no epoch_s epoch_us
    (latency "failed" or "skipped" for a transaction that failed). Returns
    [(client_id, end time (epoch s), latency us or None)]."""
    rows = []
    for f in Path(logdir).iterdir():
        with open(f) as fh:
            for line in fh:
                p = line.split()
                if len(p) < 6:
                    continue
                rows.append((int(p[0]), int(p[4]) + int(p[5]) / 1e6, int(p[2]) if p[2].isdigit() else None))
    return rows


def steady_window(rows, clients):
    """The measured interval: from the moment every client has finished its
    first transaction (so all are logged in and running) to the last
    transaction's end. Returns (t0, t1, rows ending inside) or a reason."""
    first = {}
    for cid, end, _ in rows:
        if end < first.get(cid, float("inf")):
            first[cid] = end
    if len(first) < clients:
        return f"{clients - len(first)} of {clients} clients completed no transaction"
    t0, t1 = max(first.values()), max(end for _, end, _ in rows)
    inside = [r for r in rows if t0 < r[1] <= t1]
    return t0, t1, inside


def run_pgbench(env, running, case, duration, allowance):
    """One pgbench run against a running target, lasting duration seconds of
    steady state plus allowance seconds for its clients to log in (pgbench's
    -T counts from before they connect); returns a result dict."""
    target = running.target
    logdir = env.tmp / f"pgblog-{env.run_no}-{time.monotonic_ns()}"
    logdir.mkdir()
    total = duration + allowance
    argv = [str(pgbench_path()), "-h", HOST, "-p", str(running.port), "-U", BENCH_USER, "-n",
            *SCRIPTS[case.script], "-M", case.proto, "-c", str(case.clients),
            "-j", str(min(NCPU, case.clients)), "-T", str(total), "-l", f"--log-prefix={logdir}/pgb"]
    if case.connect:
        argv.append("-C")
    argv.append(BENCH_DB)
    res = {"status": "ok", "pgbench_T": total}
    sampler = Sampler(running.pids) if running.procs else None
    for pid in running.pids:     # VmHWM counts from here on
        try:
            with open(f"/proc/{pid}/clear_refs", "w") as f:
                f.write("5")
        except OSError:
            pass
    if sampler:
        sampler.start()
    timeout = total + 60 + case.clients * 0.05
    err_path = logdir.parent / "pgbench.stderr"
    started = time.time()
    p = env.procs.start("pgbench", argv, stdout=subprocess.PIPE, env=pgbench_env(), cwd=str(logdir),
                        log_path=err_path)
    try:
        out, _ = p.communicate(timeout=timeout)
        out = out.decode(errors="replace")
    except subprocess.TimeoutExpired:
        env.procs.stop(p, timeout=5)
        out = ""
        res.update(status="FAILED", reason=f"pgbench did not finish within {timeout:.0f}s")
    else:
        env.procs.stop(p)
    if sampler:
        sampler.stop()
    try:
        if running.procs:
            res["peak_rss_kb"] = sum(proc_status_kb(pid, "VmHWM") for pid in running.pids)
    except (OSError, BenchError):
        pass
    err_text = err_path.read_text(errors="replace") if err_path.exists() else ""
    err_path.unlink(missing_ok=True)
    if running.procs and not running.alive():
        codes = [q.poll() for q in running.procs]
        res.update(status="FAILED", reason=f"{target.name} exited ({codes}) during the run")
    if res["status"] == "ok" and p.returncode != 0:
        res.update(status="FAILED", reason=f"pgbench exited with {p.returncode}: "
                   + " | ".join(err_text.strip().splitlines()[-3:]))
    for k, rx in PGB_RE.items():
        m = rx.search(out)
        if m:
            res["pgbench_" + k if k == "tps" else k] = float(m.group(1)) if k in ("tps", "conn_ms") else int(m.group(1))
    rows = parse_logs(logdir)
    shutil.rmtree(logdir, ignore_errors=True)
    failed_logged = sum(1 for r in rows if r[2] is None)
    if res["status"] == "ok":
        if "failed" not in res:
            res.update(status="FAILED", reason="no failed-transaction count in pgbench's output: "
                       + " | ".join((out + err_text).strip().splitlines()[-4:]))
        elif res["failed"] or failed_logged:
            res.update(status="FAILED", reason=f"{max(res['failed'], failed_logged)} failed transactions")
    win = steady_window(rows, case.clients) if rows else "no transaction completed"
    if isinstance(win, str):
        if res["status"] == "ok":
            res.update(status="FAILED", reason=win + f" in pgbench -T {total}")
        return res
    t0, t1, inside = win
    res["window_s"] = t1 - t0
    res["ramp_s"] = t0 - started      # pgbench start to every client running (logins, server connects)
    if res["status"] == "ok" and (t1 - t0 < duration * 0.8 or len(inside) < 2):
        res.update(status="FAILED", short=True, reason=f"steady state lasted only {t1 - t0:.2f}s of -T {total}s "
                   f"(logins and server connections took {t0 - started:.1f}s)")
    if len(inside) < 2:
        return res
    lat = sorted(r[2] for r in inside if r[2] is not None)
    res["txns"] = len(inside)
    res["tps"] = len(inside) / (t1 - t0)
    if lat:
        res["p50_ms"] = percentile(lat, 50) / 1000
        res["p99_ms"] = percentile(lat, 99) / 1000
    if sampler:
        if sampler.error:
            res["cpu_error"] = sampler.error
        else:
            ticks = sampler.ticks_at(t1) - sampler.ticks_at(t0)
            res["cpu_us_per_txn"] = ticks / CLK_TCK * 1e6 / len(inside)
            res["cpu_cores"] = ticks / CLK_TCK / (t1 - t0)
    return res


WARMUP_LOCK = 4242
WARMUP_SQL = f"SELECT pg_advisory_lock_shared({WARMUP_LOCK});\nSELECT pg_advisory_unlock_shared({WARMUP_LOCK});\n"


def warm_up(env, running, case):
    """Fills a freshly started pooler's server pool before the measured run (a
    pooler may open server connections lazily, and one at a time): every
    warm-up client runs one transaction that blocks on an advisory lock we
    hold, so each keeps its server until the pool has as many servers as it
    will use (clients in session mode, the pool size in transaction mode) or
    stops growing; then the lock is released and the clients leave, giving
    their servers back to the pool. Direct PostgreSQL gets the same warm-up.
    Returns (None or why it failed, seconds pgbench took to log all clients in)."""
    t = running.target
    want = min(case.clients, T.pool_size(t, per_process=False)) if t.pool_mode == "transaction" else case.clients
    script = env.tmp / "warmup.sql"
    if not script.exists():
        script.write_text(WARMUP_SQL)
    holder = subprocess.Popen([str(env.pg.bindir / "psql"), "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1",
                               "-h", str(env.pg.sockdir), "-p",
                               str(env.pg.port), "-U", "postgres", "-d", BENCH_DB],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    pgb = None
    login_s = None
    try:
        holder.stdin.write(f"SELECT pg_advisory_lock({WARMUP_LOCK});\n\\echo locked\n")
        holder.stdin.flush()
        seen = []
        while not seen or (seen[-1] and "locked" not in seen[-1] and len(seen) < 20):
            seen.append(holder.stdout.readline())
        if "locked" not in seen[-1]:
            return ("warm-up: could not take the advisory lock: " + " ".join(x.strip() for x in seen), login_s)
        argv = [str(pgbench_path()), "-h", HOST, "-p", str(running.port), "-U", BENCH_USER, "-n", "-f", str(script),
                "-c", str(case.clients), "-j", str(min(NCPU, case.clients)), "-t", "1", BENCH_DB]
        pgb = env.procs.start("pgbench warm-up", argv, env=pgbench_env(), log_path=env.tmp / "warmup.log")
        t_start = time.monotonic()
        deadline = time.monotonic() + 60 + case.clients * 0.05
        last, since = -1, time.monotonic()
        while True:
            n = env.pg.client_backends()
            logged_in = login_s is not None or sockets_of(pgb.pid) >= case.clients
            if logged_in and login_s is None:
                login_s = time.monotonic() - t_start
            if n >= want and logged_in:
                break
            if n != last or not logged_in:   # still growing, or pgbench still logging in
                last, since = n, time.monotonic()
            if time.monotonic() - since > 3:
                log(f"   warm-up: the pool of {t.name} stopped at {n} servers of {want}")
                break
            if pgb.poll() is not None:
                return (f"warm-up pgbench exited with {pgb.returncode}" + _tail(env.tmp / "warmup.log"), login_s)
            if time.monotonic() > deadline:
                return (f"warm-up: only {n} of {want} server connections after {time.monotonic() - t_start:.0f}s",
                        login_s)
            time.sleep(0.02)
    finally:
        try:
            holder.stdin.write(f"SELECT pg_advisory_unlock({WARMUP_LOCK});\n\\q\n")
            holder.stdin.close()
        except OSError:
            pass
        try:
            holder.wait(10)
        except subprocess.TimeoutExpired:
            holder.kill()
            holder.wait()
    try:
        pgb.wait(30 + case.clients * 0.05)
    except subprocess.TimeoutExpired:
        env.procs.stop(pgb)
        return ("warm-up pgbench did not finish after the lock was released", login_s)
    rc = env.procs.stop(pgb)
    if rc != 0:
        return (f"warm-up pgbench exited with {rc}" + _tail(env.tmp / "warmup.log"), login_s)
    return None, login_s


def sockets_of(pid):
    """How many sockets process pid has open (pgbench: one per connected client)."""
    n = 0
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:"):
                    n += 1
            except OSError:
                pass
    except OSError:
        pass
    return n


def _tail(path):
    try:
        lines = Path(path).read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return (": " + " | ".join(lines[-3:])) if lines else ""


def run_one(env, target, case, duration):
    """One repetition: start the target, fill a pooler's server pool (warm_up),
    then the measured pgbench run. pgbench -T counts its clients' logins too,
    and only the steady window after every client has run a transaction is
    measured; so -T is duration plus an allowance: what the warm-up's logins
    took (or a guess for direct PostgreSQL), then what the previous repetition's
    logins really took. A repetition whose steady window came out too short is
    run once more with the corrected allowance."""
    key = (case, target.name)
    for attempt in (1, 2):
        env.pg.wait_backends_gone()
        try:
            running = T.start_target(target, env)
        except BenchError as e:
            return {"status": "FAILED", "reason": f"start: {e}"}
        try:
            login_s = None
            if running.procs:
                why, login_s = warm_up(env, running, case)
                if why:
                    return {"status": "FAILED", "reason": why}
            guess = 1 if case.connect else (1.5 * login_s + 0.5 if login_s is not None else login_guess(case, target))
            allowance = env.allowance.get(key) or max(1, math.ceil(guess))
            res = run_pgbench(env, running, case, duration, allowance)
        finally:
            codes = running.stop()
            if any(c not in (0, None) for c in codes) and target.kind == "ringbouncer":
                log(f"note: {target.name} exited with {codes}")
        if res.get("ramp_s") is not None:
            env.allowance[key] = max(1, math.ceil(res["ramp_s"] * 1.25 + 0.3))
        if not res.pop("short", False) or attempt == 2:
            return res
        log(f"   {target.name}: {res['reason']}; once more with -T {duration}+{env.allowance[key]}")
    return res


def fmt_rep(r):
    if r["status"] != "ok":
        return f"{r['status']}: {r.get('reason', '')}"
    s = f"{r['tps']:9.0f} tps  p50 {r['p50_ms']:7.3f}  p99 {r['p99_ms']:7.3f} ms"
    if "cpu_us_per_txn" in r:
        s += f"  cpu {r['cpu_us_per_txn']:7.1f} us/txn  rss {r.get('peak_rss_kb', 0) / 1024:6.1f} MB"
    return s


def summarize(reps):
    """Medians over the repetitions; a case with any failed repetition is FAILED."""
    bad = [r for r in reps if r["status"] != "ok"]
    out = {"status": "ok" if not bad else "FAILED", "n_reps": len(reps)}
    if bad:
        out["reason"] = "; ".join(sorted({r.get("reason", "?") for r in bad}))
    good = [r for r in reps if r["status"] == "ok"]
    for k in ("tps", "p50_ms", "p99_ms", "cpu_us_per_txn", "peak_rss_kb", "cpu_cores", "conn_ms"):
        vals = [r[k] for r in good if r.get(k) is not None]
        if vals:
            out[k] = statistics.median(vals)
    out["failed"] = sum(r.get("failed", 0) or 0 for r in reps)
    return out


def run_matrix(env, mode, results):
    order = [T.BY_NAME[n] for n in mode.targets]
    total = len(mode.cases)
    for i, case in enumerate(mode.cases, 1):
        log(f"== case {i}/{total}: {case.label} ({mode.reps} x {mode.duration}s)")
        runnable, per = [], {}
        for t in order:
            why = T.why_unsupported(t, case, env)
            if why:
                per[t.name] = {"status": "unsupported", "reason": why, "reps": []}
            else:
                runnable.append(t)
                per[t.name] = {"reps": []}
        for rep in range(mode.reps):
            # interleaved, and rotated each repetition: A B C, B C A, C A B ...
            k = rep % len(runnable) if runnable else 0
            for t in runnable[k:] + runnable[:k]:
                r = run_one(env, t, case, mode.duration)
                per[t.name]["reps"].append(r)
                log(f"   rep {rep + 1}/{mode.reps} {t.name:22} {fmt_rep(r)}")
        for t in order:
            entry = per[t.name]
            if entry.get("status") != "unsupported":
                entry.update(summarize(entry["reps"]))
            results["cases"].append({"case": asdict(case), "label": case.label, "group": case.group,
                                     "target": t.name, **entry})
        for t in order:
            e = per[t.name]
            if e["status"] == "ok" and mode.reps == 1:
                continue
            if e["status"] == "ok":
                log(f"   median {t.name:22} {fmt_rep(dict(e, status='ok'))}")
            else:
                log(f"   {e['status']:6} {t.name:22} {e.get('reason', '')}")


# ---------------------------------------------------------------- idle scale

def run_idle(env, target, n, pool):
    """RSS per idle client: the pooler's VmRSS before and after n logged-in idle
    clients, from a freshly started pooler (after 10 warm-up logins): the
    number the goal is judged on. The n come in two halves, so that the
    marginal cost of the second half (free of one-time costs that the first
    logins touch) is reported too."""
    env.pg.wait_backends_gone()
    res = {"target": target.name, "clients": n, "status": "ok"}
    try:
        running = T.start_target(target, env, pool=pool)
    except BenchError as e:
        return dict(res, status="FAILED", reason=f"start: {e}")
    gens = []
    rss = lambda: sum(proc_status_kb(p, "VmRSS") for p in running.pids)  # noqa: E731
    cpu = lambda: sum(proc_cpu_ticks(p) for p in running.pids)  # noqa: E731
    try:
        # Warm-up: a few logins first, so that one-time allocations (the pool,
        # the server's parameters) are in "before".
        warm = idle_start(env, running.port, 10, 30)
        line = idle_wait(warm, 40)
        env.procs.stop(warm)
        if not line.startswith("ready 10 of 10 "):
            return dict(res, status="FAILED", reason=f"warm-up logins failed: {line or 'no output'}" + idle_err(env))
        time.sleep(0.5)
        before, cpu0 = rss(), cpu()
        t0 = time.monotonic()
        levels = []          # (idle clients, VmRSS kB) after each half
        for half in (n // 2, n - n // 2):
            timeout = 60 + half // 50        # the generator's overall login deadline
            g = idle_start(env, running.port, half, timeout)
            gens.append(g)
            line = idle_wait(g, timeout + 30)
            m = re.match(r"ready (\d+) of (\d+) failed (\d+) pending (\d+)", line)
            done = levels[-1][0] if levels else 0
            if not m or int(m.group(1)) != half:
                return dict(res, status="FAILED", reason=f"{done} clients idle, then not all of {half} more "
                            f"logged in: {line or 'no output'}" + idle_err(env))
            if not levels:
                cpu1, login_s = cpu(), time.monotonic() - t0
            time.sleep(1.0)
            if not running.alive():
                return dict(res, status="FAILED", reason=f"{target.name} exited with {done + half} idle clients")
            if any(x.poll() is not None for x in gens):
                return dict(res, status="FAILED", reason="an idle generator exited early" + idle_err(env))
            levels.append((done + half, rss()))
        (n1, mid), (_, after) = levels
        res.update(before_kb=before, mid_kb=mid, after_kb=after, bytes_per_client=(after - before) * 1024 / n,
                   marginal_bytes_per_client=(after - mid) * 1024 / (n - n1),
                   peak_kb=sum(proc_status_kb(p, "VmHWM") for p in running.pids),
                   logins_per_s=n1 / login_s, cpu_us_per_login=(cpu1 - cpu0) / CLK_TCK * 1e6 / n1)
        return res
    finally:
        for g in gens:
            env.procs.stop(g)
        running.stop()


def idle_start(env, port, count, timeout):
    return env.procs.start("idle", [str(env.idle), "-h", HOST, "-p", str(port), "-U", BENCH_USER, "-d", BENCH_DB,
                                    "-n", str(count), "-c", "128", "-t", str(timeout), "-s", str(IDLE_STALL_S)],
                           stdout=subprocess.PIPE, env=pgbench_env(), log_path=env.tmp / "idle.stderr")


def idle_wait(proc, timeout):
    """The generator's "ready ..." line, or what it printed before exiting or the timeout."""
    line = b""
    deadline = time.monotonic() + timeout
    os.set_blocking(proc.stdout.fileno(), False)
    while time.monotonic() < deadline and not line.endswith(b"\n"):
        chunk = proc.stdout.read()
        if chunk:
            line += chunk
        elif proc.poll() is not None:
            break
        else:
            time.sleep(0.05)
    return line.decode(errors="replace").strip()


def idle_err(env):
    p = env.tmp / "idle.stderr"
    if not p.exists():
        return ""
    lines = p.read_text(errors="replace").strip().splitlines()
    return (" | " + " | ".join(lines[-3:])) if lines else ""


def fmt_idle(r):
    if r["status"] != "ok":
        return f"{r['status']}: {r.get('reason', '')}"
    return (f"{r['bytes_per_client']:.0f} B RSS per idle client (RSS {r['before_kb'] / 1024:.1f} -> "
            f"{r['after_kb'] / 1024:.1f} MB); second half alone: {r['marginal_bytes_per_client']:.0f} B each; "
            f"{r['logins_per_s']:.0f} logins/s, {r['cpu_us_per_login']:.0f} us CPU per login")


# ---------------------------------------------------------------- main

class Env:
    """What the run has set up: PostgreSQL, binaries, versions, the temp folder."""

    def __init__(self):
        self.procs = Procs()
        self.tmp = None
        self.pg = None
        self.ringbouncer = None
        self.idle = None
        self.ringbouncer_given = False
        self.pgbouncer = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
        self.pgbouncer_version = T.pgbouncer_version(self.pgbouncer) if os.path.exists(self.pgbouncer) \
            else "PgBouncer (not installed)"
        self.pgbouncer_version_short = self.pgbouncer_version.split()[-1]
        self.run_no = 0
        self.allowance = {}    # (case, target name) -> seconds of pgbench -T allowed for logins and ramp-up


def parse_args(argv):
    ap = argparse.ArgumentParser(prog="bench/run", description=__doc__.split("\n\n")[0])
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--quick", action="store_true", help="a ~2-minute subset (see bench/README.md)")
    g.add_argument("--smoke", action="store_true", help="one 2 s case, ringbouncer and direct; for CI")
    g.add_argument("--tenant", action="store_true",
                   help="ringbouncer-txn against ringbouncer-tenant (every tenant limit set, none reached)")
    ap.add_argument("--list", action="store_true", help="print the cases, targets and time estimate; run nothing")
    ap.add_argument("--reps", type=int, help="repetitions per case (default 3; tenant 7; quick and smoke 1)")
    ap.add_argument("--duration", type=int, help="seconds per pgbench run (default 5; quick 2; smoke 2)")
    ap.add_argument("--targets", help="comma-separated target names (default: all)")
    ap.add_argument("--only", action="append", metavar="REGEX",
                    help="only the cases whose label matches this regular expression, e.g. "
                         "'select-only simple c=16$' or 'c=16 -C' (repeatable)")
    ap.add_argument("--idle-clients", type=int, help=f"idle-scale clients (default {IDLE_CLIENTS} in the full run)")
    ap.add_argument("--idle-only", action="store_true", help="only the idle-scale test")
    ap.add_argument("--no-idle", action="store_true", help="skip the idle-scale test")
    ap.add_argument("--no-results", action="store_true", help="do not write bench/results/")
    ap.add_argument("--ringbouncer", metavar="PATH", help="benchmark this binary instead of building build-bench/")
    ap.add_argument("--keep-tmp", action="store_true", help="keep the temporary folder (logs, configs)")
    return ap.parse_args(argv)


def main(argv):
    check_python()
    args = parse_args(argv)
    mode = make_mode(args)
    env = Env()
    if args.list:
        print_list(mode, env)
        return 0
    install_signal_handlers()
    started = time.monotonic()
    nofile, why = raise_nofile()
    need = max([c.clients for c in mode.cases] + [mode.idle_clients]) + 200
    if nofile < need:
        raise BenchError(f"RLIMIT_NOFILE is {nofile}, need {need}: raise the hard limit (ulimit -Hn) or run as root"
                         + (f" ({why})" if why else ""))
    runs, secs = estimate(mode, env)
    log(f"bench/run {mode.name}: {len(mode.cases)} cases, {runs} pgbench runs of {mode.duration}s, "
        f"estimated {secs / 60:.1f} min; RLIMIT_NOFILE {nofile}")
    results = {"mode": mode.name, "reps": mode.reps, "duration_s": mode.duration, "scale": mode.scale,
               "targets": [{"name": n, "kind": T.BY_NAME[n].kind, "pool_mode": T.BY_NAME[n].pool_mode,
                            "procs": T.BY_NAME[n].procs, "pool_size": T.pool_size(T.BY_NAME[n], False),
                            "unsupported": T.BY_NAME[n].unsupported, "note": T.BY_NAME[n].note}
                           for n in mode.targets],
               "cases": [], "idle": []}
    env.tmp = make_tmp()
    ok = interrupted = False
    try:
        if args.ringbouncer:
            env.ringbouncer = Path(args.ringbouncer).resolve()
            if not os.access(env.ringbouncer, os.X_OK):
                raise BenchError(f"--ringbouncer {args.ringbouncer}: not an executable")
            env.ringbouncer_given = True
            log(f"ringbouncer: {env.ringbouncer} (given, not built)")
        else:
            env.ringbouncer = build_ringbouncer("build-bench", "Release")
        if mode.idle_clients:
            env.idle = build_idle(env.tmp)
        env.pg = Postgres(env.procs, env.tmp)
        env.pg.init()
        env.pg.start()
        log(f"PostgreSQL on {HOST}:{env.pg.port} ({env.tmp}/pg)")
        t = env.pg.setup_bench_db(mode.scale)
        log(f"pgbench -i -s {mode.scale}: {t:.1f}s")
        T.write_pgbouncer_userlist(env)
        results["meta"] = machine_facts(env, mode)
        results["configs"] = dict(T.sample_configs(env), **{"PostgreSQL (postgresql.conf additions)":
                                                             ("ini", env.pg.conf_text.strip() + "\n"),
                                                             "PostgreSQL (pg_hba.conf)":
                                                             ("", Path(env.pg.data / "pg_hba.conf").read_text())})
        run_matrix(env, mode, results)
        for name in mode.idle_targets if mode.idle_clients else ():
            log(f"== idle scale: {mode.idle_clients} idle clients through {name}")
            r = run_idle(env, T.BY_NAME[name], mode.idle_clients, mode.idle_pool)
            results["idle"].append(r)
            log(f"   {name}: {fmt_idle(r)}")
        ok = True
    except KeyboardInterrupt:
        interrupted = True
        raise
    finally:
        env.procs.stop_all()
        if args.keep_tmp or not (ok or interrupted):
            log(f"temporary folder kept: {env.tmp}")
        else:
            shutil.rmtree(env.tmp, ignore_errors=True)
    results["elapsed_s"] = time.monotonic() - started
    failures = [c for c in results["cases"] if c["status"] == "FAILED"] + \
               [r for r in results["idle"] if r["status"] != "ok"]
    if mode.name == "smoke":
        return smoke_summary(results, failures)
    print()
    print(report.text_summary(results))
    if mode.write_results:
        paths = report.write(results, BENCH / "results", suffix="" if mode.name == "full" else f"-{mode.name}")
        log("results: " + ", ".join(str(p.relative_to(BENCH.parent)) for p in paths))
    log(f"done in {results['elapsed_s'] / 60:.1f} min; {len(failures)} failed case(s)")
    return 1 if failures else 0


def smoke_summary(results, failures):
    parts = []
    for c in results["cases"]:
        parts.append(f"{c['target']} " + (f"{c['tps']:.0f} tps" if c["status"] == "ok" else c["status"]))
    for r in results["idle"]:
        parts.append(f"idle {r['clients']} via {r['target']} " + ("ok" if r["status"] == "ok" else "FAILED"))
    status = "ok" if not failures else "FAILED"
    print(f"bench smoke {status}: {results['cases'][0]['label'] if results['cases'] else ''}: "
          + "; ".join(parts) + f" ({results['elapsed_s']:.0f}s)")
    for f in failures:
        print(f"  FAILED {f.get('target')}: {f.get('reason')}")
    return 0 if not failures else 1


def machine_facts(env, mode):
    return {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "kernel": os.uname().release,
        "cores": NCPU,
        "cpu": cpu_model(),
        "memory": mem_total(),
        "debian": Path("/etc/debian_version").read_text().strip() if Path("/etc/debian_version").exists() else "?",
        "postgresql": env.pg.version(),
        "pgbench": run([str(pgbench_path()), "--version"]).stdout.strip(),
        "pgbouncer": env.pgbouncer_version,
        "ringbouncer": run([str(env.ringbouncer), "--version"]).stdout.strip()
        + (f" ({env.ringbouncer}, given)" if env.ringbouncer_given else " (Release build, build-bench/)"),
        "commit": git_commit(),
        "cc": run(["cc", "--version"]).stdout.splitlines()[0],
        "liburing": pkg_version("liburing-dev"),
        "jemalloc": pkg_version("libjemalloc-dev"),
        "rlimit_nofile": raise_nofile()[0],
    }


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except BenchError as e:
        print(f"bench/run: error: {e}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt as e:
        print(f"bench/run: interrupted ({str(e) or 'Ctrl-C'}); everything it started was stopped", file=sys.stderr)
        sys.exit(130)
