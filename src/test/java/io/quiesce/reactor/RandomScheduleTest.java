package io.quiesce.reactor;

import io.quiesce.testing.NoFdLeaks;
import org.junit.jupiter.api.RepeatedTest;
import org.junit.jupiter.api.RepetitionInfo;
import org.junit.jupiter.api.extension.ExtendWith;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The seeded random schedule ({@link RandomSchedule}) at unit-suite size: a few rounds of four
 * threads and a few thousand operations each, a new seed per run unless {@code -Dquiesce.seed=S}
 * replays one ({@code ./mvnw test -Dtest=RandomScheduleTest -Dquiesce.seed=S}). {@code make
 * stress} runs it for longer.
 */
@ExtendWith(NoFdLeaks.class)
class RandomScheduleTest {
    /** The seed of this run: the one asked for, or a fresh one, printed by every failure. */
    static final long BASE_SEED = Long.getLong("quiesce.seed", System.nanoTime() ^ 0x9E37_79B9_7F4A_7C15L);

    @RepeatedTest(4)
    void randomInterleavingsOnRealFdsKeepEveryClosePromise(RepetitionInfo rep) throws Exception {
        long seed = BASE_SEED + rep.getCurrentRepetition() - 1;
        var r = RandomSchedule.run(new RandomSchedule.Config(seed, 4, 1_500, 32, 3_000));
        String replay = "seed=" + seed + " (replay: -Dquiesce.seed=" + seed + " with one repetition, or make stress CLOSES=0 STRESS_SECS=0 STRESS_SEED="
                + seed + "): " + r.line() + " failures=" + r.failures();
        System.out.println("seed=" + seed + " " + r.line() + " events=" + r.events()
                + " undocumented_rejections=" + r.undocumentedRejections() + " finished_without_onclose=" + r.finishedWithoutOnClose());
        assertTrue(r.clean(), replay);
        assertTrue(r.closes() > 100, "the round really closed handles: " + replay);
        assertTrue(r.events() > 0, "events really fired: " + replay);
    }
}
