package xyz.sigilvault.sunstorm.check

import com.sun.net.httpserver.HttpExchange
import com.sun.net.httpserver.HttpServer
import java.net.InetAddress
import java.net.InetSocketAddress
import java.net.ServerSocket
import java.util.concurrent.ConcurrentLinkedQueue
import java.util.concurrent.CountDownLatch
import java.util.concurrent.Executors
import java.util.concurrent.TimeUnit
import kotlin.test.assertContentEquals
import kotlin.test.assertEquals
import kotlin.test.assertIs
import kotlin.test.assertTrue
import org.junit.jupiter.api.AfterAll
import org.junit.jupiter.api.BeforeAll
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.TestInstance
import xyz.sigilvault.sunstorm.HttpException
import xyz.sigilvault.sunstorm.HttpHeader
import xyz.sigilvault.sunstorm.HttpMethod
import xyz.sigilvault.sunstorm.HttpRequest
import xyz.sigilvault.sunstorm.HttpResponse
import xyz.sigilvault.sunstorm.android.http.PlatformHttpClient

/**
 * The library's `HttpClient` (octane's HTTPS through the platform) against a loopback
 * JDK `HttpServer`: requests arrive whole, every status is an answer, redirects are not
 * followed, the deadline and a dead port end in the errors the core maps to UI messages.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class PlatformHttpClientTest {
    private class Seen(val method: String, val path: String, val headers: Map<String, String?>, val body: ByteArray)

    private lateinit var server: HttpServer
    private val seen = ConcurrentLinkedQueue<Seen>()
    private val release = CountDownLatch(1)
    private val client = PlatformHttpClient()

    @BeforeAll
    fun start() {
        server = HttpServer.create(InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 0)
        server.executor = Executors.newCachedThreadPool { r -> Thread(r, "http-test").apply { isDaemon = true } }
        server.createContext("/v1/echo") { ex ->
            val body = ex.requestBody.readBytes()
            seen.add(
                Seen(
                    ex.requestMethod, ex.requestURI.toString(),
                    listOf("X-Sunstorm-Signature", "Content-Type", "X-Order").associateWith { ex.requestHeaders.getFirst(it) },
                    body,
                ),
            )
            reply(ex, 200, "{\"method\":\"${ex.requestMethod}\",\"len\":${body.size}}".toByteArray())
        }
        server.createContext("/v1/missing") { ex -> reply(ex, 404, "{\"error\":\"no such session\"}".toByteArray()) }
        server.createContext("/v1/broken") { ex -> reply(ex, 503, "{\"error\":\"maintenance\"}".toByteArray()) }
        server.createContext("/v1/moved") { ex ->
            ex.responseHeaders.add("Location", "/v1/echo")
            reply(ex, 302, ByteArray(0))
        }
        server.createContext("/v1/slow") { ex ->
            release.await(10, TimeUnit.SECONDS) // far past the request's timeout
            reply(ex, 200, "late".toByteArray())
        }
        server.createContext("/v1/trickle") { ex ->
            // One byte every 50 ms: no single read waits long, only the overall deadline stops it.
            ex.sendResponseHeaders(200, 0)
            try {
                ex.responseBody.use { out ->
                    repeat(200) {
                        out.write('x'.code)
                        out.flush()
                        if (release.await(50, TimeUnit.MILLISECONDS)) return@use
                    }
                }
            } catch (_: java.io.IOException) {
                // the client hung up at its deadline
            }
        }
        server.createContext("/v1/huge") { ex ->
            val chunked = ex.requestURI.query == "chunked"
            ex.sendResponseHeaders(200, if (chunked) 0 else PlatformHttpClient.MAX_BODY_BYTES + 1L)
            try {
                ex.responseBody.use { out ->
                    val block = ByteArray(64 * 1024) { 'a'.code.toByte() }
                    var left = PlatformHttpClient.MAX_BODY_BYTES + 1
                    while (left > 0) {
                        val n = minOf(left, block.size)
                        out.write(block, 0, n)
                        left -= n
                    }
                }
            } catch (_: java.io.IOException) {
                // the client stopped reading at the cap
            }
        }
        server.start()
    }

    @AfterAll
    fun stop() {
        release.countDown()
        server.stop(0)
    }

    private fun reply(ex: HttpExchange, status: Int, body: ByteArray) {
        ex.responseHeaders.add("Content-Type", "application/json")
        ex.sendResponseHeaders(status, if (body.isEmpty()) -1 else body.size.toLong())
        if (body.isNotEmpty()) ex.responseBody.use { it.write(body) } else ex.close()
    }

    private fun url(path: String) = "http://127.0.0.1:${server.address.port}$path"

    private fun request(
        path: String,
        method: HttpMethod = HttpMethod.GET,
        body: ByteArray = ByteArray(0),
        timeoutMs: Int = 5_000,
        headers: List<HttpHeader> = emptyList(),
    ) = HttpRequest(method, url(path), headers, body, timeoutMs)

    private fun HttpResponse.text() = body.toString(Charsets.UTF_8)

    @Test
    fun `a GET reaches the server with its headers and the 200 body comes back`() {
        seen.clear()
        val r = client.send(request("/v1/echo?session=abc", headers = listOf(HttpHeader("x-sunstorm-signature", "sig-1"))))
        assertEquals(200, r.status)
        assertEquals("{\"method\":\"GET\",\"len\":0}", r.text())
        val s = seen.single()
        assertEquals("GET", s.method)
        assertEquals("/v1/echo?session=abc", s.path)
        assertEquals("sig-1", s.headers["X-Sunstorm-Signature"])
    }

    @Test
    fun `a POST sends its body and headers and gets the answer`() {
        seen.clear()
        val json = "{\"pair\":\"0f\",\"wallets\":[\"eip155:1:0xabc\"]}".toByteArray()
        val r = client.send(
            request(
                "/v1/echo", HttpMethod.POST, json,
                headers = listOf(
                    HttpHeader("content-type", "application/json"),
                    HttpHeader("x-sunstorm-signature", "sig-2"),
                    HttpHeader("x-order", "1"),
                ),
            ),
        )
        assertEquals(200, r.status)
        assertEquals("{\"method\":\"POST\",\"len\":${json.size}}", r.text())
        val s = seen.single()
        assertEquals("POST", s.method)
        assertContentEquals(json, s.body)
        assertEquals("application/json", s.headers["Content-Type"])
        assertEquals("sig-2", s.headers["X-Sunstorm-Signature"])
        assertEquals("1", s.headers["X-Order"])
    }

    @Test
    fun `4xx and 5xx are answers with their bodies, not errors`() {
        val missing = client.send(request("/v1/missing"))
        assertEquals(404, missing.status)
        assertEquals("{\"error\":\"no such session\"}", missing.text())
        val broken = client.send(request("/v1/broken", HttpMethod.POST, "{}".toByteArray()))
        assertEquals(503, broken.status)
        assertEquals("{\"error\":\"maintenance\"}", broken.text())
    }

    @Test
    fun `a redirect is returned as is, never followed`() {
        seen.clear()
        val r = client.send(request("/v1/moved"))
        assertEquals(302, r.status)
        assertEquals(0, r.body.size)
        assertTrue(seen.isEmpty(), "the redirect target must not be requested")
    }

    @Test
    fun `a server that answers after timeout_ms is a Timeout`() {
        assertIs<HttpException.Timeout>(runCatching { client.send(request("/v1/slow", timeoutMs = 300)) }.exceptionOrNull())
    }

    @Test
    fun `a body still trickling in at the deadline is a Timeout too`() {
        assertIs<HttpException.Timeout>(runCatching { client.send(request("/v1/trickle", timeoutMs = 400)) }.exceptionOrNull())
    }

    @Test
    fun `a closed port is Offline`() {
        val port = ServerSocket(0, 1, InetAddress.getLoopbackAddress()).use { it.localPort }
        val e = runCatching {
            client.send(HttpRequest(HttpMethod.GET, "http://127.0.0.1:$port/v1/echo", emptyList(), ByteArray(0), 2_000))
        }.exceptionOrNull()
        assertIs<HttpException.Offline>(e)
    }

    @Test
    fun `an answer over 4 MiB fails, declared or chunked`() {
        for (q in listOf("length", "chunked")) {
            val e = runCatching { client.send(request("/v1/huge?$q")) }.exceptionOrNull()
            assertIs<HttpException.Failed>(e, q)
            assertTrue(e.reason.contains("larger than"), e.reason)
        }
    }

    @Test
    fun `a URL the platform cannot use fails without a connection attempt`() {
        val e = runCatching { client.send(HttpRequest(HttpMethod.GET, "ftp://127.0.0.1/x", emptyList(), ByteArray(0), 1_000)) }.exceptionOrNull()
        assertIs<HttpException.Failed>(e)
        assertIs<HttpException.Failed>(runCatching { client.send(HttpRequest(HttpMethod.GET, "not a url", emptyList(), ByteArray(0), 1_000)) }.exceptionOrNull())
    }

    @Test
    fun `the library asks for INTERNET and the sample allows plain HTTP to loopback only`() {
        val android = java.io.File(System.getProperty("user.dir")).resolve("..").canonicalFile
        val lib = android.resolve("sunstorm/src/main/AndroidManifest.xml").readText()
        assertTrue(lib.contains("<uses-permission android:name=\"android.permission.INTERNET\" />"))
        val manifest = android.resolve("sample/src/main/AndroidManifest.xml").readText()
        assertTrue(manifest.contains("android:networkSecurityConfig=\"@xml/network_security_config\""))
        val nsc = javax.xml.parsers.DocumentBuilderFactory.newInstance().newDocumentBuilder()
            .parse(android.resolve("sample/src/main/res/xml/network_security_config.xml")).documentElement
        val base = nsc.getElementsByTagName("base-config").item(0) as org.w3c.dom.Element
        assertEquals("false", base.getAttribute("cleartextTrafficPermitted"))
        val domains = nsc.getElementsByTagName("domain")
        assertEquals(listOf("127.0.0.1", "localhost"), (0 until domains.length).map { domains.item(it).textContent.trim() })
    }

    @Test
    fun `concurrent calls from several core threads each get their own answer`() {
        val pool = Executors.newFixedThreadPool(4)
        try {
            val answers = (1..8).map { i ->
                pool.submit<HttpResponse> { client.send(request("/v1/echo", HttpMethod.POST, ByteArray(i) { 1 })) }
            }.map { it.get(30, TimeUnit.SECONDS) }
            assertEquals((1..8).map { "{\"method\":\"POST\",\"len\":$it}" }, answers.map { it.text() })
        } finally {
            pool.shutdownNow()
        }
    }
}
