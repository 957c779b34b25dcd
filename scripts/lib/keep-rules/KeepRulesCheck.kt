// scripts/check-android-keep-rules.sh: an app's use of the core, run after ProGuard has
// shrunk, optimized and obfuscated it together with the generated bindings, JNA and
// Kotlin under android/sunstorm/consumer-rules.pro. Each step crosses the FFI in a way
// JNA does by reflection or from native code. Exits 1 on the first step that fails.
package keeprules

import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.async
import kotlinx.coroutines.delay
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import xyz.sigilvault.sunstorm.BleCentral
import xyz.sigilvault.sunstorm.BleEvents
import xyz.sigilvault.sunstorm.BleException
import xyz.sigilvault.sunstorm.BlePeripheral
import xyz.sigilvault.sunstorm.CancelHandle
import xyz.sigilvault.sunstorm.CoreConfig
import xyz.sigilvault.sunstorm.HttpClient
import xyz.sigilvault.sunstorm.HttpException
import xyz.sigilvault.sunstorm.HttpRequest
import xyz.sigilvault.sunstorm.HttpResponse
import xyz.sigilvault.sunstorm.LogLevel
import xyz.sigilvault.sunstorm.LogRecord
import xyz.sigilvault.sunstorm.LogSink
import xyz.sigilvault.sunstorm.SecretStore
import xyz.sigilvault.sunstorm.SunstormCore
import xyz.sigilvault.sunstorm.SunstormException
import xyz.sigilvault.sunstorm.UserPresence
import xyz.sigilvault.sunstorm.clearLogSink
import xyz.sigilvault.sunstorm.coreVersion
import xyz.sigilvault.sunstorm.setLogSink
import java.nio.file.Files
import java.util.concurrent.ConcurrentHashMap
import java.util.concurrent.CopyOnWriteArrayList
import java.util.concurrent.CountDownLatch
import java.util.concurrent.TimeUnit
import kotlin.system.exitProcess

// The app's own implementations of the generated interfaces: the shrinker may rename them.

/** No appliance nearby; a scan lasts until [release] (or its timeout). */
class QuietCentral : BleCentral {
    val scans = CopyOnWriteArrayList<String>()
    private val latch = CountDownLatch(1)
    @Volatile var block = false
    fun release() = latch.countDown()
    override fun scan(serviceUuid: String, timeoutMs: Int): List<BlePeripheral> {
        scans += serviceUuid
        if (block) latch.await(timeoutMs.toLong(), TimeUnit.MILLISECONDS)
        return emptyList()
    }
    override fun connect(peripheralId: String, events: BleEvents, timeoutMs: Int): Long =
        throw BleException.Unavailable("no radio in this check")
    override fun requestMtu(connectionId: Long, preferredMtu: Int): Int = 23
    override fun write(connectionId: Long, value: ByteArray) {}
    override fun disconnect(connectionId: Long) {}
}

class OfflineHttp : HttpClient {
    override fun send(request: HttpRequest): HttpResponse = throw HttpException.Offline("offline")
}

class MemoryStore : SecretStore {
    private val map = ConcurrentHashMap<String, ByteArray>()
    override fun get(name: String): ByteArray? = map[name]?.copyOf()
    override fun put(name: String, value: ByteArray) { map[name] = value.copyOf() }
    override fun delete(name: String) { map.remove(name) }
}

class AlwaysPresent : UserPresence {
    override fun verify(reason: String): Boolean = true
}

class Records : LogSink {
    val records = CopyOnWriteArrayList<LogRecord>()
    override fun log(record: LogRecord) { records += record }
}

fun step(ok: Boolean, what: String) {
    if (!ok) {
        System.err.println("keep-rules check: FAILED: $what")
        exitProcess(1)
    }
    println("keep-rules check: ok: $what")
}

fun main() = runBlocking<Unit> {
    val logs = Records()
    setLogSink(logs, LogLevel.INFO)
    step(coreVersion().isNotEmpty(), "a sync call returning a RustBuffer (coreVersion)")

    val dir = Files.createTempDirectory("sunstorm-keep-rules")
    val central = QuietCentral()
    val config = CoreConfig(
        octaneUrl = "http://127.0.0.1:9",
        octanePublicKeyHex = "1".repeat(64),
        acceptedLinkHosts = listOf("sigilvault.xyz"),
        databasePath = dir.resolve("sunstorm.db").toString(),
        phoneName = "keep-rules check",
    )
    val core = SunstormCore(config, central, OfflineHttp(), MemoryStore(), AlwaysPresent())
    step(logs.records.any { it.message.startsWith("core started") }, "the log sink called from Rust (a foreign trait)")

    val link = core.parseLink("https://sigilvault.xyz/pair?session=AAAAAAAAAAAAAAAAAAAAAA&v=123456")
    step(link.code == "123456", "a record lifted from Rust (parseLink)")
    val refused = runCatching { core.parseLink("https://sigilvault.evil/pair?session=AAAAAAAAAAAAAAAAAAAAAA") }
    val e = refused.exceptionOrNull()
    step(e is SunstormException.InvalidLink && e.code == "wrong_host", "an error with fields (InvalidLink.code)")

    step(core.scanAppliances(50).isEmpty() && central.scans.size == 1, "an async call that calls BleCentral.scan")
    step(core.bondedAppliances().isEmpty(), "an async call returning a list of records")

    central.block = true
    val handle = CancelHandle()
    val scan = async(Dispatchers.Default) { runCatching { core.scanAppliances(60_000, handle) } }
    delay(300)
    handle.cancel()
    val cancelled = withTimeout(20_000) { scan.await() }
    central.release()
    step(cancelled.exceptionOrNull() is SunstormException.Cancelled, "CancelHandle ends an async call")

    core.close()
    clearLogSink()
    println("keep-rules check: passed; app classes renamed to ${QuietCentral::class.java.name}, " +
        "${Records::class.java.name}; bindings kept as ${SunstormCore::class.java.name}")
}
