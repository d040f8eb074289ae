#!/bin/bash
# Syscalls per short connection on the echo server: builds shortconn.c, starts the echo server
# (2 reactors), warms it up with 20,000 connections, then attaches `strace -f -c` to every thread
# for 2 s of idle (the background) and for 1,000 connections (connect, 64-byte echo, close).
# usage: [IO=epoll|batch] [PORT=7207] [MODE=half] scripts/syscount/run.sh [CONCURRENCY]
# MODE=half: each client shuts down writing right after its 64 bytes (data and FIN in one edge).   (run `make build` first; needs gcc and strace)
set -euo pipefail
cd "$(dirname "$0")/../.."
CONC=${1:-1}
J=$(./scripts/find-jdk)/bin/java
CP="target/classes:target/test-classes:$(cat target/classpath.txt)"
PORT=${PORT:-7207}
T=$(mktemp -d /tmp/quiesce-syscount.XXXXXX)
trap 'rm -rf $T' EXIT
gcc -O2 -pthread -o $T/shortconn scripts/syscount/shortconn.c
$J --enable-native-access=ALL-UNNAMED -cp "$CP" io.quiesce.examples.EchoServer --port $PORT --threads 2 ${IO:+--io $IO} >/dev/null 2>&1 &
P=$!
trap 'kill $P 2>/dev/null; rm -rf $T' EXIT
for _ in $(seq 150); do (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break; sleep 0.1; done # up to 15 s to start
$T/shortconn $PORT 20000 "$CONC" ${MODE:-} >/dev/null
sleep 1
ARGS=$(for t in /proc/$P/task/*; do echo -n "-p ${t##*/} "; done)
strace -f -c -o $T/idle.txt $ARGS 2>/dev/null & S=$!; sleep 2; kill -INT $S; wait $S || true
strace -f -c -o $T/run.txt $ARGS 2>/dev/null & S=$!; sleep 1
$T/shortconn $PORT 1000 "$CONC" ${MODE:-}
sleep 0.5; kill -INT $S; wait $S || true
echo "== idle, 2 s"; cat $T/idle.txt
echo "== 1,000 short connections, $CONC at a time${MODE:+, $MODE}"; cat $T/run.txt
# The calls the per-connection figure counts (the wait, accept4, epoll_ctl, read, sendto, close), per connection.
echo "== per connection (calls / 1000; errors in brackets)"
awk '$NF ~ /^(accept4|epoll_pwait2|epoll_wait|io_uring_enter|epoll_ctl|read|sendto|close)$/ {
        e = NF >= 6 ? $5 : 0; printf "%s %.3f [%d]\n", $NF, $4 / 1000, e; t += $4 }
     END { printf "total %.3f\n", t / 1000 }' $T/run.txt
