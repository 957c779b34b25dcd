package xyz.sigilvault.sunstorm.desktop

import java.nio.file.Files
import java.nio.file.Path
import java.nio.file.Paths
import java.util.Collections
import java.util.concurrent.LinkedBlockingQueue
import java.util.concurrent.TimeUnit

/** Where the `sunstorm` command-line tool is (it runs the simulators and plays the service). */
object SunstormCli {
    /**
     * The `sunstorm` binary: the `sunstorm.bin` system property, else the `SUNSTORM_BIN`
     * environment variable, else `sunstorm` on the `PATH`. Build it with
     * `cargo build -p sunstorm-cli` (→ `target/debug/sunstorm`).
     */
    fun find(): Path {
        val explicit = System.getProperty("sunstorm.bin")?.takeIf { it.isNotBlank() }
            ?: System.getenv("SUNSTORM_BIN")?.takeIf { it.isNotBlank() }
        if (explicit != null) {
            val p = Paths.get(explicit)
            require(Files.isExecutable(p)) { "the sunstorm CLI is not at $p (build it: cargo build -p sunstorm-cli)" }
            return p
        }
        val onPath = System.getenv("PATH").orEmpty().split(java.io.File.pathSeparator)
            .filter { it.isNotBlank() }
            .map { Paths.get(it, "sunstorm") }
            .firstOrNull { Files.isExecutable(it) }
        return requireNotNull(onPath) {
            "cannot find the sunstorm CLI: set -Dsunstorm.bin=… or SUNSTORM_BIN, or put it on the PATH " +
                "(build it: cargo build -p sunstorm-cli → target/debug/sunstorm)"
        }
    }
}

/**
 * A `sunstorm …` child process (a simulator, or `sunstorm sp …` playing the service) whose
 * output lines (stdout and stderr) can be awaited. [close] stops it.
 */
class SimProcess(args: List<String>, sunstorm: Path = SunstormCli.find()) : AutoCloseable {
    private val process: Process =
        ProcessBuilder(listOf(sunstorm.toString()) + args).redirectErrorStream(true).start()
    private val lines = LinkedBlockingQueue<String>()
    private val seenLines: MutableList<String> = Collections.synchronizedList(mutableListOf())

    /** Every line consumed so far by [awaitLine] and [drain]. */
    val seen: List<String> get() = synchronized(seenLines) { seenLines.toList() }

    init {
        Thread({
            try {
                process.inputStream.bufferedReader().forEachLine { lines.put(it) }
            } finally {
                lines.put(EOF)
            }
        }, "sunstorm-${args.take(2).joinToString("-")}").apply { isDaemon = true }.start()
    }

    /** The first line starting with [prefix], waiting at most [timeoutMs]. */
    fun awaitLine(prefix: String, timeoutMs: Long = 60_000): String {
        val deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(timeoutMs)
        while (true) {
            val left = deadline - System.nanoTime()
            check(left > 0) { "no line starting with '$prefix' from sunstorm; saw: $seen" }
            val line = lines.poll(left, TimeUnit.NANOSECONDS) ?: continue
            if (line === EOF) {
                lines.put(EOF)
                error("sunstorm ended without a line starting with '$prefix'; saw: $seen")
            }
            seenLines += line
            if (line.startsWith(prefix)) return line
        }
    }

    /** Waits for the process to exit (at most [timeoutMs]) and returns its exit code. */
    fun awaitExit(timeoutMs: Long = 60_000): Int {
        check(process.waitFor(timeoutMs, TimeUnit.MILLISECONDS)) { "sunstorm did not exit; saw: $seen" }
        return process.exitValue()
    }

    /** Every line printed so far (after [awaitExit]: every line it printed). */
    fun drain(): List<String> {
        while (true) {
            val line = lines.poll(200, TimeUnit.MILLISECONDS) ?: break
            if (line === EOF) {
                lines.put(EOF)
                break
            }
            seenLines += line
        }
        return seen
    }

    override fun close() {
        process.destroy()
        if (!process.waitFor(5, TimeUnit.SECONDS)) process.destroyForcibly().waitFor()
    }

    private companion object {
        /** Marks the end of the output (compared by identity). */
        val EOF = String(charArrayOf('\u0000'))
    }
}
