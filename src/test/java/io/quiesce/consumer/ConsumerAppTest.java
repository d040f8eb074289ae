package io.quiesce.consumer;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.io.File;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.lang.module.ModuleDescriptor;
import java.lang.module.ModuleFinder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.spi.ToolProvider;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Quiesce as a user meets it: a tiny application ({@code src/test/consumer}, its own named module
 * {@code quiesce.consumer} that {@code requires io.quiesce}) is compiled here against the built
 * library alone ({@code target/classes}, an exploded module with its {@code module-info.class};
 * the test class path is not used), then run in a child JVM with nothing beside the library: no
 * Micrometer (it is {@code requires static}), no other dependency, and exactly one flag. It serves
 * and connects over 127.0.0.1 and must print its one line and nothing on stderr: no warning about
 * native access, {@code sun.misc.Unsafe} or anything else.
 */
class ConsumerAppTest {
    private static final Path LIBRARY = Path.of("target/classes").toAbsolutePath();
    private static final Path SOURCES = Path.of("src/test/consumer/quiesce.consumer").toAbsolutePath();
    private static final Path OUT = Path.of("target/consumer-app").toAbsolutePath();
    private static final String MAIN = "com.example.consumer.EchoApp";

    private static Path moduleOut;
    private static Path classPathOut;

    @BeforeAll
    static void compileTheApplication() throws IOException {
        assertTrue(Files.isRegularFile(LIBRARY.resolve("module-info.class")), "the library is built as a module");
        deleteTree(OUT);
        moduleOut = OUT.resolve("module");
        classPathOut = OUT.resolve("classpath");
        Files.createDirectories(moduleOut);
        Files.createDirectories(classPathOut);
        List<Path> all;
        try (Stream<Path> s = Files.walk(SOURCES)) {
            all = s.filter(p -> p.toString().endsWith(".java")).sorted().toList();
        }
        compile(all, List.of("--module-path", LIBRARY.toString(), "-d", moduleOut.toString()));
        compile(all.stream().filter(p -> !p.endsWith("module-info.java")).toList(),
                List.of("-cp", LIBRARY.toString(), "-d", classPathOut.toString()));
    }

    @Test
    void theLibraryModuleNeedsOnlyTheJdk() {
        ModuleDescriptor d = ModuleFinder.of(LIBRARY).find("io.quiesce").orElseThrow().descriptor();
        for (ModuleDescriptor.Requires r : d.requires()) {
            boolean optional = r.modifiers().contains(ModuleDescriptor.Requires.Modifier.STATIC);
            assertTrue(optional || r.name().startsWith("java."),
                    "io.quiesce requires " + r + ": a user would have to supply it (or jdk.unsupported's Unsafe)");
        }
    }

    @Test
    void runsAsANamedModuleWithOneFlag() throws Exception {
        String out = run("--enable-native-access=io.quiesce",
                "--module-path", LIBRARY + File.pathSeparator + moduleOut,
                "--module", "quiesce.consumer/" + MAIN);
        assertTrue(out.contains("app module quiesce.consumer, library module io.quiesce"), out);
    }

    @Test
    void runsOnTheClassPathWithOneFlag() throws Exception {
        String out = run("--enable-native-access=ALL-UNNAMED",
                "-cp", LIBRARY + File.pathSeparator + classPathOut, MAIN);
        assertTrue(out.contains("app module null, library module null"), out);
    }

    /**
     * With {@code sun.misc.Unsafe}'s memory access denied, any use of it by Quiesce or something
     * it loads throws. On the class path {@code jdk.unsupported} is resolved, so this is the run
     * where an Unsafe user could reach it.
     */
    @Test
    void runsWithSunMiscUnsafeMemoryAccessDenied() throws Exception {
        String out = run("--enable-native-access=ALL-UNNAMED", "--sun-misc-unsafe-memory-access=deny",
                "-cp", LIBRARY + File.pathSeparator + classPathOut, MAIN);
        assertTrue(out.contains("consumer ok"), out);
    }

    /** Runs the application in a child JVM; returns its stdout after checking exit 0 and an empty stderr. */
    private static String run(String... args) throws Exception {
        Path java = Path.of(System.getProperty("java.home"), "bin", "java");
        List<String> cmd = new ArrayList<>();
        cmd.add(java.toString());
        cmd.addAll(List.of(args));
        String name = Integer.toHexString(String.join(" ", cmd).hashCode());
        Path stdout = OUT.resolve(name + ".out");
        Path stderr = OUT.resolve(name + ".err");
        var pb = new ProcessBuilder(cmd).redirectOutput(stdout.toFile()).redirectError(stderr.toFile());
        Map<String, String> env = pb.environment();
        // What a launcher would pick up and announce on stderr ("Picked up ...") is not ours to test.
        env.remove("JAVA_TOOL_OPTIONS");
        env.remove("JDK_JAVA_OPTIONS");
        env.remove("_JAVA_OPTIONS");
        Process p = pb.start();
        if (!p.waitFor(60, TimeUnit.SECONDS)) {
            p.destroyForcibly().waitFor();
            fail("the application did not finish in 60 s: " + String.join(" ", cmd));
        }
        String out = Files.readString(stdout, StandardCharsets.UTF_8);
        String err = Files.readString(stderr, StandardCharsets.UTF_8);
        assertEquals(0, p.exitValue(), () -> String.join(" ", cmd) + "\nstdout: " + out + "\nstderr: " + err);
        assertEquals("", err, () -> "stderr of " + String.join(" ", cmd));
        assertTrue(out.startsWith("consumer ok: 32 bytes echoed"), out);
        return out;
    }

    /** javac through its {@link ToolProvider} (java.base), lint-clean or it fails. */
    private static void compile(List<Path> sources, List<String> options) {
        ToolProvider javac = ToolProvider.findFirst("javac").orElseThrow(() -> new AssertionError("no javac in this JDK"));
        List<String> args = new ArrayList<>(options);
        args.addAll(List.of("--release", "25", "-Xlint:all", "-Werror"));
        sources.forEach(p -> args.add(p.toString()));
        var report = new StringWriter();
        try (var w = new PrintWriter(report)) {
            int rc = javac.run(w, w, args.toArray(String[]::new));
            w.flush();
            assertEquals(0, rc, () -> "javac " + args + ":\n" + report);
        }
    }

    private static void deleteTree(Path root) throws IOException {
        if (!Files.exists(root)) {
            return;
        }
        try (Stream<Path> s = Files.walk(root)) {
            for (Path p : s.sorted((a, b) -> b.compareTo(a)).toList()) {
                Files.delete(p);
            }
        }
    }
}
