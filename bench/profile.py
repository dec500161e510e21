"""bench/profile: where ringbouncer spends its CPU, measured. Builds a Release
ringbouncer with frame pointers and debug info (build-bench-prof/), runs it in
front of a throwaway PostgreSQL under pgbench select-only (64 clients by
default), records it with `perf record -g` and prints the top functions
(self time). Where perf cannot record (no perf_event access), it falls back to
valgrind's callgrind on a shorter, lighter run and prints callgrind_annotate's
top functions. The first line of the report says which one ran.
"""

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import targets as T  # noqa: E402
from bench import Env, pgbench_env, warm_up, Case  # noqa: E402
from common import (BENCH_DB, BENCH_USER, HOST, NCPU, BenchError, Postgres, build_ringbouncer,  # noqa: E402
                    install_signal_handlers, log, make_tmp, pgbench_path, raise_nofile, run)

PROF_BUILD = "build-bench-prof"
# Seen with valgrind 3.19 (Debian 12): ringbouncer starts under it but its io_uring
# loop makes no progress, so the callgrind fallback cannot profile it there.
VALGRIND_NOTE = "3.19 does not run ringbouncer's io_uring loop"
PROF_CFLAGS = "-g -fno-omit-frame-pointer"


def perf_works(tmp):
    """True if perf can record here (perf_event_paranoid, capabilities, a VM without a PMU
    still gives the cpu-clock software event)."""
    if not shutil.which("perf"):
        return False, "perf is not installed (apt-get install linux-perf)"
    r = run(["perf", "record", "-q", "-o", str(tmp / "probe.data"), "--", "true"], check=False)
    (tmp / "probe.data").unlink(missing_ok=True)
    if r.returncode != 0:
        return False, f"perf record fails here: {(r.stderr or r.stdout).strip().splitlines()[-1:]}"
    return True, None


def start_pgbench(env, running, clients, seconds, protocol="simple"):
    argv = [str(pgbench_path()), "-h", HOST, "-p", str(running.port), "-U", BENCH_USER, "-n", "-S", "-M", protocol,
            "-c", str(clients), "-j", str(min(NCPU, clients)), "-T", str(seconds), BENCH_DB]
    return env.procs.start("pgbench", argv, stdout=subprocess.PIPE, env=pgbench_env(),
                           log_path=env.tmp / "pgbench.stderr")


def pgbench_result(env, p, timeout):
    out, _ = p.communicate(timeout=timeout)
    env.procs.stop(p)
    text = out.decode(errors="replace")
    tps = next((line for line in text.splitlines() if line.startswith("tps")), "no tps line")
    failed = next((line for line in text.splitlines() if line.startswith("number of failed")), "")
    return f"pgbench exit {p.returncode}: {tps}; {failed}"


def profile_perf(env, args):
    running = T.start_target(T.BY_NAME[args.target], env)
    try:
        why, _ = warm_up(env, running, Case("select-only", args.protocol, args.clients))
        if why:
            raise BenchError(why)
        pgb = start_pgbench(env, running, args.clients, args.duration + 4, args.protocol)
        time.sleep(2)
        data = env.tmp / "perf.data"
        log(f"perf record -g -p {running.pids[0]} for {args.duration}s during pgbench select-only "
            f"{args.protocol}, {args.clients} clients, {args.target}")
        rec = run(["perf", "record", "-g", "-p", str(running.pids[0]), "-o", str(data), "--", "sleep",
                   str(args.duration)], check=False, timeout=args.duration + 60)
        log(pgbench_result(env, pgb, args.duration + 120))
        if rec.returncode != 0:
            raise BenchError(f"perf record failed: {rec.stderr.strip()[-500:]}")
    finally:
        running.stop()
    if args.keep_perf_data:
        dest = Path(args.keep_perf_data)
        shutil.copy(data, dest)
        log(f"perf data kept: {dest}")
    header = run(["perf", "report", "-i", str(data), "--header-only"], check=False).stdout
    event = next((line.split(":", 1)[1].strip() for line in header.splitlines()
                  if line.startswith("# event :")), "?")
    def report(*extra):
        r = run(["perf", "report", "-i", str(data), "--stdio", "--no-children", "-g", "none",
                 "--percentage", "absolute", *extra], check=False)
        rows = [line.strip() for line in r.stdout.splitlines() if line.strip() and not line.startswith("#")]
        samples = next((line.lstrip("# ") for line in r.stdout.splitlines() if line.startswith("# Samples")), "")
        return rows, samples

    rows, samples = report("--sort", "sym")
    dsos, _ = report("--sort", "dso")
    own, _ = report("--sort", "sym", "--dsos", "ringbouncer")
    print()
    print(f"profiler: perf record -g (event {event.split(',')[0].replace('name = ', '')}), {args.duration}s, "
          f"{args.target} {PROF_BUILD}/ (Release, {PROF_CFLAGS}); pgbench select-only {args.protocol}, "
          f"{args.clients} clients")
    print(f"{samples}; by object: " + ", ".join(" ".join(d.split()) for d in dsos[:5]))
    print(f"top {args.top} functions by self time, all of ringbouncer's threads ([k] kernel, [.] user space):")
    for line in rows[:args.top]:
        print("  " + line)
    print(f"top {min(args.top, 15)} in ringbouncer's own code (percent of all samples):")
    for line in own[:min(args.top, 15)]:
        print("  " + line)
    return 0


def profile_callgrind(env, args):
    if not shutil.which("valgrind"):
        raise BenchError("neither perf nor valgrind can profile here (apt-get install valgrind)")
    out = env.tmp / "callgrind.out"
    clients = min(args.clients, 16)
    seconds = min(args.duration, 5)
    running = T.start_target(T.BY_NAME["ringbouncer-session"], env, wrapper=[
        "valgrind", "--tool=callgrind", f"--callgrind-out-file={out}"], ready_timeout=120)
    try:
        why, _ = warm_up(env, running, Case("select-only", "simple", clients))
        if why:
            raise BenchError(f"ringbouncer under valgrind did not serve pgbench ({why}). valgrind {VALGRIND_NOTE}; "
                             "give perf access instead (as root, or kernel.perf_event_paranoid <= 2 / CAP_PERFMON)")
        log(f"callgrind: pgbench select-only simple, {clients} clients, {seconds}s")
        pgb = start_pgbench(env, running, clients, seconds)
        log(pgbench_result(env, pgb, seconds + 300))
    finally:
        running.stop()
    if not out.exists():
        raise BenchError("callgrind wrote no output")
    rep = run(["callgrind_annotate", str(out)], check=False)
    print()
    print(f"profiler: valgrind --tool=callgrind (perf unavailable: {env.perf_why}); ringbouncer {PROF_BUILD}/; "
          f"select-only simple, {clients} clients, {seconds}s")
    lines = rep.stdout.splitlines()
    # callgrind_annotate: totals, then "Ir  file:function" rows sorted by Ir
    start = next((i for i, line in enumerate(lines) if "file:function" in line), 0)
    print(f"top {args.top} functions by instructions executed (self):")
    for line in [x for x in lines[start + 1:] if x.strip() and not x.startswith("-")][:args.top]:
        print("  " + line.strip())
    return 0


def main(argv):
    ap = argparse.ArgumentParser(prog="bench/profile", description=__doc__.split("\n\n")[0])
    ap.add_argument("--clients", type=int, default=64)
    ap.add_argument("--duration", type=int, default=10, help="seconds recorded (default 10)")
    ap.add_argument("--target", default="ringbouncer-session",
                    choices=[t.name for t in T.TARGETS if t.name.startswith("ringbouncer")],
                    help="ringbouncer target profiled (default ringbouncer-session)")
    ap.add_argument("--protocol", default="simple", choices=["simple", "extended", "prepared"],
                    help="pgbench -M (default simple)")
    ap.add_argument("--top", type=int, default=25, help="functions shown (default 25)")
    ap.add_argument("--callgrind", action="store_true", help="use callgrind even where perf works")
    ap.add_argument("--keep-perf-data", metavar="FILE", help="copy perf.data there")
    args = ap.parse_args(argv)
    install_signal_handlers()
    raise_nofile()
    env = Env()
    env.tmp = make_tmp()
    ok = False
    try:
        use_perf, env.perf_why = perf_works(env.tmp)
        if args.callgrind:
            use_perf, env.perf_why = False, "--callgrind given"
        env.ringbouncer = build_ringbouncer(PROF_BUILD, "Release", PROF_CFLAGS)
        env.pg = Postgres(env.procs, env.tmp)
        env.pg.init()
        env.pg.start()
        env.pg.setup_bench_db(10)
        rc = profile_perf(env, args) if use_perf else profile_callgrind(env, args)
        ok = True
        return rc
    except KeyboardInterrupt:
        ok = True       # nothing to look at: remove the folder
        raise
    finally:
        env.procs.stop_all()
        if ok:
            shutil.rmtree(env.tmp, ignore_errors=True)
        else:
            log(f"temporary folder kept: {env.tmp}")


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except BenchError as e:
        print(f"bench/profile: error: {e}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt as e:
        print(f"bench/profile: interrupted ({str(e) or 'Ctrl-C'})", file=sys.stderr)
        sys.exit(130)
