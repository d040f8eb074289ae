/**
 * Quiesce: a Linux epoll reactor on the Foreign Function and Memory API.
 *
 * <p>Only the public API packages are exported; the syscall layer ({@code io.quiesce.sys})
 * and the generated bindings ({@code io.quiesce.sys.linux}) stay inside the module.
 * Run with {@code --enable-native-access=io.quiesce} on the module path, or
 * {@code --enable-native-access=ALL-UNNAMED} on the class path.
 */
module io.quiesce {
    requires static micrometer.core;
    requires org.jctools.core;

    exports io.quiesce.reactor;
    exports io.quiesce.net;
    exports io.quiesce.buffer;
    exports io.quiesce.metrics;
}
