/*
 * echo_server.c - the C reference peer for the Quiesce benchmark suite.
 *
 * One thread per core (-t N, default 2). Each thread owns one epoll instance and one
 * SO_REUSEPORT listening socket bound to 127.0.0.1:PORT (-p PORT, default 9000; 0 picks a
 * free port). Listeners are level-triggered (accept4 until EAGAIN); connections are
 * edge-triggered EPOLLIN|EPOLLRDHUP. Reads go into a per-thread buffer and are written
 * straight back; whatever a short write leaves over is copied to a per-connection pending
 * buffer, EPOLLOUT is added, and the connection stops reading until that buffer drains.
 *
 * Reading stops at EAGAIN or at a short read (fewer bytes than asked for): for a TCP socket
 * a short read means the receive queue was empty at that moment, and any byte arriving
 * later raises a new edge, so no wakeup is lost. A FIN raises no edge after the one that
 * reported it, so an event carrying EPOLLRDHUP/EPOLLHUP/EPOLLERR reads on to the EOF (or
 * EAGAIN). -E makes every read go strictly until EAGAIN.
 *
 * Prints "listening on 127.0.0.1:P (N threads)" once every listener is bound, then runs
 * until SIGTERM/SIGINT. Nothing is printed per connection or per message.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define READ_BUF (64 * 1024)
#define MAX_EVENTS 256
#define MAX_THREADS 256

struct conn {
    int fd;
    int want_out;   /* EPOLLOUT currently registered */
    char *pend;     /* bytes read but not yet written back */
    size_t pend_off, pend_len, pend_cap;
};

struct worker {
    int lfd;
    int ep;
    pthread_t tid;
};

static int strict_eagain = 0;
static struct conn listener_tag; /* epoll data pointer that marks the listener */

static void die(const char *what) {
    fprintf(stderr, "echo_server: %s: %s\n", what, strerror(errno));
    exit(1);
}

static int make_listener(int port) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) die("socket");
    int one = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0) die("SO_REUSEADDR");
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0) die("SO_REUSEPORT");
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0) die("bind 127.0.0.1");
    if (listen(fd, 4096) < 0) die("listen");
    return fd;
}

static void conn_close(struct conn *c) {
    close(c->fd); /* the only reference to the file: also leaves the epoll set */
    free(c->pend);
    free(c);
}

static int set_out(int ep, struct conn *c, int on) {
    struct epoll_event ev;
    ev.events = EPOLLIN | EPOLLRDHUP | EPOLLET | (on ? EPOLLOUT : 0);
    ev.data.ptr = c;
    if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev) < 0) return -1;
    c->want_out = on;
    return 0;
}

/* Writes the pending bytes. Returns 1 when drained, 0 when the socket is full, -1 on error. */
static int flush_pending(struct conn *c) {
    while (c->pend_off < c->pend_len) {
        ssize_t n = write(c->fd, c->pend + c->pend_off, c->pend_len - c->pend_off);
        if (n > 0) {
            c->pend_off += (size_t)n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && errno == EAGAIN) {
            return 0;
        } else {
            return -1;
        }
    }
    c->pend_off = c->pend_len = 0;
    return 1;
}

static int keep_pending(struct conn *c, const char *p, size_t len) {
    if (c->pend_len + len > c->pend_cap) {
        size_t cap = c->pend_cap ? c->pend_cap : 4096;
        while (cap < c->pend_len + len) cap *= 2;
        char *np = realloc(c->pend, cap);
        if (!np) return -1;
        c->pend = np;
        c->pend_cap = cap;
    }
    memcpy(c->pend + c->pend_len, p, len);
    c->pend_len += len;
    return 0;
}

/*
 * Serves one connection after an event. Returns -1 when the connection must be closed.
 * Invariant on return 0: either the last read hit EAGAIN/short read (a new edge will come
 * with new data) or pending bytes remain and EPOLLOUT is registered (an edge will come when
 * the socket drains).
 */
static int serve(int ep, struct conn *c, char *buf, int to_eagain) {
    if (c->pend_len) {
        int r = flush_pending(c);
        if (r < 0) return -1;
        if (r == 0) return c->want_out ? 0 : set_out(ep, c, 1);
        if (c->want_out && set_out(ep, c, 0) < 0) return -1;
    }
    for (;;) {
        ssize_t n = read(c->fd, buf, READ_BUF);
        if (n == 0) return -1; /* peer finished sending; everything read was echoed */
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN) return 0;
            return -1;
        }
        size_t off = 0;
        while (off < (size_t)n) {
            ssize_t w = write(c->fd, buf + off, (size_t)n - off);
            if (w > 0) {
                off += (size_t)w;
            } else if (w < 0 && errno == EINTR) {
                continue;
            } else if (w < 0 && errno == EAGAIN) {
                if (keep_pending(c, buf + off, (size_t)n - off) < 0) return -1;
                return set_out(ep, c, 1); /* stop reading until the peer takes its bytes */
            } else {
                return -1;
            }
        }
        if (n < READ_BUF && !to_eagain) return 0;
    }
}

static void accept_all(struct worker *w) {
    for (;;) {
        int fd = accept4(w->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED) continue;
            if (errno == EAGAIN) return;
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                perror("echo_server: accept4");
                return;
            }
            die("accept4");
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        struct conn *c = calloc(1, sizeof *c);
        if (!c) {
            close(fd);
            continue;
        }
        c->fd = fd;
        struct epoll_event ev;
        ev.events = EPOLLIN | EPOLLRDHUP | EPOLLET;
        ev.data.ptr = c;
        if (epoll_ctl(w->ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
            conn_close(c);
            continue;
        }
    }
}

static void *worker_main(void *arg) {
    struct worker *w = arg;
    char *buf = malloc(READ_BUF);
    struct epoll_event *evs = calloc(MAX_EVENTS, sizeof *evs);
    if (!buf || !evs) die("malloc");
    for (;;) {
        int n = epoll_wait(w->ep, evs, MAX_EVENTS, -1);
        if (n < 0) {
            if (errno == EINTR) continue;
            die("epoll_wait");
        }
        for (int i = 0; i < n; i++) {
            if (evs[i].data.ptr == &listener_tag) {
                accept_all(w);
                continue;
            }
            struct conn *c = evs[i].data.ptr;
            /* EPOLLERR/EPOLLHUP/EPOLLRDHUP: let read() report the EOF or the error so that
             * bytes that arrived before the FIN are still echoed; no later edge would. */
            int ended = (evs[i].events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0;
            if (serve(w->ep, c, buf, strict_eagain || ended) < 0) conn_close(c);
        }
    }
    return NULL;
}

static void usage(void) {
    fprintf(stderr, "usage: echo_server [-p PORT] [-t THREADS] [-E]\n"
                    "  -p PORT     port on 127.0.0.1 (default 9000, 0 = any free port)\n"
                    "  -t THREADS  threads, each with its own epoll and SO_REUSEPORT listener (default 2)\n"
                    "  -E          read strictly until EAGAIN (default: stop at a short read)\n");
    exit(2);
}

int main(int argc, char **argv) {
    int port = 9000, threads = 2, opt;
    while ((opt = getopt(argc, argv, "p:t:Eh")) != -1) {
        switch (opt) {
        case 'p': port = atoi(optarg); break;
        case 't': threads = atoi(optarg); break;
        case 'E': strict_eagain = 1; break;
        default: usage();
        }
    }
    if (port < 0 || port > 65535 || threads < 1 || threads > MAX_THREADS || optind != argc) usage();

    static struct worker ws[MAX_THREADS];
    for (int i = 0; i < threads; i++) {
        ws[i].lfd = make_listener(port);
        if (port == 0) { /* the first bind picked the port; the others share it */
            struct sockaddr_in a;
            socklen_t al = sizeof a;
            if (getsockname(ws[i].lfd, (struct sockaddr *)&a, &al) < 0) die("getsockname");
            port = ntohs(a.sin_port);
        }
        ws[i].ep = epoll_create1(EPOLL_CLOEXEC);
        if (ws[i].ep < 0) die("epoll_create1");
        struct epoll_event ev;
        ev.events = EPOLLIN;
        ev.data.ptr = &listener_tag;
        if (epoll_ctl(ws[i].ep, EPOLL_CTL_ADD, ws[i].lfd, &ev) < 0) die("epoll_ctl listener");
    }
    for (int i = 0; i < threads; i++) {
        if (pthread_create(&ws[i].tid, NULL, worker_main, &ws[i]) != 0) {
            errno = EAGAIN;
            die("pthread_create");
        }
    }
    printf("listening on 127.0.0.1:%d (%d threads)\n", port, threads);
    fflush(stdout);
    for (int i = 0; i < threads; i++) pthread_join(ws[i].tid, NULL);
    return 0;
}
