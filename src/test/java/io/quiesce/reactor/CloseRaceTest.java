package io.quiesce.reactor;

import org.junit.jupiter.api.RepeatedTest;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The close-race torture at unit-suite size; {@code make stress} runs it at 100,000 closes. */
class CloseRaceTest {
    @RepeatedTest(3)
    void closesRacingEventsAndFdReuseBreakNoInvariant() throws Exception {
        var r = CloseRaceTorture.run(6_000, 32, 4, 2, 2);
        assertTrue(r.closes() >= 6_000, r.line());
        assertEquals(0, r.staleEvents(), r.line());
        assertEquals(0, r.wrongHandle(), r.line());
        assertEquals(0, r.doubleCloses(), r.line());
        assertEquals(0, r.leakedFds(), r.line());
        assertEquals(0, r.callbacksAfterClose(), r.line());
        assertTrue(r.eventsDispatched() > 0, "events really fired during the closes: " + r);
    }
}
