package io.quiesce;

import com.tngtech.archunit.base.DescribedPredicate;
import com.tngtech.archunit.core.domain.JavaClass;
import com.tngtech.archunit.core.domain.JavaCodeUnit;
import com.tngtech.archunit.core.domain.JavaField;
import com.tngtech.archunit.core.domain.JavaMember;
import com.tngtech.archunit.core.domain.JavaModifier;
import com.tngtech.archunit.core.importer.ImportOption;
import com.tngtech.archunit.junit.AnalyzeClasses;
import com.tngtech.archunit.junit.ArchTest;
import com.tngtech.archunit.lang.ArchCondition;
import com.tngtech.archunit.lang.ArchRule;
import com.tngtech.archunit.lang.ConditionEvents;
import com.tngtech.archunit.lang.SimpleConditionEvent;

import io.quiesce.reactor.Reactor;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.lang.module.ModuleDescriptor;
import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashSet;
import java.util.Set;
import java.util.stream.Collectors;

import static com.tngtech.archunit.base.DescribedPredicate.not;
import static com.tngtech.archunit.core.domain.JavaClass.Predicates.belongToAnyOf;
import static com.tngtech.archunit.lang.syntax.ArchRuleDefinition.classes;
import static com.tngtech.archunit.lang.syntax.ArchRuleDefinition.noClasses;
import static com.tngtech.archunit.library.Architectures.layeredArchitecture;
import static com.tngtech.archunit.library.dependencies.SlicesRuleDefinition.slices;

/**
 * The architecture as rules over the library's compiled classes (target/classes only: tests,
 * examples and benchmarks compile with the tests and may use internals).
 *
 * <ul>
 *   <li>Layers: generated bindings, syscalls, io_uring, reactor, buffers, network, metrics; a
 *       layer depends only on layers below it.</li>
 *   <li>No cycle between any two packages.</li>
 *   <li>Only the raw layers touch the generated bindings.</li>
 *   <li>No public signature of an exported package names a type of a package the module does
 *       not export: a user could see the type but not use it.</li>
 * </ul>
 */
@AnalyzeClasses(packages = "io.quiesce",
        importOptions = {ImportOption.DoNotIncludeTests.class, ImportOption.DoNotIncludeJars.class})
class ArchitectureTest {
    private static final String LINUX = "io.quiesce.sys.linux..";

    /** Bottom to top; each layer may use any layer listed before it. */
    @ArchTest
    static final ArchRule layersOnlyDependDownwards = layeredArchitecture()
            .consideringOnlyDependenciesInLayers()
            .layer("Generated").definedBy(LINUX)
            .layer("Sys").definedBy("io.quiesce.sys", "io.quiesce.sys.raw..")
            .layer("Uring").definedBy("io.quiesce.uring..")
            .layer("Reactor").definedBy("io.quiesce.reactor..")
            .layer("Buffer").definedBy("io.quiesce.buffer..")
            .layer("Net").definedBy("io.quiesce.net..")
            .layer("Metrics").definedBy("io.quiesce.metrics..")
            .whereLayer("Metrics").mayNotBeAccessedByAnyLayer()
            .whereLayer("Net").mayOnlyBeAccessedByLayers("Metrics")
            .whereLayer("Buffer").mayOnlyBeAccessedByLayers("Net", "Metrics")
            .whereLayer("Reactor").mayOnlyBeAccessedByLayers("Buffer", "Net", "Metrics")
            .whereLayer("Uring").mayOnlyBeAccessedByLayers("Reactor", "Buffer", "Net", "Metrics")
            .whereLayer("Sys").mayOnlyBeAccessedByLayers("Uring", "Reactor", "Buffer", "Net", "Metrics")
            .whereLayer("Generated").mayOnlyBeAccessedByLayers("Sys", "Uring", "Reactor", "Buffer", "Net", "Metrics");

    /** Every package is its own slice: {@code sys} and {@code sys.raw} too, so they cannot cycle. */
    @ArchTest
    static final ArchRule noCyclesBetweenPackages = slices().matching("io.quiesce.(**)")
            .should().beFreeOfCycles();

    /**
     * The generated bindings are used by the raw syscall table, by the io_uring package (which is
     * the raw layer of its ring: it lays out SQEs and CQEs itself) and by {@code Errno}, which takes
     * the errno values and {@code strerrorname_np}/{@code strerrordesc_np} from them.
     */
    @ArchTest
    static final ArchRule onlyTheRawLayersUseTheGeneratedBindings = noClasses()
            .that().resideOutsideOfPackages(LINUX, "io.quiesce.sys.raw..", "io.quiesce.uring..")
            .and(not(belongToAnyOf(io.quiesce.sys.Errno.class)))
            .should().dependOnClassesThat().resideInAPackage(LINUX)
            .because("only the raw layers may call the jextract bindings");

    @ArchTest
    static final ArchRule publicApiNamesOnlyExportedTypes = classes()
            .that(publicApi())
            .should(exposeOnlyExportedTypes());

    /**
     * The packages {@code module-info} exports without qualification, read from the compiled
     * descriptor beside the library's classes (a bare {@code /module-info.class} resource would
     * find some JDK module's first).
     */
    static Set<String> exportedPackages() {
        try {
            var classes = Path.of(Reactor.class.getProtectionDomain().getCodeSource().getLocation().toURI());
            try (InputStream in = Files.newInputStream(classes.resolve("module-info.class"))) {
                return ModuleDescriptor.read(in).exports().stream()
                        .filter(e -> !e.isQualified())
                        .map(ModuleDescriptor.Exports::source)
                        .collect(Collectors.toUnmodifiableSet());
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } catch (URISyntaxException e) {
            throw new IllegalStateException(e);
        }
    }

    /** A public class of an exported package whose enclosing classes are public too. */
    private static DescribedPredicate<JavaClass> publicApi() {
        Set<String> exported = exportedPackages();
        return DescribedPredicate.describe("are public API (public, in a package " + exported + ")",
                c -> exported.contains(c.getPackageName()) && visibleToUsers(c));
    }

    private static boolean visibleToUsers(JavaClass c) {
        for (JavaClass k = c; k != null; k = k.getEnclosingClass().orElse(null)) {
            if (!k.getModifiers().contains(JavaModifier.PUBLIC)) {
                return false;
            }
        }
        return true;
    }

    private static boolean inNonExportedQuiescePackage(JavaClass type, Set<String> exported) {
        JavaClass base = type.getBaseComponentType();
        String pkg = base.getPackageName();
        return pkg.startsWith("io.quiesce") && !exported.contains(pkg);
    }

    private static ArchCondition<JavaClass> exposeOnlyExportedTypes() {
        Set<String> exported = exportedPackages();
        return new ArchCondition<>("name no type of a non-exported package in a public or protected signature") {
            @Override
            public void check(JavaClass c, ConditionEvents events) {
                Set<JavaClass> supertypes = new LinkedHashSet<>();
                c.getRawSuperclass().ifPresent(supertypes::add);
                supertypes.addAll(c.getRawInterfaces());
                for (JavaClass s : supertypes) {
                    report(events, c, "extends or implements", s);
                }
                for (JavaMember m : c.getMembers()) {
                    if (!m.getModifiers().contains(JavaModifier.PUBLIC)
                            && !m.getModifiers().contains(JavaModifier.PROTECTED)) {
                        continue;
                    }
                    Set<JavaClass> named = new LinkedHashSet<>();
                    if (m instanceof JavaField f) {
                        named.addAll(f.getType().getAllInvolvedRawTypes());
                    } else if (m instanceof JavaCodeUnit u) {
                        named.addAll(u.getReturnType().getAllInvolvedRawTypes());
                        u.getParameterTypes().forEach(p -> named.addAll(p.getAllInvolvedRawTypes()));
                        u.getExceptionTypes().forEach(t -> named.addAll(t.getAllInvolvedRawTypes()));
                    }
                    for (JavaClass t : named) {
                        report(events, c, m.getFullName() + " names", t);
                    }
                }
            }

            private void report(ConditionEvents events, JavaClass c, String what, JavaClass t) {
                if (inNonExportedQuiescePackage(t, exported)) {
                    events.add(SimpleConditionEvent.violated(c,
                            what + " " + t.getName() + ", whose package the module does not export"));
                }
            }
        };
    }
}
