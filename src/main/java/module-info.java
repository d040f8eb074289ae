/**
 * Quiesce: a Linux epoll reactor on the Foreign Function and Memory API.
 *
 * <p>Exported: the reactor, the network layer, off-heap buffers, metrics, and the syscall layer
 * (for {@link io.quiesce.sys.SyscallException} and {@link io.quiesce.sys.Errno}). The generated
 * bindings ({@code io.quiesce.sys.linux}) stay inside the module. Run with
 * {@code --enable-native-access=io.quiesce} on the module path, or
 * {@code --enable-native-access=ALL-UNNAMED} on the class path.
 */
module io.quiesce {
    // Optional: only QuiesceMetrics uses it. Not transitive: javac would then require Micrometer
    // to compile any module that requires io.quiesce, and a metrics user requires it anyway.
    requires static micrometer.core;

    exports io.quiesce.reactor;
    // The syscall layer is exported because its SyscallException (call, fd, errno) appears in the
    // public API; Syscalls itself is a raw table with no compatibility promise.
    exports io.quiesce.sys;
    exports io.quiesce.net;
    exports io.quiesce.buffer;
    exports io.quiesce.metrics;
}
