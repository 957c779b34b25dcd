package xyz.sigilvault.sunstorm.test

import java.nio.file.Path
import org.junit.jupiter.api.AfterEach
import org.junit.jupiter.api.io.TempDir
import java.util.concurrent.ConcurrentHashMap
import java.util.concurrent.CopyOnWriteArrayList
import xyz.sigilvault.sunstorm.CoreConfig
import xyz.sigilvault.sunstorm.FlowListener
import xyz.sigilvault.sunstorm.FlowProgress
import xyz.sigilvault.sunstorm.HttpClient
import xyz.sigilvault.sunstorm.HttpException
import xyz.sigilvault.sunstorm.HttpRequest
import xyz.sigilvault.sunstorm.HttpResponse
import xyz.sigilvault.sunstorm.LogRecord
import xyz.sigilvault.sunstorm.LogSink
import xyz.sigilvault.sunstorm.PairStateView
import xyz.sigilvault.sunstorm.SecretStore
import xyz.sigilvault.sunstorm.UserPresence
import xyz.sigilvault.sunstorm.desktop.JdkHttpClient

/**
 * The package's [JdkHttpClient] with what the tests look at: the requests seen, and a switch
 * that behaves like a phone in airplane mode.
 */
class RecordingHttpClient(private val inner: HttpClient = JdkHttpClient()) : HttpClient {
    /** Requests seen, as "METHOD path". */
    val seen = CopyOnWriteArrayList<String>()

    /** When true, every request fails as [HttpException.Offline]. */
    @Volatile var offline = false

    override fun send(request: HttpRequest): HttpResponse {
        seen += "${request.method} ${java.net.URI.create(request.url).path}"
        if (offline) throw HttpException.Offline("The Internet connection appears to be offline.")
        return inner.send(request)
    }
}

/** A SecretStore as a shell's Keystore-backed one would behave (here: in memory). */
class MemorySecretStore : SecretStore {
    private val map = ConcurrentHashMap<String, ByteArray>()
    override fun get(name: String): ByteArray? = map[name]?.copyOf()
    override fun put(name: String, value: ByteArray) { map[name] = value.copyOf() }
    override fun delete(name: String) { map.remove(name) }
    fun names(): Set<String> = map.keys.toSet()
}

/** A UserPresence that answers [answer] and remembers the reasons it was shown. */
class ScriptedPresence(@Volatile var answer: Boolean = true) : UserPresence {
    val reasons = CopyOnWriteArrayList<String>()
    override fun verify(reason: String): Boolean {
        reasons += reason
        return answer
    }
}

class CollectingLogSink : LogSink {
    val records = CopyOnWriteArrayList<LogRecord>()
    override fun log(record: LogRecord) { records += record }
}

class CollectingListener : FlowListener {
    val events = CopyOnWriteArrayList<FlowProgress>()
    val states = CopyOnWriteArrayList<PairStateView>()
    override fun onProgress(progress: FlowProgress) { events += progress }
    override fun onPairState(state: PairStateView) { states += state }
}

const val TEST_OCTANE_KEY = "1111111111111111111111111111111111111111111111111111111111111111"

fun testConfig(
    dir: Path,
    octaneUrl: String = "http://127.0.0.1:9",
    octaneKeyHex: String = TEST_OCTANE_KEY,
) = CoreConfig(
    octaneUrl = octaneUrl,
    octanePublicKeyHex = octaneKeyHex,
    acceptedLinkHosts = listOf("sigilvault.xyz"),
    databasePath = dir.resolve("sunstorm.db").toString(),
    phoneName = "Kotlin test phone",
)

/**
 * A test that starts simulator processes and cores in a temporary directory: whatever it
 * adds to [closeables] is closed after the test, last first.
 */
abstract class ClosingTest {
    @TempDir
    lateinit var dir: Path

    protected val closeables = mutableListOf<AutoCloseable>()

    @AfterEach
    fun closeAll() {
        closeables.reversed().forEach { runCatching { it.close() } }
    }
}
