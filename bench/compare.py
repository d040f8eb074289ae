#!/usr/bin/env python3
"""Side-by-side echo / HTTP benchmark of Quiesce against Netty, plain NIO and C.

Every server in the list is started in turn, warmed up, and measured with build/loadgen in
each mode (pingpong, pipeline, short); optionally its HTTP sibling is measured with wrk.
There are --rounds rounds and the server order rotates by one each round, so no server is
always first (cold machine) or last. The server's CPU time (utime + stime of the whole
process, every thread included, from /proc/<pid>/stat) is sampled exactly when loadgen
opens and closes its measured window and divided by the messages completed in it.

Writes a Markdown report (--out), the raw per-run TSV beside it, and PNG bar charts when
matplotlib is importable. All traffic goes to 127.0.0.1. Every server, loadgen and wrk
process started here is killed at the end, on Ctrl-C and on errors.

Python 3 standard library only (matplotlib optional).
"""

import argparse
import json
import os
import platform
import queue
import re
import shlex
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
LOADGEN = os.path.join(HERE, "build", "loadgen")
PEERS_JAR = os.path.join(HERE, "peers", "target", "quiesce-bench-peers.jar")
CLK_TCK = os.sysconf("SC_CLK_TCK")
MODES = ("pingpong", "pipeline", "short", "single")
# "single": one connection, one message in flight (loadgen pingpong with -c 1): round-trip latency.
LOADGEN_MODE = {"single": "pingpong"}
READY_TIMEOUT = 30.0

# ------------------------------------------------------------------------------ servers

# Command templates. Placeholders: {java} {jvm_opts} {peers_jar} {quiesce_cp} {c_echo}
# {port} {threads}. Commands run through /bin/sh (`exec`-ed, so the pid is the server's).
DEFAULT_JVM_OPTS = "-Xms512m -Xmx512m"
NETTY_JVM = "--enable-native-access=ALL-UNNAMED --sun-misc-unsafe-memory-access=allow"
QUIESCE_ECHO = ("{java} --enable-native-access=ALL-UNNAMED {jvm_opts} -cp {quiesce_cp} "
                "io.quiesce.examples.EchoServer --port {port} --threads {threads}")
QUIESCE_HTTP = ("{java} --enable-native-access=ALL-UNNAMED {jvm_opts} -cp {quiesce_cp} "
                "io.quiesce.examples.HttpServer --port {port} --threads {threads}")

BUILTIN_SERVERS = {
    "quiesce": {"echo": QUIESCE_ECHO, "http": QUIESCE_HTTP},
    "netty": {
        "echo": "{java} " + NETTY_JVM + " {jvm_opts} -cp {peers_jar} "
                "io.quiesce.bench.netty.NettyEchoServer --port {port} --threads {threads}",
        "http": "{java} " + NETTY_JVM + " {jvm_opts} -cp {peers_jar} "
                "io.quiesce.bench.netty.NettyHttpServer --port {port} --threads {threads}",
    },
    "nio": {
        "echo": "{java} {jvm_opts} -cp {peers_jar} "
                "io.quiesce.bench.nio.NioEchoServer --port {port} --threads {threads}",
        "http": "{java} {jvm_opts} -cp {peers_jar} "
                "io.quiesce.bench.nio.NioHttpServer --port {port} --threads {threads}",
    },
    "c": {"echo": "{c_echo} -p {port} -t {threads}", "http": None},
}
DEFAULT_ORDER = "quiesce,netty,nio,c"


def quiesce_classpath():
    """target/classes:target/test-classes (examples compile with the tests) + dependencies."""
    target = os.path.join(ROOT, "target")
    parts = [os.path.join(target, "classes"), os.path.join(target, "test-classes")]
    cp_file = os.path.join(target, "classpath.txt")
    if os.path.exists(cp_file):
        with open(cp_file) as f:
            extra = f.read().strip()
        if extra:
            parts.append(extra)
    return ":".join(parts)


# ------------------------------------------------------------------------------ processes

LIVE = {}  # pid -> Popen of everything started here
LIVE_LOCK = threading.Lock()


# With setpriv (util-linux) a child also gets SIGTERM if this script dies without cleaning up.
PDEATHSIG = "setpriv --pdeathsig TERM " if any(
    os.access(os.path.join(d, "setpriv"), os.X_OK) for d in os.environ.get("PATH", "").split(":")) else ""


def spawn(cmd, **kw):
    """Starts `cmd` (a shell string, exec-ed: the pid is the command's) in its own process group."""
    p = subprocess.Popen(["/bin/sh", "-c", "exec " + PDEATHSIG + cmd], start_new_session=True, **kw)
    with LIVE_LOCK:
        LIVE[p.pid] = p
    return p


def stop(p, grace=5.0):
    """SIGTERM to the process group, SIGKILL after `grace` seconds."""
    if p is None:
        return
    if p.poll() is None:
        try:
            os.killpg(p.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            p.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait(timeout=grace)
    with LIVE_LOCK:
        LIVE.pop(p.pid, None)


def stop_all():
    with LIVE_LOCK:
        procs = list(LIVE.values())
    for p in procs:
        try:
            stop(p, grace=3.0)
        except Exception as e:  # keep killing the others
            print(f"compare: could not stop pid {p.pid}: {e}", file=sys.stderr)


def cpu_ticks(pid):
    """utime + stime in clock ticks, summed by the kernel over every thread of the process."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = stat[stat.rindex(")") + 2:].split()  # the command name may contain spaces
    return int(fields[11]) + int(fields[12])       # fields 14 and 15 of proc(5)


def machine_busy_ticks():
    """Busy clock ticks of the whole machine (user nice system irq softirq steal), /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return v[0] + v[1] + v[2] + v[5] + v[6] + (v[7] if len(v) > 7 else 0)


class Sample:
    """CPU ticks of the server, the client and the machine at one instant."""

    def __init__(self, server_pid, client_pid):
        self.t = time.monotonic()
        self.server = cpu_ticks(server_pid)
        self.client = cpu_ticks(client_pid)
        self.machine = machine_busy_ticks()


def cpu_figures(a, b, count):
    """cpu_us_per_msg, server_cores, client_cores, other_cores between samples a and b."""
    out = {"cpu_us_per_msg": None, "server_cores": None, "client_cores": None, "other_cores": None}
    if a is None or b is None or b.t <= a.t or a.server is None or b.server is None:
        return out
    wall = b.t - a.t
    server = (b.server - a.server) / CLK_TCK
    out["server_cores"] = server / wall
    if count > 0:
        out["cpu_us_per_msg"] = server * 1e6 / count
    if a.client is not None and b.client is not None:
        client = (b.client - a.client) / CLK_TCK
        out["client_cores"] = client / wall
        # everything else the machine did meanwhile: other people's processes, stray softirq
        out["other_cores"] = max(0.0, (b.machine - a.machine) / CLK_TCK - server - client) / wall
    return out


class Server:
    """A started server process whose output is drained by a thread."""

    def __init__(self, name, cmd):
        self.name = name
        self.cmd = cmd
        self.lines = []
        self.ready = threading.Event()
        self.proc = spawn(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, errors="replace")
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self):
        for line in self.proc.stdout:
            if len(self.lines) < 200:
                self.lines.append(line.rstrip("\n"))
            if "listening on" in line:
                self.ready.set()

    def wait_ready(self, port, timeout=READY_TIMEOUT):
        """Waits for the ready line, or for the port to accept a connection."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.ready.wait(0.1):
                return True
            if self.proc.poll() is not None:
                return False
            if port_accepts(port):
                return True
        return False

    def output(self):
        return "\n".join("    " + l for l in self.lines[-15:])

    killed = False

    def stop(self):
        self.killed = self.proc.poll() is None
        stop(self.proc)


def port_accepts(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def free_port(start):
    """First port >= start on 127.0.0.1 nobody listens on."""
    for port in range(start, start + 500):
        if port_accepts(port):
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
                return port
            except OSError:
                continue
    raise RuntimeError(f"no free port in {start}..{start + 499}")


# ------------------------------------------------------------------------------ load

RESULT_RE = re.compile(r"(\w+)=([^\s]+)")


def run_loadgen(args, server, port, mode, secs, warmup, measure=True):
    """Runs loadgen once; returns a dict of its result line plus server CPU figures."""
    conns = 1 if mode == "single" else args.conns
    cmd = [LOADGEN, "-p", str(port), "-m", LOADGEN_MODE.get(mode, mode), "-c", str(conns), "-s", str(args.size),
           "-d", f"{secs:g}", "-w", f"{warmup:g}", "-q", str(args.depth), "-t", str(args.client_threads),
           "-M"]
    if args.pin:
        cmd = ["taskset", "-c", args.client_cpu] + cmd
    p = spawn(" ".join(shlex.quote(c) for c in cmd), stdin=subprocess.DEVNULL,
              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = queue.Queue()

    def drain():
        for line in p.stdout:
            lines.put(line.rstrip("\n"))
        lines.put(None)

    threading.Thread(target=drain, daemon=True).start()
    err_chunks = []
    threading.Thread(target=lambda: err_chunks.append(p.stderr.read()), daemon=True).start()
    s0 = s1 = None
    result = None
    hard_deadline = time.monotonic() + secs + warmup + 60
    try:
        while True:
            try:
                line = lines.get(timeout=max(0.1, hard_deadline - time.monotonic()))
            except queue.Empty:
                raise RuntimeError(f"loadgen did not finish in time ({mode} on {server.name})")
            if line is None:
                break
            if line == "@measure-start":
                s0 = Sample(server.proc.pid, p.pid)
            elif line == "@measure-end":
                s1 = Sample(server.proc.pid, p.pid)
            elif line.startswith("mode="):
                result = dict(RESULT_RE.findall(line))
        p.wait(timeout=10)
    finally:
        stop(p)
    stderr = "".join(err_chunks).strip()
    if result is None:
        raise RuntimeError(f"loadgen printed no result (exit {p.returncode}): {stderr}")
    if p.returncode == 2:
        raise RuntimeError(f"loadgen failed against {server.name}: {stderr}")
    if not measure:
        return None
    msgs = int(result["msgs"])
    r = {
        "msgs": msgs,
        "secs": float(result["secs"]),
        "rate": float(result["msgs_per_s"]),
        "p50_us": float(result["p50_us"]),
        "p90_us": float(result["p90_us"]),
        "p99_us": float(result["p99_us"]),
        "p999_us": float(result["p999_us"]),
        "max_us": float(result["max_us"]),
        "errors": int(result["errors"]),
        "note": stderr.splitlines()[0] if stderr else "",
    }
    r.update(cpu_figures(s0, s1, msgs))
    return r


WRK_RATE = re.compile(r"Requests/sec:\s+([\d.]+)")
WRK_TOTAL = re.compile(r"(\d+) requests in ([\d.]+)(\w+),")
WRK_PCT = re.compile(r"^\s+(50|75|90|99)%\s+([\d.]+)(us|ms|s)\s*$", re.M)
WRK_ERR = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")
WRK_NON2XX = re.compile(r"Non-2xx or 3xx responses: (\d+)")


def to_us(value, unit):
    return float(value) * {"us": 1, "ms": 1e3, "s": 1e6}[unit]


def run_wrk(args, server, port, secs, measure=True, depth=1):
    url = f"http://127.0.0.1:{port}/plaintext"
    secs = max(1, int(round(secs)))  # wrk takes whole seconds
    cmd = ["wrk", "-t1", f"-c{args.http_conns}", f"-d{secs}s", "--latency"]
    if depth > 1:  # HTTP/1.1 pipelining: `depth` requests per write, every response counted
        cmd += ["-s", os.path.join(HERE, "pipeline.lua"), url, "--", str(depth)]
    else:
        cmd += [url]
    if args.pin:
        cmd = ["taskset", "-c", args.client_cpu] + cmd
    p = spawn(" ".join(shlex.quote(c) for c in cmd), stdin=subprocess.DEVNULL,
              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    s0 = Sample(server.proc.pid, p.pid)
    s1 = None
    try:
        # sample just before wrk ends (its pid is gone once it has been waited for)
        try:
            p.wait(timeout=secs - 0.1)
        except subprocess.TimeoutExpired:
            s1 = Sample(server.proc.pid, p.pid)
        out, _ = p.communicate(timeout=secs + 30)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"wrk did not finish in time against {server.name}")
    finally:
        stop(p)
    if not measure:
        return None
    m = WRK_RATE.search(out)
    total = WRK_TOTAL.search(out)
    if not m or not total:
        raise RuntimeError(f"wrk gave no result against {server.name}:\n{out}")
    reqs = int(total.group(1))
    pct = {int(k): to_us(v, u) for k, v, u in WRK_PCT.findall(out)}
    errs = WRK_ERR.search(out)
    non2xx = WRK_NON2XX.search(out)
    errors = (sum(int(x) for x in errs.groups()) if errs else 0) + (int(non2xx.group(1)) if non2xx else 0)
    r = {
        "msgs": reqs,
        "secs": float(total.group(2)) * (60 if total.group(3) == "m" else 1),
        "rate": float(m.group(1)),
        "p50_us": pct.get(50), "p90_us": pct.get(90), "p99_us": pct.get(99),
        "p999_us": None, "max_us": None,
        "errors": errors, "note": "",
    }
    # CPU over [wrk start, 0.1 s before its end], per request at wrk's rate over that window
    if s1 is not None:
        r.update(cpu_figures(s0, s1, int(round(r["rate"] * (s1.t - s0.t)))))
    return r


# ------------------------------------------------------------------------------ runner

def command_for(args, name, kind, port):
    spec = args.server_specs[name].get(kind)
    if not spec:
        return None
    fields = {
        "java": shlex.quote(args.java), "jvm_opts": args.jvm_opts,
        "peers_jar": shlex.quote(PEERS_JAR), "quiesce_cp": shlex.quote(quiesce_classpath()),
        "c_echo": shlex.quote(os.path.join(HERE, "build", "echo_server")),
        "port": port, "threads": args.threads,
    }
    cmd = spec.format(**fields)
    if args.pin:
        cmd = f"taskset -c {args.server_cpu} {cmd}"
    return cmd


def start_server(args, name, kind, log):
    port = free_port(args.base_port)
    cmd = command_for(args, name, kind, port)
    srv = Server(name, cmd)
    if srv.wait_ready(port):
        return srv, port, None
    srv.stop()
    exited = srv.proc.returncode is not None and not srv.killed
    why = (f"it exited with status {srv.proc.returncode} before it was ready" if exited
           else f"it did not print 'listening on' nor accept on port {port} within {READY_TIMEOUT:.0f} s")
    log(f"  SKIP {name} ({kind}): {why}.\n    command: {short_cmd(cmd)}\n{srv.output()}")
    return None, port, why


def short_cmd(cmd):
    """The command with a long class path abbreviated."""
    def abbreviate(m):
        cp = m.group(2)
        n = cp.count(":") + 1
        return m.group(1) + (cp if len(cp) < 160 else f"{cp.split(':')[0]}:...({n} entries)")
    return re.sub(r"(-cp\s+)(\S+)", abbreviate, cmd)


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def run(args):
    rows = []          # one dict per measured run
    skipped = {}       # (name, kind) -> reason
    started = time.monotonic()
    deadline = started + args.max_minutes * 60
    log_lines = []

    def log(msg):
        print(msg, flush=True)
        log_lines.append(msg)

    names = list(args.servers)
    for rnd in range(args.rounds):
        order = names[rnd % len(names):] + names[:rnd % len(names)]
        log(f"round {rnd + 1}/{args.rounds}: {' '.join(order)}")
        for name in order:
            for kind in ("echo", "http"):
                if kind == "echo" and not args.modes:
                    continue
                if kind == "http" and (args.no_http or not args.server_specs[name].get("http")):
                    continue
                if (name, kind) in skipped:
                    continue
                if time.monotonic() > deadline:
                    log(f"  time budget of {args.max_minutes} min used up: stopping here")
                    return rows, skipped, log_lines
                srv, port, why = start_server(args, name, kind, log)
                if srv is None:
                    skipped[(name, kind)] = why
                    continue
                try:
                    if kind == "echo":
                        # JIT / page-cache warmup on the busiest path, not measured
                        if args.warmup > 0:
                            run_loadgen(args, srv, port, "pipeline", args.warmup, 0, measure=False)
                        for mode in args.modes:
                            r = run_loadgen(args, srv, port, mode, args.secs, args.mode_warmup)
                            r.update(server=name, mode=mode, round=rnd + 1)
                            rows.append(r)
                            log(f"  {name:8s} {mode:8s} {r['rate']:>12,.0f} msgs/s  p50 {r['p50_us']:8.1f} us"
                                f"  p99 {r['p99_us']:8.1f} us  cpu {fmt(r['cpu_us_per_msg'], 2)} us/msg"
                                f"  cores: server {fmt(r['server_cores'], 2)} client {fmt(r['client_cores'], 2)}"
                                f" other {fmt(r['other_cores'], 2)}  errors {r['errors']}")
                    else:
                        if args.warmup > 0:
                            run_wrk(args, srv, port, max(1, args.warmup), measure=False)
                        for mode in http_modes(args):
                            depth = args.http_depth if mode == "http-pipeline" else 1
                            r = run_wrk(args, srv, port, args.secs, depth=depth)
                            r.update(server=name, mode=mode, round=rnd + 1)
                            rows.append(r)
                            log(f"  {name:8s} {mode:13s} {r['rate']:>12,.0f} req/s   p50 {fmt(r['p50_us'], 1):>8s} us"
                                f"  p99 {fmt(r['p99_us'], 1):>8s} us  cpu {fmt(r['cpu_us_per_msg'], 2)} us/req"
                                f"  cores: server {fmt(r['server_cores'], 2)} client {fmt(r['client_cores'], 2)}"
                                f" other {fmt(r['other_cores'], 2)}  errors {r['errors']}")
                    if srv.proc.poll() is not None:
                        log(f"  WARNING {name} ({kind}) exited during the run:\n{srv.output()}")
                except RuntimeError as e:
                    log(f"  FAILED {name} ({kind}): {e}")
                    if srv.proc.poll() is not None:
                        log(f"    the server exited (status {srv.proc.returncode}):\n{srv.output()}")
                finally:
                    srv.stop()
    log(f"done in {time.monotonic() - started:.0f} s")
    return rows, skipped, log_lines


def http_modes(args):
    """The wrk phases: keep-alive ("http"), then pipelined when --http-depth > 1."""
    if args.no_http:
        return []
    return ["http"] + (["http-pipeline"] if args.http_depth > 1 else [])


# ------------------------------------------------------------------------------ report

def fmt(x, digits=0):
    if x is None:
        return "—"
    return f"{x:,.{digits}f}"


def summarize(rows, names, mode):
    out = []
    for name in names:
        rs = [r for r in rows if r["server"] == name and r["mode"] == mode]
        if not rs:
            continue
        out.append({
            "server": name,
            "runs": len(rs),
            "median": median([r["rate"] for r in rs]),
            "best": max(r["rate"] for r in rs),
            "p50": median([r["p50_us"] for r in rs]),
            "p99": median([r["p99_us"] for r in rs]),
            "cpu": median([r["cpu_us_per_msg"] for r in rs]),
            "cores": median([r["server_cores"] for r in rs]),
            "client": median([r["client_cores"] for r in rs]),
            "other": median([r["other_cores"] for r in rs]),
            "errors": sum(r["errors"] for r in rs),
        })
    return out


# Issue 6's targets: (mode, what, reference server, comparison, goal). "rate" compares median
# msgs/s, "cpu" CPU µs/msg (lower is better), "p50" median round-trip latency (lower is better).
TARGETS = [
    ("pingpong", "rate", "netty", ">=", 1.05), ("pingpong", "rate", "c", ">=", 1.00),
    ("pipeline", "rate", "netty", ">=", 1.05), ("pipeline", "rate", "c", ">=", 1.00),
    ("pingpong", "cpu", "netty", "<=", 1.00), ("pipeline", "cpu", "netty", "<=", 1.00),
    ("single", "p50", "netty", "<=", 1.00), ("http", "rate", "netty", ">=", 1.10),
    ("http", "rate", "netty", ">=", 1.05), ("http-pipeline", "rate", "nio", ">=", 1.00),
    ("http-pipeline", "cpu", "nio", "<=", 1.00),
]


def targets_section(rows, args):
    """The targets table: Quiesce's figure over the reference's, met or missed, from this run."""
    key = {"rate": "median", "cpu": "cpu", "p50": "p50"}
    label = {"rate": "msgs/s (median)", "cpu": "CPU µs/msg", "p50": "p50 µs"}
    out = ["## Targets (issue 6), from this run\n",
           "| mode | figure | Quiesce | reference | ratio | target | result |", "|---|---|---:|---:|---:|---:|---|"]
    for mode, what, ref, op, goal in TARGETS:
        summary = {s["server"]: s for s in summarize(rows, ["quiesce", ref], mode)}
        q, r = summary.get("quiesce"), summary.get(ref)
        if not q or not r or not r[key[what]]:
            out.append(f"| {mode} | {label[what]} | — | — | — | {op} {goal:.2f}× {ref} | not run |")
            continue
        value = q[key[what]] / r[key[what]]
        met = value >= goal if op == ">=" else value <= goal
        by = "" if met else f" by {abs(value - goal):.2f}"
        d = {"rate": 0, "cpu": 2, "p50": 1}[what]
        out.append(f"| {mode} | {label[what]} | {fmt(q[key[what]], d)} | {fmt(r[key[what]], d)} ({ref}) "
                   f"| {value:.2f}× | {op} {goal:.2f}× | {'met' if met else 'missed' + by} |")
    out.append("\nAllocation per echo message is measured by JMH, not here: "
               "`make bench ARGS='-prof gc EchoBench'`.\n")
    return out


def ratio(summary, row, ref):
    base = next((s for s in summary if s["server"] == ref), None)
    if base is None or not base["median"] or row["median"] is None:
        return "—"
    return f"{row['median'] / base['median']:.2f}×"


def machine_info(args):
    model = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        jv = subprocess.run([args.java, "-version"], capture_output=True, text=True, timeout=30).stderr
        jv = jv.splitlines()[0] if jv else "?"
    except Exception:
        jv = "?"
    return {"cpus": os.cpu_count(), "model": model, "kernel": platform.release(), "java": jv}


def write_tsv(path, rows):
    cols = ["round", "server", "mode", "rate", "msgs", "secs", "p50_us", "p90_us", "p99_us",
            "p999_us", "max_us", "cpu_us_per_msg", "server_cores", "client_cores", "other_cores",
            "errors", "note"]
    with open(path, "w") as f:
        f.write("\t".join(cols) + "\n")
        for r in rows:
            vals = []
            for c in cols:
                v = r.get(c)
                if v is None:
                    vals.append("")
                elif isinstance(v, float):
                    vals.append(f"{v:.4g}" if c.startswith(("cpu", "server_", "client_", "other_"))
                                else f"{v:.1f}")
                else:
                    vals.append(str(v).replace("\t", " "))
            f.write("\t".join(vals) + "\n")


def charts(out_stem, rows, names, modes):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import matplotlib.ticker
    except ImportError:
        return []
    files = []
    for mode in modes:
        summary = summarize(rows, names, mode)
        if not summary:
            continue
        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.8))
        labels = [s["server"] for s in summary]
        ax1.bar(labels, [s["median"] for s in summary], color="#4878a8")
        ax1.scatter(labels, [s["best"] for s in summary], color="black", marker="_", s=400, label="best")
        ax1.set_title(f"{mode}: {'requests' if mode.startswith('http') else 'messages'}/s (median, best)")
        ax1.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:,.0f}"))
        ax1.legend(loc="lower right")
        ax2.bar(labels, [s["cpu"] or 0 for s in summary], color="#a86448")
        ax2.set_title(f"{mode}: server CPU µs per {'request' if mode.startswith('http') else 'message'}")
        fig.tight_layout()
        path = f"{out_stem}-{mode}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        files.append(path)
    return files


def write_report(args, rows, skipped, info, elapsed):
    out = os.path.abspath(args.out)
    os.makedirs(os.path.dirname(out), exist_ok=True)
    stem = os.path.splitext(out)[0]
    tsv = stem + ".tsv"
    write_tsv(tsv, rows)
    modes = list(args.modes) + http_modes(args)
    pngs = charts(stem, rows, args.servers, modes)
    rel = lambda p: os.path.relpath(p, os.path.dirname(out))

    L = []
    L.append("# Quiesce benchmarks: echo and HTTP against Netty, NIO and C\n")
    L.append(f"Generated by `bench/compare.py` on {datetime.now(timezone.utc):%Y-%m-%d %H:%M UTC} "
             f"in {elapsed / 60:.1f} min. Raw runs: [{rel(tsv)}]({rel(tsv)}).\n")
    L.append("| setting | value |\n|---|---|")
    L.append(f"| machine | {info['cpus']} CPUs, {info['model']}, Linux {info['kernel']} |")
    L.append(f"| JVM | {info['java']} (`{args.jvm_opts}`) |")
    L.append(f"| rounds | {args.rounds}, server order rotated every round |")
    L.append(f"| per run | {args.warmup:g} s pipeline warmup per server start, then per mode "
             f"{args.mode_warmup:g} s warmup + {args.secs:g} s measured |")
    L.append(f"| echo load | `loadgen` (C, epoll, {args.client_threads} thread(s)), {args.conns} connections, "
             f"{args.size}-byte messages, pipeline depth {args.depth} |")
    if not args.no_http:
        L.append(f"| HTTP load | `wrk -t1 -c{args.http_conns} -d{args.secs:g}s --latency /plaintext` "
                 f"after a {max(1, args.warmup):g} s wrk warmup"
                 + (f"; then the same with `-s pipeline.lua -- {args.http_depth}`" if args.http_depth > 1 else "")
                 + " |")
    L.append(f"| server threads | {args.threads} |")
    L.append(f"| pinning | " + (f"server on CPU {args.server_cpu}, client on CPU {args.client_cpu} (taskset)"
                                 if args.pin else "none: server and client share all CPUs") + " |")
    L.append("")
    L.append("How to read: *msgs/s* is the median over rounds (best in the next column); ratios "
             "divide medians. Latency is per message, send to complete echo, as the client sees it "
             "(median of the per-round percentiles). *CPU µs/msg* is the server process's user + "
             "system time over the measured window (every thread: event loops, GC, JIT) divided by "
             "the messages completed in it; *cores* is that CPU time over wall time. Client and "
             "server share the machine, so on a small box the client's own cost limits the rates; "
             "CPU µs/msg is the figure that compares servers best. *client cores* is the load "
             "generator's CPU over the same window (near 1.0: the client, not the server, set the "
             "rate); *other cores* is whatever else the machine was busy with meanwhile (other "
             "processes, stray softirq work): well above 0 means the run was disturbed.\n")
    others = [r["other_cores"] for r in rows if r.get("other_cores") is not None]
    if others and max(others) > 0.25:
        L.append(f"**Noisy machine:** other work used up to {max(others):.2f} cores during the measured "
                 f"windows (median {statistics.median(others):.2f}); treat differences below ~20 % "
                 f"as noise and rerun on a quiet machine.\n")
    titles = {
        "pingpong": "pingpong: one message in flight per connection",
        "pipeline": f"pipeline: {args.depth} messages in flight per connection",
        "short": "short: connect, one message, close (msgs/s = connections/s)",
        "single": "single: one connection, one message in flight (round-trip latency)",
        "http": "HTTP/1.1 plaintext, keep-alive (wrk; msgs/s = requests/s)",
        "http-pipeline": f"HTTP/1.1 plaintext, {args.http_depth} requests pipelined per connection "
                         "(wrk + pipeline.lua; msgs/s = requests/s)",
    }
    for mode in modes:
        summary = summarize(rows, args.servers, mode)
        L.append(f"## {titles[mode]}\n")
        if not summary:
            L.append("No results.\n")
            continue
        L.append("| server | msgs/s (median) | best | vs Netty | vs C | p50 µs | p99 µs | CPU µs/msg "
                 "| server cores | client cores | other cores | errors | runs |")
        L.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for s in summary:
            L.append(f"| {s['server']} | {fmt(s['median'])} | {fmt(s['best'])} | {ratio(summary, s, 'netty')} "
                     f"| {ratio(summary, s, 'c')} | {fmt(s['p50'], 1)} | {fmt(s['p99'], 1)} "
                     f"| {fmt(s['cpu'], 2)} | {fmt(s['cores'], 2)} | {fmt(s['client'], 2)} "
                     f"| {fmt(s['other'], 2)} | {s['errors']} | {s['runs']} |")
        png = f"{stem}-{mode}.png"
        if png in pngs:
            L.append(f"\n![{mode}]({rel(png)})")
        L.append("")
    L.extend(targets_section(rows, args))
    if skipped:
        L.append("## Skipped\n")
        for (name, kind), why in skipped.items():
            L.append(f"- {name} ({kind}): {why}; the runner's output shows its command and messages")
        L.append("")
    L.append("Reproduce: `make -C bench compare ROUNDS=%d SECS=%g%s`.\n"
             % (args.rounds, args.secs, " PIN=1" if args.pin else ""))
    with open(out, "w") as f:
        f.write("\n".join(L))
    return out, tsv, pngs


# ------------------------------------------------------------------------------ main

def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--servers", default=DEFAULT_ORDER,
                    help="comma-separated servers to compare (built in: quiesce, netty, nio, c; "
                         "more with --config)")
    ap.add_argument("--config", help="JSON file {name: {\"echo\": cmd, \"http\": cmd|null}} adding or "
                                     "replacing servers; cmd placeholders: {java} {jvm_opts} {peers_jar} "
                                     "{quiesce_cp} {c_echo} {port} {threads}")
    ap.add_argument("--quiesce-cmd", help="command template for the Quiesce echo server")
    ap.add_argument("--quiesce-http-cmd", help="command template for the Quiesce HTTP server ('' = none)")
    ap.add_argument("--java", default=os.environ.get("JAVA_HOME", "/usr/lib/jvm/temurin-25-jdk-amd64")
                    + "/bin/java", help="JDK 25 java for the Java servers")
    ap.add_argument("--jvm-opts", default=DEFAULT_JVM_OPTS, help="extra JVM options for every Java server")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--secs", type=float, default=5, help="measured seconds per mode (max 120)")
    ap.add_argument("--warmup", type=float, default=2, help="warmup seconds after each server start")
    ap.add_argument("--mode-warmup", type=float, default=1, help="warmup seconds before each measured mode")
    ap.add_argument("--modes", default=",".join(MODES), help="echo modes to run ('' = none)")
    ap.add_argument("--no-http", action="store_true", help="skip the wrk HTTP phase")
    ap.add_argument("--threads", type=int, help="server threads (default 2; 1 with --pin)")
    ap.add_argument("--client-threads", type=int, default=1, help="loadgen threads")
    ap.add_argument("--conns", type=int, default=50)
    ap.add_argument("--http-conns", type=int, default=50)
    ap.add_argument("--http-depth", type=int, default=16,
                    help="requests pipelined per connection in the http-pipeline phase (<= 1: skip it)")
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--depth", type=int, default=16, help="pipeline depth")
    ap.add_argument("--pin", action="store_true", help="server on --server-cpu, client on --client-cpu")
    ap.add_argument("--server-cpu", default="0")
    ap.add_argument("--client-cpu", default="1")
    ap.add_argument("--base-port", type=int, default=19300)
    ap.add_argument("--max-minutes", type=float, default=15,
                    help="hard time budget; the run stops (and still reports) when it is used up")
    ap.add_argument("--out", default=os.path.join(ROOT, "docs", "benchmarks.md"))
    args = ap.parse_args()

    if not 0 < args.secs <= 120:
        ap.error("--secs must be in (0, 120]")
    if not 0 <= args.warmup <= 60 or not 0 <= args.mode_warmup <= 60:
        ap.error("warmups must be in [0, 60]")
    if not 1 <= args.rounds <= 20:
        ap.error("--rounds must be 1..20")
    args.modes = [m for m in args.modes.split(",") if m]
    for m in args.modes:
        if m not in MODES:
            ap.error(f"unknown mode {m}")
    if args.threads is None:
        args.threads = 1 if args.pin else 2

    specs = {k: dict(v) for k, v in BUILTIN_SERVERS.items()}
    if args.config:
        with open(args.config) as f:
            for name, spec in json.load(f).items():
                specs[name] = {"echo": spec.get("echo"), "http": spec.get("http")}
    if args.quiesce_cmd:
        specs["quiesce"]["echo"] = args.quiesce_cmd
    if args.quiesce_http_cmd is not None:
        specs["quiesce"]["http"] = args.quiesce_http_cmd or None
    args.server_specs = specs
    args.servers = [s for s in args.servers.split(",") if s]
    for s in args.servers:
        if s not in specs:
            ap.error(f"unknown server {s} (known: {', '.join(specs)})")
    if not args.servers:
        ap.error("no servers")
    return args


def preflight(args):
    problems = []
    if not os.access(LOADGEN, os.X_OK):
        problems.append(f"{LOADGEN} is missing: run `make -C bench c`")
    uses = " ".join(str(args.server_specs[n].get(k) or "") for n in args.servers for k in ("echo", "http"))
    if "{peers_jar}" in uses and not os.path.exists(PEERS_JAR):
        problems.append(f"{PEERS_JAR} is missing: run `make -C bench java`")
    if "{java}" in uses and not os.access(args.java, os.X_OK):
        problems.append(f"no java at {args.java}: pass --java or set JAVA_HOME to a JDK 25")
    if not args.no_http and not any(os.access(os.path.join(d, "wrk"), os.X_OK)
                                    for d in os.environ.get("PATH", "").split(":")):
        problems.append("wrk is not on PATH (apt-get install wrk) or pass --no-http")
    if args.pin and (os.cpu_count() or 1) < 2:
        problems.append("--pin needs at least 2 CPUs")
    if problems:
        for p in problems:
            print("compare: " + p, file=sys.stderr)
        sys.exit(2)


def estimate_seconds(args):
    per_echo = 1.5 + args.warmup + len(args.modes) * (args.mode_warmup + args.secs + 0.5)
    per_http = 1.5 + max(1, args.warmup) + (args.secs + 1) * len(http_modes(args))
    total = 0
    for n in args.servers:
        if args.modes:
            total += per_echo
        if not args.no_http and args.server_specs[n].get("http"):
            total += per_http
    return total * args.rounds


def main():
    args = parse_args()
    preflight(args)

    def on_signal(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_signal)
    est = estimate_seconds(args)
    print(f"compare: {len(args.servers)} servers x {args.rounds} rounds, modes {','.join(args.modes) or '-'}"
          f"{'' if args.no_http else ' + http'}; about {est / 60:.1f} min "
          f"(budget {args.max_minutes:g} min)", flush=True)
    info = machine_info(args)
    started = time.monotonic()
    rows, skipped = [], {}
    try:
        rows, skipped, _ = run(args)
    except KeyboardInterrupt:
        print("\ncompare: interrupted; stopping every process started here", file=sys.stderr)
        stop_all()
        sys.exit(130)
    finally:
        stop_all()
    out, tsv, pngs = write_report(args, rows, skipped, info, time.monotonic() - started)
    print(f"compare: wrote {out}\ncompare: wrote {tsv}")
    for p in pngs:
        print(f"compare: wrote {p}")
    if not pngs:
        print("compare: no charts (matplotlib not importable; `make -C bench bench-deps` installs it)")
    failed = any(r["errors"] for r in rows)
    sys.exit(1 if failed or not rows else 0)


if __name__ == "__main__":
    main()
