package io.quiesce.testing;

import org.junit.jupiter.api.extension.AfterAllCallback;
import org.junit.jupiter.api.extension.BeforeAllCallback;
import org.junit.jupiter.api.extension.ExtensionContext;

import java.util.Map;

import static org.junit.jupiter.api.Assertions.fail;

/**
 * A JUnit extension for a test class: fails the class if, after all its tests, this process holds
 * a socket, epoll, eventfd, timerfd or pipe that it did not hold before them. Closes that happen
 * asynchronously get a short grace period to land.
 */
public final class NoFdLeaks implements BeforeAllCallback, AfterAllCallback {
    private static final ExtensionContext.Namespace NS = ExtensionContext.Namespace.create(NoFdLeaks.class);

    @Override
    public void beforeAll(ExtensionContext context) {
        context.getStore(NS).put("before", FdSnapshot.take());
    }

    @Override
    public void afterAll(ExtensionContext context) throws InterruptedException {
        FdSnapshot before = context.getStore(NS).get("before", FdSnapshot.class);
        Map<Integer, String> leaked = Map.of();
        for (int i = 0; i < 100; i++) { // up to ~5 s for asynchronous closes to finish
            leaked = FdSnapshot.take().newSince(before);
            if (leaked.isEmpty()) {
                return;
            }
            Thread.sleep(50);
        }
        fail(context.getDisplayName() + " leaked fds: " + leaked);
    }
}
