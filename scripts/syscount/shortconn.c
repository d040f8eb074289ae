// shortconn: N short connections to 127.0.0.1:PORT (connect, 64-byte echo, close), C at a time.
// With a 4th argument "half" each client shuts down its writing side right after the 64 bytes, so
// the server usually finds the data and the FIN in one edge.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
static int port, per, half;
static void *run(void *arg) {
    (void)arg;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    char msg[64], got[64];
    memset(msg, 'q', sizeof msg);
    for (int i = 0; i < per; i++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        if (connect(fd, (void *)&a, sizeof a) < 0) { perror("connect"); exit(1); }
        if (write(fd, msg, 64) != 64) { perror("write"); exit(1); }
        if (half && shutdown(fd, SHUT_WR) < 0) { perror("shutdown"); exit(1); }
        int n = 0;
        while (n < 64) { int r = read(fd, got + n, 64 - n); if (r <= 0) { perror("read"); exit(1); } n += r; }
        if (memcmp(msg, got, 64)) { fprintf(stderr, "mismatch\n"); exit(2); }
        close(fd);
    }
    return NULL;
}
int main(int argc, char **argv) {
    if (argc < 4) { fprintf(stderr, "usage: shortconn PORT N C [half]\n"); return 2; }
    half = argc > 4 && strcmp(argv[4], "half") == 0;
    port = atoi(argv[1]); int n = atoi(argv[2]); int c = atoi(argv[3]); per = n / c;
    pthread_t t[64];
    for (int i = 0; i < c; i++) pthread_create(&t[i], NULL, run, NULL);
    for (int i = 0; i < c; i++) pthread_join(t[i], NULL);
    printf("done %d\n", per * c);
    return 0;
}
