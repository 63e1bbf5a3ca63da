/*
 * Evaluate a declarative Jenkinsfile, with the shared library's vars/ loaded, against a stub of the Pipeline
 * DSL, and print as JSON the build it would run: the stages in order (nested), their `when` conditions and
 * whether they run, every step of each stage, and the `sh` commands with the environment each would see.
 *
 *   groovy tests/jenkins/harness.groovy --jenkinsfile Jenkinsfile --library jenkins \
 *       [--branch main] [--param TARGET=local ...] [--env CHANGE_ID=7 ...] [--status 'Retrain/Evaluate#1=3' ...] \
 *       [--workspace DIR] [--build-number N] [--job-name NAME] [--git-commit SHA] \
 *       [--cause scm|timer|user|upstream]
 *
 * `--status ID=N` says what the `sh` step with that id exits with (default 0): a step with `returnStatus: true`
 * gets N back, any other fails the simulated build. Ids are `<stage path>#<n>`, n counting the stage's sh steps.
 * `--cause` says what started the build (default scm, a push): `triggeredBy` and `currentBuild.getBuildCauses()`
 * answer from it; timer is the nightly cron.
 *
 * Exit codes: 0 the plan is printed; 2 the Jenkinsfile or the library uses a step, directive, parameter or
 * name the stub does not know, breaks a rule of declarative syntax, or interpolates a secret (message on
 * stderr); 64 bad command line. A simulated failure (a step failing, `error`) is not an error of the harness:
 * it shows in the plan as `result: FAILURE`.
 *
 * Needs Debian's groovy (2.4) and JAVA_HOME set to a JDK 17. It checks structure, not what a real Jenkins
 * accepts: no plugin is loaded, each step below is a recorder.
 */

import groovy.json.JsonOutput
import org.codehaus.groovy.ast.ClassCodeVisitorSupport
import org.codehaus.groovy.ast.ClassNode
import org.codehaus.groovy.ast.expr.ArgumentListExpression
import org.codehaus.groovy.ast.expr.ClosureExpression
import org.codehaus.groovy.ast.expr.ConstantExpression
import org.codehaus.groovy.ast.expr.MethodCallExpression
import org.codehaus.groovy.classgen.GeneratorContext
import org.codehaus.groovy.control.CompilationFailedException
import org.codehaus.groovy.control.CompilePhase
import org.codehaus.groovy.control.CompilerConfiguration
import org.codehaus.groovy.control.SourceUnit
import org.codehaus.groovy.control.customizers.CompilationCustomizer

/** The Jenkinsfile or the library is wrong in a way a test must see: exit 2. */
class HarnessError extends RuntimeException {
    HarnessError(String message) { super(message) }
}

/** A step failed: the simulated build fails, later stages are skipped, `post` runs. */
class BuildFailure extends RuntimeException {
    BuildFailure(String message) { super(message) }
}

/** Checks on the maps steps and directives take: an unknown key is a typo. */
class Args {
    static Map check(String what, Object args, List<String> allowed, List<String> required = []) {
        if (!(args instanceof Map)) {
            throw new HarnessError("${what} expects named arguments (${allowed.join(', ')}), got ${args}")
        }
        Map map = (Map) args
        for (Object key : map.keySet()) {
            if (!allowed.contains(key.toString())) {
                throw new HarnessError("${what} has no parameter '${key}' (known: ${allowed.join(', ')})")
            }
        }
        for (String key : required) {
            if (map[key] == null) {
                throw new HarnessError("${what} needs the parameter '${key}'")
            }
        }
        return map
    }

    /** A value made JSON-friendly: strings, numbers, booleans, lists and maps of them. */
    static Object plain(Object value) {
        if (value == null || value instanceof Number || value instanceof Boolean) return value
        if (value instanceof Map) return ((Map) value).collectEntries { k, v -> [(k.toString()): plain(v)] }
        if (value instanceof Collection || value instanceof Object[]) return value.collect { plain(it) }
        if (value instanceof Closure) return '{ ... }'
        return value.toString()
    }
}

/** Rewrites `expression { ... }` into `expression('<source>', { ... })` so the plan can show the condition. */
class ExpressionSourceCustomizer extends CompilationCustomizer {
    ExpressionSourceCustomizer() { super(CompilePhase.CONVERSION) }

    void call(SourceUnit source, GeneratorContext context, ClassNode classNode) {
        List<String> lines = source.source.reader.readLines()
        def visitor = new ExpressionVisitor(source, lines)
        visitor.visitClass(classNode)
    }
}

class ExpressionVisitor extends ClassCodeVisitorSupport {
    SourceUnit unit
    List<String> lines

    ExpressionVisitor(SourceUnit unit, List<String> lines) {
        this.unit = unit
        this.lines = lines
    }

    protected SourceUnit getSourceUnit() { unit }

    void visitMethodCallExpression(MethodCallExpression call) {
        super.visitMethodCallExpression(call)
        if (call.methodAsString != 'expression' || !(call.arguments instanceof ArgumentListExpression)) return
        List args = ((ArgumentListExpression) call.arguments).expressions
        if (args.size() != 1 || !(args[0] instanceof ClosureExpression)) return
        ClosureExpression body = (ClosureExpression) args[0]
        String text = slice(body).replaceAll(/\s+/, ' ').trim()
        call.arguments = new ArgumentListExpression([new ConstantExpression(text), body])
    }

    private String slice(ClosureExpression node) {
        if (node.lineNumber < 1 || node.lastLineNumber < node.lineNumber) return '{ ... }'
        List<String> part = lines.subList(node.lineNumber - 1, node.lastLineNumber)
        if (part.size() == 1) return part[0].substring(node.columnNumber - 1, node.lastColumnNumber - 1)
        List<String> out = [part[0].substring(node.columnNumber - 1)]
        out.addAll(part.subList(1, part.size() - 1))
        out << part[-1].substring(0, node.lastColumnNumber - 1)
        return out.join(' ')
    }
}

/**
 * `env`: the build's variables. `env.X = ...` from a script is visible to later steps and `when` conditions, but
 * a variable declared in an `environment {}` block wins over it, as in Jenkins; `withEnv`/`withCredentials`
 * overlays win over both.
 */
class EnvProxy extends GroovyObjectSupport {
    Build build

    EnvProxy(Build build) { this.build = build }

    Object getProperty(String name) { build.visibleEnv()[name] }

    void setProperty(String name, Object value) {
        build.checkNoSecret("env.${name}", value)
        build.scriptEnv[name] = value == null ? null : value.toString()
    }

    Object getAt(String name) { getProperty(name) }

    void putAt(String name, Object value) { setProperty(name, value) }
}

/** `params`: the values of the declared parameters; a name that is not declared is a typo. */
class ParamsProxy extends GroovyObjectSupport {
    Build build

    ParamsProxy(Build build) { this.build = build }

    Object getProperty(String name) {
        if (!build.params.containsKey(name)) {
            throw new HarnessError("params.${name}: no such parameter (declared: ${build.params.keySet().join(', ')})")
        }
        build.params[name]
    }

    void setProperty(String name, Object value) { throw new HarnessError("params.${name} is read-only") }

    Object getAt(String name) { getProperty(name) }
}

/** `currentBuild`: the few properties a Jenkinsfile sets or reads. */
class CurrentBuild {
    /** The cause of each --cause, by the class name Jenkins gives it, with its short description. */
    static final Map<String, List<String>> CAUSES = [
        scm: ['jenkins.branch.BranchEventCause', 'Branch event'],
        timer: ['hudson.triggers.TimerTrigger$TimerTriggerCause', 'Started by timer'],
        user: ['hudson.model.Cause$UserIdCause', 'Started by user anonymous'],
        upstream: ['hudson.model.Cause$UpstreamCause', 'Started by upstream project'],
    ]

    String description
    String displayName
    String result
    int number
    Build build

    String getCurrentResult() { result ?: 'SUCCESS' }

    /** The causes of the build, as Jenkins lists them: [[_class: ..., shortDescription: ...]]. */
    List<Map> getBuildCauses() {
        List<String> cause = CAUSES[build.cause]
        return [[_class: cause[0], shortDescription: cause[1]]]
    }

    /** The causes of that class (or 'hudson.model.Cause': all); a class the harness does not model is an error. */
    List<Map> getBuildCauses(String className) {
        if (className == 'hudson.model.Cause') return getBuildCauses()
        List<String> known = CAUSES.values().collect { it[0] }
        if (!known.contains(className)) {
            throw new HarnessError("currentBuild.getBuildCauses('${className}'): not a cause the harness models " +
                                   "(${known.join(', ')})${build.where()}")
        }
        return getBuildCauses().findAll { it._class == className }
    }

    void setDescription(Object value) {
        build.checkNoSecret('currentBuild.description', value)
        description = value?.toString()
    }

    void setResult(Object value) {
        List order = ['SUCCESS', 'UNSTABLE', 'FAILURE', 'NOT_BUILT', 'ABORTED']
        String next = value?.toString()
        if (!order.contains(next)) throw new HarnessError("currentBuild.result = ${value}: not a result (${order})")
        if (result == null || order.indexOf(next) > order.indexOf(result)) result = next
    }
}

/** A `when` condition: its text for the plan and its test. */
class Condition {
    String text
    Closure<Boolean> test

    Condition(String text, Closure<Boolean> test) {
        this.text = text
        this.test = test
    }
}

/** Base of the directive sections: only the methods a section defines are known. */
abstract class Section {
    Build build
    String where

    Object getEnv() { build.envProxy }

    Object getParams() { build.paramsProxy }

    Object getCurrentBuild() { build.currentBuild }

    def methodMissing(String name, Object args) {
        throw new HarnessError("unknown directive '${name}' in ${where}")
    }

    def propertyMissing(String name) {
        throw new HarnessError("unknown name '${name}' in ${where}")
    }

    def propertyMissing(String name, Object value) {
        throw new HarnessError("unknown directive '${name}' (assignment) in ${where}")
    }

    protected Object runWith(Closure body) {
        Closure copy = body.rehydrate(this, body.owner, body.thisObject)
        copy.resolveStrategy = Closure.DELEGATE_ONLY
        return copy.call()
    }

    protected void once(Map seen, String directive) {
        if (seen.containsKey(directive)) throw new HarnessError("directive '${directive}' given twice in ${where}")
        seen[directive] = true
    }
}

class AgentSection extends Section {
    Map spec = [:]

    def label(Object value) { spec.label = value?.toString() }

    def node(Closure body) { spec.node = true; runWith(body) }

    def customWorkspace(Object value) { spec.customWorkspace = value?.toString() }

    def docker(Object value) { spec.docker = Args.plain(value) }
}

class OptionsSection extends Section {
    List<Map> options = []
    boolean stageLevel

    private def add(String name, Map args = [:]) {
        options << [name: name, args: Args.plain(args)]
        return null
    }

    def timeout(Map args) {
        Args.check('option timeout', args, ['time', 'unit', 'activity'], ['time'])
        add('timeout', args)
    }

    def timestamps() { add('timestamps') }

    def retry(int count) { add('retry', [count: count]) }

    def skipDefaultCheckout(boolean value = true) { add('skipDefaultCheckout', [value: value]) }

    def disableConcurrentBuilds(Map args = [:]) {
        stageOnly(false, 'disableConcurrentBuilds')
        Args.check('option disableConcurrentBuilds', args, ['abortPrevious'])
        add('disableConcurrentBuilds', args)
    }

    def buildDiscarder(Object strategy) {
        stageOnly(false, 'buildDiscarder')
        if (!(strategy instanceof Map) || strategy.strategy != 'logRotator') {
            throw new HarnessError("buildDiscarder expects logRotator(...), got ${strategy}")
        }
        add('buildDiscarder', (Map) strategy)
    }

    def logRotator(Map args) {
        Args.check('logRotator', args, ['numToKeepStr', 'daysToKeepStr', 'artifactNumToKeepStr', 'artifactDaysToKeepStr'])
        return [strategy: 'logRotator'] + Args.plain(args)
    }

    def quietPeriod(int seconds) { stageOnly(false, 'quietPeriod'); add('quietPeriod', [seconds: seconds]) }

    def durabilityHint(String hint) { stageOnly(false, 'durabilityHint'); add('durabilityHint', [hint: hint]) }

    private void stageOnly(boolean allowedInStage, String name) {
        if (stageLevel && !allowedInStage) throw new HarnessError("option '${name}' is not allowed in ${where}")
    }
}

class TriggersSection extends Section {
    List<Map> triggers = []

    def cron(Object spec) { triggers << [name: 'cron', spec: spec?.toString()] }

    def pollSCM(Object spec) { triggers << [name: 'pollSCM', spec: spec?.toString()] }

    def upstream(Map args) {
        Args.check('trigger upstream', args, ['upstreamProjects', 'threshold'], ['upstreamProjects'])
        triggers << [name: 'upstream'] + Args.plain(args)
    }
}

class ParametersSection extends Section {
    List<Map> definitions = []

    private void add(String type, Map args, Object defaultValue) {
        String name = args.name?.toString()
        if (!(name ==~ /[A-Za-z_][A-Za-z0-9_]*/)) throw new HarnessError("${type}: bad parameter name '${name}'")
        if (definitions.any { it.name == name }) throw new HarnessError("parameter '${name}' declared twice")
        definitions << [type: type, name: name, default: defaultValue, description: args.description?.toString()] +
            (args.choices != null ? [choices: Args.plain(args.choices)] : [:])
    }

    def booleanParam(Map args) {
        Args.check('booleanParam', args, ['name', 'defaultValue', 'description'], ['name'])
        if (args.defaultValue != null && !(args.defaultValue instanceof Boolean)) {
            throw new HarnessError("booleanParam ${args.name}: defaultValue must be true or false")
        }
        add('booleanParam', args, args.defaultValue ?: false)
    }

    def choice(Map args) {
        Args.check('choice', args, ['name', 'choices', 'description'], ['name', 'choices'])
        List choices = args.choices instanceof String ? args.choices.readLines() : args.choices.collect { it.toString() }
        if (choices.isEmpty()) throw new HarnessError("choice ${args.name}: no choices")
        add('choice', args + [choices: choices], choices[0])
    }

    def string(Map args) {
        Args.check('string', args, ['name', 'defaultValue', 'description', 'trim'], ['name'])
        add('string', args, args.defaultValue?.toString() ?: '')
    }

    def text(Map args) {
        Args.check('text', args, ['name', 'defaultValue', 'description'], ['name'])
        add('text', args, args.defaultValue?.toString() ?: '')
    }
}

/** `environment {}`: `NAME = value` in order; a later value may use an earlier one. */
class EnvironmentSection extends Section {
    Map<String, String> values = [:]

    def propertyMissing(String name) {
        if (values.containsKey(name)) return values[name]
        Map visible = build.visibleEnv()
        if (visible.containsKey(name)) return visible[name]
        throw new HarnessError("unknown name '${name}' in ${where}")
    }

    def propertyMissing(String name, Object value) {
        if (!(name ==~ /[A-Za-z_][A-Za-z0-9_]*/)) throw new HarnessError("bad variable name '${name}' in ${where}")
        build.checkNoSecret("environment ${name}", value)
        values[name] = value == null ? '' : value.toString()
    }

    def credentials(String id) { throw new HarnessError("credentials('${id}') in ${where}: bind credentials with withCredentials in the stage that needs them") }
}

class WhenSection extends Section {
    List<Condition> conditions = []
    Map<String, Boolean> flags = [:]

    private Condition children(String name, Closure body) {
        WhenSection inner = new WhenSection(build: build, where: "${where} ${name}")
        inner.runWith(body)
        if (inner.flags) throw new HarnessError("beforeAgent/beforeInput/beforeOptions inside ${name} in ${where}")
        return inner.combined(name)
    }

    Condition combined(String name) {
        List<Condition> list = new ArrayList<Condition>(conditions)
        if (list.isEmpty()) throw new HarnessError("${name} without conditions in ${where}")
        String text = "${name}(${list*.text.join(', ')})"
        if (name == 'allOf') return new Condition(text, { -> list.every { it.test.call() } })
        if (name == 'anyOf') return new Condition(text, { -> list.any { it.test.call() } })
        if (list.size() != 1) throw new HarnessError("not takes exactly one condition in ${where}")
        return new Condition("not(${list[0].text})", { -> !list[0].test.call() })
    }

    def allOf(Closure body) { conditions << children('allOf', body) }

    def anyOf(Closure body) { conditions << children('anyOf', body) }

    def not(Closure body) { conditions << children('not', body) }

    def branch(Object pattern) {
        String text = pattern instanceof Map ? pattern.pattern : pattern
        if (pattern instanceof Map) Args.check('when branch', pattern, ['pattern', 'comparator'], ['pattern'])
        String comparator = pattern instanceof Map ? (pattern.comparator ?: 'GLOB') : 'GLOB'
        conditions << new Condition("branch '${text}'", { -> build.matches(text, build.visibleEnv().BRANCH_NAME, comparator) })
    }

    def expression(String source, Closure body) {
        conditions << new Condition("expression ${source}", { -> build.evaluate(body) as boolean })
    }

    def expression(Closure body) { expression('{ ... }', body) }

    def environment(Map args) {
        Args.check('when environment', args, ['name', 'value', 'ignoreCase', 'comparator'], ['name', 'value'])
        conditions << new Condition("environment ${args.name} == '${args.value}'", { ->
            String actual = build.visibleEnv()[args.name.toString()]
            args.ignoreCase ? actual?.equalsIgnoreCase(args.value.toString()) : actual == args.value.toString()
        })
    }

    def equals(Map args) {
        Args.check('when equals', args, ['expected', 'actual'], ['expected'])
        conditions << new Condition("equals expected: '${args.expected}', actual: '${args.actual}'", { ->
            args.expected == args.actual
        })
    }

    def changeRequest(Map args = [:]) {
        Args.check('when changeRequest', args, ['target', 'branch', 'comparator'])
        conditions << new Condition('changeRequest' + (args ? " ${args}" : ''), { ->
            Map env = build.visibleEnv()
            env.CHANGE_ID && (args.target == null || build.matches(args.target.toString(), env.CHANGE_TARGET, 'GLOB'))
        })
    }

    def buildingTag() { conditions << new Condition('buildingTag', { -> build.visibleEnv().TAG_NAME != null }) }

    def tag(Object pattern) {
        conditions << new Condition("tag '${pattern}'", { ->
            String tag = build.visibleEnv().TAG_NAME
            tag != null && build.matches(pattern.toString(), tag, 'GLOB')
        })
    }

    def triggeredBy(Object cause) {
        String name = cause instanceof Map ? cause.cause : cause
        Map known = [TimerTrigger: 'timer', SCMTrigger: 'scm', UserIdCause: 'user', BranchIndexingCause: 'scm',
                     BranchEventCause: 'scm', UpstreamCause: 'upstream']
        if (!known.containsKey(name)) throw new HarnessError("triggeredBy '${name}': unknown cause (${known.keySet()})")
        conditions << new Condition("triggeredBy '${name}'", { -> build.cause == known[name] })
    }

    def beforeAgent(boolean value) { flags.beforeAgent = value }

    def beforeInput(boolean value) { flags.beforeInput = value }

    def beforeOptions(boolean value) { flags.beforeOptions = value }
}

/** `post {}` of the pipeline or of a stage: condition name -> block of steps. */
class PostSection extends Section {
    static final List<String> ORDER = ['always', 'changed', 'fixed', 'regression', 'aborted', 'failure', 'success',
                                       'unstable', 'unsuccessful', 'cleanup']
    Map<String, Closure> blocks = [:]

    def methodMissing(String name, Object args) {
        if (!ORDER.contains(name)) throw new HarnessError("unknown post condition '${name}' in ${where}")
        Object[] list = (Object[]) args
        if (list.length != 1 || !(list[0] instanceof Closure)) throw new HarnessError("post ${name} needs a block in ${where}")
        if (blocks.containsKey(name)) throw new HarnessError("post ${name} given twice in ${where}")
        blocks[name] = (Closure) list[0]
        return null
    }
}

/** A stage-level `input {}` directive: asked before the stage's agent is allocated (pipeline-model-definition). */
class InputSection extends Section {
    Map spec = [message: null, id: null, ok: null, submitter: null, submitterParameter: null]

    def message(Object value) { spec.message = value?.toString() }

    def id(Object value) { spec.id = value?.toString() }

    def ok(Object value) { spec.ok = value?.toString() }

    def submitter(Object value) { spec.submitter = value?.toString() }

    def submitterParameter(Object value) {
        String name = value?.toString()
        if (!(name ==~ /[A-Za-z_][A-Za-z0-9_]*/)) throw new HarnessError("bad submitterParameter '${name}' in ${where}")
        spec.submitterParameter = name
    }

    def parameters(Closure body) { throw new HarnessError("input parameters are not modelled in ${where}") }
}

class StageDef {
    String name
    Map input
    List<String> path
    Map agent
    Closure environment
    List<Map> options = []
    Condition when
    Map<String, Boolean> whenFlags = [:]
    Closure steps
    List<StageDef> stages
    Map<String, Closure> post = [:]
}

class StagesSection extends Section {
    List<StageDef> stages = []
    List<String> parent = []

    def stage(Object name, Closure body) {
        String text = name?.toString()
        if (!text) throw new HarnessError("a stage without a name in ${where}")
        if (stages.any { it.name == text }) throw new HarnessError("stage '${text}' declared twice in ${where}")
        StageSection section = new StageSection(build: build, where: "stage '${text}'", path: parent + [text])
        section.runWith(body)
        stages << section.finish(text)
        return null
    }
}

class StageSection extends Section {
    List<String> path
    StageDef stage = new StageDef()
    Map seen = [:]

    StageDef finish(String name) {
        stage.name = name
        stage.path = path
        int bodies = [stage.steps, stage.stages].count { it != null }
        if (bodies != 1) throw new HarnessError("${where} must have exactly one of steps or stages")
        return stage
    }

    def agent(Object value) {
        once(seen, 'agent')
        stage.agent = build.agentSpec(value, where)
    }

    def getAny() { 'any' }

    def getNone() { 'none' }

    def environment(Closure body) { once(seen, 'environment'); stage.environment = body }

    def options(Closure body) {
        once(seen, 'options')
        OptionsSection section = new OptionsSection(build: build, where: "options of ${where}", stageLevel: true)
        section.runWith(body)
        stage.options = section.options
    }

    def when(Closure body) {
        once(seen, 'when')
        WhenSection section = new WhenSection(build: build, where: "when of ${where}")
        section.runWith(body)
        if (section.conditions.isEmpty()) throw new HarnessError("when without conditions in ${where}")
        stage.when = section.conditions.size() == 1 ? section.conditions[0] : section.combined('allOf')
        stage.whenFlags = section.flags
    }

    def steps(Closure body) { once(seen, 'steps'); stage.steps = body }

    def input(Closure body) {
        once(seen, 'input')
        InputSection section = new InputSection(build: build, where: "input of ${where}")
        section.runWith(body)
        if (!section.spec.message) throw new HarnessError("input without a message in ${where}")
        stage.input = section.spec
    }

    def stages(Closure body) {
        once(seen, 'stages')
        StagesSection section = new StagesSection(build: build, where: "stages of ${where}", parent: path)
        section.runWith(body)
        if (section.stages.isEmpty()) throw new HarnessError("stages without a stage in ${where}")
        stage.stages = section.stages
    }

    def post(Closure body) {
        once(seen, 'post')
        PostSection section = new PostSection(build: build, where: "post of ${where}")
        section.runWith(body)
        stage.post = section.blocks
    }
}

class PipelineSection extends Section {
    Map seen = [:]
    Map agent
    List<Map> options = []
    List<Map> triggers = []
    List<Map> parameters = []
    Closure environment
    List<StageDef> stages
    Map<String, Closure> post = [:]

    def getAny() { 'any' }

    def getNone() { 'none' }

    def agent(Object value) { once(seen, 'agent'); agent = build.agentSpec(value, where) }

    def options(Closure body) {
        once(seen, 'options')
        OptionsSection section = new OptionsSection(build: build, where: 'options')
        section.runWith(body)
        options = section.options
    }

    def triggers(Closure body) {
        once(seen, 'triggers')
        TriggersSection section = new TriggersSection(build: build, where: 'triggers')
        section.runWith(body)
        triggers = section.triggers
    }

    def parameters(Closure body) {
        once(seen, 'parameters')
        ParametersSection section = new ParametersSection(build: build, where: 'parameters')
        section.runWith(body)
        parameters = section.definitions
    }

    def environment(Closure body) { once(seen, 'environment'); environment = body }

    def stages(Closure body) {
        once(seen, 'stages')
        StagesSection section = new StagesSection(build: build, where: 'stages')
        section.runWith(body)
        if (section.stages.isEmpty()) throw new HarnessError('stages without a stage')
        stages = section.stages
    }

    def post(Closure body) {
        once(seen, 'post')
        PostSection section = new PostSection(build: build, where: 'post')
        section.runWith(body)
        post = section.blocks
    }
}

/** Base class of the Jenkinsfile and of every vars/ script: the Pipeline steps, recorded. */
abstract class JenkinsScript extends Script {
    static Build build

    def methodMissing(String name, Object args) { build.callVar(name, (Object[]) args) }

    def propertyMissing(String name) { build.property(name) }

    Object getEnv() { build.envProxy }

    Object getParams() { build.paramsProxy }

    Object getCurrentBuild() { build.currentBuild }

    def pipeline(Closure body) { build.pipeline(body) }

    def sh(Object args) { build.sh(args) }

    def echo(Object message) { build.record([step: 'echo', message: build.checkNoSecret('echo', message)]); null }

    def error(Object message) {
        if (build.currentStage == null) throw new BuildFailure(message?.toString())
        build.record([step: 'error', message: message?.toString()])
        throw new BuildFailure(message?.toString())
    }

    def script(Closure body) { body.call() }

    def withEnv(List entries, Closure body) { build.withEnv(entries, body) }

    def withCredentials(List bindings, Closure body) { build.withCredentials(bindings, body) }

    def azureServicePrincipal(Map args) {
        Args.check('azureServicePrincipal', args, ['credentialsId', 'subscriptionIdVariable', 'clientIdVariable',
                                                   'clientSecretVariable', 'tenantIdVariable'], ['credentialsId'])
        Map variables = [subscriptionIdVariable: 'AZURE_SUBSCRIPTION_ID', clientIdVariable: 'AZURE_CLIENT_ID',
                         clientSecretVariable: 'AZURE_CLIENT_SECRET', tenantIdVariable: 'AZURE_TENANT_ID']
        return [kind: 'azureServicePrincipal', credentialsId: args.credentialsId.toString(),
                variables: variables.collect { key, fallback -> (args[key] ?: fallback).toString() }]
    }

    def usernamePassword(Map args) {
        Args.check('usernamePassword', args, ['credentialsId', 'usernameVariable', 'passwordVariable'],
                   ['credentialsId', 'usernameVariable', 'passwordVariable'])
        return [kind: 'usernamePassword', credentialsId: args.credentialsId.toString(),
                variables: [args.usernameVariable.toString(), args.passwordVariable.toString()]]
    }

    def string(Map args) {
        Args.check('string (credentials binding)', args, ['credentialsId', 'variable'], ['credentialsId', 'variable'])
        return [kind: 'string', credentialsId: args.credentialsId.toString(), variables: [args.variable.toString()]]
    }

    def timeout(Map args, Closure body) {
        Args.check('timeout', args, ['time', 'unit', 'activity'], ['time'])
        build.within("timeout(time: ${args.time}, unit: '${args.unit ?: 'MINUTES'}')", body)
    }

    def input(Object args) {
        Map map = args instanceof Map ? (Map) args : [message: args]
        Args.check('input', map, INPUT, ['message'])
        build.record([step: 'input', message: map.message.toString(), ok: map.ok?.toString(),
                      submitter: map.submitter?.toString(), within: new ArrayList(build.wrappers)])
        return null
    }

    // Parameter names below are the @DataBoundConstructor/@DataBoundSetter names of the plugins' step classes:
    // junit-plugin hudson/tasks/junit/pipeline/JUnitResultsStep.java (commit c64aedde), coverage-plugin
    // io/jenkins/plugins/coverage/metrics/steps/CoverageRecorder.java and CoverageTool.java (commit 0181950a),
    // core hudson/tasks/ArtifactArchiver.java, pipeline-milestone-step MilestoneStep.java, pipeline-input-step
    // InputStep.java.
    static final List<String> JUNIT = ['testResults', 'healthScaleFactor', 'testDataPublishers', 'keepLongStdio',
                                       'stdioRetention', 'keepProperties', 'keepTestNames', 'skipPublishingChecks',
                                       'checksName', 'allowEmptyResults', 'skipMarkingBuildUnstable',
                                       'skipMarkingStageUnstable', 'skipOldReports']
    static final List<String> RECORD_COVERAGE = ['tools', 'qualityGates', 'id', 'name', 'skipPublishingChecks',
                                                 'checksName', 'checksAnnotationScope', 'skipSymbolicLinks',
                                                 'ignoreParsingErrors', 'failOnError', 'enabledForFailure',
                                                 'sourceCodeEncoding', 'sourceDirectories', 'sourceCodeRetention',
                                                 'scm']
    static final List<String> COVERAGE_TOOL = ['parser', 'pattern']
    static final List<String> ARCHIVE_ARTIFACTS = ['artifacts', 'excludes', 'allowEmptyArchive', 'onlyIfSuccessful',
                                                   'fingerprint', 'defaultExcludes', 'caseSensitive', 'followSymlinks']
    static final List<String> MILESTONE = ['ordinal', 'label', 'unsafe']
    static final List<String> INPUT = ['message', 'id', 'ok', 'submitter', 'submitterParameter', 'parameters']

    def junit(Object args) {
        Map map = args instanceof Map ? (Map) args : [testResults: args]
        Args.check('junit', map, JUNIT, ['testResults'])
        build.needsWorkspace('junit')
        build.record([step: 'junit'] + Args.plain(map))
        return null
    }

    def archiveArtifacts(Object args) {
        Map map = args instanceof Map ? (Map) args : [artifacts: args]
        Args.check('archiveArtifacts', map, ARCHIVE_ARTIFACTS, ['artifacts'])
        build.needsWorkspace('archiveArtifacts')
        build.record([step: 'archiveArtifacts'] + Args.plain(map))
        return null
    }

    def recordCoverage(Map args) {
        Args.check('recordCoverage', args, RECORD_COVERAGE, ['tools'])
        for (Object tool : args.tools) Args.check('recordCoverage tool', tool, COVERAGE_TOOL, ['parser', 'pattern'])
        build.needsWorkspace('recordCoverage')
        build.record([step: 'recordCoverage'] + Args.plain(args))
        return null
    }

    /** `milestone`: ordinals rise within a build (Jenkins refuses a lower one); an older build passing one later is aborted. */
    def milestone(Object args = [:]) {
        Map map = args instanceof Map ? (Map) args : [ordinal: args]
        Args.check('milestone', map, MILESTONE)
        build.milestone(map)
        return null
    }

    def libraryResource(Object path) { build.libraryResource(path.toString()) }

    def dir(Object path, Closure body) { build.needsWorkspace('dir'); build.inDir(path.toString(), body) }

    def isUnix() { true }
}

/** One simulated build: the runtime behind every step. */
class Build {
    Map<String, String> globalEnv = [:]
    Map<String, String> scriptEnv = [:]
    Map<String, String> declaredEnv = [:]
    List<Map<String, String>> overlays = []
    List<Map> agents = []
    int lastMilestone = 0
    Map<String, Object> params = [:]
    Map<String, String> paramOverrides = [:]
    Map<String, Integer> statuses = [:]
    Set<String> usedStatuses = [] as Set
    String cause = 'scm'
    File libraryDir
    Map<String, Script> vars = [:]
    EnvProxy envProxy
    ParamsProxy paramsProxy
    CurrentBuild currentBuild
    boolean pipelineSeen = false

    List<String> wrappers = []
    List<String> cwd = []
    Map currentStage
    Map<String, Integer> shCounts = [:]
    List<Map> commands = []
    List<String> secrets = []
    Map plan = [:]

    Build() {
        envProxy = new EnvProxy(this)
        paramsProxy = new ParamsProxy(this)
        currentBuild = new CurrentBuild(build: this)
    }

    Map<String, String> visibleEnv() {
        Map<String, String> all = new LinkedHashMap<String, String>(globalEnv)
        all.putAll(scriptEnv)
        all.putAll(declaredEnv)
        for (Map<String, String> overlay : overlays) all.putAll(overlay)
        return all
    }

    Object property(String name) {
        if (vars.containsKey(name)) return vars[name]
        Map env = visibleEnv()
        if (env.containsKey(name)) return env[name]
        throw new HarnessError("unknown name '${name}'" + where())
    }

    Object callVar(String name, Object[] args) {
        if (!vars.containsKey(name)) throw new HarnessError("unknown step '${name}'" + where())
        return vars[name].invokeMethod('call', args)
    }

    String where() { currentStage ? " (in ${currentStage.path})" : '' }

    /** Steps that touch files need a node: with `agent none` only a stage with its own agent has one. */
    void needsWorkspace(String step) {
        if (agents.isEmpty()) {
            throw new HarnessError("step '${step}' needs a workspace but no agent is allocated (agent none)" + where())
        }
    }

    void milestone(Map args) {
        int ordinal = args.ordinal == null ? lastMilestone + 1 : (args.ordinal as int)
        if (ordinal <= lastMilestone) {
            throw new HarnessError("milestone ${ordinal} after milestone ${lastMilestone}: ordinals must rise" + where())
        }
        lastMilestone = ordinal
        record([step: 'milestone', ordinal: ordinal, label: args.label?.toString()])
    }

    /** Run ``body`` holding the agent ``spec`` (null or `none`: no new agent). */
    Object onAgent(Map spec, Closure body) {
        if (spec == null || spec.kind == 'none') return body.call()
        agents << spec
        try {
            return body.call()
        } finally {
            agents.remove(agents.size() - 1)
        }
    }

    String checkNoSecret(String what, Object value) {
        String text = value?.toString()
        for (String secret : secrets) {
            if (text != null && text.contains(secret)) {
                throw new HarnessError("${what}${where()}: a credential is interpolated into a Groovy string; " +
                                       'pass it to sh through the environment in a single-quoted script')
            }
        }
        return text
    }

    boolean matches(String pattern, String value, String comparator) {
        if (value == null) return false
        if (comparator == 'EQUALS') return pattern == value
        if (comparator == 'REGEXP') return value ==~ pattern
        if (comparator != 'GLOB') throw new HarnessError("unknown comparator '${comparator}'")
        String regex = pattern.replace('.', '\\.').replace('**', '\u0000').replace('*', '[^/]*').replace('\u0000', '.*')
                              .replace('?', '.')
        return value ==~ regex
    }

    Map agentSpec(Object value, String where) {
        if (value == 'any' || value == 'none') return [kind: value]
        if (value instanceof Closure) {
            AgentSection section = new AgentSection(build: this, where: "agent of ${where}")
            section.runWith((Closure) value)
            if (section.spec.isEmpty()) throw new HarnessError("empty agent in ${where}")
            return section.spec
        }
        throw new HarnessError("agent ${value}: expected any, none or a block in ${where}")
    }

    /** Run a closure of steps as Jenkins would: its names resolve in the script it was written in. */
    Object evaluate(Closure body) {
        Object root = body.owner
        while (root instanceof Closure) root = ((Closure) root).owner
        Closure copy = body.rehydrate(root, root, root)
        copy.resolveStrategy = Closure.OWNER_FIRST
        return copy.call()
    }

    void record(Map entry) {
        if (currentStage == null) throw new HarnessError("step '${entry.step}' outside a stage or post block")
        currentStage.steps << entry
    }

    Object within(String wrapper, Closure body) {
        wrappers << wrapper
        try {
            return body.call()
        } finally {
            wrappers.remove(wrappers.size() - 1)
        }
    }

    Object withEnv(List entries, Closure body) {
        Map<String, String> overlay = [:]
        for (Object entry : entries) {
            String text = checkNoSecret('withEnv', entry)
            int eq = text.indexOf('=')
            if (eq < 1) throw new HarnessError("withEnv entry '${text}' is not NAME=value" + where())
            String name = text.substring(0, eq)
            if (name.contains('+')) throw new HarnessError("withEnv ${name}: PATH+X entries are not modelled" + where())
            overlay[name] = text.substring(eq + 1)
        }
        overlays << overlay
        try {
            return within("withEnv(${overlay.keySet().join(', ')})", body)
        } finally {
            overlays.remove(overlays.size() - 1)
        }
    }

    Object withCredentials(List bindings, Closure body) {
        Map<String, String> overlay = [:]
        List<String> names = []
        for (Object binding : bindings) {
            if (!(binding instanceof Map) || !binding.kind) {
                throw new HarnessError("withCredentials takes bindings such as azureServicePrincipal(...), got ${binding}" + where())
            }
            names << "${binding.kind}(${binding.credentialsId})".toString()
            for (Object variable : binding.variables) {
                String placeholder = "@@secret(${binding.credentialsId}/${variable})@@"
                overlay[variable.toString()] = placeholder
                secrets << placeholder
            }
        }
        overlays << overlay
        try {
            return within("withCredentials(${names.join(', ')})", body)
        } finally {
            overlays.remove(overlays.size() - 1)
        }
    }

    Object inDir(String path, Closure body) {
        cwd << path
        try {
            return within("dir('${path}')", body)
        } finally {
            cwd.remove(cwd.size() - 1)
        }
    }

    String libraryResource(String path) {
        if (libraryDir == null) throw new HarnessError("libraryResource('${path}') without --library" + where())
        File file = new File(new File(libraryDir, 'resources'), path)
        if (!file.isFile()) throw new HarnessError("libraryResource('${path}'): no such file ${file}" + where())
        return file.text
    }

    Object sh(Object args) {
        Map map = args instanceof Map ? (Map) args : [script: args]
        Args.check('sh', map, ['script', 'label', 'returnStatus', 'returnStdout', 'encoding'], ['script'])
        if (map.returnStdout) throw new HarnessError('sh returnStdout is not modelled: write a file and read it' + where())
        if (currentStage == null) throw new HarnessError("step 'sh' outside a stage or post block")
        needsWorkspace('sh')
        String script = checkNoSecret('sh script', map.script)
        String stagePath = currentStage.path
        int n = (shCounts[stagePath] ?: 0) + 1
        shCounts[stagePath] = n
        String id = "${stagePath}#${n}"
        int status = statuses.containsKey(id) ? statuses[id] : 0
        if (statuses.containsKey(id)) usedStatuses << id
        Map<String, String> env = visibleEnv()
        env.STAGE_NAME = currentStage.name
        Map entry = [step: 'sh', id: id, stage: currentStage.stage, label: map.label?.toString(), script: script,
                     interpolated: map.script instanceof GString, returnStatus: map.returnStatus as boolean,
                     status: status, cwd: cwd ? cwd.join('/') : '.', env: env, within: new ArrayList(wrappers),
                     agent: agents[-1]]
        record(entry)
        commands << entry
        if (map.returnStatus) return status
        if (status != 0) throw new BuildFailure("script returned exit code ${status}")
        return null
    }

    Object pipeline(Closure body) {
        if (pipelineSeen) throw new HarnessError('pipeline {} declared twice')
        pipelineSeen = true
        PipelineSection section = new PipelineSection(build: this, where: 'pipeline')
        section.runWith(body)
        if (section.agent == null) throw new HarnessError('pipeline without agent')
        if (section.stages == null) throw new HarnessError('pipeline without stages')
        resolveParams(section.parameters)
        run(section)
        return null
    }

    void resolveParams(List<Map> definitions) {
        for (Map definition : definitions) params[definition.name] = definition.default
        paramOverrides.each { String name, String raw ->
            Map definition = definitions.find { it.name == name }
            if (definition == null) throw new HarnessError("--param ${name}: the pipeline declares no such parameter")
            if (definition.type == 'booleanParam') {
                if (!(raw in ['true', 'false'])) throw new HarnessError("--param ${name}=${raw}: expected true or false")
                params[name] = raw == 'true'
            } else if (definition.type == 'choice') {
                if (!(raw in definition.choices)) throw new HarnessError("--param ${name}=${raw}: not one of ${definition.choices}")
                params[name] = raw
            } else {
                params[name] = raw
            }
        }
    }

    void run(PipelineSection pipeline) {
        plan.agent = pipeline.agent
        plan.options = pipeline.options
        plan.triggers = pipeline.triggers
        plan.parameters = pipeline.parameters
        plan.params = new LinkedHashMap(params)
        plan.cause = cause
        if (pipeline.environment != null) {
            EnvironmentSection section = new EnvironmentSection(build: this, where: 'environment')
            section.runWith(pipeline.environment)
            declaredEnv.putAll(section.values)
            plan.environment = section.values
        } else {
            plan.environment = [:]
        }
        onAgent(pipeline.agent) {
            plan.stages = runStages(pipeline.stages, true, null)
            plan.post = runPost(pipeline.post, 'post')
        }
        plan.result = currentBuild.currentResult
        plan.description = currentBuild.description
        plan.commands = commands
        List unused = statuses.keySet().findAll { !usedStatuses.contains(it) } as List
        if (unused) throw new HarnessError("--status for ${unused}: no sh step has that id")
    }

    List<Map> runStages(List<StageDef> stages, boolean parentRuns, String parentReason) {
        List<Map> out = []
        for (StageDef stage : stages) {
            Map entry = [name: stage.name, path: stage.path.join('/'), stage: stage.path, when: stage.when?.text,
                         whenFlags: stage.whenFlags, options: stage.options, agent: stage.agent, environment: [:],
                         steps: [], runs: false, skipped: null, result: null]
            if (!parentRuns) {
                entry.skipped = parentReason
                entry.result = 'NOT_BUILT'
            } else if (currentBuild.currentResult != 'SUCCESS') {
                entry.skipped = 'earlier failure'
                entry.result = 'NOT_BUILT'
            } else {
                runStage(stage, entry)
            }
            if (stage.stages != null && entry.stages == null) {
                entry.stages = runStages(stage.stages, false, entry.skipped ?: 'parent skipped')
            }
            out << entry
        }
        return out
    }

    /**
     * One stage in declarative order: environment, `when` (first only with `beforeInput true`), the stage-level
     * `input` (inside the stage's options, before its agent), `when`, then its agent with steps or children and post.
     */
    private void runStage(StageDef stage, Map entry) {
        Map<String, String> overlay = [:]
        overlays << overlay
        try {
            currentStage = entry
            if (stage.environment != null) {
                EnvironmentSection section = new EnvironmentSection(build: this, where: "environment of stage '${stage.name}'")
                section.runWith(stage.environment)
                overlay.putAll(section.values)
                entry.environment = section.values
            }
            Boolean runs = null
            if (stage.when != null && (stage.input == null || stage.whenFlags.beforeInput)) {
                runs = stage.when.test.call() as boolean
            }
            if (runs != Boolean.FALSE && stage.input != null) entry.input = askInput(stage, overlay)
            if (runs == null) runs = stage.when == null ? true : (stage.when.test.call() as boolean)
            entry.whenValue = stage.when == null ? null : runs
            entry.runs = runs
            if (!runs) {
                entry.skipped = 'when'
                entry.result = 'NOT_BUILT'
                return
            }
            onAgent(stage.agent) {
                if (stage.steps != null) {
                    try {
                        evaluate(stage.steps)
                        entry.result = 'SUCCESS'
                    } catch (BuildFailure failure) {
                        entry.result = 'FAILURE'
                        entry.error = failure.message
                        currentBuild.result = 'FAILURE'
                    }
                } else {
                    currentStage = null
                    entry.stages = runStages(stage.stages, true, null)
                }
                currentStage = null
                finishStage(stage, entry)
            }
        } finally {
            overlays.remove(overlays.size() - 1)
            currentStage = null
        }
    }

    /** The stage's input as Jenkins asks it: whether an executor is held meanwhile, and the stage timeouts around it. */
    private Map askInput(StageDef stage, Map<String, String> overlay) {
        List<String> within = stage.options.findAll { it.name == 'timeout' }.collect {
            "timeout(time: ${it.args.time}, unit: '${it.args.unit ?: 'MINUTES'}')".toString()
        }
        if (stage.input.submitterParameter) overlay[stage.input.submitterParameter] = 'approver'
        return stage.input + [agentHeld: !agents.isEmpty(), within: within]
    }

    private void finishStage(StageDef stage, Map entry) {
        if (stage.stages != null) {
            boolean failed = entry.stages?.any { it.result == 'FAILURE' }
            entry.result = failed ? 'FAILURE' : 'SUCCESS'
        }
        if (stage.post) entry.post = runPost(stage.post, "${entry.path}/post", entry.result ?: 'SUCCESS')
    }

    List<Map> runPost(Map<String, Closure> blocks, String prefix, String stageResult = null) {
        List<Map> out = []
        for (String condition : PostSection.ORDER) {
            if (!blocks.containsKey(condition)) continue
            String result = stageResult ?: currentBuild.currentResult
            boolean runs = [always: true, cleanup: true, success: result == 'SUCCESS', failure: result == 'FAILURE',
                            unstable: result == 'UNSTABLE', aborted: result == 'ABORTED',
                            unsuccessful: result != 'SUCCESS', changed: result != 'SUCCESS',
                            fixed: false, regression: result != 'SUCCESS'][condition]
            String path = "${prefix}:${condition}"
            Map entry = [name: stageResult == null ? 'Declarative: Post Actions' : condition, path: path, stage: [path],
                         condition: condition, runs: runs, steps: []]
            if (runs) {
                currentStage = entry
                try {
                    evaluate(blocks[condition])
                } catch (BuildFailure failure) {
                    entry.error = failure.message
                    currentBuild.result = 'FAILURE'
                } finally {
                    currentStage = null
                }
            }
            out << entry
        }
        return out
    }
}

// ---- command line -------------------------------------------------------------------------------------------

def usage(String message) {
    System.err.println("harness: ${message}")
    System.exit(64)
}

Map options = [branch: 'main', workspace: '/var/jenkins/workspace/diabetes-mlops', buildNumber: '1', jobName: null,
               gitCommit: '0' * 40, cause: 'scm', jenkinsfile: null, library: null]
Map<String, String> params = [:]
Map<String, String> extraEnv = [:]
Map<String, Integer> statuses = [:]
List<String> argv = args as List
Map flags = ['--branch': 'branch', '--workspace': 'workspace', '--build-number': 'buildNumber', '--job-name': 'jobName',
             '--git-commit': 'gitCommit', '--cause': 'cause', '--jenkinsfile': 'jenkinsfile', '--library': 'library']
for (int i = 0; i < argv.size(); i++) {
    String flag = argv[i]
    if (i + 1 >= argv.size()) usage("${flag} needs a value")
    String value = argv[++i]
    if (flags.containsKey(flag)) {
        options[flags[flag]] = value
    } else if (flag in ['--param', '--env', '--status']) {
        int eq = value.indexOf('=')
        if (eq < 1) usage("${flag} ${value}: expected NAME=VALUE")
        String key = value.substring(0, eq)
        String val = value.substring(eq + 1)
        if (flag == '--param') params[key] = val
        if (flag == '--env') extraEnv[key] = val
        if (flag == '--status') {
            if (!(val ==~ /\d+/)) usage("--status ${value}: expected ID=exit code")
            statuses[key] = val as int
        }
    } else {
        usage("unknown option ${flag}")
    }
}
if (!options.jenkinsfile) usage('--jenkinsfile is required')
if (!CurrentBuild.CAUSES.containsKey(options.cause)) {
    usage("--cause ${options.cause}: unknown cause (${CurrentBuild.CAUSES.keySet().join(', ')})")
}

Build build = new Build(statuses: statuses, paramOverrides: params, cause: options.cause)
String jobName = options.jobName ?: "diabetes-mlops/${options.branch}"
build.currentBuild.number = options.buildNumber as int
build.globalEnv.putAll([
    BRANCH_NAME: options.branch,
    BUILD_NUMBER: options.buildNumber,
    BUILD_ID: options.buildNumber,
    JOB_NAME: jobName,
    JOB_BASE_NAME: jobName.tokenize('/')[-1],
    BUILD_TAG: "jenkins-${jobName.replace('/', '-')}-${options.buildNumber}".toString(),
    WORKSPACE: options.workspace,
    GIT_COMMIT: options.gitCommit,
])
build.globalEnv.putAll(extraEnv)
JenkinsScript.build = build

CompilerConfiguration config = new CompilerConfiguration()
config.scriptBaseClass = JenkinsScript.name
config.addCompilationCustomizers(new ExpressionSourceCustomizer())
GroovyShell shell = new GroovyShell(this.class.classLoader, new Binding(), config)
List<String> libraries = []
try {
    if (options.library) {
        build.libraryDir = new File(options.library)
        File varsDir = new File(build.libraryDir, 'vars')
        if (!varsDir.isDirectory()) usage("--library ${options.library}: no vars/ folder")
        File srcDir = new File(build.libraryDir, 'src')
        if (srcDir.isDirectory()) shell.classLoader.addClasspath(srcDir.path)
        varsDir.listFiles().findAll { it.name.endsWith('.groovy') }.sort { it.name }.each { File file ->
            String name = file.name - '.groovy'
            Script script = shell.parse(file.text, name)
            script.binding = new Binding()
            build.vars[name] = script
        }
    }
    File jenkinsfile = new File(options.jenkinsfile)
    if (!jenkinsfile.isFile()) usage("--jenkinsfile ${options.jenkinsfile}: no such file")
    List<String> lines = jenkinsfile.readLines().collect { String line ->
        def found = line =~ /^\s*@Library\(\s*\[?\s*['"]([^'"]+)['"].*\)\s*_\s*$/
        if (found) {
            libraries << found[0][1]
            return ''
        }
        return line
    }
    Script script = shell.parse(lines.join('\n'), 'Jenkinsfile')
    script.run()
    if (!build.pipelineSeen) throw new HarnessError('the Jenkinsfile declares no pipeline')
    build.plan.libraries = libraries
    println JsonOutput.prettyPrint(JsonOutput.toJson(Args.plain(build.plan)))
} catch (HarnessError error) {
    System.err.println("harness: ${error.message}")
    System.exit(2)
} catch (CompilationFailedException error) {
    System.err.println("harness: does not compile: ${error.message}")
    System.exit(2)
} catch (MissingMethodException error) {
    System.err.println("harness: unknown method '${error.method}'${build.where()}: ${error.message}")
    System.exit(2)
} catch (MissingPropertyException error) {
    System.err.println("harness: unknown name '${error.property}'${build.where()}: ${error.message}")
    System.exit(2)
} catch (BuildFailure error) {
    System.err.println("harness: a step failed outside any stage: ${error.message}")
    System.exit(2)
} catch (Exception error) {
    if (System.getenv('HARNESS_DEBUG')) error.printStackTrace()
    System.err.println("harness: ${error.class.name}: ${error.message}${build.where()}")
    System.exit(2)
}
