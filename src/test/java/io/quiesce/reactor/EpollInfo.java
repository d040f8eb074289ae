package io.quiesce.reactor;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * What the kernel has registered in an epoll, read from {@code /proc/self/fdinfo/<epfd>}: one
 * {@code tfd:} line per registration, naming the target fd number as it was registered. A
 * registration outlives {@code close(fd)} while a dup keeps the file open
 * ({@code epoll-semantics-ofd-dup-fork.txt}), so a line naming a closed handle's fd is a ghost.
 */
final class EpollInfo {
    private EpollInfo() {}

    /** {@return the target fd numbers registered in {@code epfd}, as the kernel lists them} */
    static List<Integer> registeredFds(int epfd) {
        List<Integer> out = new ArrayList<>();
        try {
            for (String line : Files.readAllLines(Path.of("/proc/self/fdinfo/" + epfd))) {
                if (line.startsWith("tfd:")) {
                    out.add(Integer.parseInt(line.substring(4).trim().split("\\s+")[0]));
                }
            }
        } catch (IOException e) {
            throw new IllegalStateException("cannot read fdinfo of epoll fd " + epfd, e);
        }
        return out;
    }
}
