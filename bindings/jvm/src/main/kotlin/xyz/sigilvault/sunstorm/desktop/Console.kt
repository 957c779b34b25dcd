package xyz.sigilvault.sunstorm.desktop

import java.io.PrintStream
import java.time.LocalTime
import java.time.format.DateTimeFormatter
import xyz.sigilvault.sunstorm.LogRecord
import xyz.sigilvault.sunstorm.LogSink
import xyz.sigilvault.sunstorm.UserPresence

/**
 * The core's logs on a console: `12:00:01.234 INFO  sunstorm_core::pair: message key=value`,
 * one line per record, on [out] (standard error by default, so a program's own output stays
 * clean). Install it with `setLogSink(ConsoleLogSink(), LogLevel.INFO)`; the level chosen
 * there filters the records. The core never logs secrets.
 */
class ConsoleLogSink(private val out: PrintStream = System.err) : LogSink {
    override fun log(record: LogRecord) {
        val time = LocalTime.now().format(TIME)
        out.println("$time ${record.level.name.padEnd(5)} ${record.target}: ${record.message}")
    }

    private companion object {
        val TIME: DateTimeFormatter = DateTimeFormatter.ofPattern("HH:mm:ss.SSS")
    }
}

/**
 * The core's [UserPresence] on a console: prints the reason ("Approve pairing with Acme")
 * and, when [autoApprove] is false, asks `[y/N]` on standard input. With [autoApprove] true
 * every check passes after printing the reason: for demos and tests only, a phone uses
 * biometrics (`BiometricUserPresence`, `LocalAuthPresence`).
 */
class ConsoleUserPresence(
    private val autoApprove: Boolean = false,
    private val out: PrintStream = System.out,
) : UserPresence {
    override fun verify(reason: String): Boolean = synchronized(this) {
        if (autoApprove) {
            out.println("presence check: $reason -> approved (autoApprove)")
            return true
        }
        out.print("$reason? [y/N] ")
        out.flush()
        val answer = readlnOrNull()?.trim()?.lowercase()
        answer == "y" || answer == "yes"
    }
}

