package io.quiesce.uring;

import java.util.BitSet;

/**
 * What {@code IORING_REGISTER_PROBE} reported: the opcodes this kernel supports. Never assume
 * an opcode exists because the headers name it — the headers describe the build machine, the
 * probe describes the kernel the program runs on.
 *
 * @param lastOp the highest opcode the kernel knows ({@code io_uring_probe.last_op})
 * @param supported one bit per opcode with {@code IO_URING_OP_SUPPORTED} set
 */
public record Probe(int lastOp, BitSet supported) {
    /** Makes a defensive copy of {@code supported}. */
    public Probe {
        supported = (BitSet) supported.clone();
    }

    /** {@return whether the kernel supports {@code opcode}} */
    public boolean supports(int opcode) {
        return opcode >= 0 && opcode <= lastOp && supported.get(opcode);
    }

    /** {@return a copy of this probe with {@code opcode} reported missing, to test fallbacks} */
    public Probe without(int opcode) {
        var bits = (BitSet) supported.clone();
        bits.clear(opcode);
        return new Probe(lastOp, bits);
    }

    @Override
    public BitSet supported() {
        return (BitSet) supported.clone();
    }
}
