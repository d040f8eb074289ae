package io.quiesce.net;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;

/**
 * The byte stream of one direction of one link in {@link NetSchedule}: frames of
 * {@code magic, direction, link id, sequence, length} then {@code length} payload bytes that are
 * a function of the four. A byte delivered to the wrong connection (a stale completion, a buffer
 * handed to two owners), or lost, duplicated or reordered, breaks the parse of the receiver that
 * expects this link, this direction and the next sequence number.
 */
final class Frames {
    static final int MAGIC = 0x51_55_49_45; // "QUIE"
    static final int HEADER = 4 + 4 + 8 + 8 + 4;
    /** Directions: from the connecting side to the accepting side, and back. */
    static final int TO_SERVER = 1;
    static final int TO_CLIENT = 2;

    private Frames() {}

    /** {@return frame {@code seq} of {@code link} in {@code direction} with {@code length} payload bytes} */
    static byte[] frame(int direction, long link, long seq, int length) {
        ByteBuffer b = ByteBuffer.allocate(HEADER + length);
        b.putInt(MAGIC).putInt(direction).putLong(link).putLong(seq).putInt(length);
        int base = base(direction, link, seq);
        for (int i = 0; i < length; i++) {
            b.put(payload(base, i));
        }
        return b.array();
    }

    private static int base(int direction, long link, long seq) {
        long h = (link * 0x9E37_79B9_7F4A_7C15L) ^ (seq * 0xC2B2_AE3D_27D4_EB4FL) ^ direction;
        return (int) (h ^ (h >>> 29));
    }

    private static byte payload(int base, int i) {
        return (byte) (base + i * 131 + (i >>> 8));
    }

    /**
     * The receiving side of one direction: checks every byte as it comes. Not thread-safe (one
     * reader: a reactor thread, or a JDK socket's reader thread).
     */
    static final class Parser {
        private final int direction;
        /** The link expected, or -1 until the first frame names it (an accepted connection). */
        private long link;
        private final byte[] header = new byte[HEADER];
        private int headerFill;
        private long seq;
        private int payloadLeft = -1;
        private int payloadIndex;
        private int payloadBase;
        /** Frames received whole. */
        private long frames;
        private long bytes;
        private String error;

        Parser(int direction, long link) {
            this.direction = direction;
            this.link = link;
        }

        /** {@return the link this stream belongs to, or -1 before its first frame} */
        long link() {
            return link;
        }

        long frames() {
            return frames;
        }

        long bytes() {
            return bytes;
        }

        /** {@return whether a frame is half received} */
        boolean midFrame() {
            return headerFill > 0 || payloadLeft >= 0;
        }

        /** {@return the first thing wrong with the stream, or null} */
        String error() {
            return error;
        }

        void accept(MemorySegment data) {
            long n = data.byteSize();
            for (long i = 0; i < n && error == null; i++) {
                accept(data.get(ValueLayout.JAVA_BYTE, i));
            }
        }

        void accept(byte[] data, int offset, int length) {
            for (int i = 0; i < length && error == null; i++) {
                accept(data[offset + i]);
            }
        }

        private void accept(byte b) {
            bytes++;
            if (payloadLeft < 0) {
                header[headerFill++] = b;
                if (headerFill == HEADER) {
                    headerFill = 0;
                    startFrame(ByteBuffer.wrap(header));
                }
                return;
            }
            if (b != payload(payloadBase, payloadIndex)) {
                error = "payload byte " + payloadIndex + " of frame " + seq + " of link " + link + " differs (after "
                        + bytes + " bytes)";
                return;
            }
            payloadIndex++;
            if (--payloadLeft == 0) {
                endFrame();
            }
        }

        private void startFrame(ByteBuffer h) {
            int magic = h.getInt();
            int dir = h.getInt();
            long l = h.getLong();
            long s = h.getLong();
            int len = h.getInt();
            if (magic != MAGIC || dir != direction || len < 0) {
                error = "no frame header at byte " + (bytes - HEADER) + " (frame " + seq + " of link " + link
                        + " expected): magic=" + Integer.toHexString(magic) + " dir=" + dir + " link=" + l + " seq=" + s;
                return;
            }
            if (link < 0) {
                link = l;
            }
            if (l != link || s != seq) {
                error = "frame of link " + l + " seq " + s + " where link " + link + " seq " + seq + " was due (after "
                        + frames + " frames)";
                return;
            }
            payloadBase = base(direction, link, seq);
            payloadIndex = 0;
            payloadLeft = len;
            if (len == 0) {
                endFrame();
            }
        }

        private void endFrame() {
            payloadLeft = -1;
            frames++;
            seq++;
        }
    }
}
