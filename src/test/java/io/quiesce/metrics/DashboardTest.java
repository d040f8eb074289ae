package io.quiesce.metrics;

import io.quiesce.testing.Dashboard;
import io.quiesce.testing.Json;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The dashboard is fit for a fleet: it can be narrowed to a job, an instance and a reactor group,
 * no query silently adds up series of different instances, and it names no data source it does
 * not use. (Every query is also run against a real Prometheus: {@code PrometheusDashboardTest}.)
 */
class DashboardTest {
    /** A metric selector: {@code quiesce_x_total{...}} (its matchers in group 2, if any). */
    private static final Pattern SELECTOR = Pattern.compile("(quiesce_[a-z_]+)(\\{([^}]*)})?");
    /** An aggregation and its grouping clause, if any. */
    private static final Pattern AGGREGATION = Pattern.compile("\\b(sum|max|min|avg|count)\\s*(by\\s*\\(([^)]*)\\))?\\s*\\(");

    @Test
    void itHasJobInstanceAndGroupVariablesEachNarrowedByTheOneBefore() throws Exception {
        Dashboard d = Dashboard.load();
        var job = d.variable("job");
        var instance = d.variable("instance");
        var group = d.variable("group");
        assertNotNull(job, "a job variable");
        assertNotNull(instance, "an instance variable");
        assertNotNull(group, "a group variable");
        assertTrue(job.query().startsWith("label_values(") && job.query().endsWith(", job)"), job.query());
        assertTrue(instance.query().contains("job=~\"$job\"") && instance.query().endsWith(", instance)"), instance.query());
        assertTrue(group.query().contains("instance=~\"$instance\"") && group.query().endsWith(", group)"), group.query());
    }

    @Test
    void everySelectorIsNarrowedByTheVariables() throws Exception {
        List<String> bad = new ArrayList<>();
        for (var q : Dashboard.load().queries) {
            Matcher m = SELECTOR.matcher(q.expr());
            int found = 0;
            while (m.find()) {
                found++;
                String matchers = m.group(3) == null ? "" : m.group(3);
                for (String v : new String[] {"job", "instance", "group"}) {
                    if (!matchers.contains(v + "=~\"$" + v + "\"")) {
                        bad.add(q.panel() + "/" + q.refId() + ": " + m.group(1) + " lacks " + v + "=~\"$" + v + "\"");
                    }
                }
            }
            if (found == 0) {
                bad.add(q.panel() + "/" + q.refId() + ": no quiesce_ metric");
            }
        }
        assertEquals(List.of(), bad);
    }

    /**
     * A query either keeps instances apart (every aggregation groups {@code by} a list holding
     * {@code instance}, and the legend names it) or is explicitly across instances (its panel says
     * "all instances" and no aggregation keeps {@code instance}). A bare selector or rate is
     * refused: it would draw one line per label combination, named by nothing the legend shows.
     */
    @Test
    void everyQueryIsAggregatedPerInstanceOrExplicitlyAcrossInstances() throws Exception {
        List<String> bad = new ArrayList<>();
        for (var q : Dashboard.load().queries) {
            boolean fleetWide = q.panel().contains("all instances");
            Matcher m = AGGREGATION.matcher(q.expr());
            int aggregations = 0;
            while (m.find()) {
                aggregations++;
                String by = m.group(3) == null ? "" : m.group(3);
                boolean keepsInstance = List.of(by.split("\\s*,\\s*")).contains("instance");
                if (fleetWide == keepsInstance) {
                    bad.add(q.panel() + "/" + q.refId() + ": '" + m.group() + "' "
                            + (fleetWide ? "keeps instance in a panel across all instances" : "adds up instances"));
                }
            }
            if (aggregations == 0) {
                bad.add(q.panel() + "/" + q.refId() + ": not aggregated");
            }
            if (!fleetWide && (q.legend() == null || !q.legend().contains("{{instance}}"))) {
                bad.add(q.panel() + "/" + q.refId() + ": the legend does not name the instance: " + q.legend());
            }
        }
        assertEquals(List.of(), bad);
    }

    /** Each per-reactor panel groups by reactor, so two reactors (or groups) never become one line. */
    @Test
    void perReactorPanelsKeepReactorsApart() throws Exception {
        List<String> bad = new ArrayList<>();
        for (var q : Dashboard.load().queries) {
            if (!q.panel().toLowerCase(java.util.Locale.ROOT).contains("reactor") || q.panel().contains("all instances")) {
                continue;
            }
            Matcher m = AGGREGATION.matcher(q.expr());
            while (m.find()) {
                String by = m.group(3) == null ? "" : m.group(3);
                if (!by.contains("reactor") || !by.contains("group")) {
                    bad.add(q.panel() + "/" + q.refId() + ": '" + m.group() + "' merges reactors");
                }
            }
        }
        assertEquals(List.of(), bad);
    }

    /**
     * Every panel and target uses the data source variable, and an {@code __inputs} entry (what
     * Grafana asks for on import) exists only if something refers to it: an unused one makes the
     * import ask for a data source the dashboard then ignores.
     */
    @Test
    void itNamesOnlyTheDataSourceItUses() throws Exception {
        Dashboard d = Dashboard.load();
        var ds = d.variable("datasource");
        assertNotNull(ds, "a data source variable");
        assertEquals("datasource", ds.type());
        assertEquals("prometheus", ds.query());
        for (String uid : d.panelDatasources) {
            assertEquals("${datasource}", uid, "a panel's data source");
        }
        for (var q : d.queries) {
            assertEquals("${datasource}", q.datasourceUid(), q.panel() + "/" + q.refId() + "'s data source");
        }
        Object inputs = d.root.get("__inputs");
        if (inputs != null) {
            String text = java.nio.file.Files.readString(Dashboard.PATH);
            for (Object i : Json.array(inputs)) {
                String name = (String) Json.object(i).get("name");
                assertTrue(text.contains("${" + name + "}"), "__inputs names " + name + " but nothing uses ${" + name + "}");
            }
        }
    }
}
