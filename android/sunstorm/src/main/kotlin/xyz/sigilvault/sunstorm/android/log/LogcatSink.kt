package xyz.sigilvault.sunstorm.android.log

import android.util.Log
import xyz.sigilvault.sunstorm.LogLevel
import xyz.sigilvault.sunstorm.LogRecord
import xyz.sigilvault.sunstorm.LogSink

/**
 * The core's [LogSink] to Logcat, under tag [tag] (`adb logcat -s Sunstorm`). The Rust
 * target (`sunstorm_core::pair`…) prefixes each message. Records carry no secrets.
 */
class LogcatSink(private val tag: String = "Sunstorm") : LogSink {
    override fun log(record: LogRecord) {
        Log.println(priority(record.level), tag, "${record.target}: ${record.message}")
    }

    /** Logcat priorities for the core's levels. */
    companion object {
        /** The `android.util.Log` priority for [level]. */
        fun priority(level: LogLevel): Int = when (level) {
            LogLevel.TRACE -> Log.VERBOSE
            LogLevel.DEBUG -> Log.DEBUG
            LogLevel.INFO -> Log.INFO
            LogLevel.WARN -> Log.WARN
            LogLevel.ERROR -> Log.ERROR
        }
    }
}
