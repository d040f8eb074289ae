package io.quiesce.net;

import io.quiesce.reactor.ReactorGroup;
import io.quiesce.testing.NoFdLeaks;
import org.junit.jupiter.api.RepeatedTest;
import org.junit.jupiter.api.RepetitionInfo;
import org.junit.jupiter.api.extension.ExtendWith;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The network random schedule ({@link NetSchedule}) at unit-suite size, on the backend of
 * {@code -Dquiesce.io} (the pom runs the net suite on epoll, batch and the io_uring transport): a
 * few rounds of four threads for about a second each, a new seed per run unless
 * {@code -Dquiesce.seed=S} replays one ({@code ./mvnw test -Dtest=NetScheduleTest
 * -Dquiesce.io=uring -Dquiesce.seed=S}). {@code make stress} runs it for longer
 * ({@code NET_SECS=}).
 */
@ExtendWith({WarmJdkSockets.class, NoFdLeaks.class})
class NetScheduleTest {
    /** The seed of this run: the one asked for, or a fresh one, printed by every failure. */
    static final long BASE_SEED = Long.getLong("quiesce.seed", System.nanoTime() ^ 0x2545_F491_4F6C_DD1DL);

    @RepeatedTest(3)
    void randomNetworkTrafficKeepsEveryClosePromiseAndEveryByte(RepetitionInfo rep) throws Exception {
        long seed = BASE_SEED + rep.getCurrentRepetition() - 1;
        ReactorGroup.Io io = ReactorGroup.Io.fromSystemProperty();
        var r = NetSchedule.run(new NetSchedule.Config(seed, io, 4, 1_500, 24, 1_500));
        String replay = "seed=" + seed + " io=" + io + " (replay: ./mvnw test -Dtest=NetScheduleTest -Dquiesce.seed=" + seed
                + ", its first repetition, on " + io.name().toLowerCase(java.util.Locale.ROOT) + "): " + r.line()
                + "\n  " + String.join("\n  ", r.failures());
        System.out.println("seed=" + seed + " io=" + io + " " + r.line());
        assertTrue(r.clean(), replay);
        assertTrue(r.connections() > 20, "the round really opened connections: " + replay);
        assertTrue(r.framesChecked() > 100, "frames really crossed: " + replay);
    }
}
