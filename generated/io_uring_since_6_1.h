/*
 * Hand-written: io_uring uapi values newer than the build image's kernel headers
 * (linux-libc-dev 6.1). Written from the enum io_uring_op of the kernel's
 * include/uapi/linux/io_uring.h as of Linux 6.15, where IORING_OP_EPOLL_WAIT was added
 * (see README.md). Only the values Quiesce uses are here; every one is probed at run
 * time (IORING_REGISTER_PROBE) before it is used, never assumed to exist.
 *
 * The section is skipped when the installed headers already carry the 6.15 uapi
 * (IORING_FEAT_NO_IOWAIT appeared in the same release); a newer header would otherwise
 * redeclare the enumerator, which fails loudly rather than silently.
 */
#ifndef QUIESCE_IO_URING_SINCE_6_1_H
#define QUIESCE_IO_URING_SINCE_6_1_H

#include <linux/io_uring.h>

#ifndef IORING_FEAT_NO_IOWAIT
enum quiesce_io_uring_op_since_6_1 {
	/* enum io_uring_op position 59: after SENDMSG_ZC (48) come READ_MULTISHOT,
	 * WAITID, FUTEX_WAIT, FUTEX_WAKE, FUTEX_WAITV, FIXED_FD_INSTALL, FTRUNCATE,
	 * BIND, LISTEN, RECV_ZC (49..58). */
	IORING_OP_EPOLL_WAIT = 59,
};
#endif

#endif
