package io.quiesce.metrics;

import org.junit.jupiter.api.Test;

import java.io.File;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Micrometer is optional: Quiesce runs as a named module ({@code io.quiesce}, alone on the module
 * path) in a child JVM that has no Micrometer at all, with native access granted to the module and
 * no warning printed.
 */
class WithoutMicrometerTest {
    @Test
    void theLibraryRunsAsAModuleWithoutMicrometer() throws Exception {
        List<String> cp = Arrays.asList(System.getProperty("java.class.path").split(File.pathSeparator));
        assertTrue(cp.stream().anyMatch(e -> e.contains("micrometer")), "the test itself has Micrometer");
        String classes = Path.of("target/classes").toAbsolutePath().toString();
        String testClasses = Path.of("target/test-classes").toAbsolutePath().toString();
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        Process p = new ProcessBuilder(java,
                "--module-path", classes,
                "--add-modules", "io.quiesce",
                "--enable-native-access=io.quiesce",
                // The smoke makes its eventfd with the raw table, which the module does not export.
                "--add-exports", "io.quiesce/io.quiesce.sys.raw=ALL-UNNAMED",
                "-cp", testClasses,
                "io.quiesce.testing.ReactorSmoke") // outside the module's packages
                .redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(60, TimeUnit.SECONDS));
        assertEquals(0, p.exitValue(), out);
        assertTrue(out.contains("reactor ok without micrometer"), out);
        assertFalse(out.contains("WARNING"), "no restricted-method or other warning: " + out);
    }
}
