#!/bin/bash
# Syscalls per short connection on the echo server: builds shortconn.c, starts the echo server
# (2 reactors), warms it up with 20,000 connections, then attaches `strace -f -c` to every thread
# for 2 s of idle (the background) and for 1,000 connections (connect, 64-byte echo, close).
# usage: [IO=epoll|batch] scripts/syscount/run.sh [CONCURRENCY]   (run `make build` first; needs gcc and strace)
set -euo pipefail
cd "$(dirname "$0")/../.."
CONC=${1:-1}
gcc -O2 -pthread -o /tmp/quiesce-shortconn scripts/syscount/shortconn.c
J=$(./scripts/find-jdk)/bin/java
CP="target/classes:target/test-classes:$(cat target/classpath.txt)"
PORT=7207
$J --enable-native-access=ALL-UNNAMED -cp "$CP" io.quiesce.examples.EchoServer --port $PORT --threads 2 ${IO:+--io $IO} >/dev/null 2>&1 &
P=$!
trap 'kill $P 2>/dev/null' EXIT
sleep 1.5
/tmp/quiesce-shortconn $PORT 20000 "$CONC" >/dev/null
sleep 1
ARGS=$(for t in /proc/$P/task/*; do echo -n "-p ${t##*/} "; done)
strace -f -c -o /tmp/quiesce-st-idle.txt $ARGS 2>/dev/null & S=$!; sleep 2; kill -INT $S; wait $S || true
strace -f -c -o /tmp/quiesce-st.txt $ARGS 2>/dev/null & S=$!; sleep 1
/tmp/quiesce-shortconn $PORT 1000 "$CONC"
sleep 0.5; kill -INT $S; wait $S || true
echo "== idle, 2 s"; cat /tmp/quiesce-st-idle.txt
echo "== 1,000 short connections, $CONC at a time"; cat /tmp/quiesce-st.txt
