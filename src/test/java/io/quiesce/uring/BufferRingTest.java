package io.quiesce.uring;

import io.quiesce.sys.Errno;
import io.quiesce.sys.SyscallException;
import io.quiesce.sys.raw.Syscalls;
import io.quiesce.testing.NoFdLeaks;
import io.quiesce.uring.UringNet.Cqe;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.io.ByteArrayOutputStream;
import java.lang.foreign.Arena;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Provided buffer rings on the real kernel: a multishot recv over loopback TCP fills the
 * buffers the ring offers and names each, recycled buffers come back, and an empty ring ends
 * the multishot with {@code -ENOBUFS}.
 */
@ExtendWith(NoFdLeaks.class)
class BufferRingTest {
    private static final int GROUP = 3;

    private final Arena arena = Arena.ofConfined();
    private final Syscalls sys = new Syscalls(arena);
    private final UringNet net = new UringNet(arena, sys);
    private UringCalls calls;
    private Ring ring;

    @BeforeEach
    void open() throws Exception {
        RingTest.assumeIoUringEnabled();
        calls = new UringCalls(arena);
        ring = UringSupport.open(calls, arena, 8, UringSupport.SETUP_FLAGS);
    }

    @AfterEach
    void close() {
        if (ring != null) {
            ring.close();
        }
        net.closeAll();
        arena.close();
    }

    private static byte[] pattern(int n, int seed) {
        byte[] b = new byte[n];
        for (int i = 0; i < n; i++) {
            b[i] = (byte) (seed + i * 7);
        }
        return b;
    }

    private static byte[] contents(BufferRing br, Cqe c) {
        return br.buffer(c.bid()).asSlice(0, c.res()).toArray(ValueLayout.JAVA_BYTE);
    }

    @Test
    void probeListsRecvAndTheRingRegistersOnThisKernel() throws SyscallException {
        assertTrue(ring.probe().supports(Ring.OP_RECV));
        try (var br = BufferRing.register(calls, ring, arena, GROUP, 4, 64)) {
            assertEquals(GROUP, br.groupId());
            assertEquals(4, br.count());
            assertEquals(64, br.bufferSize());
            assertEquals(64, br.buffer(3).byteSize());
            assertEquals(0, br.buffer(0).address() % 64, "buffers aligned");
        }
    }

    @Test
    void multishotRecvFillsProvidedBuffersNamesThemAndRecycledOnesComeBack() throws SyscallException {
        int[] p = net.tcpPair();
        try (var br = BufferRing.register(calls, ring, arena, GROUP, 4, 64)) {
            ring.prepRecvMultishot(ring.nextSqe(), p[1], GROUP, 0, 9);
            assertEquals(List.of(), net.reap(ring, 0), "armed, nothing to read");

            byte[] hello = "hello".getBytes(java.nio.charset.StandardCharsets.US_ASCII);
            net.sendAll(p[0], hello);
            Cqe first = net.reap(ring, 1).getFirst();
            assertEquals(9, first.userData());
            assertEquals(5, first.res(), first::toString);
            assertTrue(first.hasBuffer(), "F_BUFFER");
            assertTrue(first.more(), "F_MORE: still armed");
            assertEquals(0, first.bid(), "the kernel takes the ring in order: bid 0 first");
            assertArrayEquals(hello, contents(br, first));
            br.recycle(first.bid());
            br.publish();

            // Four buffers' worth and a bit: bids 1, 2, 3, then the recycled 0, then none left.
            byte[] burst = pattern(4 * 64 + 10, 1);
            net.sendAll(p[0], burst);
            var cqes = net.reap(ring, 5);
            assertEquals(5, cqes.size(), cqes::toString);
            var got = new ByteArrayOutputStream();
            List<Integer> bids = new ArrayList<>();
            for (Cqe c : cqes.subList(0, 4)) {
                assertEquals(64, c.res(), c::toString);
                assertTrue(c.hasBuffer() && c.more(), c::toString);
                assertTrue((c.flags() & Ring.CQE_F_SOCK_NONEMPTY) != 0,
                        () -> "more data waits in the socket: " + c);
                bids.add(c.bid());
                got.writeBytes(contents(br, c));
            }
            assertEquals(List.of(1, 2, 3, 0), bids, "bid 0 came back through recycle + publish");
            assertArrayEquals(Arrays.copyOf(burst, 4 * 64), got.toByteArray());

            Cqe end = cqes.get(4);
            assertEquals(-Errno.ENOBUFS, end.res(), end::toString);
            assertFalse(end.more(), "an empty ring ends the multishot");
            assertFalse(end.hasBuffer());

            // Give everything back and re-arm: the 10 bytes left in the socket arrive.
            for (int bid : bids) {
                br.recycle(bid);
            }
            br.publish();
            ring.prepRecvMultishot(ring.nextSqe(), p[1], GROUP, 0, 10);
            Cqe rest = net.reap(ring, 1).getFirst();
            assertEquals(10, rest.res(), rest::toString);
            assertEquals(1, rest.bid(), "the ring continues where the kernel's head is");
            assertArrayEquals(Arrays.copyOfRange(burst, 4 * 64, burst.length), contents(br, rest));

            assertEquals(0, sys.shutdown(p[0], Syscalls.SHUT_WR));
            Cqe eof = net.reap(ring, 1).getFirst();
            assertEquals(0, eof.res(), "end of stream");
            assertFalse(eof.more(), "end of stream ends the multishot");
        }
    }

    @Test
    void recycledWithoutPublishTheKernelDoesNotSeeTheBuffer() throws SyscallException {
        int[] p = net.tcpPair();
        try (var br = BufferRing.register(calls, ring, arena, GROUP, 1, 16)) {
            ring.prepRecvMultishot(ring.nextSqe(), p[1], GROUP, 0, 1);
            net.sendAll(p[0], pattern(16, 5));
            Cqe c = net.reap(ring, 1).getFirst();
            assertEquals(16, c.res(), c::toString);
            assertEquals(0, c.bid());

            br.recycle(0); // not published
            net.sendAll(p[0], pattern(8, 9));
            Cqe end = net.reap(ring, 1).getFirst();
            assertEquals(-Errno.ENOBUFS, end.res(), "the unpublished buffer is not offered");

            br.publish();
            ring.prepRecvMultishot(ring.nextSqe(), p[1], GROUP, 0, 2);
            Cqe after = net.reap(ring, 1).getFirst();
            assertEquals(8, after.res(), after::toString);
            assertArrayEquals(pattern(8, 9), contents(br, after));
        }
    }

    @Test
    void groupIdsAreUniqueAndCloseUnregisters() throws SyscallException {
        var br = BufferRing.register(calls, ring, arena, GROUP, 2, 32);
        var e = assertThrows(SyscallException.class,
                () -> BufferRing.register(calls, ring, arena, GROUP, 2, 32));
        assertEquals(Errno.EEXIST, e.errno());
        assertTrue(e.getMessage().contains("io_uring_register(PBUF_RING, bgid=" + GROUP + ")"),
                e.getMessage());
        br.close();
        br.close(); // idempotent
        BufferRing.register(calls, ring, arena, GROUP, 2, 32).close();
    }

    @Test
    void aRecvOnAnUnregisteredGroupIsEnobufs() throws SyscallException {
        int[] p = net.tcpPair();
        BufferRing.register(calls, ring, arena, GROUP, 2, 32).close();
        net.sendAll(p[0], pattern(4, 0));
        ring.prepRecvMultishot(ring.nextSqe(), p[1], GROUP, 0, 1);
        Cqe c = net.reap(ring, 1).getFirst();
        assertEquals(-Errno.ENOBUFS, c.res(), c::toString);
    }

    @Test
    void argumentsOutsideWhatTheKernelTakesAreRefusedBeforeTheCall() {
        assertThrows(IllegalArgumentException.class, () -> BufferRing.register(calls, ring, arena, 1, 3, 64));
        assertThrows(IllegalArgumentException.class, () -> BufferRing.register(calls, ring, arena, 1, 1 << 16, 64));
        assertThrows(IllegalArgumentException.class, () -> BufferRing.register(calls, ring, arena, 1 << 16, 4, 64));
        assertThrows(IllegalArgumentException.class, () -> BufferRing.register(calls, ring, arena, 1, 4, 0));
    }

    @Test
    void closeAfterTheRingClosedIsANoOp() throws SyscallException {
        var br = BufferRing.register(calls, ring, arena, GROUP, 2, 32);
        ring.close();
        br.close();
        ring = null;
    }

    @Test
    void recyclingMoreThanTheRingHoldsUnpublishedIsRefused() throws SyscallException {
        try (var br = BufferRing.register(calls, ring, arena, GROUP, 2, 32)) {
            br.recycle(0);
            br.recycle(1);
            assertThrows(IllegalStateException.class, () -> br.recycle(0));
            assertThrows(IndexOutOfBoundsException.class, () -> br.buffer(2));
            Set<Long> addresses = new HashSet<>();
            for (int bid = 0; bid < 2; bid++) {
                addresses.add(br.buffer(bid).address());
            }
            assertEquals(2, addresses.size());
        }
    }
}
