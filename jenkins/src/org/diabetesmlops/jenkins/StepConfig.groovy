package org.diabetesmlops.jenkins

/**
 * The settings of a library step: its defaults merged with the caller's map. A key the step does not know is
 * an error naming it (a typo must not be ignored), and so is a value outside a step's list of choices.
 * Errors go through the calling script's error() step: the script sandbox refuses `new IllegalArgumentException`
 * in an untrusted library, and the user would see a script-approval message instead of ours.
 * Plain loops only, no closures: the class runs under Jenkins' CPS interpreter as it is.
 */
class StepConfig implements Serializable {

    /** The step's defaults overridden by the caller's config; unknown keys are refused. */
    static Map merge(Object steps, String step, Map defaults, Map config) {
        List unknown = []
        for (Object key : config.keySet()) {
            if (!defaults.containsKey(key)) {
                unknown.add(key)
            }
        }
        if (!unknown.isEmpty()) {
            steps.error(
                "${step}: unknown setting(s) ${unknown.sort()}; known: ${new ArrayList(defaults.keySet()).sort()}")
        }
        Map merged = [:]
        merged.putAll(defaults)
        merged.putAll(config)
        return merged
    }

    /** ``value`` itself when it is one of ``allowed``, else an error naming the step and the key. */
    static String oneOf(Object steps, String step, String key, Object value, List allowed) {
        String text = value == null ? null : value.toString()
        if (!allowed.contains(text)) {
            steps.error("${step}: ${key} must be one of ${allowed}, got '${value}'")
        }
        return text
    }

    /** The tasks to run for ``task``: the one named, or all of them in order for 'all'. */
    static List tasks(Object steps, String step, Object task, List order) {
        List allowed = new ArrayList(order)
        allowed.add('all')
        String chosen = oneOf(steps, step, 'task', task, allowed)
        return chosen == 'all' ? new ArrayList(order) : [chosen]
    }

    /** ``NAME=value`` entries for ``withEnv``, leaving out the names whose value is null (the agent's stands). */
    static List envEntries(Map values) {
        List entries = []
        for (Object name : values.keySet()) {
            Object value = values.get(name)
            if (value != null) {
                entries.add("${name}=${value}".toString())
            }
        }
        return entries
    }
}
