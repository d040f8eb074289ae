package io.quiesce.sys.raw;

import io.quiesce.sys.linux.sockaddr_in;
import io.quiesce.sys.linux.sockaddr_in6;

import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.net.Inet4Address;
import java.net.Inet6Address;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.UnknownHostException;
import java.nio.ByteOrder;

/**
 * Encodes {@link InetSocketAddress}es as {@code struct sockaddr_in} / {@code sockaddr_in6} and
 * back. Ports and IPv4 addresses are in network byte order, as the kernel wants them.
 */
public final class SockAddr {
    /** Bytes enough for either family ({@code sizeof(struct sockaddr_in6)}). */
    public static final int MAX_SIZE = (int) sockaddr_in6.layout().byteSize();

    private static final ValueLayout.OfShort PORT = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.BIG_ENDIAN);
    private static final long IN_PORT = offset(sockaddr_in.layout(), "sin_port");
    private static final long IN_ADDR = offset(sockaddr_in.layout(), "sin_addr");
    private static final long IN6_PORT = offset(sockaddr_in6.layout(), "sin6_port");
    private static final long IN6_ADDR = offset(sockaddr_in6.layout(), "sin6_addr");
    private static final long IN6_SCOPE = offset(sockaddr_in6.layout(), "sin6_scope_id");

    private SockAddr() {}

    private static long offset(MemoryLayout l, String field) {
        return l.byteOffset(MemoryLayout.PathElement.groupElement(field));
    }

    /** {@return the address family ({@code AF_INET} or {@code AF_INET6}) {@code address} needs} */
    public static int family(InetSocketAddress address) {
        return address.getAddress() instanceof Inet6Address ? Syscalls.AF_INET6 : Syscalls.AF_INET;
    }

    /**
     * Writes {@code address} into {@code out} (at least {@link #MAX_SIZE} bytes).
     *
     * @return the length of the encoded structure, for {@code bind}/{@code connect}
     * @throws IllegalArgumentException if the address is unresolved
     */
    public static int encode(InetSocketAddress address, MemorySegment out) {
        if (address.isUnresolved()) {
            throw new IllegalArgumentException("unresolved address: " + address);
        }
        out.asSlice(0, MAX_SIZE).fill((byte) 0);
        InetAddress ip = address.getAddress();
        if (ip instanceof Inet6Address v6) {
            sockaddr_in6.sin6_family(out, (short) Syscalls.AF_INET6);
            out.set(PORT, IN6_PORT, (short) address.getPort());
            MemorySegment.copy(v6.getAddress(), 0, out, ValueLayout.JAVA_BYTE, IN6_ADDR, 16);
            out.set(ValueLayout.JAVA_INT_UNALIGNED, IN6_SCOPE, v6.getScopeId());
            return (int) sockaddr_in6.layout().byteSize();
        }
        sockaddr_in.sin_family(out, (short) Syscalls.AF_INET);
        out.set(PORT, IN_PORT, (short) address.getPort());
        MemorySegment.copy(ip.getAddress(), 0, out, ValueLayout.JAVA_BYTE, IN_ADDR, 4);
        return (int) sockaddr_in.layout().byteSize();
    }

    /** {@return the address in {@code in}, as written by the kernel ({@code getsockname}, {@code accept4})} */
    public static InetSocketAddress decode(MemorySegment in) {
        int family = sockaddr_in.sin_family(in);
        try {
            if (family == Syscalls.AF_INET6) {
                byte[] ip = new byte[16];
                MemorySegment.copy(in, ValueLayout.JAVA_BYTE, IN6_ADDR, ip, 0, 16);
                int port = Short.toUnsignedInt(in.get(PORT, IN6_PORT));
                return new InetSocketAddress(InetAddress.getByAddress(ip), port);
            }
            if (family == Syscalls.AF_INET) {
                byte[] ip = new byte[4];
                MemorySegment.copy(in, ValueLayout.JAVA_BYTE, IN_ADDR, ip, 0, 4);
                int port = Short.toUnsignedInt(in.get(PORT, IN_PORT));
                return new InetSocketAddress((Inet4Address) InetAddress.getByAddress(ip), port);
            }
        } catch (UnknownHostException impossible) {
            throw new AssertionError(impossible);
        }
        throw new IllegalArgumentException("unsupported address family " + family);
    }
}
