"""Results of bench/run: the console summary, bench/results/<date>.md with the
tables, ratios and goals, <date>.json with every repetition, <date>.png (gnuplot)."""

import json
import math
import random
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import targets as T


def _ok(e):
    return e is not None and e.get("status") == "ok"


def _index(results):
    """{(label, target): entry}"""
    return {(c["label"], c["target"]): c for c in results["cases"]}


def _groups(results):
    """Tables in first-seen order: {group: [labels in order]}"""
    out = {}
    for c in results["cases"]:
        labels = out.setdefault(c["group"], [])
        if c["label"] not in labels:
            labels.append(c["label"])
    return out


def _ratio(a, b, key="tps"):
    if not (_ok(a) and _ok(b)) or not a.get(key) or not b.get(key):
        return None
    return a[key] / b[key]


def _paired(a, b, key="tps"):
    """Repetition k of a over repetition k of b. The two ran one right after the other
    (bench.py rotates the targets' order each repetition), so what slowed or sped the
    machine for a while touches both: on a shared machine these ratios scatter far less
    than the runs themselves."""
    if not (_ok(a) and _ok(b)):
        return []
    return [x[key] / y[key] for x, y in zip(a.get("reps", []), b.get("reps", []))
            if _ok(x) and _ok(y) and x.get(key) and y.get(key)]


def _geomean_ci(ratios, resamples=2000):
    """Geometric mean of ratios and its 95% bootstrap interval (fixed seed: the same data
    always gives the same report)."""
    logs = [math.log(r) for r in ratios]
    rng = random.Random(0)
    means = sorted(sum(rng.choice(logs) for _ in logs) / len(logs) for _ in range(resamples))
    lo, hi = means[int(0.025 * resamples)], means[int(0.975 * resamples) - 1]
    return math.exp(sum(logs) / len(logs)), math.exp(lo), math.exp(hi)


def tenant_goal(idx, labels, tenant, plain):
    """Goal 6: the tenant's TPS over the plain pooler's, judged on every repetition of every
    case together (geometric mean of the paired ratios); each case's ratio of medians and
    median paired ratio are listed too."""
    per_case, pooled = [], []
    for lab in labels:
        a, b = idx.get((lab, tenant.name)), idx.get((lab, plain.name))
        paired = _paired(a, b)
        if not paired:
            continue
        pooled += paired
        per_case.append(f"{lab}: {_ratio(a, b):.3f} / {statistics.median(paired):.3f}")
    if not pooled:
        return None
    g, lo, hi = _geomean_ci(pooled)
    return (f"TPS {tenant.name} ≥ 0.95 × {plain.name}",
            f"{g:.3f}× over {len(pooled)} paired repetitions (95% interval {lo:.3f}–{hi:.3f}); "
            f"per case, ratio of medians / median of paired ratios: " + ", ".join(per_case),
            g >= 0.95)


def _fx(v, digits=2):
    return "—" if v is None else f"{v:.{digits}f}×"


def _num(v, fmt):
    return "—" if v is None else format(v, fmt)


def _row(idx, label, target_name, results_targets):
    e = idx.get((label, target_name))
    t = T.BY_NAME[target_name]
    clients = e["case"]["clients"]
    if e["status"] == "unsupported":
        return [str(clients), target_name, f"unsupported: {e['reason']}", "", "", "", "", "", "", "", "", ""]
    direct = idx.get((label, "direct"))
    pgb_t = T.baseline_for(t, "pgbouncer")
    rp_t = T.baseline_for(t, "pgbouncer-rp")
    pgb = idx.get((label, pgb_t.name)) if pgb_t else None
    rp = idx.get((label, rp_t.name)) if rp_t else None
    status = "" if e["status"] == "ok" else f" **FAILED**: {e.get('reason', '')}"
    rss = e.get("peak_rss_kb")
    return [str(clients), target_name, _num(e.get("tps"), ".0f") + status,
            _num(e.get("p50_ms"), ".3f"), _num(e.get("p99_ms"), ".3f"),
            _num(e.get("cpu_us_per_txn"), ".1f"), _num(rss / 1024 if rss else None, ".1f"),
            str(e.get("failed", "—")),
            _fx(_ratio(e, pgb)) if t.pool_mode and (t.kind != "pgbouncer" or t.procs > 1) else "",
            _fx(_ratio(e, rp)) if t.pool_mode and t.kind != "pgbouncer" else "",
            _fx(_ratio(e, direct)) if t.kind != "postgres" else "",
            _fx(_ratio(e, pgb, "cpu_us_per_txn")) if t.kind == "ringbouncer" else ""]


HEAD = ["clients", "target", "TPS", "p50 ms", "p99 ms", "CPU µs/txn", "peak RSS MB", "failed",
        "TPS ×PgB", "TPS ×PgB-rp", "TPS ×direct", "CPU ×PgB"]


def _table(rows, head=HEAD):
    out = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out)


# ---------------------------------------------------------------- goals

def goals(results):
    """[(goal, measured text, met: True/False/None)] from the data of this run;
    goals this run has no case for are listed together in one last row."""
    idx = _index(results)
    labels = {c["label"]: c["case"] for c in results["cases"]}
    in_run = {x["name"] for x in results["targets"]}
    out, missing = [], []

    def sel(proto, clients, connect=False):
        return next((lab for lab, c in labels.items() if c["script"] == "select-only" and c["proto"] == proto
                     and c["clients"] == clients and c["connect"] == connect), None)

    def judge(goal, lab, a, b, key, ok, short):
        if lab is None:
            missing.append(short)
            return
        r = _ratio(idx.get((lab, a.name)), idx.get((lab, b.name)), key)
        out.append((goal, _fx(r) if r is not None else _missing(idx, lab, a, b), None if r is None else ok(r)))

    # 6. a tenant with every limit set, none reached: within 5% of the same pooler without one
    tenant, plain = T.BY_NAME["ringbouncer-tenant"], T.BY_NAME["ringbouncer-txn"]
    if tenant.name in in_run and plain.name in in_run:
        goal = tenant_goal(idx, labels, tenant, plain)
        if goal:
            out.append(goal)
    for rb in [t for t in T.TARGETS if t.kind == "ringbouncer" and t.name in in_run and not t.tenant]:
        if rb.unsupported:
            out.append((f"every goal for {rb.name}", f"unsupported: {rb.unsupported}", None))
            continue
        pgb, rp = T.baseline_for(rb, "pgbouncer"), T.baseline_for(rb, "pgbouncer-rp")
        # 1. pooler CPU per select-only transaction <= 1/3 of PgBouncer's, every protocol mode
        for proto in ("simple", "extended", "prepared"):
            labs = [lab for lab, c in labels.items() if c["script"] == "select-only" and c["proto"] == proto
                    and not c["connect"]]
            goal = f"CPU/txn {rb.name} ≤ 1/3 × {pgb.name}, select-only {proto}"
            if not labs:
                missing.append(f"CPU select-only {proto}")
                continue
            ratios = [(labels[lab]["clients"], _ratio(idx.get((lab, rb.name)), idx.get((lab, pgb.name)),
                                                      "cpu_us_per_txn")) for lab in labs]
            ratios = [(c, x) for c, x in ratios if x is not None]
            if not ratios:
                out.append((goal, _missing(idx, labs[0], rb, pgb), None))
                continue
            worst = max(x for _, x in ratios)
            detail = ", ".join(f"c={c}: {x:.2f}" for c, x in sorted(ratios))
            out.append((goal, f"worst {worst:.2f}× ({detail})", worst <= 1 / 3))
        # 2. select-only, 16 clients: TPS >= 0.9x direct
        for proto in ("simple", "extended", "prepared"):
            judge(f"TPS {rb.name} ≥ 0.9 × direct, select-only {proto}, 16 clients", sel(proto, 16),
                  rb, T.BY_NAME["direct"], "tps", lambda x: x >= 0.9, f"16 clients {proto}")
        # 3. 256 clients: >= 1.3x direct and >= 1.2x PgBouncer (so_reuseport)
        for proto in ("simple", "extended", "prepared"):
            lab = sel(proto, 256)
            judge(f"TPS {rb.name} ≥ 1.3 × direct, select-only {proto}, 256 clients", lab,
                  rb, T.BY_NAME["direct"], "tps", lambda x: x >= 1.3, f"256 clients {proto}")
            if lab is not None:
                judge(f"TPS {rb.name} ≥ 1.2 × {rp.name}, select-only {proto}, 256 clients", lab,
                      rb, rp, "tps", lambda x: x >= 1.2, f"256 clients {proto}")
        # 4. -C at 16 clients: >= PgBouncer's TPS
        conn = [lab for lab, c in labels.items() if c["connect"]]
        for lab in conn:
            c = labels[lab]
            judge(f"TPS {rb.name} ≥ {pgb.name}, {c['script']} -C, {c['clients']} clients", lab,
                  rb, pgb, "tps", lambda x: x >= 1.0, "-C")
        if not conn:
            missing.append("-C 16 clients")
    # 5. idle clients: <= 1 KiB of RSS each at 10,000
    idle = [r for r in results.get("idle", []) if r["target"].startswith("ringbouncer")]
    if not idle:
        missing.append("idle clients")
    for r in idle:
        g = f"RSS per idle client ({r['target']}) ≤ 1 KiB at {r['clients']}"
        if r["status"] == "ok":
            out.append((g, f"{r['bytes_per_client']:.0f} B (second half alone: {r['marginal_bytes_per_client']:.0f} B)",
                        r["bytes_per_client"] <= 1024 and r["clients"] >= 10000))
        else:
            out.append((g, f"FAILED: {r.get('reason', '')}", False))
    if missing:
        out.append(("not measured in this run", ", ".join(dict.fromkeys(missing)), None))
    return out


def _missing(idx, lab, *ts):
    if lab is None:
        return "not measured in this run"
    for t in ts:
        e = idx.get((lab, t.name))
        if e is None:
            return f"{t.name} not in this run"
        if e["status"] != "ok":
            return f"{t.name} {e['status']}: {e.get('reason', '')}"
    return "not measured"


def _verdict(p):
    return "not judged" if p is None else ("**met**" if p else "**not met**")


# ---------------------------------------------------------------- outputs

def text_summary(results):
    idx = _index(results)
    lines = []
    for group, labels in _groups(results).items():
        lines.append(f"{group}")
        lines.append(f"  {'clients':>7} {'target':22} {'TPS':>9} {'p50 ms':>8} {'p99 ms':>8} {'CPU us/txn':>10} "
                     f"{'RSS MB':>7} {'xPgB':>6} {'xPgB-rp':>7} {'xdirect':>7}")
        for lab in labels:
            for t in results["targets"]:
                r = _row(idx, lab, t["name"], results["targets"])
                if r[2].startswith("unsupported"):
                    lines.append(f"  {r[0]:>7} {r[1]:22} {r[2]}")
                else:
                    lines.append(f"  {r[0]:>7} {r[1]:22} {r[2]:>9} {r[3]:>8} {r[4]:>8} {r[5]:>10} {r[6]:>7} "
                                 f"{r[8]:>6} {r[9]:>7} {r[10]:>7}")
    for r in results.get("idle", []):
        if r["status"] == "ok":
            lines.append(f"idle scale {r['target']}: {r['clients']} clients, {r['bytes_per_client']:.0f} B RSS each "
                         f"(second half alone: {r['marginal_bytes_per_client']:.0f} B), {r['logins_per_s']:.0f} logins/s, "
                         f"{r['cpu_us_per_login']:.0f} µs CPU per login")
        else:
            lines.append(f"idle scale {r['target']}: FAILED: {r.get('reason')}")
    lines.append("goals:")
    for g, m, p in goals(results):
        lines.append(f"  [{'met' if p else 'NOT met' if p is False else '  -'}] {g}: {m}")
    return "\n".join(lines)


def markdown(results, png_name):
    m = results["meta"]
    idx = _index(results)
    out = [f"# ringbouncer benchmark, {m['date']} ({results['mode']} run)", ""]
    reps = (f"{results['reps']} repetitions of {results['duration_s']} s (steady state) per case and target, "
            "medians shown" if results["reps"] > 1 else
            f"1 repetition of {results['duration_s']} s (steady state) per case and target, no medians")
    out += ["pgbench against direct PostgreSQL, PgBouncer and ringbouncer, interleaved case by case, "
            f"{reps}, pgbench scale {results['scale']}, loopback TCP. Written by `bench/run"
            f"{'' if results['mode'] == 'full' else ' --' + results['mode']}`; see bench/README.md for "
            "how to read it.", ""]
    out += ["## Machine", "", "| | |", "|---|---|"]
    for k in ("kernel", "cores", "cpu", "memory", "debian", "postgresql", "pgbench", "pgbouncer", "ringbouncer",
              "commit", "cc", "liburing", "jemalloc", "rlimit_nofile"):
        out.append(f"| {k} | {m.get(k, '?')} |")
    out += ["", f"Total time: {results.get('elapsed_s', 0) / 60:.1f} min.", ""]
    out += ["## Targets", "", "| target | pool mode | pool size | processes | note |", "|---|---|---|---|---|"]
    for t in results["targets"]:
        note = f"**unsupported**: {t['unsupported']}" if t["unsupported"] else t["note"]
        out.append(f"| {t['name']} | {t['pool_mode'] or '—'} | {t['pool_size'] if t['pool_mode'] else '—'} | "
                   f"{t['procs']} | {note} |")
    out += ["", "## Goals", "", "| goal | measured | verdict |", "|---|---|---|"]
    for g, meas, p in goals(results):
        out.append(f"| {g} | {meas} | {_verdict(p)} |")
    if results.get("idle"):
        out += ["", "## Idle scale", "",
                "RSS per client: VmRSS growth from a freshly started pooler (after 10 warm-up logins) to all "
                "clients logged in and idle, divided by their number; the goal is judged on it. Second half: the "
                "clients come in two halves; the growth of the second half alone, per client (without the one-time "
                "costs the first logins touch). Logins are SCRAM-SHA-256 (bench/idle.c, at most 128 at once); "
                "logins/s and CPU per login are from the first half.", "",
                "| target | idle clients | RSS before MB | RSS after MB | RSS per client | second half alone "
                "| logins/s | pooler CPU per login |",
                "|---|---|---|---|---|---|---|---|"]
        for r in results["idle"]:
            if r["status"] == "ok":
                out.append(f"| {r['target']} | {r['clients']} | {r['before_kb'] / 1024:.1f} | "
                           f"{r['after_kb'] / 1024:.1f} | {r['bytes_per_client']:.0f} B | "
                           f"{r['marginal_bytes_per_client']:.0f} B | {r['logins_per_s']:.0f} | "
                           f"{r['cpu_us_per_login']:.0f} µs |")
            else:
                out.append(f"| {r['target']} | {r['clients']} | **FAILED**: {r.get('reason', '')} | | | | | |")
    out += ["", "## Results", ""]
    out += ["TPS ×PgB: against PgBouncer (one process) in the same pool mode; ×PgB-rp: against the "
            "so_reuseport PgBouncer processes in the same pool mode; ×direct: against PostgreSQL itself. "
            "CPU µs/txn: the pooler's user+system CPU (all threads and processes) over pgbench's measured "
            "interval, per transaction; CPU ×PgB: that ratio against PgBouncer in the same pool mode. "
            "Peak RSS: VmHWM during the run (summed over processes).", ""]
    if png_name:
        out += [f"![TPS by clients, select-only simple]({png_name})", ""]
    for group, labels in _groups(results).items():
        out += [f"### {group}", ""]
        rows = [_row(idx, lab, t["name"], results["targets"]) for lab in labels for t in results["targets"]]
        out += [_table(rows), ""]
    out += ["## Configuration", ""]
    for name, (lang, text) in results.get("configs", {}).items():
        out += [f"{name}:", "", f"```{lang}", text.rstrip(), "```", ""]
    return "\n".join(out)


def chart(results, png):
    """TPS against clients (log x), one line per target, select-only simple. False if gnuplot is missing."""
    gp = shutil.which("gnuplot")
    if not gp:
        return False
    pts = {}
    for c in results["cases"]:
        k = c["case"]
        if k["script"] == "select-only" and k["proto"] == "simple" and not k["connect"] and _ok(c):
            pts.setdefault(c["target"], []).append((k["clients"], c["tps"]))
    if not pts:
        return False
    with tempfile.TemporaryDirectory() as d:
        plots = []
        for name, xs in pts.items():
            f = Path(d) / f"{name}.dat"
            f.write_text("".join(f"{x} {y}\n" for x, y in sorted(xs)))
            plots.append(f"'{f}' using 1:2 with linespoints lw 2 pt 7 title '{name}'")
        clients = sorted({x for xs in pts.values() for x, _ in xs})
        script = "\n".join([
            "set terminal pngcairo size 1000,600 noenhanced font ',11'",
            f"set output '{png}'",
            f"set title 'pgbench select-only, simple protocol: TPS by clients "
            f"({'median of ' if results['reps'] > 1 else ''}{results['reps']} x {results['duration_s']} s), "
            f"{results['meta']['cores']} cores'",
            "set logscale x", "set xlabel 'clients'", "set ylabel 'TPS'", "set grid", "set yrange [0:*]",
            "set key outside right top",
            "set xtics (" + ", ".join(f"'{c}' {c}" for c in clients) + ")",
            "plot " + ", ".join(plots), ""])
        r = subprocess.run([gp], input=script, text=True, capture_output=True)
        if r.returncode != 0 and "pngcairo" in r.stderr:
            r = subprocess.run([gp], input=script.replace("pngcairo", "png"), text=True, capture_output=True)
        if r.returncode != 0:
            print(f"gnuplot failed: {r.stderr.strip()}")
            return False
    return True


def write(results, outdir, suffix=""):
    outdir.mkdir(parents=True, exist_ok=True)
    stem = time.strftime("%Y-%m-%d") + suffix
    png = outdir / f"{stem}.png"
    have_png = chart(results, png)
    md = outdir / f"{stem}.md"
    md.write_text(markdown(results, png.name if have_png else None))
    js = outdir / f"{stem}.json"
    js.write_text(json.dumps(results, indent=1, default=str) + "\n")
    return [md, js] + ([png] if have_png else [])
