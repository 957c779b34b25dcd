package xyz.sigilvault.sunstorm.test

import java.nio.file.Files
import java.nio.file.Path
import java.nio.file.Paths
import java.util.concurrent.LinkedBlockingQueue
import java.util.concurrent.TimeUnit

/** The `sunstorm` CLI built by scripts/test-bindings.sh (`-Dsunstorm.bin=…`). */
fun sunstormBin(): Path {
    val p = Paths.get(requireNotNull(System.getProperty("sunstorm.bin")) { "-Dsunstorm.bin is not set" })
    require(Files.isExecutable(p)) { "sunstorm CLI not found at $p (run scripts/test-bindings.sh)" }
    return p
}

/** A simulator child process (`sunstorm sim …`) whose stdout lines can be awaited. */
class SimProcess(args: List<String>) : AutoCloseable {
    private val process: Process =
        ProcessBuilder(listOf(sunstormBin().toString()) + args).redirectErrorStream(true).start()
    private val lines = LinkedBlockingQueue<String>()
    val seen = mutableListOf<String>()

    init {
        Thread({
            process.inputStream.bufferedReader().forEachLine { lines.put(it) }
        }, "sim-stdout").apply { isDaemon = true }.start()
    }

    /** The first line starting with [prefix], waiting at most [timeoutMs]. */
    fun awaitLine(prefix: String, timeoutMs: Long = 60_000): String {
        val deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(timeoutMs)
        while (true) {
            val left = deadline - System.nanoTime()
            check(left > 0) { "no line starting with '$prefix' from the simulator; saw: $seen" }
            val line = lines.poll(left, TimeUnit.NANOSECONDS) ?: continue
            seen += line
            if (line.startsWith(prefix)) return line
        }
    }

    /** Waits for the process to exit (at most [timeoutMs]) and returns its exit code. */
    fun awaitExit(timeoutMs: Long = 60_000): Int {
        check(process.waitFor(timeoutMs, TimeUnit.MILLISECONDS)) { "process did not exit; saw: $seen" }
        return process.exitValue()
    }

    /** Every line printed so far and until exit (call after [awaitExit]). */
    fun drain(): List<String> {
        while (true) {
            val line = lines.poll(200, TimeUnit.MILLISECONDS) ?: break
            seen += line
        }
        return seen.toList()
    }

    override fun close() {
        process.destroy()
        if (!process.waitFor(5, TimeUnit.SECONDS)) process.destroyForcibly().waitFor()
    }
}
