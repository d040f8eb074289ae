# Quiesce — the user's entry point. `make test` is the project's test command.
# Every target finds a JDK >= 25 by itself: $JAVA_HOME if new enough, else /usr/lib/jvm/*.

SHELL := /bin/bash
export JAVA_HOME := $(shell ./scripts/find-jdk)
ifeq ($(strip $(JAVA_HOME)),)
  $(error Quiesce needs JDK 25 or newer; see the message above)
endif

JAVA      := $(JAVA_HOME)/bin/java
MVN       := ./mvnw -B --no-transfer-progress
# The one flag Quiesce needs: its classes (on the class path here) may call native code.
JVM_OPTS  := --enable-native-access=ALL-UNNAMED
CP_FILE   := target/classpath.txt
RUN_CP     = target/classes:target/test-classes:$$(cat $(CP_FILE))

# Demo / example knobs
PORT    ?=
THREADS ?=
# IO=epoll (default), IO=batch (interest changes and the wait in one io_uring_enter) or
# IO=uring (the io_uring transport: accept, receive and send as io_uring ops)
IO      ?=
# JMH: every benchmark class carries bounded defaults in its annotations (1 fork, 3 x 1 s
# warmup, 5 x 1 s measurement); ARGS adds JMH options and a name filter, e.g.
# make bench ARGS='-f 1 -wi 2 -prof gc Syscall'. Results: target/jmh-result.json.
ARGS ?=
# make stress: close-race torture size, seconds of seeded random schedule after it, and its seed
# (empty: a fresh one; the line printed ends with seed=S, and STRESS_SEED=S replays that run's rounds)
CLOSES ?= 100000
STRESS_SECS ?= 30
STRESS_SEED ?=
# then the network random schedule (real TCP, every backend): seconds per backend (0: one round)
# and the backends; STRESS_SEED=S replays its rounds too
NET_SECS ?= 10
NET_IO ?= epoll,batch,uring

.PHONY: help test test-batch run bench bindings stress echo demo compare syscalls clean build mutation

help:
	@echo "make test      unit and integration tests (real sockets, real fds)"
	@echo "make run       the HTTP/1.1 example on 127.0.0.1:8080 (PORT=, THREADS=, IO=epoll|batch|uring)"
	@echo "make echo      the echo server on 127.0.0.1:7007 (PORT=, THREADS=, IO=epoll|batch|uring)"
	@echo "make demo      the syscall-layer demo"
	@echo "make bench     JMH micro-benchmarks (ARGS='-f 1 Syscall' to choose)"
	@echo "make stress    close-race torture + random schedule + network schedule (CLOSES=$(CLOSES) STRESS_SECS=$(STRESS_SECS) NET_SECS=$(NET_SECS) NET_IO=$(NET_IO) STRESS_SEED=)"
	@echo "make mutation  PIT mutation testing of io.quiesce.reactor (minutes; report in target/pit-reports)"
	@echo "make compare   side-by-side benchmark vs Netty (epoll, io_uring), NIO and C (ROUNDS= SECS= PIN=1 SERVERS=)"
	@echo "make syscalls  syscalls per echoed message of each server (SECS= SERVERS= SYSCALL_TOOL=perf|strace)"
	@echo "make bindings  regenerate generated/ with an installed jextract (JEXTRACT=...)"

test:
	$(MVN) test

# The reactor and net suites on the io_uring batch backend alone (make test runs them on both).
test-batch:
	$(MVN) test -Dquiesce.io=batch -Dtest='io.quiesce.reactor.**.*Test,io.quiesce.net.**.*Test' -Dsurefire.failIfNoSpecifiedTests=false

build: $(CP_FILE)
	$(MVN) -q test-compile

$(CP_FILE): pom.xml
	$(MVN) -q dependency:build-classpath -Dmdep.includeScope=test -Dmdep.outputFile=$(CP_FILE)

EXAMPLE_ARGS = $(if $(PORT),--port $(PORT)) $(if $(THREADS),--threads $(THREADS)) $(if $(IO),--io $(IO))

# A server stopped by Ctrl-C or SIGTERM exits 130 or 143 after its clean shutdown: not an error.
STOPPED_OK = s=$$?; [ $$s -eq 0 ] || [ $$s -eq 130 ] || [ $$s -eq 143 ]

run: build
	@$(JAVA) $(JVM_OPTS) -cp $(RUN_CP) io.quiesce.examples.HttpServer $(EXAMPLE_ARGS); $(STOPPED_OK)

echo: build
	@$(JAVA) $(JVM_OPTS) -cp $(RUN_CP) io.quiesce.examples.EchoServer $(EXAMPLE_ARGS); $(STOPPED_OK)

demo: build
	$(JAVA) $(JVM_OPTS) -cp $(RUN_CP) io.quiesce.examples.Demo

bench: build
	$(JAVA) $(JVM_OPTS) -cp $(RUN_CP) org.openjdk.jmh.Main -rf json -rff target/jmh-result.json $(ARGS)

stress: build
	@s=0; \
	$(JAVA) $(JVM_OPTS) -ea -cp $(RUN_CP) io.quiesce.reactor.CloseRaceStress "$(CLOSES)" "$(STRESS_SECS)" "$(STRESS_SEED)" || s=1; \
	$(JAVA) $(JVM_OPTS) -ea -cp $(RUN_CP) io.quiesce.net.NetScheduleStress "$(NET_SECS)" "$(STRESS_SEED)" "$(NET_IO)" || s=1; \
	exit $$s

# PIT on io.quiesce.reactor.* with the reactor tests (profile "mutation" in pom.xml: 2 threads,
# stress-tagged tests excluded). Report: target/pit-reports/index.html and mutations.xml.
mutation:
	$(MVN) -P mutation test-compile org.pitest:pitest-maven:mutationCoverage

# Side-by-side load against Netty epoll, JDK NIO and a C epoll server; writes docs/benchmarks.md.
# Knobs: ROUNDS=3 SECS=5 PIN=1 (server on CPU 0, client on CPU 1) MODES=... HTTP=0; see bench/README.md.
compare: build
	$(MAKE) -C bench compare

# Syscalls per echoed message of every server (bench/README.md; bounded: SECS per server)
syscalls: build
	$(MAKE) -C bench syscalls

# Regenerates the bindings from generated/quiesce_linux.h and generated/includes.txt.
# Needs jextract installed (on PATH or JEXTRACT=/path/to/jextract); never builds it.
JEXTRACT ?= $(shell command -v jextract 2>/dev/null)
bindings:
	@if [ -z "$(JEXTRACT)" ] || ! [ -x "$(JEXTRACT)" ]; then \
	  echo "make bindings needs jextract (https://github.com/openjdk/jextract), built for JDK 25:"; \
	  echo "  put it on PATH or run: make bindings JEXTRACT=/path/to/bin/jextract"; exit 1; fi
	rm -rf generated/src
	cd generated && "$(JEXTRACT)" --output src -t io.quiesce.sys.linux \
	  --header-class-name LinuxH @includes.txt quiesce_linux.h
	@echo "generated/src regenerated; 'git status generated' shows any difference."

clean:
	$(MVN) -q clean
