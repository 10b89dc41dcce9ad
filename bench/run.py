#!/usr/bin/env python3
"""Side-by-side benchmark driver: runs the same matrix of loadgen scenarios against the
Node.js reference chat and tete, a fresh server process per case, the server pinned to
one core and the load generator to the other, then prints a table with tete/reference
ratios and writes results.json, results.md and chart.svg.

Standard library only. See bench/README.md.
"""

import argparse
import datetime
import json
import os
import resource
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

BENCH = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH)
LOADGEN = os.path.join(BENCH, "loadgen", "target", "release", "loadgen")
REFERENCE = os.path.join(BENCH, "reference")

SERVER_READY_TIMEOUT = 30.0  # seconds for a fresh server to answer GET /create
SERVER_STOP_TIMEOUT = 5.0  # seconds between SIGTERM and SIGKILL
CASE_SLACK = 120.0  # seconds a case may take beyond its planned phases
RATE_PER_CLIENT = 8.0  # msgs/s per client in pairs: under tete's default 10/s, burst 20
LOOPBACK_SOURCES = ["127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4"]
MANY_CONNECTIONS = 4000  # above this, connections are spread over LOOPBACK_SOURCES


def log(message):
    print(f"[bench] {message}", file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------- matrix


def matrix(quick, saturation_rate):
    """The cases, in order. Each is a dict with the loadgen scenario and its arguments."""
    if quick:
        timing = dict(warmup=1.0, duration=3.0, drain=3.0)
        pair_loads = [4000, 20000, 48000]
        idle_connections = 4000
    else:
        timing = dict(warmup=2.0, duration=8.0, drain=5.0)
        pair_loads = [4000, 20000, 40000, 60000, saturation_rate]
        idle_connections = 19000
    cases = [
        dict(name="flood", scenario="flood", rooms=50, window=32, uses_flood_limit=True,
             **timing),
        # The reference's saturation rate offered steadily in flood's shape (50 rooms,
        # 100 senders at a high rate): latency at that load, cheap for the load generator.
        steady_case(saturation_rate, timing),
    ]
    for load in sorted(set(pair_loads)):
        cases.append(pairs_case(load, timing, follows_saturation=(
            load == saturation_rate and not quick)))
    cases.append(dict(name="idle", scenario="idle", connections=idle_connections,
                      hold=3.0))
    cases.append(dict(name="polling@1600", scenario="polling", rooms=100,
                      rate=RATE_PER_CLIENT, offered=1600, **timing))
    cases.append(dict(name="polling-flood", scenario="polling", rooms=50, window=8,
                      uses_flood_limit=True, **timing))
    return cases


STEADY_ROOMS = 50


def steady_case(load, timing):
    return dict(name=f"steady@{load}", scenario="pairs", rooms=STEADY_ROOMS,
                rate=load / (2 * STEADY_ROOMS), offered=load, uses_flood_limit=True,
                follows_saturation=True, shape="steady", **timing)


def pairs_case(load, timing, follows_saturation=False):
    rooms = max(1, round(load / (2 * RATE_PER_CLIENT)))
    return dict(name=f"pairs@{load}", scenario="pairs", rooms=rooms, rate=RATE_PER_CLIENT,
                offered=load, follows_saturation=follows_saturation, shape="pairs",
                **{k: v for k, v in timing.items()})


def follow_saturation(cases, saturation):
    """Re-aims the cases that offer the reference's saturation rate at `saturation`;
    one that becomes the same as another case is dropped."""
    for i in reversed(range(len(cases))):
        case = cases[i]
        if not case.get("follows_saturation"):
            continue
        timing = {k: case[k] for k in ("warmup", "duration", "drain")}
        if case["shape"] == "steady":
            cases[i] = steady_case(saturation, timing)
        else:
            cases[i] = pairs_case(saturation, timing, follows_saturation=True)
        if any(other["name"] == cases[i]["name"] for j, other in enumerate(cases) if j != i):
            del cases[i]


def case_budget(case):
    return (case.get("warmup", 0) + case.get("duration", 0) + case.get("drain", 0)
            + case.get("hold", 0) + CASE_SLACK)


def loadgen_args(case, port, pid, acks):
    args = [case["scenario"], "--addr", f"127.0.0.1:{port}", "--server-pid", str(pid),
            "--max-seconds", str(case_budget(case))]
    for key in ("rooms", "connections", "rate", "window", "warmup", "duration", "drain",
                "hold"):
        if key in case:
            args += [f"--{key}", str(case[key])]
    clients = case.get("connections", 2 * case.get("rooms", 0))
    if clients > MANY_CONNECTIONS:
        args += ["--sources", ",".join(LOOPBACK_SOURCES),
                 "--setup-concurrency", "256"]
    if acks and case["scenario"] != "idle":
        args.append("--acks")
    return args


# ----------------------------------------------------------------------------- servers


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


class Server:
    """How to start one server under test."""

    def __init__(self, name, command, env, flood_env, acks, sqlite):
        self.name = name
        self.command = command
        self.env = env
        self.flood_env = flood_env
        self.acks = acks
        self.sqlite = sqlite

    def describe(self):
        extra = " ".join(f"{k}={v}" for k, v in self.env.items())
        return f"{self.name}: {' '.join(self.command)} {extra}".strip()


def wait_ready(port, process):
    deadline = time.monotonic() + SERVER_READY_TIMEOUT

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    opener = urllib.request.build_opener(NoRedirect)
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode} during start")
        try:
            opener.open(f"http://127.0.0.1:{port}/create", timeout=2)
            return
        except urllib.error.HTTPError as error:
            if 300 <= error.code < 400:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"server did not answer GET /create within {SERVER_READY_TIMEOUT}s")


def stop(process):
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(SERVER_STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def core_busy(cores, interval=0.5):
    """Share of each core busy over `interval` seconds, from /proc/stat."""

    def read():
        ticks = {}
        with open("/proc/stat") as f:
            for line in f:
                name, *fields = line.split()
                if name.startswith("cpu") and name[3:].isdigit() and int(name[3:]) in cores:
                    values = [int(v) for v in fields]
                    ticks[int(name[3:])] = (sum(values) - values[3] - values[4], sum(values))
        return ticks

    before = read()
    time.sleep(interval)
    after = read()
    return {c: (after[c][0] - before[c][0]) / max(after[c][1] - before[c][1], 1)
            for c in cores if c in before and c in after}


def wait_quiet(cores, limit_seconds, threshold=0.15):
    """Waits (bounded) until the pinned cores are nearly idle; True if they are."""
    deadline = time.monotonic() + limit_seconds
    while True:
        busy = core_busy(cores)
        if all(share < threshold for share in busy.values()):
            return True
        if time.monotonic() >= deadline:
            log("cores still busy with other processes ("
                + ", ".join(f"core {c}: {b * 100:.0f}%" for c, b in busy.items())
                + "): running anyway, the notes will say so")
            return False


def run_case(server, case, out_dir, server_core, loadgen_core):
    port = free_port()
    env = dict(os.environ)
    env["PORT"] = str(port)
    env.update(server.env)
    overrides = dict(server.flood_env) if case.get("uses_flood_limit") else {}
    env.update(overrides)
    tmp = tempfile.mkdtemp(prefix=f"bench-{server.name}-")
    if server.sqlite:
        env["DATABASE_URL"] = f"sqlite:{tmp}/tete.db"
    stem = os.path.join(out_dir, f"{case['name']}.{server.name}")
    server_log = open(f"{stem}.server.log", "wb")
    process = subprocess.Popen(
        ["taskset", "-c", str(server_core)] + server.command,
        env=env, stdout=server_log, stderr=subprocess.STDOUT, preexec_fn=raise_nofile,
        cwd=ROOT)
    try:
        try:
            wait_ready(port, process)
        except RuntimeError as error:
            raise RuntimeError(f"{error}; see {stem}.server.log") from error
        args = loadgen_args(case, port, process.pid, server.acks)
        log(f"{case['name']} on {server.name}: loadgen {' '.join(args)}")
        with open(f"{stem}.loadgen.log", "wb") as loadgen_log:
            result = subprocess.run(
                ["taskset", "-c", str(loadgen_core), LOADGEN] + args,
                stdout=subprocess.PIPE, stderr=loadgen_log, preexec_fn=raise_nofile,
                timeout=case_budget(case) + 30)
        if result.returncode != 0:
            raise RuntimeError(f"loadgen failed ({result.returncode}), see {stem}.loadgen.log")
        report = json.loads(result.stdout)
        report["flood_limit_override"] = overrides or None
        if process.poll() is not None:
            report.setdefault("warnings", []).append(
                f"the server exited ({process.returncode}) during the case")
        return report
    finally:
        stop(process)
        server_log.close()
        shutil.rmtree(tmp, ignore_errors=True)


# ----------------------------------------------------------------------------- report

# (label, path into the report, format, higher is better)
METRICS = {
    "traffic": [
        ("delivered msg/s", ("traffic", "delivered_msgs_per_sec"), "{:,.0f}", True),
        ("p50 ms", ("traffic", "latency", "p50_us"), "ms", False),
        ("p99 ms", ("traffic", "latency", "p99_us"), "ms", False),
        ("p99.9 ms", ("traffic", "latency", "p999_us"), "ms", False),
        ("server CPU µs/msg", ("server", "cpu_us_per_msg"), "{:.2f}", False),
        ("server CPU %", ("server", "cpu_share"), "pct", None),
        ("others on server core %", ("server", "core_foreign_share"), "pct", None),
        ("server RSS MiB", ("server", "hwm_kib"), "mib", False),
        ("lost", ("traffic", "lost"), "{:,}", False),
    ],
    "idle": [
        ("connections", ("idle", "connections"), "{:,}", None),
        ("logins/s", ("setup", "logins_per_sec"), "{:,.0f}", True),
        ("KiB per connection", ("idle", "kib_per_connection"), "{:.2f}", False),
        ("KiB/conn after /create", ("idle", "kib_per_connection_after_create"), "{:.2f}",
         False),
        ("others on server core %", ("server", "core_foreign_share"), "pct", None),
        ("server RSS MiB", ("idle", "rss_kib"), "mib", False),
        ("server CPU µs/login", ("idle", "cpu_us_per_login"), "{:.0f}", False),
    ],
}


def dig(report, path):
    value = report
    for key in path:
        if not isinstance(value, dict) or value.get(key) is None:
            return None
        value = value[key]
    return value


def fmt(value, style):
    if value is None:
        return "–"
    if style == "ms":
        return f"{value / 1000:.2f}"
    if style == "pct":
        return f"{value * 100:.0f}%"
    if style == "mib":
        return f"{value / 1024:.1f}"
    return style.format(value)


def table(results, servers, cases):
    names = [s.name for s in servers]
    both = "reference" in names and "tete" in names
    header = ["case", "metric"] + names + (["tete/ref"] if both else [])
    rows = []
    notes = []
    for case in cases:
        kind = "idle" if case["scenario"] == "idle" else "traffic"
        for label, path, style, higher in METRICS[kind]:
            values = [dig(results.get(case["name"], {}).get(n, {}), path) for n in names]
            row = [case["name"], label] + [fmt(v, style) for v in values]
            if both:
                ref, tete = (values[names.index("reference")], values[names.index("tete")])
                if ref and tete is not None and higher is not None:
                    row.append(f"{tete / ref:.2f}")
                else:
                    row.append("")
            rows.append(row)
        for name in names:
            report = results.get(case["name"], {}).get(name)
            if report is None:
                continue
            if "error" in report:
                notes.append(f"{case['name']} on {name}: FAILED: {report['error']}")
                continue
            if report.get("flood_limit_override"):
                env = " ".join(f"{k}={v}" for k, v in report["flood_limit_override"].items())
                notes.append(f"{case['name']} on {name}: per-client flood limit raised ({env})")
            if report.get("bottleneck") not in (None, "none"):
                notes.append(f"{case['name']} on {name}: bottleneck = {report['bottleneck']}"
                             f" (loadgen {report.get('loadgen_cpu_share', 0) * 100:.0f}% of its core)")
            for warning in report.get("warnings", []):
                notes.append(f"{case['name']} on {name}: {warning}")
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
    lines = [" | ".join(h.ljust(w) for h, w in zip(header, widths)),
             "-|-".join("-" * w for w in widths)]
    for row in rows:
        lines.append(" | ".join(str(c).ljust(w) for c, w in zip(row, widths)))
    return lines, notes


# ----------------------------------------------------------------------------- chart

COLORS = {"reference": "#d62728", "tete": "#1f77b4"}


def nice_ticks(low, high, count=5):
    span = max(high - low, 1e-9)
    raw = span / count
    magnitude = 10 ** len(str(int(raw))) / 10 if raw >= 1 else 1
    step = min((m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw),
               default=raw)
    ticks, value = [], 0.0
    while value <= high + 1e-9:
        if value >= low:
            ticks.append(value)
        value += step
    return ticks


def short(value):
    if value >= 1000:
        return f"{value / 1000:g}k"
    return f"{value:g}"


def panel(x0, y0, w, h, title, series, y_label, log_y, flood_lines):
    """One chart: series = {server: [(x, y), ...]}; returns SVG elements."""
    out = []
    points = [p for s in series.values() for p in s]
    if not points:
        return out
    x_max = max(p[0] for p in points) * 1.05
    ys = [p[1] for p in points] + [v for v in flood_lines.values() if v]
    if log_y:
        import math
        y_lo = 10 ** math.floor(math.log10(max(min(ys), 0.01)))
        y_hi = 10 ** math.ceil(math.log10(max(ys)))
        to_y = lambda v: y0 + h - (math.log10(max(v, y_lo)) - math.log10(y_lo)) / (
            math.log10(y_hi) - math.log10(y_lo)) * h
        y_ticks, t = [], y_lo
        while t <= y_hi * 1.0001:
            y_ticks.append(t)
            t *= 10
    else:
        y_hi = max(ys) * 1.1
        to_y = lambda v: y0 + h - v / y_hi * h
        y_ticks = nice_ticks(0, y_hi)
    to_x = lambda v: x0 + v / x_max * w
    out.append(f'<text x="{x0 + w / 2}" y="{y0 - 12}" text-anchor="middle" '
               f'font-weight="bold">{title}</text>')
    out.append(f'<rect x="{x0}" y="{y0}" width="{w}" height="{h}" fill="none" stroke="#999"/>')
    for t in y_ticks:
        y = to_y(t)
        out.append(f'<line x1="{x0}" y1="{y:.1f}" x2="{x0 + w}" y2="{y:.1f}" stroke="#eee"/>')
        out.append(f'<text x="{x0 - 6}" y="{y + 4:.1f}" text-anchor="end">{short(t)}</text>')
    for t in nice_ticks(0, x_max):
        x = to_x(t)
        out.append(f'<line x1="{x:.1f}" y1="{y0}" x2="{x:.1f}" y2="{y0 + h}" stroke="#eee"/>')
        out.append(f'<text x="{x:.1f}" y="{y0 + h + 16}" text-anchor="middle">{short(t)}</text>')
    out.append(f'<text x="{x0 + w / 2}" y="{y0 + h + 34}" text-anchor="middle">'
               f'offered load (msg/s, pairs scenario)</text>')
    out.append(f'<text transform="translate({x0 - 48},{y0 + h / 2}) rotate(-90)" '
               f'text-anchor="middle">{y_label}</text>')
    for name, value in flood_lines.items():
        if value:
            y = to_y(value)
            out.append(f'<line x1="{x0}" y1="{y:.1f}" x2="{x0 + w}" y2="{y:.1f}" '
                       f'stroke="{COLORS.get(name, "#555")}" stroke-dasharray="6 4"/>')
            out.append(f'<text x="{x0 + w - 4}" y="{y - 4:.1f}" text-anchor="end" '
                       f'fill="{COLORS.get(name, "#555")}">{name} flood (W=32)</text>')
    for name, pts in series.items():
        pts = sorted(pts)
        color = COLORS.get(name, "#555")
        path = " ".join(f"{to_x(x):.1f},{to_y(y):.1f}" for x, y in pts)
        out.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2"/>')
        for x, y in pts:
            out.append(f'<circle cx="{to_x(x):.1f}" cy="{to_y(y):.1f}" r="3.5" fill="{color}"/>')
    return out


def chart(results, servers, cases):
    names = [s.name for s in servers]
    throughput = {n: [] for n in names}
    p99 = {n: [] for n in names}
    flood_rate, flood_p99 = {}, {}
    for case in cases:
        for name in names:
            report = results.get(case["name"], {}).get(name)
            if not report or "error" in report:
                continue
            if case.get("shape") == "pairs":
                throughput[name].append((case["offered"],
                                         dig(report, ("traffic", "delivered_msgs_per_sec"))))
                p99[name].append((case["offered"],
                                  dig(report, ("traffic", "latency", "p99_us")) / 1000))
            elif case["name"] == "flood":
                flood_rate[name] = dig(report, ("traffic", "delivered_msgs_per_sec"))
                flood_p99[name] = dig(report, ("traffic", "latency", "p99_us")) / 1000
    width, height = 1000, 420
    svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'font-family="sans-serif" font-size="12">',
           f'<rect width="{width}" height="{height}" fill="white"/>']
    svg += panel(90, 50, 360, 290, "Delivered messages/s", throughput, "delivered msg/s",
                 False, flood_rate)
    svg += panel(590, 50, 360, 290, "p99 delivery latency", p99, "p99 latency (ms, log)",
                 True, flood_p99)
    for i, name in enumerate(names):
        x = 90 + i * 160
        svg.append(f'<rect x="{x}" y="{height - 28}" width="14" height="14" '
                   f'fill="{COLORS.get(name, "#555")}"/>')
        svg.append(f'<text x="{x + 20}" y="{height - 16}">{name}</text>')
    svg.append(f'<text x="{width - 10}" y="{height - 16}" text-anchor="end" fill="#666">'
               f'server on core 0, loadgen on core 1; pairs: 2 clients/room, '
               f'{RATE_PER_CLIENT:g} msg/s each</text>')
    svg.append("</svg>")
    return "\n".join(svg)


# ----------------------------------------------------------------------------- main


def parse_env(pairs):
    env = {}
    for item in pairs or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"expected KEY=VALUE, got {item!r}")
        env[key] = value
    return env


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a ~2-minute smaller matrix")
    parser.add_argument("--only", choices=["reference", "tete"],
                        help="run against one server only")
    parser.add_argument("--cases", help="comma-separated case names to run (default: all)")
    parser.add_argument("--tete-cmd", default="target/release/tete",
                        help="tete's command line, relative to the repository root")
    parser.add_argument("--tete-env", action="append", metavar="KEY=VALUE",
                        help="extra environment for tete in every case (repeatable)")
    parser.add_argument("--flood-env", action="append", metavar="KEY=VALUE",
                        help="extra environment for tete in the saturation cases only "
                             "(flood, steady@…, polling-flood): the per-client flood-limit override")
    parser.add_argument("--no-tete-acks", action="store_true",
                        help="send tete's msg without an ack id")
    parser.add_argument("--saturation-rate", type=int, default=80000,
                        help="offered load of the last pairs case when the reference "
                             "flood result is not available (msg/s)")
    parser.add_argument("--server-core", type=int, default=0)
    parser.add_argument("--loadgen-core", type=int, default=1)
    parser.add_argument("--out", help="results directory (default bench/results/<time>)")
    parser.add_argument("--wait-quiet", type=float, default=0, metavar="SECONDS",
                        help="before each case, wait up to this long for both pinned "
                             "cores to be idle (on a machine shared with other work)")
    args = parser.parse_args()

    if not os.access(LOADGEN, os.X_OK):
        log("building the load generator (release)")
        subprocess.run(["cargo", "build", "--release", "--manifest-path",
                        os.path.join(BENCH, "loadgen", "Cargo.toml")], check=True)
    servers = []
    if args.only in (None, "reference"):
        if not os.path.isdir(os.path.join(REFERENCE, "node_modules")):
            log("installing the reference server's pinned dependencies (npm ci)")
            subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=REFERENCE, check=True)
        servers.append(Server("reference", ["node", os.path.join(REFERENCE, "server.js")],
                              {"NODE_ENV": "production"}, {}, acks=False, sqlite=False))
    if args.only in (None, "tete"):
        command = shlex.split(args.tete_cmd)
        binary = command[0] if os.path.isabs(command[0]) else os.path.join(ROOT, command[0])
        if not os.access(binary, os.X_OK):
            raise SystemExit(f"{binary} not found: build tete first (cargo build --release)")
        command[0] = binary
        servers.append(Server("tete", command, parse_env(args.tete_env),
                              parse_env(args.flood_env), acks=not args.no_tete_acks,
                              sqlite=True))

    cases = matrix(args.quick, args.saturation_rate)
    if args.cases:
        wanted = set(args.cases.split(","))
        cases = [c for c in cases if c["name"] in wanted or c["scenario"] in wanted
                 or c["name"].split("@")[0] in wanted]
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    out_dir = args.out or os.path.join(BENCH, "results", stamp)
    os.makedirs(out_dir, exist_ok=True)
    log(f"{len(cases)} cases × {len(servers)} servers; results in {out_dir}")
    for server in servers:
        log(server.describe())

    started = time.monotonic()
    results = {}
    index = 0
    while index < len(cases):  # the list may shrink once the reference's flood is known
        case = cases[index]
        index += 1
        for server in servers:
            if args.wait_quiet > 0:
                wait_quiet({args.server_core, args.loadgen_core}, args.wait_quiet)
            try:
                report = run_case(server, case, out_dir, args.server_core, args.loadgen_core)
            except Exception as error:  # a failed case is reported, the others still run
                log(f"{case['name']} on {server.name} FAILED: {error}")
                report = {"error": str(error)}
            results.setdefault(case["name"], {})[server.name] = report
            if case["name"] == "flood" and server.name == "reference" and "error" not in report:
                # The last pairs case offers what the reference delivers at saturation.
                rate = dig(report, ("traffic", "delivered_msgs_per_sec"))
                follow_saturation(cases, int(round(rate / 1000.0) * 1000))
    elapsed = time.monotonic() - started

    lines, notes = table(results, servers, cases)
    summary = {
        "date": stamp,
        "machine": {"cpus": os.cpu_count(), "uname": " ".join(os.uname())},
        "servers": [s.describe() for s in servers],
        "quick": args.quick,
        "seconds": elapsed,
        "cases": cases,
        "results": results,
    }
    with open(os.path.join(out_dir, "results.json"), "w") as f:
        json.dump(summary, f, indent=2)
    with open(os.path.join(out_dir, "chart.svg"), "w") as f:
        f.write(chart(results, servers, cases))
    with open(os.path.join(out_dir, "results.md"), "w") as f:
        f.write("\n".join(["| " + l.replace(" | ", " | ") + " |" for l in lines]) + "\n\n")
        f.write("\n".join(f"- {n}" for n in notes) + "\n")
    print("\n".join(lines))
    if notes:
        print()
        print("\n".join(f"* {n}" for n in notes))
    print(f"\n{elapsed:.0f}s; results, chart.svg and logs in {out_dir}")


if __name__ == "__main__":
    main()
