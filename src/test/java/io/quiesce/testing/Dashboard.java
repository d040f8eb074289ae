package io.quiesce.testing;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/** {@code dashboards/quiesce.json} read as data: its template variables and every panel query. */
public final class Dashboard {
    /** Where the dashboard lives, relative to the project directory (the tests' working directory). */
    public static final Path PATH = Path.of("dashboards/quiesce.json");

    /**
     * One query of one panel.
     *
     * @param panel the panel's title
     * @param refId the target's refId
     * @param expr the PromQL expression, with the dashboard's variables still in it
     * @param legend the legend format
     * @param datasourceUid the target's data source uid
     */
    public record Query(String panel, String refId, String expr, String legend, String datasourceUid) {}

    /**
     * A template variable.
     *
     * @param name its name ({@code $name} in queries)
     * @param type its type ({@code query}, {@code datasource}...)
     * @param query its query ({@code label_values(...)} for a query variable)
     */
    public record Variable(String name, String type, String query) {}

    /** The whole document. */
    public final Map<String, Object> root;
    /** Every target of every panel, in order. */
    public final List<Query> queries = new ArrayList<>();
    /** The template variables, in order. */
    public final List<Variable> variables = new ArrayList<>();
    /** The data source uid of each panel, in order. */
    public final List<String> panelDatasources = new ArrayList<>();

    private Dashboard(Map<String, Object> root) {
        this.root = root;
        for (Object v : Json.array(Json.object(root.get("templating")).get("list"))) {
            var m = Json.object(v);
            variables.add(new Variable((String) m.get("name"), (String) m.get("type"), String.valueOf(m.get("query"))));
        }
        for (Object p : Json.array(root.get("panels"))) {
            var panel = Json.object(p);
            panelDatasources.add(uid(panel.get("datasource")));
            for (Object t : Json.array(panel.get("targets"))) {
                var target = Json.object(t);
                queries.add(new Query((String) panel.get("title"), (String) target.get("refId"),
                        (String) target.get("expr"), (String) target.get("legendFormat"), uid(target.get("datasource"))));
            }
        }
    }

    private static String uid(Object datasource) {
        return datasource == null ? null : (String) Json.object(datasource).get("uid");
    }

    /** {@return the dashboard at {@link #PATH}} @throws IOException if it cannot be read */
    public static Dashboard load() throws IOException {
        return new Dashboard(Json.object(Json.parse(Files.readString(PATH))));
    }

    /** {@return the variable named {@code name}, or null} @param name the name */
    public Variable variable(String name) {
        return variables.stream().filter(v -> v.name().equals(name)).findFirst().orElse(null);
    }

    /**
     * {@return {@code expr} with each {@code $name} replaced} Longer names first, so that
     * {@code $__rate_interval} is never taken for a variable {@code $__rate}.
     *
     * @param expr a query
     * @param values the value of each variable, by name (without the {@code $})
     */
    public static String substitute(String expr, Map<String, String> values) {
        String out = expr;
        var names = new ArrayList<>(values.keySet());
        names.sort((a, b) -> b.length() - a.length());
        for (String n : names) {
            out = out.replace("${" + n + "}", values.get(n)).replace("$" + n, values.get(n));
        }
        return out;
    }
}
