/*
 * The one header Quiesce feeds to jextract (see generated/README.md).
 * It pulls in every Linux API the syscall layer binds; includes.txt narrows
 * jextract's output to the symbols actually used.
 */
#define _GNU_SOURCE 1
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <unistd.h>
#include <sys/uio.h>
#include <sys/timerfd.h>
#include <sched.h>
#include <sys/resource.h>
#include <fcntl.h>
#include <errno.h>
#include <string.h>
#include <time.h>
#include <spawn.h>
#include <sys/wait.h>
#include <sys/syscall.h>
#include <sys/mman.h>
#include <linux/io_uring.h>
#include "io_uring_since_6_1.h"
