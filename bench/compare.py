#!/usr/bin/env python3
"""Side-by-side echo / HTTP benchmark of Quiesce against Netty, plain NIO and C.

(With --syscalls it instead counts each server's system calls per echoed message; see
syscalls_main.)

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
# "requires": "io_uring" makes the runner check, once the server is up, that the process holds
# an io_uring instance (a server that quietly fell back to epoll would otherwise be measured
# under the wrong name). "fallback" is a regular expression: a server printing a matching line
# is reported as fallen back and not measured. Both are optional in --config entries.
DEFAULT_JVM_OPTS = "-Xms512m -Xmx512m"
NETTY_JVM = "--enable-native-access=ALL-UNNAMED --sun-misc-unsafe-memory-access=allow"
QUIESCE_ECHO = ("{java} --enable-native-access=ALL-UNNAMED {jvm_opts} -cp {quiesce_cp} "
                "io.quiesce.examples.EchoServer --port {port} --threads {threads}")
QUIESCE_HTTP = ("{java} --enable-native-access=ALL-UNNAMED {jvm_opts} -cp {quiesce_cp} "
                "io.quiesce.examples.HttpServer --port {port} --threads {threads}")
NETTY_ECHO = ("{java} " + NETTY_JVM + " {jvm_opts} -cp {peers_jar} "
              "io.quiesce.bench.netty.NettyEchoServer --port {port} --threads {threads}")
NETTY_HTTP = ("{java} " + NETTY_JVM + " {jvm_opts} -cp {peers_jar} "
              "io.quiesce.bench.netty.NettyHttpServer --port {port} --threads {threads}")
# Quiesce logs one line when the backend it was asked for is not available and it uses another
# ("io_uring batch backend unavailable (...); reactors use plain epoll"). A line that says
# something is unavailable or falls back *and* names epoll or batch counts; a degraded piece
# that keeps the backend ("multishot receive unavailable, single-shot receives") does not.
QUIESCE_FALLBACK = r"(?i)\b(unavailable|not available|not supported|falls? back|falling back|fallback)\b.*\b(epoll|batch)\b"

BUILTIN_SERVERS = {
    "quiesce": {"echo": QUIESCE_ECHO + " --io epoll", "http": QUIESCE_HTTP + " --io epoll"},
    "quiesce-batch": {"echo": QUIESCE_ECHO + " --io batch", "http": QUIESCE_HTTP + " --io batch",
                      "requires": "io_uring", "fallback": QUIESCE_FALLBACK},
    "quiesce-uring": {"echo": QUIESCE_ECHO + " --io uring", "http": QUIESCE_HTTP + " --io uring",
                      "requires": "io_uring", "fallback": QUIESCE_FALLBACK},
    "netty": {"echo": NETTY_ECHO + " --transport epoll", "http": NETTY_HTTP + " --transport epoll"},
    "netty-uring": {"echo": NETTY_ECHO + " --transport io_uring", "http": NETTY_HTTP + " --transport io_uring",
                    "requires": "io_uring"},
    "nio": {
        "echo": "{java} {jvm_opts} -cp {peers_jar} "
                "io.quiesce.bench.nio.NioEchoServer --port {port} --threads {threads}",
        "http": "{java} {jvm_opts} -cp {peers_jar} "
                "io.quiesce.bench.nio.NioHttpServer --port {port} --threads {threads}",
    },
    "c": {"echo": "{c_echo} -p {port} -t {threads}", "http": None},
}
DEFAULT_ORDER = "quiesce,quiesce-batch,quiesce-uring,netty,netty-uring,nio,c"
# What each built-in name is, for --help and the report.
SERVER_NOTES = {
    "quiesce": "Quiesce, epoll backend (`--io epoll`, the default)",
    "quiesce-batch": "Quiesce, interest changes + wait in one io_uring_enter (`--io batch`)",
    "quiesce-uring": "Quiesce, io_uring transport (`--io uring`)",
    "netty": "Netty 4.2 native epoll (`--transport epoll`)",
    "netty-uring": "Netty 4.2 native io_uring (`--transport io_uring`)",
    "nio": "plain JDK NIO, a selector per thread",
    "c": "C, epoll, edge-triggered (`bench/c/echo_server.c`)",
}


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


# HotSpot names its JIT compiler threads "C1 CompilerThread<n>" / "C2 CompilerThread<n>"; the
# kernel keeps the first 15 bytes of a thread's name.
JIT_THREAD_PREFIXES = ("C1 CompilerThre", "C2 CompilerThre")


def jit_ticks(pid):
    """utime + stime in clock ticks of the process's JIT compiler threads (0 for a non-JVM)."""
    total = 0
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return None
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                stat = f.read()
        except OSError:
            continue  # the thread ended meanwhile
        if stat[stat.index("(") + 1:stat.rindex(")")].startswith(JIT_THREAD_PREFIXES):
            fields = stat[stat.rindex(")") + 2:].split()
            total += int(fields[11]) + int(fields[12])
    return total


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
        self.jit = jit_ticks(server_pid)
        self.client = cpu_ticks(client_pid)
        self.machine = machine_busy_ticks()


def cpu_figures(a, b, count):
    """cpu_us_per_msg, server_cores, jit_cores, client_cores, other_cores between samples a and b."""
    out = {"cpu_us_per_msg": None, "server_cores": None, "jit_cores": None, "client_cores": None,
           "other_cores": None}
    if a is None or b is None or b.t <= a.t or a.server is None or b.server is None:
        return out
    wall = b.t - a.t
    server = (b.server - a.server) / CLK_TCK
    out["server_cores"] = server / wall
    if a.jit is not None and b.jit is not None:
        out["jit_cores"] = (b.jit - a.jit) / CLK_TCK / wall  # part of server_cores
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


def run_loadgen(args, server, port, mode, secs, warmup, measure=True, ctl=None):
    """Runs loadgen once; returns a dict of its result line plus server CPU figures.

    ctl, if given, is (ctl_fd, ack_fd) of a `perf stat --control`: loadgen switches the counters
    on and off itself around its window (-C) and the result has "ctl" (its ctl_* fields)."""
    conns = 1 if mode == "single" else args.conns
    cmd = [LOADGEN, "-p", str(port), "-m", LOADGEN_MODE.get(mode, mode), "-c", str(conns), "-s", str(args.size),
           "-d", f"{secs:g}", "-w", f"{warmup:g}", "-q", str(args.depth), "-t", str(args.client_threads),
           "-M"]
    if ctl:
        cmd += ["-C", f"{ctl[0]},{ctl[1]}"]
    if args.pin:
        cmd = ["taskset", "-c", args.client_cpu] + cmd
    p = spawn(" ".join(shlex.quote(c) for c in cmd), stdin=subprocess.DEVNULL,
              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, pass_fds=tuple(ctl or ()))
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
    if ctl:
        if "ctl_msgs" not in result:
            raise RuntimeError("loadgen printed no ctl_msgs (an old build/loadgen? run `make -C bench c`)")
        r["ctl"] = {k: int(result[k]) for k in ("ctl_msgs", "ctl_uncertain", "ctl_late")}
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
    said = telling_line(srv.lines)
    if said:
        why += f" (it said: {said})"
    log(f"  SKIP {name} ({kind}): {why}.\n    command: {short_cmd(cmd)}\n{srv.output()}")
    return None, port, why


def telling_line(lines):
    """The line of a failed server's output that says why: an exception or error, else its last."""
    lines = [l.strip() for l in lines if l.strip()]
    for l in lines:
        if re.search(r"Exception|Error|error:|usage:|unknown|refuse", l):
            return l[:240]
    return lines[-1][:240] if lines else ""


def io_uring_fds(pid):
    """How many io_uring instances the process holds (fds that are anon_inode:[io_uring])."""
    n = 0
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return 0
    for fd in fds:
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") == "anon_inode:[io_uring]":
                n += 1
        except OSError:
            pass
    return n


def backend_problem(args, name, srv):
    """Why a started server is not what its name says (fell back, no io_uring), or None."""
    spec = args.server_specs[name]
    pattern = spec.get("fallback")
    if pattern:
        for line in list(srv.lines):
            if re.search(pattern, line):
                return f"fell back: {line.strip()[:240]}"
    if spec.get("requires") == "io_uring" and srv.proc.poll() is None and io_uring_fds(srv.proc.pid) == 0:
        return "holds no io_uring instance (it runs on something else)"
    return None


def short_cmd(cmd):
    """The command with a long class path abbreviated."""
    def abbreviate(m):
        cp = m.group(2)
        n = cp.count(":") + 1
        return m.group(1) + (cp if len(cp) < 160 else f"{cp.split(':')[0]}:...({n} entries)")
    return re.sub(r"(-cp\s+)(\S+)", abbreviate, cmd)


class Unmeasured(Exception):
    """A started server that is not what its name says (it fell back to another backend)."""


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
                phase_rows = []
                try:
                    if kind == "echo":
                        # JIT / page-cache warmup on the busiest path, not measured
                        if args.warmup > 0:
                            run_loadgen(args, srv, port, "pipeline", args.warmup, 0, measure=False)
                            settle(args, srv, lambda s: run_loadgen(args, srv, port, "pipeline", s, 0,
                                                                    measure=False), log)
                        else:
                            time.sleep(0.3)  # let a fallback line reach us
                        why = backend_problem(args, name, srv)
                        if why:
                            raise Unmeasured(why)
                        for mode in args.modes:
                            r = run_loadgen(args, srv, port, mode, args.secs, args.mode_warmup)
                            r.update(server=name, mode=mode, round=rnd + 1)
                            phase_rows.append(r)
                            log(f"  {name:13s} {mode:13s} {r['rate']:>12,.0f} msgs/s  p50 {r['p50_us']:8.1f} us"
                                f"  p99 {r['p99_us']:8.1f} us  cpu {fmt(r['cpu_us_per_msg'], 2)} us/msg"
                                f"  cores: server {fmt(r['server_cores'], 2)} (jit {fmt(r['jit_cores'], 2)})"
                                f" client {fmt(r['client_cores'], 2)}"
                                f" other {fmt(r['other_cores'], 2)}  errors {r['errors']}")
                    else:
                        if args.warmup > 0:
                            run_wrk(args, srv, port, max(1, args.warmup), measure=False)
                            settle(args, srv, lambda s: run_wrk(args, srv, port, s, measure=False), log)
                        else:
                            time.sleep(0.3)
                        why = backend_problem(args, name, srv)
                        if why:
                            raise Unmeasured(why)
                        for mode in http_modes(args):
                            depth = args.http_depth if mode == "http-pipeline" else 1
                            r = run_wrk(args, srv, port, args.secs, depth=depth)
                            r.update(server=name, mode=mode, round=rnd + 1)
                            phase_rows.append(r)
                            log(f"  {name:13s} {mode:13s} {r['rate']:>12,.0f} req/s   p50 {fmt(r['p50_us'], 1):>8s} us"
                                f"  p99 {fmt(r['p99_us'], 1):>8s} us  cpu {fmt(r['cpu_us_per_msg'], 2)} us/req"
                                f"  cores: server {fmt(r['server_cores'], 2)} (jit {fmt(r['jit_cores'], 2)})"
                                f" client {fmt(r['client_cores'], 2)}"
                                f" other {fmt(r['other_cores'], 2)}  errors {r['errors']}")
                    why = backend_problem(args, name, srv)  # a late fallback voids the phase
                    if why:
                        raise Unmeasured(why)
                    rows.extend(phase_rows)
                    if srv.proc.poll() is not None:
                        log(f"  WARNING {name} ({kind}) exited during the run:\n{srv.output()}")
                except Unmeasured as e:
                    log(f"  SKIP {name} ({kind}): {e}; not measured under this name"
                        + (f" ({len(phase_rows)} runs of this round dropped)" if phase_rows else "")
                        + f"\n    command: {short_cmd(srv.cmd)}\n{srv.output()}")
                    skipped[(name, kind)] = str(e)
                except RuntimeError as e:
                    rows.extend(phase_rows)
                    log(f"  FAILED {name} ({kind}): {e}")
                    if srv.proc.poll() is not None:
                        log(f"    the server exited (status {srv.proc.returncode}):\n{srv.output()}")
                finally:
                    srv.stop()
    log(f"done in {time.monotonic() - started:.0f} s")
    return rows, skipped, log_lines


def settle(args, srv, warm, log):
    """
    After the fixed warmup, more warmup in 1 s slices while the server's JIT compiler threads
    were busier than --settle-jit cores in the last slice, for at most --settle seconds. A JVM
    pinned with its compiler threads to one CPU otherwise spends the first measured window
    compiling on the event loop's core: measured on the HTTP examples (fresh JVM, 2 s of wrk),
    0.3 to 3.8 us/request of C2 time inside the window, varying run to run by more than the
    difference between two backends. A non-JVM server has no compiler threads: no extra warmup.
    """
    extra = 0
    while extra < args.settle:
        t0, j0 = time.monotonic(), jit_ticks(srv.proc.pid)
        warm(1)
        t1, j1 = time.monotonic(), jit_ticks(srv.proc.pid)
        extra += 1
        if j0 is None or j1 is None or (j1 - j0) / CLK_TCK / max(t1 - t0, 1e-3) <= args.settle_jit:
            break
    if extra > 1:
        log(f"  {srv.name}: {extra} s more warmup while its JIT compiled")
    return extra


def http_modes(args):
    """The wrk phases: keep-alive ("http"), then pipelined when --http-depth > 1."""
    if args.no_http:
        return []
    return ["http"] + (["http-pipeline"] if args.http_depth > 1 else [])


# ------------------------------------------------------------------------------ report

def md_cell(text):
    """Text that stays inside one Markdown table cell."""
    return str(text).replace("|", "\\|").replace("\n", " ")


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


# Targets: (issue, mode, what, subject, reference, comparison, goal). "rate" compares median
# msgs/s, "cpu" CPU µs/msg (lower is better), "p50" median round-trip latency (lower is better).
# Issue 6: Quiesce (epoll) against Netty epoll, C and NIO. Issue 14: the batch backend must not
# lose to plain epoll anywhere beyond noise. Issue 15: the io_uring transport ahead of Netty's.
ALL_MODES = ("pingpong", "pipeline", "short", "single", "http", "http-pipeline")
TARGETS = [
    (6, "pingpong", "rate", "quiesce", "netty", ">=", 1.05), (6, "pingpong", "rate", "quiesce", "c", ">=", 1.00),
    (6, "pipeline", "rate", "quiesce", "netty", ">=", 1.05), (6, "pipeline", "rate", "quiesce", "c", ">=", 1.00),
    (6, "pingpong", "cpu", "quiesce", "netty", "<=", 1.00), (6, "pipeline", "cpu", "quiesce", "netty", "<=", 1.00),
    (6, "single", "p50", "quiesce", "netty", "<=", 1.00), (6, "http", "rate", "quiesce", "netty", ">=", 1.10),
    (6, "http", "rate", "quiesce", "netty", ">=", 1.05), (6, "http-pipeline", "rate", "quiesce", "nio", ">=", 1.00),
    (6, "http-pipeline", "cpu", "quiesce", "nio", "<=", 1.00),
] + [(14, m, "rate", "quiesce-batch", "quiesce", ">=", 1.00) for m in ALL_MODES] + [
    (15, "pingpong", "rate", "quiesce-uring", "netty-uring", ">=", 1.05),
    (15, "pipeline", "rate", "quiesce-uring", "netty-uring", ">=", 1.05),
] + [(15, m, "rate", "quiesce-uring", "quiesce", ">=", 1.00) for m in ALL_MODES]

# Ratio tables: (subject, reference), each per round (both measured in the same round), reported
# as the median with the spread (min–max) across rounds.
RATIOS = [("quiesce-uring", "netty-uring"), ("quiesce-batch", "quiesce"), ("quiesce-uring", "quiesce"),
          ("quiesce", "netty"), ("netty-uring", "netty")]
RATIO_KEY = {"rate": "rate", "cpu": "cpu_us_per_msg", "p50": "p50_us"}


def round_ratios(rows, subject, ref, mode, what="rate"):
    """subject / reference of one figure, one value per round in which both were measured."""
    key = RATIO_KEY[what]
    by_round = {}
    for r in rows:
        if r["mode"] == mode and r["server"] in (subject, ref) and r.get(key) is not None:
            by_round.setdefault(r["round"], {})[r["server"]] = r[key]
    return [v[subject] / v[ref] for _, v in sorted(by_round.items())
            if subject in v and ref in v and v[ref]]


def spread(values):
    """'1.03× (0.98–1.07, 3 rounds)', or '—'."""
    if not values:
        return "—"
    if len(values) == 1:
        return f"{values[0]:.2f}× (1 round)"
    return f"{statistics.median(values):.2f}× ({min(values):.2f}–{max(values):.2f}, {len(values)} rounds)"


def ratios_section(rows, args):
    modes = list(args.modes) + http_modes(args)
    pairs = [(a, b) for a, b in RATIOS if a in args.servers and b in args.servers]
    if not pairs:
        return []
    out = ["## Ratios per round, with their spread\n",
           "Each cell is the subject's figure over the reference's *in the same round* (the two ran "
           "minutes apart, under the same conditions), as the median over rounds with the lowest and "
           "highest round in brackets. A spread that straddles 1.00 is a tie within this run's noise.\n"]
    for what, title in (("rate", "msgs/s (higher is better)"), ("cpu", "server CPU µs/msg (lower is better)")):
        out.append(f"**{title}**\n")
        out.append("| mode | " + " | ".join(f"{a} / {b}" for a, b in pairs) + " |")
        out.append("|---|" + "---:|" * len(pairs))
        for mode in modes:
            out.append(f"| {mode} | " + " | ".join(spread(round_ratios(rows, a, b, mode, what)) for a, b in pairs) + " |")
        out.append("")
    return out


def targets_section(rows, args):
    """The targets table: subject's figure over the reference's, met or missed, from this run."""
    key = {"rate": "median", "cpu": "cpu", "p50": "p50"}
    label = {"rate": "msgs/s (median)", "cpu": "CPU µs/msg", "p50": "p50 µs"}
    modes = set(args.modes) | set(http_modes(args))
    out = ["## Targets, from this run\n",
           "*ratio* divides the medians over rounds; *per round* is the same ratio round by round "
           "(median, lowest–highest). A target is *met* when the ratio of medians reaches it; "
           "*within noise* when it does not but the best round does.\n",
           "| issue | mode | figure | subject | reference | ratio | per round | target | result |",
           "|---:|---|---|---:|---:|---:|---:|---:|---|"]
    for issue, mode, what, subj, ref, op, goal in TARGETS:
        if mode not in modes or subj not in args.servers or ref not in args.servers:
            continue
        summary = {s["server"]: s for s in summarize(rows, [subj, ref], mode)}
        q, r = summary.get(subj), summary.get(ref)
        if not q or not r or not r[key[what]] or q[key[what]] is None:
            missing = subj if not q else ref
            out.append(f"| {issue} | {mode} | {label[what]} | — | — | — | — | {op} {goal:.2f}× {ref} "
                       f"| not run ({missing} has no result) |")
            continue
        value = q[key[what]] / r[key[what]]
        met = value >= goal if op == ">=" else value <= goal
        per_round = round_ratios(rows, subj, ref, mode, what)
        best = (max(per_round) if op == ">=" else min(per_round)) if per_round else None
        if met:
            result = "met"
        elif best is not None and (best >= goal if op == ">=" else best <= goal):
            result = f"within noise (missed by {abs(value - goal):.2f})"
        else:
            result = f"missed by {abs(value - goal):.2f}"
        d = {"rate": 0, "cpu": 2, "p50": 1}[what]
        out.append(f"| {issue} | {mode} | {label[what]} | {fmt(q[key[what]], d)} ({subj}) "
                   f"| {fmt(r[key[what]], d)} ({ref}) | {value:.2f}× | {spread(per_round)} "
                   f"| {op} {goal:.2f}× | {result} |")
    if len(out) == 4:
        out.append("| — | — | — | — | — | — | — | — | no target names two of these servers |")
    out.append("\nAllocation per echo message is measured by JMH, not here: "
               "`make bench ARGS='-prof gc EchoBench'`. Syscalls per message: `make -C bench syscalls` "
               "(`docs/profile.md`).\n")
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
            "p999_us", "max_us", "cpu_us_per_msg", "server_cores", "jit_cores", "client_cores", "other_cores",
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
                    vals.append(f"{v:.4g}" if c.startswith(("cpu", "server_", "jit_", "client_", "other_"))
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
        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
        labels = [s["server"] for s in summary]
        ax1.bar(labels, [s["median"] for s in summary], color="#4878a8")
        ax1.scatter(labels, [s["best"] for s in summary], color="black", marker="_", s=400, label="best")
        ax1.set_title(f"{mode}: {'requests' if mode.startswith('http') else 'messages'}/s (median, best)")
        ax1.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:,.0f}"))
        ax1.legend(loc="lower right")
        ax2.bar(labels, [s["cpu"] or 0 for s in summary], color="#a86448")
        ax2.set_title(f"{mode}: server CPU µs per {'request' if mode.startswith('http') else 'message'}")
        for ax in (ax1, ax2):  # seven names of up to 13 letters do not fit side by side
            ax.tick_params(axis="x", labelrotation=30)
            for label in ax.get_xticklabels():
                label.set_horizontalalignment("right")
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
    L.append("| servers | " + "; ".join(f"**{n}**: {SERVER_NOTES.get(n, 'from --config')}" for n in args.servers) + " |")
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
        L.append("| server | msgs/s (median) | best | vs netty | vs netty-uring | vs c | p50 µs | p99 µs "
                 "| CPU µs/msg | server cores | client cores | other cores | errors | runs |")
        L.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        measured = {s["server"] for s in summary}
        for s in summary:
            L.append(f"| {s['server']} | {fmt(s['median'])} | {fmt(s['best'])} | {ratio(summary, s, 'netty')} "
                     f"| {ratio(summary, s, 'netty-uring')} | {ratio(summary, s, 'c')} "
                     f"| {fmt(s['p50'], 1)} | {fmt(s['p99'], 1)} "
                     f"| {fmt(s['cpu'], 2)} | {fmt(s['cores'], 2)} | {fmt(s['client'], 2)} "
                     f"| {fmt(s['other'], 2)} | {s['errors']} | {s['runs']} |")
        kind = "http" if mode.startswith("http") else "echo"
        for name in args.servers:
            if name not in measured and (name, kind) in skipped:
                L.append(f"| {name} | not measured: {md_cell(skipped[(name, kind)])} |" + " |" * 12)
        png = f"{stem}-{mode}.png"
        if png in pngs:
            L.append(f"\n![{mode}]({rel(png)})")
        L.append("")
    L.extend(ratios_section(rows, args))
    L.extend(targets_section(rows, args))
    if skipped:
        L.append("## Not measured\n")
        for (name, kind), why in skipped.items():
            L.append(f"- {name} ({kind}): {why}; the runner's output shows its command and messages")
        L.append("")
    servers = ",".join(args.servers)
    knobs = "" if servers == DEFAULT_ORDER else f" SERVERS={servers}"
    if list(args.modes) != list(MODES):
        knobs += " MODES=" + ",".join(args.modes)
    if args.no_http:
        knobs += " HTTP=0"
    elif args.http_depth != 16:
        knobs += f" HTTP_DEPTH={args.http_depth}"
    if out != os.path.abspath(os.path.join(ROOT, "docs", "benchmarks.md")):
        knobs += " OUT=" + os.path.relpath(out, os.path.join(ROOT, "bench"))
    L.append("Reproduce: `make -C bench compare ROUNDS=%d SECS=%g%s%s`.\n"
             % (args.rounds, args.secs, " PIN=1" if args.pin else "", knobs))
    with open(out, "w") as f:
        f.write("\n".join(L))
    return out, tsv, pngs


# ------------------------------------------------------------------------------ syscalls per message

# The system calls an echo server makes per message, by family. Everything else is "other".
SYSCALL_GROUPS = [
    ("recv", ("read", "readv", "recvfrom", "recvmsg", "recvmmsg")),
    ("send", ("write", "writev", "sendto", "sendmsg", "sendmmsg")),
    ("epoll wait", ("epoll_wait", "epoll_pwait", "epoll_pwait2")),
    ("epoll_ctl", ("epoll_ctl",)),
    ("io_uring_enter", ("io_uring_enter",)),
    ("futex", ("futex", "futex_wait", "futex_wake")),
]
TRACEFS = "/sys/kernel/tracing/events"


def which(tool):
    return next((os.path.join(d, tool) for d in os.environ.get("PATH", "").split(":")
                 if os.access(os.path.join(d, tool), os.X_OK)), None)


def perf_counts_syscalls():
    """True if `perf stat` can count the raw_syscalls tracepoint here (root or a low paranoid)."""
    if not which("perf"):
        return False
    try:
        r = subprocess.run(["perf", "stat", "-x,", "-e", "raw_syscalls:sys_enter", "true"],
                           capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return r.returncode == 0 and re.search(r"^\d+,[^,]*,raw_syscalls:sys_enter", r.stderr, re.M) is not None


def syscall_tool(args):
    if args.syscall_tool == "perf" or (args.syscall_tool == "auto" and perf_counts_syscalls()):
        return "perf"
    if which("strace"):
        return "strace"
    return None


class PerfCounter:
    """`perf stat` on every thread of a process, counting raw_syscalls:sys_enter and the
    per-syscall tracepoints of SYSCALL_GROUPS that this kernel has. It starts disabled; loadgen
    (-C, the --control fifos' fds inherited) enables it when its measured window opens and
    disables it 0.25 s before the window closes, and reports the messages completed meanwhile,
    so neither this runner's nor perf's scheduling can shift the count against the messages."""

    def __init__(self, pid, tmp):
        self.out = os.path.join(tmp, "perf.csv")
        self.ctl_path, ack_path = os.path.join(tmp, "ctl"), os.path.join(tmp, "ack")
        os.mkfifo(self.ctl_path)
        os.mkfifo(ack_path)
        names = [n for _, ns in SYSCALL_GROUPS for n in ns]
        if os.path.isdir(os.path.join(TRACEFS, "syscalls")):
            names = [n for n in names if os.path.isdir(os.path.join(TRACEFS, "syscalls", "sys_enter_" + n))]
        events = ["raw_syscalls:sys_enter"] + ["syscalls:sys_enter_" + n for n in names]
        cmd = ["perf", "stat", "-x,", "-o", self.out, "-D", "-1", "--control",
               f"fifo:{self.ctl_path},{ack_path}", "-p", str(pid)]
        for e in events:
            cmd += ["-e", e]
        self.proc = spawn(" ".join(shlex.quote(c) for c in cmd), stdin=subprocess.DEVNULL,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 20
        self.ctl = None
        while self.ctl is None:  # perf opens the fifo once its counters are attached
            try:
                self.ctl = os.open(self.ctl_path, os.O_WRONLY | os.O_NONBLOCK)
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    err = self.proc.stderr.read() if self.proc.poll() is not None else "timed out"
                    stop(self.proc)
                    raise RuntimeError(f"perf stat did not start: {err.strip()[:300]}")
                time.sleep(0.05)
        # perf's open of its ack end waits for a reader; loadgen reads the acks through this fd
        self.ack = os.open(ack_path, os.O_RDONLY | os.O_NONBLOCK)

    def fds(self):
        """(ctl, ack) for loadgen -C: it writes enable/disable itself, exactly at its window."""
        return self.ctl, self.ack

    def finish(self):
        """Stops perf; returns {syscall name or 'total': count}."""
        try:
            os.killpg(self.proc.pid, signal.SIGINT)
        except ProcessLookupError:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        stop(self.proc)
        os.close(self.ctl)
        os.close(self.ack)
        counts = {}
        with open(self.out) as f:
            for line in f:
                parts = line.strip().split(",")
                if len(parts) < 3 or not parts[0].isdigit():
                    continue
                event = parts[2]
                name = "total" if event == "raw_syscalls:sys_enter" else event.rsplit("sys_enter_", 1)[-1]
                counts[name] = int(parts[0])
        if "total" not in counts:
            raise RuntimeError("perf stat gave no count")
        return counts


class StraceCounter:
    """`strace -f -c` attached to every thread of a process. It cannot be switched on and off, so
    it counts from attach to detach: the caller runs loadgen without warmup inside that span."""

    def __init__(self, pid, tmp):
        self.out = os.path.join(tmp, "strace.txt")
        tids = sorted(os.listdir(f"/proc/{pid}/task"), key=int)
        cmd = ["strace", "-f", "-c", "-o", self.out] + [a for t in tids for a in ("-p", t)]
        self.proc = spawn(" ".join(shlex.quote(c) for c in cmd), stdin=subprocess.DEVNULL,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while not self._attached(pid):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                stop(self.proc)
                raise RuntimeError("strace could not attach (ptrace not permitted?)")
            time.sleep(0.05)
        time.sleep(0.5)

    @staticmethod
    def _attached(pid):
        try:
            with open(f"/proc/{pid}/status") as f:
                return any(l.startswith("TracerPid:") and l.split()[1] != "0" for l in f)
        except OSError:
            return False

    def finish(self):
        time.sleep(0.3)
        try:
            os.killpg(self.proc.pid, signal.SIGINT)
        except ProcessLookupError:
            pass
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            pass
        stop(self.proc)
        counts = {}
        with open(self.out) as f:
            for line in f:
                parts = line.split()
                # % time, seconds, usecs/call, calls, [errors], syscall
                if len(parts) >= 5 and parts[-1] != "syscall" and parts[3].isdigit():
                    counts["total" if parts[-1] == "total" else parts[-1]] = int(parts[3])
        if "total" not in counts:
            raise RuntimeError("strace gave no summary")
        return counts


def count_one(args, name, tool, log):
    """Starts one server, warms it up, counts its syscalls over a pingpong window. A dict or None."""
    import tempfile
    srv, port, why = start_server(args, name, "echo", log)
    if srv is None:
        return {"server": name, "skipped": why}
    tmp = tempfile.mkdtemp(prefix="quiesce-syscalls-")
    counter = None
    try:
        if args.warmup > 0:
            run_loadgen(args, srv, port, "pipeline", args.warmup, 0, measure=False)
        else:
            time.sleep(0.3)
        why = backend_problem(args, name, srv)
        if why:
            log(f"  SKIP {name}: {why}; not counted under this name\n{srv.output()}")
            return {"server": name, "skipped": why}
        counter = (PerfCounter if tool == "perf" else StraceCounter)(srv.proc.pid, tmp)
        uncertain = 0
        if tool == "perf":
            r = run_loadgen(args, srv, port, args.syscall_mode, args.secs, args.mode_warmup, ctl=counter.fds())
            if r["ctl"]["ctl_late"]:
                raise RuntimeError("loadgen switched the counters off after its window had closed "
                                   "(the machine is too busy to count)")
            msgs, uncertain = r["ctl"]["ctl_msgs"], r["ctl"]["ctl_uncertain"]
        else:
            r = run_loadgen(args, srv, port, args.syscall_mode, args.secs, 0)
            msgs = r["msgs"]
        counts = counter.finish()
        counter = None
        why = backend_problem(args, name, srv)
        if why:
            log(f"  SKIP {name}: {why}; not counted under this name")
            return {"server": name, "skipped": why}
        if msgs <= 0:
            raise RuntimeError("no messages in the counted span")
        return {"server": name, "msgs": msgs, "uncertain": uncertain, "rate": r["rate"], "errors": r["errors"],
                "counts": counts}
    except RuntimeError as e:
        log(f"  FAILED {name}: {e}")
        return {"server": name, "skipped": f"failed: {e}"}
    finally:
        if counter is not None:
            try:
                counter.finish()
            except Exception:
                pass
        srv.stop()
        import shutil
        shutil.rmtree(tmp, ignore_errors=True)


def syscall_rows(result):
    """Per-message figures of one counted run: total, the groups, other, and the top syscalls."""
    counts, msgs = result["counts"], result["msgs"]
    per = {"total": counts["total"] / msgs}
    grouped = 0
    for group, names in SYSCALL_GROUPS:
        c = sum(counts.get(n, 0) for n in names)
        grouped += c
        per[group] = c / msgs
    per["other"] = max(0, counts["total"] - grouped) / msgs
    top = sorted(((c, n) for n, c in counts.items() if n != "total"), reverse=True)[:6]
    per["top"] = ", ".join(f"{n} {c / msgs:.3f}" for c, n in top if c / msgs >= 0.0005)
    return per


def syscalls_report(args, tool, results, info):
    how = ("`perf stat -e raw_syscalls:sys_enter` (and the per-syscall tracepoints), switched on and off by "
           "loadgen itself (`-C`) at its measured window, which counts the messages echoed meanwhile"
           if tool == "perf" else
           "`strace -f -c` on every server thread, from attach to detach (a few connection set-up calls included)")
    L = [f"Syscalls per echoed message: `{args.syscall_mode}`, {args.conns} connections, {args.size}-byte "
         f"messages, {args.secs:g} s counted per server after a {args.warmup:g} s pipeline warmup; "
         f"server threads {args.threads}{', server and client pinned' if args.pin else ''}; "
         f"counted with {how}; "
         f"{info['cpus']} CPUs, Linux {info['kernel']}, {datetime.now(timezone.utc):%Y-%m-%d %H:%M UTC}.\n",
         "| server | msgs counted (±) | msgs/s under the counter | syscalls/msg | recv | send | epoll wait "
         "| epoll_ctl | io_uring_enter | futex | other | largest |",
         "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for res in results:
        if "skipped" in res:
            L.append(f"| {res['server']} | not counted: {md_cell(res['skipped'])} |" + " |" * 10)
            continue
        per = syscall_rows(res)
        cells = " | ".join(f"{per[g]:.3f}" for g, _ in SYSCALL_GROUPS)
        L.append(f"| {res['server']} | {res['msgs']:,} (±{res.get('uncertain', 0):,}) | {res['rate']:,.0f} | **{per['total']:.3f}** | {cells} "
                 f"| {per['other']:.3f} | {per['top']} |")
    L.append("")
    if tool == "strace":
        L.append("strace stops the server at every system call, so *msgs/s under the counter* is far below "
                 "its real rate: the counts per message are what this measures, not speed.\n")
    else:
        L.append("perf counts tracepoints in the kernel without stopping the server; the rate under the "
                 "counter is still lower than in `make compare`, so read the counts, not the speed.\n")
    return L


def syscalls_main(args):
    tool = syscall_tool(args)
    if tool is None:
        print("compare: neither a working `perf stat -e raw_syscalls:sys_enter` nor strace; "
              "`make -C bench syscall-deps` installs them", file=sys.stderr)
        sys.exit(2)
    print(f"compare: syscalls per message with {tool}, {len(args.servers)} servers x {args.rounds} round(s), "
          f"{args.syscall_mode} {args.conns} conns {args.size} B, {args.secs:g} s each", flush=True)
    info = machine_info(args)
    results = []
    log = lambda m: print(m, flush=True)
    try:
        for rnd in range(args.rounds):
            order = args.servers[rnd % len(args.servers):] + args.servers[:rnd % len(args.servers)]
            for name in order:
                res = count_one(args, name, tool, log)
                res["round"] = rnd + 1
                results.append(res)
                if "skipped" not in res:
                    per = syscall_rows(res)
                    log(f"  {name:13s} {res['msgs']:>10,} msgs  {per['total']:.3f} syscalls/msg  ({per['top']})")
    except KeyboardInterrupt:
        print("\ncompare: interrupted; stopping every process started here", file=sys.stderr)
        stop_all()
        sys.exit(130)
    finally:
        stop_all()
    # one line per server: the round with the median total (a count, so rounds differ little)
    merged = []
    for name in args.servers:
        rs = [r for r in results if r["server"] == name and "skipped" not in r]
        if rs:
            rs.sort(key=lambda r: r["counts"]["total"] / r["msgs"])
            merged.append(rs[len(rs) // 2])
        else:
            merged.append(next(r for r in results if r["server"] == name))
    report = syscalls_report(args, tool, merged, info)
    print("\n".join(report))
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w") as f:
            f.write("\n".join(report))
        print(f"compare: wrote {args.out}")
    sys.exit(0 if any("skipped" not in r for r in merged) else 1)


# ------------------------------------------------------------------------------ main

def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--servers", default=DEFAULT_ORDER,
                    help="comma-separated servers to compare (built in: "
                         + "; ".join(f"{k}: {v}" for k, v in SERVER_NOTES.items()) + "; more with --config)")
    ap.add_argument("--config", help="JSON file {name: {\"echo\": cmd, \"http\": cmd|null, \"requires\": "
                                     "\"io_uring\"?, \"fallback\": regex?}} adding or "
                                     "replacing servers; cmd placeholders: {java} {jvm_opts} {peers_jar} "
                                     "{quiesce_cp} {c_echo} {port} {threads}")
    ap.add_argument("--quiesce-cmd", help="command template for the Quiesce echo server")
    ap.add_argument("--quiesce-http-cmd", help="command template for the Quiesce HTTP server ('' = none)")
    ap.add_argument("--java", default=os.environ.get("JAVA_HOME", "/usr/lib/jvm/temurin-25-jdk-amd64")
                    + "/bin/java", help="JDK 25 java for the Java servers")
    ap.add_argument("--jvm-opts", default=DEFAULT_JVM_OPTS, help="extra JVM options for every Java server")
    ap.add_argument("--rounds", type=int, help="rounds, server order rotated each (default 3; --syscalls: 1)")
    ap.add_argument("--secs", type=float, default=5, help="measured seconds per mode (max 120)")
    ap.add_argument("--warmup", type=float, default=2, help="warmup seconds after each server start")
    ap.add_argument("--settle", type=float, default=15,
                    help="at most this many more warmup seconds while the server's JIT compiler threads are busy")
    ap.add_argument("--settle-jit", type=float, default=0.02,
                    help="JIT compiler cores (over a 1 s warmup slice) below which the server counts as warm")
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
    ap.add_argument("--max-minutes", type=float, default=30,
                    help="hard time budget; the run stops (and still reports) when it is used up")
    ap.add_argument("--out", help="the Markdown report (default docs/benchmarks.md; with --syscalls: "
                                  "stdout only unless given)")
    ap.add_argument("--syscalls", action="store_true",
                    help="instead of the benchmark: count each server's system calls per echoed message "
                         "(perf stat or strace attached to the server, one loadgen run per server)")
    ap.add_argument("--syscall-tool", choices=("auto", "perf", "strace"), default="auto",
                    help="--syscalls counter: perf if it can count raw_syscalls:sys_enter here, else strace")
    ap.add_argument("--syscall-mode", default="pingpong", choices=("pingpong", "pipeline", "single"),
                    help="--syscalls: the loadgen mode counted")
    args = ap.parse_args()
    if args.out is None and not args.syscalls:
        args.out = os.path.join(ROOT, "docs", "benchmarks.md")

    if not 0 < args.secs <= 120:
        ap.error("--secs must be in (0, 120]")
    if not 0 <= args.warmup <= 60 or not 0 <= args.mode_warmup <= 60:
        ap.error("warmups must be in [0, 60]")
    if not 0 <= args.settle <= 60 or not 0 <= args.settle_jit <= 1:
        ap.error("--settle must be in [0, 60] and --settle-jit in [0, 1]")
    if args.rounds is None:
        args.rounds = 1 if args.syscalls else 3
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
                specs[name] = {k: spec.get(k) for k in ("echo", "http", "requires", "fallback")}
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
    if args.syscalls:
        args.no_http = True
        args.modes = []
    preflight(args)
    if args.syscalls:
        syscalls_main(args)

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
