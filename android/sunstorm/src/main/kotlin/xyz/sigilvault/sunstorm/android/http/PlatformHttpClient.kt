package xyz.sigilvault.sunstorm.android.http

import java.io.ByteArrayOutputStream
import java.io.IOException
import java.io.InputStream
import java.net.ConnectException
import java.net.HttpURLConnection
import java.net.MalformedURLException
import java.net.NoRouteToHostException
import java.net.SocketTimeoutException
import java.net.URL
import java.net.UnknownHostException
import java.util.concurrent.ScheduledThreadPoolExecutor
import java.util.concurrent.TimeUnit
import java.util.concurrent.atomic.AtomicBoolean
import javax.net.ssl.SSLException
import xyz.sigilvault.sunstorm.HttpClient
import xyz.sigilvault.sunstorm.HttpException
import xyz.sigilvault.sunstorm.HttpMethod
import xyz.sigilvault.sunstorm.HttpRequest
import xyz.sigilvault.sunstorm.HttpResponse

/**
 * The core's [HttpClient] (every call to octane) on the platform's `HttpURLConnection`,
 * so the system's TLS validation, proxy, VPN and network-security config apply.
 *
 * Per the contract: redirects are **not** followed (a 3xx comes back as the answer), any
 * status (4xx/5xx included) is an [HttpResponse], and the whole exchange, connection
 * included, is bounded by [HttpRequest.timeoutMs]: connect and read timeouts are set from
 * it, and a watchdog disconnects the request at the deadline (so a server trickling bytes
 * cannot hold it longer). Bodies over [maxBodyBytes] fail with [HttpException.Failed].
 *
 * No connection (DNS, refused, unreachable, TLS failure) is [HttpException.Offline]; the
 * deadline is [HttpException.Timeout]; anything else is [HttpException.Failed]. Called by
 * the core on its worker threads, possibly concurrently: each call uses its own
 * connection and blocks until done. Headers carry request signatures, not secrets, and
 * nothing here logs them.
 */
class PlatformHttpClient(
    private val maxBodyBytes: Int = MAX_BODY_BYTES,
) : HttpClient {
    override fun send(request: HttpRequest): HttpResponse {
        val timeoutMs = request.timeoutMs.toLong().coerceIn(1L, Int.MAX_VALUE.toLong())
        val url = try {
            URL(request.url)
        } catch (e: MalformedURLException) {
            throw HttpException.Failed("malformed URL")
        }
        if (url.protocol != "https" && url.protocol != "http") {
            throw HttpException.Failed("unsupported scheme ${url.protocol}")
        }
        val conn = try {
            url.openConnection() as? HttpURLConnection
        } catch (e: IOException) {
            throw map(e, timedOut = false)
        } ?: throw HttpException.Failed("no HTTP connection for ${url.protocol}")

        val timedOut = AtomicBoolean(false)
        val watchdog = WATCHDOG.schedule({
            timedOut.set(true)
            conn.disconnect()
        }, timeoutMs, TimeUnit.MILLISECONDS)
        var done = false
        try {
            val response = exchange(conn, request, timeoutMs.toInt())
            done = true
            return response
        } catch (e: HttpException) {
            throw if (timedOut.get()) HttpException.Timeout() else e
        } catch (e: IOException) {
            throw map(e, timedOut.get())
        } catch (e: SecurityException) {
            throw HttpException.Failed("network access refused (INTERNET permission?)")
        } catch (e: RuntimeException) {
            // e.g. a header value HttpURLConnection refuses; never let it cross the FFI raw.
            throw if (timedOut.get()) HttpException.Timeout() else HttpException.Failed(e.javaClass.simpleName)
        } finally {
            watchdog.cancel(false)
            // A complete answer leaves the connection to the keep-alive pool; anything else closes it.
            if (!done) conn.disconnect()
        }
    }

    private fun exchange(conn: HttpURLConnection, request: HttpRequest, timeoutMs: Int): HttpResponse {
        conn.instanceFollowRedirects = false
        conn.useCaches = false
        conn.connectTimeout = timeoutMs
        conn.readTimeout = timeoutMs
        conn.doInput = true
        for (h in request.headers) conn.addRequestProperty(h.name, h.value)
        when (request.method) {
            HttpMethod.GET -> conn.requestMethod = "GET"
            HttpMethod.POST -> {
                conn.requestMethod = "POST"
                conn.doOutput = true
                conn.setFixedLengthStreamingMode(request.body.size)
                conn.outputStream.use { it.write(request.body) }
            }
        }
        val status = conn.responseCode
        if (status !in 100..999) throw HttpException.Failed("not an HTTP answer")
        val declared = conn.contentLengthLong
        if (declared > maxBodyBytes) throw HttpException.Failed("answer larger than $maxBodyBytes bytes")
        // Non-2xx bodies (octane's error JSON) come from the error stream; it is null when empty.
        val stream: InputStream? = if (status in 200..299) conn.inputStream else conn.errorStream
        val body = stream?.use { readCapped(it) } ?: ByteArray(0)
        return HttpResponse(status, body)
    }

    private fun readCapped(input: InputStream): ByteArray {
        val out = ByteArrayOutputStream()
        val buf = ByteArray(BUFFER_BYTES)
        var total = 0L
        while (true) {
            val n = input.read(buf)
            if (n < 0) break
            total += n
            if (total > maxBodyBytes) throw HttpException.Failed("answer larger than $maxBodyBytes bytes")
            out.write(buf, 0, n)
        }
        return out.toByteArray()
    }

    private fun map(e: IOException, timedOut: Boolean): HttpException = when {
        // The watchdog closed the connection at the deadline: whatever the read saw, it is a timeout.
        timedOut || e is SocketTimeoutException -> HttpException.Timeout()
        e is UnknownHostException -> HttpException.Offline("host not found")
        e is ConnectException -> HttpException.Offline("cannot connect: ${e.message ?: "refused"}")
        e is NoRouteToHostException -> HttpException.Offline("no route to host")
        e is SSLException -> HttpException.Offline("TLS failed: ${e.javaClass.simpleName}")
        else -> HttpException.Failed("${e.javaClass.simpleName}: ${e.message ?: "I/O failure"}")
    }

    /** Limits. */
    companion object {
        /** Largest answer body accepted (4 MiB); octane's answers are a few KiB. */
        const val MAX_BODY_BYTES: Int = 4 * 1024 * 1024

        private const val BUFFER_BYTES = 16 * 1024

        /** One daemon thread that disconnects requests past their deadline. */
        private val WATCHDOG: ScheduledThreadPoolExecutor by lazy {
            ScheduledThreadPoolExecutor(1) { r ->
                Thread(r, "sunstorm-http-deadline").apply { isDaemon = true }
            }.apply { removeOnCancelPolicy = true }
        }
    }
}
