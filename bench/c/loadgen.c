/*
 * loadgen.c - closed-loop TCP echo load client for the Quiesce benchmark suite.
 *
 * Connects to 127.0.0.1 only. Each client thread (-t, default 1) owns one epoll instance
 * and a share of the connections (-c, default 50). Modes (-m):
 *
 *   pingpong  one message in flight per connection: send, wait for the full echo, repeat
 *   pipeline  -q messages in flight per connection (default 16); every completed echo is
 *             replaced by a new message at once
 *   short     per iteration: connect, send one message, read its echo, close; counts
 *             connections per second (each slot of -c runs its own loop)
 *
 * Every message is -s bytes (default 64, at least 8): an 8-byte header carrying the
 * connection number and the message sequence number, then a body taken from a fixed
 * pseudo-random pattern at an offset that depends on both. Every echoed byte is compared
 * with what was sent; the first difference stops the program with exit status 2.
 *
 * Latency is measured per message from just before the write that sent it to the read that
 * completed its echo (short mode: from connect() to the end of the echo) and recorded, in
 * nanoseconds, in a log-bucketed histogram (128 sub-buckets per power of two, < 0.8 %
 * error; percentiles are reported as the upper edge of their bucket).
 *
 * After -w seconds of warmup (not counted) and -d seconds of measurement (max 120), prints
 * one line:
 *   mode=pingpong conns=50 size=64 secs=10.00 msgs=N msgs_per_s=X p50_us=.. p90_us=..
 *   p99_us=.. p999_us=.. max_us=.. errors=0 depth=1 threads=1
 * With -M, "@measure-start" and "@measure-end" lines mark the measured window as it opens
 * and closes, so that a runner can sample the server's CPU time around it.
 * With -C CTL,ACK (two inherited file descriptors: `perf stat --control fd:CTL,ACK`), loadgen
 * itself writes "enable" when the window opens and "disable" shortly before it closes, waits
 * for each "ack", and adds ctl_msgs=N (messages completed while the counters were on: the
 * midpoint of the counts taken before each command and after its ack), ctl_uncertain=U (half
 * the messages completed between a command and its ack, summed over both) and ctl_late=0|1 (1:
 * the disable went out after the window had closed) to the result line.
 * Exit status: 0 ok, 1 connection errors (the line is still printed), 2 data mismatch or
 * bad usage.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_DURATION 120
#define MAX_WARMUP 60
#define MAX_SIZE (1 << 20)
#define MAX_CONNS 20000
#define MAX_THREADS 64
#define MAX_DEPTH 1024
#define PAT_SPAN 4096
#define READ_BUF (256 * 1024)
#define MAX_EVENTS 256

/* ---------------------------------------------------------------- histogram */

#define SUB_BITS 7
#define SUB_COUNT (1 << SUB_BITS)
#define HIST_LEN (64 * SUB_COUNT)

struct hist {
    uint64_t counts[HIST_LEN];
    uint64_t total;
    uint64_t max;
};

static inline unsigned hist_index(uint64_t v) {
    if (v < SUB_COUNT) return (unsigned)v;
    unsigned msb = 63u - (unsigned)__builtin_clzll(v);
    unsigned shift = msb - SUB_BITS;
    return shift * SUB_COUNT + (unsigned)(v >> shift); /* (v >> shift) is in [128, 256) */
}

/* highest value that maps to bucket idx */
static uint64_t hist_upper(unsigned idx) {
    if (idx < 2 * SUB_COUNT) return idx;
    unsigned shift = idx / SUB_COUNT - 1;
    uint64_t sub = (uint64_t)(idx % SUB_COUNT) + SUB_COUNT;
    return ((sub + 1) << shift) - 1;
}

static inline void hist_record(struct hist *h, uint64_t v) {
    h->counts[hist_index(v)]++;
    h->total++;
    if (v > h->max) h->max = v;
}

static void hist_merge(struct hist *into, const struct hist *from) {
    for (unsigned i = 0; i < HIST_LEN; i++) into->counts[i] += from->counts[i];
    into->total += from->total;
    if (from->max > into->max) into->max = from->max;
}

static uint64_t hist_percentile(const struct hist *h, double pct) {
    if (h->total == 0) return 0;
    uint64_t want = (uint64_t)((pct / 100.0) * (double)h->total + 0.999999);
    if (want < 1) want = 1;
    uint64_t seen = 0;
    for (unsigned i = 0; i < HIST_LEN; i++) {
        seen += h->counts[i];
        if (seen >= want) {
            uint64_t u = hist_upper(i);
            return u < h->max ? u : h->max;
        }
    }
    return h->max;
}

/* ---------------------------------------------------------------- settings */

enum mode { PINGPONG, PIPELINE, SHORT };
static const char *mode_names[] = {"pingpong", "pipeline", "short"};

static int opt_port = 9000;
static int opt_conns = 50;
static int opt_size = 64;
static double opt_secs = 10;
static double opt_warmup = 0;
static int opt_threads = 1;
static int opt_depth = 16;
static int opt_graceful = 0;
static int opt_markers = 0;
static int opt_ctl_fd = -1, opt_ack_fd = -1; /* -C: perf stat's control and ack fds */
static enum mode opt_mode = PINGPONG;
static int depth; /* messages in flight per connection */

static uint8_t *pattern;              /* PAT_SPAN + size bytes */
static struct sockaddr_in server;     /* always 127.0.0.1 */
static uint64_t t_measure, t_end;     /* ns, CLOCK_MONOTONIC */
static pthread_barrier_t ready_barrier, go_barrier;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static int logged_errors;

static inline uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---------------------------------------------------------------- messages */

static inline void make_header(uint8_t *h, uint32_t cid, uint64_t seq) {
    uint64_t v = seq ^ ((uint64_t)cid << 40) ^ 0x5DEECE66Dull;
    for (int i = 0; i < 8; i++) h[i] = (uint8_t)(v >> (8 * i));
}

static inline size_t body_offset(uint32_t cid, uint64_t seq) {
    return (size_t)((seq * 131u + (uint64_t)cid * 17u) & (PAT_SPAN - 1));
}

static void make_message(uint8_t *dst, uint32_t cid, uint64_t seq) {
    make_header(dst, cid, seq);
    memcpy(dst + 8, pattern + body_offset(cid, seq) + 8, (size_t)opt_size - 8);
}

static void mismatch(uint32_t cid, uint64_t seq, size_t pos, uint8_t want, uint8_t got) {
    pthread_mutex_lock(&log_lock);
    fprintf(stderr,
            "loadgen: DATA MISMATCH on connection %u, message %" PRIu64 ", byte %zu: "
            "expected 0x%02x, got 0x%02x\n",
            cid, seq, pos, want, got);
    fflush(stderr);
    _exit(2);
}

/* Checks that p[0..len) equals bytes [off, off+len) of message seq on connection cid. */
static void verify(uint32_t cid, uint64_t seq, size_t off, const uint8_t *p, size_t len) {
    size_t i = 0;
    if (off < 8) {
        uint8_t h[8];
        make_header(h, cid, seq);
        for (; i < len && off + i < 8; i++)
            if (p[i] != h[off + i]) mismatch(cid, seq, off + i, h[off + i], p[i]);
    }
    if (i < len) {
        const uint8_t *msg = pattern + body_offset(cid, seq); /* byte pos of the message is msg[pos] */
        if (memcmp(p + i, msg + off + i, len - i) != 0) {
            for (; i < len; i++)
                if (p[i] != msg[off + i]) mismatch(cid, seq, off + i, msg[off + i], p[i]);
        }
    }
}

/* ---------------------------------------------------------------- connections */

struct conn {
    int fd;
    uint32_t id;
    int live;          /* 0 once retired after an error */
    int connecting;    /* short mode: connect() in progress */
    uint64_t sent;     /* messages written (or queued in tx) */
    uint64_t recvd;    /* messages whose echo is complete */
    size_t rx_off;     /* bytes of message `recvd` received so far */
    uint8_t *tx;       /* bytes queued for writing */
    size_t tx_off, tx_len;
    uint64_t *ts;      /* send time of message k at ts[k % depth] */
    uint64_t t_start;  /* short mode: connect time */
};

struct thr {
    int idx;
    int ep;
    struct conn *conns;
    int nconns;
    int live;
    uint8_t *rbuf;
    struct hist *hist;
    uint64_t msgs;
    uint64_t errors;
    pthread_t tid;
};

static void conn_error(struct thr *t, struct conn *c, const char *what, int err) {
    pthread_mutex_lock(&log_lock);
    if (logged_errors < 10) {
        if (err)
            fprintf(stderr, "loadgen: connection %u: %s: %s\n", c->id, what, strerror(err));
        else
            fprintf(stderr, "loadgen: connection %u: %s\n", c->id, what);
    } else if (logged_errors == 10) {
        fprintf(stderr, "loadgen: further connection errors not shown\n");
    }
    logged_errors++;
    pthread_mutex_unlock(&log_lock);
    t->errors++;
    if (c->fd >= 0) close(c->fd);
    c->fd = -1;
    c->live = 0;
    t->live--;
}

static int new_socket(void) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (opt_mode == SHORT && !opt_graceful) {
        /* close() sends RST: no TIME_WAIT, so a long run cannot exhaust the ephemeral ports */
        struct linger lg = {1, 0};
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    }
    return fd;
}

/* Writes what is queued. Returns 0 (all written or socket full) or an errno. */
static int flush_tx(struct conn *c) {
    while (c->tx_off < c->tx_len) {
        ssize_t n = write(c->fd, c->tx + c->tx_off, c->tx_len - c->tx_off);
        if (n > 0) {
            c->tx_off += (size_t)n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && errno == EAGAIN) {
            return 0;
        } else {
            return n < 0 ? errno : EPIPE;
        }
    }
    c->tx_off = c->tx_len = 0;
    return 0;
}

/* Tops the connection up to `depth` messages in flight (only when nothing is queued). */
static int refill(struct conn *c, uint64_t now) {
    if (c->tx_len) return flush_tx(c);
    uint64_t in_flight = c->sent - c->recvd;
    if (in_flight >= (uint64_t)depth) return 0;
    size_t n = (size_t)((uint64_t)depth - in_flight);
    for (size_t i = 0; i < n; i++) {
        make_message(c->tx + i * (size_t)opt_size, c->id, c->sent);
        c->ts[c->sent % (uint64_t)depth] = now;
        c->sent++;
    }
    c->tx_off = 0;
    c->tx_len = n * (size_t)opt_size;
    return flush_tx(c);
}

/* Accounts received bytes. Returns 1 when the current (short-mode) message completed. */
static int consume(struct thr *t, struct conn *c, const uint8_t *p, size_t n, uint64_t now) {
    int completed = 0;
    while (n > 0) {
        if (c->recvd == c->sent) {
            pthread_mutex_lock(&log_lock);
            fprintf(stderr, "loadgen: DATA MISMATCH on connection %u: %zu bytes received "
                            "beyond the %" PRIu64 " messages sent\n", c->id, n, c->sent);
            fflush(stderr);
            _exit(2);
        }
        size_t take = (size_t)opt_size - c->rx_off;
        if (take > n) take = n;
        verify(c->id, c->recvd, c->rx_off, p, take);
        c->rx_off += take;
        p += take;
        n -= take;
        if (c->rx_off == (size_t)opt_size) {
            uint64_t start = opt_mode == SHORT ? c->t_start : c->ts[c->recvd % (uint64_t)depth];
            if (now >= t_measure && now < t_end) {
                hist_record(t->hist, now - start);
                /* a plain store; -C reads it from the main thread */
                __atomic_store_n(&t->msgs, t->msgs + 1, __ATOMIC_RELAXED);
            }
            c->recvd++;
            c->rx_off = 0;
            completed = 1;
        }
    }
    return completed;
}

/* Reads everything available. Returns 0, or -1 after retiring the connection. */
static int read_all(struct thr *t, struct conn *c, int *completed) {
    for (;;) {
        ssize_t n = read(c->fd, t->rbuf, READ_BUF);
        if (n > 0) {
            if (consume(t, c, t->rbuf, (size_t)n, now_ns())) *completed = 1;
            if (n < READ_BUF) return 0; /* short read: queue was empty; new data raises an edge */
            continue;
        }
        if (n == 0) {
            conn_error(t, c, "server closed the connection", 0);
            return -1;
        }
        if (errno == EINTR) continue;
        if (errno == EAGAIN) return 0;
        conn_error(t, c, "read", errno);
        return -1;
    }
}

static int add_to_epoll(struct thr *t, struct conn *c) {
    struct epoll_event ev;
    /* EPOLLOUT edge-triggered costs nothing while the socket never fills, and saves an
     * epoll_ctl each time a write comes up short. */
    ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
    ev.data.ptr = c;
    return epoll_ctl(t->ep, EPOLL_CTL_ADD, c->fd, &ev);
}

/* short mode: begins one connect-send-receive-close iteration */
static void short_begin(struct thr *t, struct conn *c) {
    c->fd = new_socket();
    if (c->fd < 0) {
        conn_error(t, c, "socket", errno);
        return;
    }
    c->t_start = now_ns();
    c->rx_off = 0;
    c->tx_off = c->tx_len = 0;
    int r = connect(c->fd, (struct sockaddr *)&server, sizeof server);
    if (r < 0 && errno != EINPROGRESS) {
        conn_error(t, c, "connect", errno);
        return;
    }
    c->connecting = r < 0;
    if (add_to_epoll(t, c) < 0) {
        conn_error(t, c, "epoll_ctl", errno);
        return;
    }
    if (c->connecting) return;
    /* connected at once: send now; the edge for the echo comes later */
    make_message(c->tx, c->id, c->sent);
    c->sent++;
    c->tx_len = (size_t)opt_size;
    int err = flush_tx(c);
    if (err) conn_error(t, c, "write", err);
}

static void short_event(struct thr *t, struct conn *c, uint32_t ev) {
    if (c->connecting) {
        if (!(ev & (EPOLLOUT | EPOLLERR | EPOLLHUP))) return;
        int err = 0;
        socklen_t el = sizeof err;
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
        if (err) {
            conn_error(t, c, "connect", err);
            return;
        }
        c->connecting = 0;
        make_message(c->tx, c->id, c->sent);
        c->sent++;
        c->tx_len = (size_t)opt_size;
    }
    int err = flush_tx(c);
    if (err) {
        conn_error(t, c, "write", err);
        return;
    }
    if (c->recvd == c->sent) return;
    int completed = 0;
    if (read_all(t, c, &completed) < 0) return;
    if (completed) {
        close(c->fd);
        c->fd = -1;
        short_begin(t, c);
    }
}

static void stream_event(struct thr *t, struct conn *c, uint32_t ev) {
    (void)ev;
    int completed = 0;
    if (read_all(t, c, &completed) < 0) return;
    int err = refill(c, now_ns());
    if (err) conn_error(t, c, "write", err);
}

static void *thread_main(void *arg) {
    struct thr *t = arg;
    struct epoll_event *evs = calloc(MAX_EVENTS, sizeof *evs);
    t->rbuf = malloc(READ_BUF);
    t->hist = calloc(1, sizeof *t->hist);
    if (!evs || !t->rbuf || !t->hist) {
        fprintf(stderr, "loadgen: out of memory\n");
        _exit(2);
    }
    t->live = t->nconns;

    if (opt_mode != SHORT) {
        for (int i = 0; i < t->nconns; i++) {
            struct conn *c = &t->conns[i];
            c->fd = new_socket();
            if (c->fd < 0) {
                conn_error(t, c, "socket", errno);
                continue;
            }
            int r = connect(c->fd, (struct sockaddr *)&server, sizeof server);
            if (r < 0 && errno == EINPROGRESS) {
                /* wait for this connection before starting the next one (setup only) */
                struct epoll_event ev = {.events = EPOLLOUT};
                int tmp = epoll_create1(EPOLL_CLOEXEC);
                epoll_ctl(tmp, EPOLL_CTL_ADD, c->fd, &ev);
                int w = epoll_wait(tmp, &ev, 1, 5000);
                close(tmp);
                int err = 0;
                socklen_t el = sizeof err;
                getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
                r = (w == 1 && err == 0) ? 0 : -1;
                errno = err ? err : ETIMEDOUT;
            }
            if (r < 0) {
                conn_error(t, c, "connect", errno);
                continue;
            }
            if (add_to_epoll(t, c) < 0) conn_error(t, c, "epoll_ctl", errno);
        }
    }
    pthread_barrier_wait(&ready_barrier);
    pthread_barrier_wait(&go_barrier);

    uint64_t now = now_ns();
    for (int i = 0; i < t->nconns; i++) {
        struct conn *c = &t->conns[i];
        if (opt_mode == SHORT) {
            short_begin(t, c);
        } else if (c->live) {
            int err = refill(c, now);
            if (err) conn_error(t, c, "write", err);
        }
    }

    while (t->live > 0) {
        now = now_ns();
        if (now >= t_end) break;
        uint64_t left_ms = (t_end - now) / 1000000 + 1;
        int n = epoll_wait(t->ep, evs, MAX_EVENTS, left_ms < 100 ? (int)left_ms : 100);
        if (n < 0) {
            if (errno == EINTR) continue;
            perror("loadgen: epoll_wait");
            _exit(2);
        }
        for (int i = 0; i < n; i++) {
            struct conn *c = evs[i].data.ptr;
            if (!c->live || c->fd < 0) continue;
            if (opt_mode == SHORT)
                short_event(t, c, evs[i].events);
            else
                stream_event(t, c, evs[i].events);
        }
    }
    free(evs);
    return NULL;
}

/* ---------------------------------------------------------------- -C: perf control */

static uint64_t msgs_so_far(struct thr *ts) {
    uint64_t n = 0;
    for (int i = 0; i < opt_threads; i++) n += __atomic_load_n(&ts[i].msgs, __ATOMIC_RELAXED);
    return n;
}

static void sleep_until(uint64_t ns) {
    struct timespec at = {.tv_sec = (time_t)(ns / 1000000000ull), .tv_nsec = (long)(ns % 1000000000ull)};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &at, NULL) == EINTR) {}
}

/* Sends one command and waits (10 s at most) for "ack". Exits with status 2 on failure. */
static void perf_command(const char *cmd) {
    size_t len = strlen(cmd);
    if (write(opt_ctl_fd, cmd, len) != (ssize_t)len) {
        fprintf(stderr, "loadgen: -C: write to fd %d: %s\n", opt_ctl_fd, strerror(errno));
        exit(2);
    }
    char buf[64];
    size_t got = 0;
    uint64_t deadline = now_ns() + 10000000000ull;
    while (got < 3 || !memmem(buf, got, "ack", 3)) {
        uint64_t now = now_ns();
        struct pollfd pfd = {.fd = opt_ack_fd, .events = POLLIN};
        if (now >= deadline || poll(&pfd, 1, (int)((deadline - now) / 1000000) + 1) < 0) {
            fprintf(stderr, "loadgen: -C: no ack for %.*s\n", (int)(len - 1), cmd);
            exit(2);
        }
        ssize_t r = read(opt_ack_fd, buf + got, sizeof buf - 1 - got);
        if (r > 0) got += (size_t)r;
        else if (r == 0 || errno == EAGAIN) { struct timespec ms = {0, 1000000}; nanosleep(&ms, NULL); }
        else { fprintf(stderr, "loadgen: -C: read fd %d: %s\n", opt_ack_fd, strerror(errno)); exit(2); }
        if (got == sizeof buf - 1) { memmove(buf, buf + got - 2, 2); got = 2; }
    }
}

/* ---------------------------------------------------------------- main */

static void usage(const char *msg) {
    if (msg) fprintf(stderr, "loadgen: %s\n", msg);
    fprintf(stderr,
            "usage: loadgen [-p PORT] [-c CONNS] [-s SIZE] [-d SECS] [-w SECS] [-m MODE] [-q DEPTH]\n"
            "               [-t THREADS] [-g] [-M] [-C CTL,ACK] [-H 127.0.0.1]\n"
            "  -p PORT     server port on 127.0.0.1 (default 9000)\n"
            "  -c CONNS    connections (short mode: concurrent connect loops) (default 50)\n"
            "  -s SIZE     message size in bytes, 8..%d (default 64)\n"
            "  -d SECS     measured duration, at most %d (default 10)\n"
            "  -w SECS     warmup before measuring, at most %d (default 0)\n"
            "  -m MODE     pingpong | pipeline | short (default pingpong)\n"
            "  -q DEPTH    messages in flight per connection in pipeline mode (default 16)\n"
            "  -t THREADS  client threads, one epoll each (default 1)\n"
            "  -g          short mode: plain close() (default: SO_LINGER 0, close sends RST,\n"
            "              so TIME_WAIT cannot exhaust the ephemeral ports)\n"
            "  -M          print @measure-start / @measure-end lines when the measured window\n"
            "              opens and closes (for compare.py's CPU sampling)\n"
            "  -C CTL,ACK  write enable/disable to fd CTL around the window and wait for\n"
            "              \"ack\" on fd ACK (perf stat --control fd:CTL,ACK); adds ctl_msgs=\n"
            "  -H HOST     only 127.0.0.1 (or localhost) is accepted\n",
            MAX_SIZE, MAX_DURATION, MAX_WARMUP);
    exit(2);
}

int main(int argc, char **argv) {
    int opt;
    char *end;
    while ((opt = getopt(argc, argv, "p:c:s:d:w:m:q:t:gMC:H:h")) != -1) {
        switch (opt) {
        case 'p': opt_port = (int)strtol(optarg, &end, 10); if (*end) usage("bad -p"); break;
        case 'c': opt_conns = (int)strtol(optarg, &end, 10); if (*end) usage("bad -c"); break;
        case 's': opt_size = (int)strtol(optarg, &end, 10); if (*end) usage("bad -s"); break;
        case 'd': opt_secs = strtod(optarg, &end); if (*end) usage("bad -d"); break;
        case 'w': opt_warmup = strtod(optarg, &end); if (*end) usage("bad -w"); break;
        case 'q': opt_depth = (int)strtol(optarg, &end, 10); if (*end) usage("bad -q"); break;
        case 't': opt_threads = (int)strtol(optarg, &end, 10); if (*end) usage("bad -t"); break;
        case 'g': opt_graceful = 1; break;
        case 'M': opt_markers = 1; break;
        case 'C':
            opt_ctl_fd = (int)strtol(optarg, &end, 10);
            if (*end != ',') usage("-C takes CTL,ACK (two file descriptors)");
            opt_ack_fd = (int)strtol(end + 1, &end, 10);
            if (*end || opt_ctl_fd < 0 || opt_ack_fd < 0) usage("-C takes CTL,ACK (two file descriptors)");
            break;
        case 'm':
            if (!strcmp(optarg, "pingpong")) opt_mode = PINGPONG;
            else if (!strcmp(optarg, "pipeline")) opt_mode = PIPELINE;
            else if (!strcmp(optarg, "short")) opt_mode = SHORT;
            else usage("-m must be pingpong, pipeline or short");
            break;
        case 'H':
            if (strcmp(optarg, "127.0.0.1") && strcmp(optarg, "localhost"))
                usage("refusing a host other than 127.0.0.1: this client only loads the local machine");
            break;
        default: usage(NULL);
        }
    }
    if (optind != argc) usage("unexpected argument");
    if (opt_port < 1 || opt_port > 65535) usage("-p must be 1..65535");
    if (opt_conns < 1 || opt_conns > MAX_CONNS) usage("-c out of range");
    if (opt_size < 8 || opt_size > MAX_SIZE) usage("-s out of range");
    if (!(opt_secs > 0) || opt_secs > MAX_DURATION) usage("-d must be > 0 and at most 120");
    if (opt_warmup < 0 || opt_warmup > MAX_WARMUP) usage("-w must be 0..60");
    if (opt_depth < 1 || opt_depth > MAX_DEPTH) usage("-q must be 1..1024");
    if (opt_threads < 1 || opt_threads > MAX_THREADS) usage("-t must be 1..64");
    if (opt_threads > opt_conns) opt_threads = opt_conns;
    depth = opt_mode == PIPELINE ? opt_depth : 1;

    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }

    memset(&server, 0, sizeof server);
    server.sin_family = AF_INET;
    server.sin_port = htons((uint16_t)opt_port);
    server.sin_addr.s_addr = htonl(INADDR_LOOPBACK); /* hard-coded: never another host */

    pattern = malloc(PAT_SPAN + (size_t)opt_size);
    if (!pattern) usage("out of memory");
    uint64_t x = 0x9E3779B97F4A7C15ull;
    for (size_t i = 0; i < PAT_SPAN + (size_t)opt_size; i++) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        pattern[i] = (uint8_t)(x >> 24);
    }

    struct thr *ts = calloc((size_t)opt_threads, sizeof *ts);
    struct conn *conns = calloc((size_t)opt_conns, sizeof *conns);
    if (!ts || !conns) usage("out of memory");
    /* thread i owns conns [start_i, start_i + n_i) */
    int next = 0;
    for (int i = 0; i < opt_threads; i++) {
        ts[i].idx = i;
        ts[i].nconns = opt_conns / opt_threads + (i < opt_conns % opt_threads);
        ts[i].conns = conns + next;
        next += ts[i].nconns;
        ts[i].ep = epoll_create1(EPOLL_CLOEXEC);
        if (ts[i].ep < 0) usage("epoll_create1 failed");
    }
    for (int i = 0; i < opt_conns; i++) {
        conns[i].fd = -1;
        conns[i].id = (uint32_t)i;
        conns[i].live = 1;
        conns[i].tx = malloc((size_t)depth * (size_t)opt_size);
        conns[i].ts = calloc((size_t)depth, sizeof(uint64_t));
        if (!conns[i].tx || !conns[i].ts) usage("out of memory");
    }

    pthread_barrier_init(&ready_barrier, NULL, (unsigned)opt_threads + 1);
    pthread_barrier_init(&go_barrier, NULL, (unsigned)opt_threads + 1);
    for (int i = 0; i < opt_threads; i++) {
        if (pthread_create(&ts[i].tid, NULL, thread_main, &ts[i]) != 0) usage("pthread_create failed");
    }
    pthread_barrier_wait(&ready_barrier); /* every connection of the stream modes is up */
    uint64_t t0 = now_ns();
    t_measure = t0 + (uint64_t)(opt_warmup * 1e9);
    t_end = t_measure + (uint64_t)(opt_secs * 1e9);
    pthread_barrier_wait(&go_barrier);
    uint64_t ctl_msgs = 0, ctl_uncertain = 0;
    int ctl_late = 0;
    if (opt_markers || opt_ctl_fd >= 0) { /* lets a runner sample server CPU time exactly around the window */
        sleep_until(t_measure);
        if (opt_ctl_fd >= 0) {
            uint64_t before = msgs_so_far(ts);
            perf_command("enable\n");
            uint64_t after = msgs_so_far(ts);
            ctl_msgs = after + before;            /* twice the midpoint, for now */
            ctl_uncertain = after - before;
        }
        if (opt_markers) {
            printf("@measure-start\n");
            fflush(stdout);
        }
        if (opt_ctl_fd >= 0) {
            /* off a little before the window closes, while every connection still runs */
            uint64_t margin = (uint64_t)(opt_secs * 1e8) < 250000000ull ? (uint64_t)(opt_secs * 1e8) : 250000000ull;
            sleep_until(t_end - margin);
            uint64_t before = msgs_so_far(ts);
            perf_command("disable\n");
            uint64_t after = msgs_so_far(ts);
            ctl_late = now_ns() >= t_end;
            ctl_msgs = (after + before - ctl_msgs + 1) / 2;
            ctl_uncertain = (ctl_uncertain + after - before + 1) / 2;
        }
        sleep_until(t_end);
        if (opt_markers) {
            printf("@measure-end\n");
            fflush(stdout);
        }
    }

    struct hist *h = calloc(1, sizeof *h);
    uint64_t msgs = 0, errors = 0;
    for (int i = 0; i < opt_threads; i++) {
        pthread_join(ts[i].tid, NULL);
        hist_merge(h, ts[i].hist);
        msgs += ts[i].msgs;
        errors += ts[i].errors;
    }
    /* Stopping early (every connection retired) shortens the window actually covered. */
    uint64_t stop = now_ns();
    double secs = opt_secs;
    if (stop < t_end) secs = stop > t_measure ? (double)(stop - t_measure) / 1e9 : 0;

    printf("mode=%s conns=%d size=%d secs=%.2f msgs=%" PRIu64 " msgs_per_s=%.0f "
           "p50_us=%.1f p90_us=%.1f p99_us=%.1f p999_us=%.1f max_us=%.1f errors=%" PRIu64
           " depth=%d threads=%d",
           mode_names[opt_mode], opt_conns, opt_size, secs, msgs, secs > 0 ? (double)msgs / secs : 0.0,
           hist_percentile(h, 50) / 1e3, hist_percentile(h, 90) / 1e3, hist_percentile(h, 99) / 1e3,
           hist_percentile(h, 99.9) / 1e3, h->max / 1e3, errors, depth, opt_threads);
    if (opt_ctl_fd >= 0)
        printf(" ctl_msgs=%" PRIu64 " ctl_uncertain=%" PRIu64 " ctl_late=%d", ctl_msgs, ctl_uncertain, ctl_late);
    printf("\n");
    fflush(stdout);
    return errors ? 1 : 0;
}
