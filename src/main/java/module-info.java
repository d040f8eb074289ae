/**
 * Quiesce: a Linux epoll reactor on the Foreign Function and Memory API.
 *
 * <p>Exported: the reactor, the network layer, metrics, and the syscall layer's failure types
 * ({@link io.quiesce.sys.SyscallException}, {@link io.quiesce.sys.Errno} and the other
 * {@link io.quiesce.sys.SyscallFailure}s). The raw syscall table ({@code io.quiesce.sys.raw}),
 * the generated bindings ({@code io.quiesce.sys.linux}), the io_uring layer, the off-heap
 * buffers and the reactor's hooks for the layers above ({@code io.quiesce.reactor.internal})
 * stay inside the module: an ArchitectureTest checks that no exported signature names them. Run with
 * {@code --enable-native-access=io.quiesce} on the module path, or
 * {@code --enable-native-access=ALL-UNNAMED} on the class path.
 */
module io.quiesce {
    // Optional: only QuiesceMetrics uses it. Not transitive: javac would then require Micrometer
    // to compile any module that requires io.quiesce, and a metrics user requires it anyway.
    requires static micrometer.core;

    exports io.quiesce.reactor;
    // Only the failure types: SyscallException (call, fd, errno) and its java.net siblings appear
    // in the public API. The raw table lives in io.quiesce.sys.raw, which is not exported.
    exports io.quiesce.sys;
    exports io.quiesce.net;
    exports io.quiesce.metrics;
}
