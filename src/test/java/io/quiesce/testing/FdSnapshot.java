package io.quiesce.testing;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.TreeMap;
import java.util.stream.Stream;

/**
 * The kernel objects this process holds open, read from {@code /proc/self/fd}: sockets, epoll
 * and event fds, pipes and timerfds, the kinds Quiesce creates. Jar and log files the JVM opens
 * lazily are not counted, so a snapshot taken before a test and one taken after compare equal
 * exactly when the test leaked nothing.
 */
public record FdSnapshot(Map<Integer, String> fds) {

    /** {@return the fds open now, by number, with what they point at} */
    public static FdSnapshot take() {
        Map<Integer, String> out = new TreeMap<>();
        try (Stream<Path> s = Files.list(Path.of("/proc/self/fd"))) {
            for (Path p : (Iterable<Path>) s::iterator) {
                try {
                    String target = Files.readSymbolicLink(p).toString();
                    if (isKernelObject(target)) {
                        out.put(Integer.parseInt(p.getFileName().toString()), target);
                    }
                } catch (IOException vanished) {
                    // closed between list and readlink (e.g. the directory stream itself)
                }
            }
        } catch (IOException e) {
            throw new IllegalStateException("cannot list /proc/self/fd", e);
        }
        return new FdSnapshot(out);
    }

    static boolean isKernelObject(String target) {
        return target.startsWith("socket:") || target.startsWith("anon_inode:")
                || target.startsWith("pipe:");
    }

    /** {@return how many fds are open} */
    public int count() {
        return fds.size();
    }

    /** {@return the fds open in this snapshot that were not open in {@code before}} */
    public Map<Integer, String> newSince(FdSnapshot before) {
        Map<Integer, String> out = new TreeMap<>(fds);
        before.fds.forEach((fd, target) -> out.remove(fd, target));
        return out;
    }

    /**
     * {@return the fds open now that were not open in {@code before}}, once closes still under
     * way have had their chance (polled for at most 2 s): a leak is what is left after that.
     */
    public static Map<Integer, String> leakedSince(FdSnapshot before) throws InterruptedException {
        Map<Integer, String> leaked = Map.of();
        for (int i = 0; i < 100; i++) {
            leaked = take().newSince(before);
            if (leaked.isEmpty()) {
                break;
            }
            Thread.sleep(20);
        }
        return leaked;
    }

    /**
     * {@return the fds of {@code before} that are no longer open on the same file now}: someone
     * else's fd closed, a double close on a reused number
     */
    public static Map<Integer, String> vanishedSince(FdSnapshot before) {
        Map<Integer, String> vanished = new TreeMap<>(before.fds);
        take().fds.forEach(vanished::remove); // same number, same file: still there
        return vanished;
    }

    /** {@return the names of live threads named {@code prefix} followed by digits (a group's reactors)} */
    public static java.util.List<String> liveThreads(String prefix) {
        String pattern = java.util.regex.Pattern.quote(prefix) + "\\d+";
        return Thread.getAllStackTraces().keySet().stream()
                .filter(t -> t.isAlive() && t.getName().matches(pattern)).map(Thread::getName).toList();
    }

    /** {@return whether {@code fd} is open now} */
    public static boolean isOpen(int fd) {
        return Files.exists(Path.of("/proc/self/fd/" + fd), java.nio.file.LinkOption.NOFOLLOW_LINKS);
    }

    /** {@return the {@code flags:} field of {@code /proc/self/fdinfo/<fd>} (octal in the file)} */
    public static int fdinfoFlags(int fd) {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/self/fdinfo/" + fd))) {
                if (line.startsWith("flags:")) {
                    return Integer.parseInt(line.substring(6).trim(), 8);
                }
            }
        } catch (IOException e) {
            throw new IllegalStateException("cannot read fdinfo of fd " + fd, e);
        }
        throw new IllegalStateException("no flags in fdinfo of fd " + fd);
    }
}
