package xyz.sigilvault.sunstorm.test

import java.io.IOException
import java.net.ConnectException
import java.net.URI
import java.net.http.HttpConnectTimeoutException
import java.net.http.HttpTimeoutException
import java.nio.file.Path
import java.time.Duration
import java.util.concurrent.ConcurrentHashMap
import java.util.concurrent.CopyOnWriteArrayList
import xyz.sigilvault.sunstorm.CoreConfig
import xyz.sigilvault.sunstorm.FlowListener
import xyz.sigilvault.sunstorm.FlowProgress
import xyz.sigilvault.sunstorm.HttpClient
import xyz.sigilvault.sunstorm.HttpException
import xyz.sigilvault.sunstorm.HttpMethod
import xyz.sigilvault.sunstorm.HttpRequest
import xyz.sigilvault.sunstorm.HttpResponse
import xyz.sigilvault.sunstorm.LogRecord
import xyz.sigilvault.sunstorm.PairStateView
import xyz.sigilvault.sunstorm.LogSink
import xyz.sigilvault.sunstorm.SecretStore
import xyz.sigilvault.sunstorm.UserPresence

/**
 * The core's HTTP client on the JVM, over `java.net.http` (the Android shell uses
 * `HttpURLConnection`, iOS `URLSession`): no redirects, the request's timeout, any status
 * returned as an answer, connection failures as [HttpException.Offline].
 */
class JdkHttpClient : HttpClient {
    /** Requests seen, as "METHOD path". */
    val seen = CopyOnWriteArrayList<String>()

    /** When true, behaves like a phone in airplane mode. */
    @Volatile var offline = false
    private val client = java.net.http.HttpClient.newBuilder()
        .followRedirects(java.net.http.HttpClient.Redirect.NEVER)
        .connectTimeout(Duration.ofSeconds(5))
        .build()

    override fun send(request: HttpRequest): HttpResponse {
        val uri = URI.create(request.url)
        seen += "${request.method} ${uri.path}"
        if (offline) throw HttpException.Offline("The Internet connection appears to be offline.")
        val builder = java.net.http.HttpRequest.newBuilder(uri)
            .timeout(Duration.ofMillis(request.timeoutMs.toLong()))
        // The JDK client sets these itself and refuses them from callers.
        val restricted = setOf("connection", "content-length", "host", "expect", "upgrade")
        request.headers.filter { it.name.lowercase() !in restricted }.forEach { builder.header(it.name, it.value) }
        when (request.method) {
            HttpMethod.GET -> builder.GET()
            HttpMethod.POST -> builder.POST(java.net.http.HttpRequest.BodyPublishers.ofByteArray(request.body))
        }
        return try {
            val resp = client.send(builder.build(), java.net.http.HttpResponse.BodyHandlers.ofByteArray())
            HttpResponse(status = resp.statusCode().toUShort(), body = resp.body())
        } catch (e: HttpConnectTimeoutException) {
            throw HttpException.Offline("connect timed out: ${e.message}")
        } catch (e: HttpTimeoutException) {
            throw HttpException.Timeout()
        } catch (e: ConnectException) {
            throw HttpException.Offline(e.message ?: "connection refused")
        } catch (e: IOException) {
            throw HttpException.Failed(e.toString())
        }
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
