package xyz.sigilvault.sunstorm.test

import com.sun.net.httpserver.HttpServer
import java.io.ByteArrayOutputStream
import java.io.PrintStream
import java.net.InetSocketAddress
import java.net.ServerSocket
import java.nio.file.Files
import java.nio.file.Path
import java.nio.file.attribute.PosixFilePermissions
import kotlin.test.assertContentEquals
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertNull
import kotlin.test.assertTrue
import org.junit.jupiter.api.AfterEach
import org.junit.jupiter.api.BeforeEach
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.io.TempDir
import xyz.sigilvault.sunstorm.HttpException
import xyz.sigilvault.sunstorm.HttpHeader
import xyz.sigilvault.sunstorm.HttpMethod
import xyz.sigilvault.sunstorm.HttpRequest
import xyz.sigilvault.sunstorm.LogLevel
import xyz.sigilvault.sunstorm.LogRecord
import xyz.sigilvault.sunstorm.SecretStoreException
import xyz.sigilvault.sunstorm.coreVersion
import xyz.sigilvault.sunstorm.desktop.ConsoleLogSink
import xyz.sigilvault.sunstorm.desktop.ConsoleUserPresence
import xyz.sigilvault.sunstorm.desktop.FileSecretStore
import xyz.sigilvault.sunstorm.desktop.JdkHttpClient

/** The JVM package's desktop helpers on their own (the flows use them in the other tests). */
class DesktopHelpersTest {
    @TempDir
    lateinit var dir: Path

    private lateinit var server: HttpServer
    private val base get() = "http://127.0.0.1:${server.address.port}"

    @BeforeEach
    fun startServer() {
        server = HttpServer.create(InetSocketAddress("127.0.0.1", 0), 0)
        server.createContext("/echo") { ex ->
            val body = ex.requestBody.readAllBytes()
            val answer = "${ex.requestMethod} ${ex.requestHeaders.getFirst("x-sigil-test")} ".toByteArray() + body
            ex.sendResponseHeaders(200, answer.size.toLong())
            ex.responseBody.use { it.write(answer) }
        }
        server.createContext("/missing") { ex -> ex.sendResponseHeaders(404, -1); ex.close() }
        server.createContext("/moved") { ex ->
            ex.responseHeaders.add("Location", "$base/echo")
            ex.sendResponseHeaders(302, -1)
            ex.close()
        }
        server.createContext("/slow") { ex ->
            Thread.sleep(2_000)
            ex.sendResponseHeaders(200, -1)
            ex.close()
        }
        server.executor = java.util.concurrent.Executors.newCachedThreadPool()
        server.start()
    }

    @AfterEach
    fun stopServer() = server.stop(0)

    private fun request(path: String, method: HttpMethod = HttpMethod.GET, body: ByteArray = ByteArray(0), timeoutMs: Int = 5_000) =
        HttpRequest(method, "$base$path", listOf(HttpHeader("x-sigil-test", "yes")), body, timeoutMs)

    @Test
    fun `the native library comes from the package's jar, with no library path set`() {
        assertNull(System.getProperty("jna.library.path"))
        assertTrue(coreVersion().isNotBlank())
    }

    @Test
    fun `JdkHttpClient returns every status as an answer and follows no redirect`() {
        val http = JdkHttpClient()
        val echo = http.send(request("/echo", HttpMethod.POST, "{}".toByteArray()))
        assertEquals(200, echo.status)
        assertEquals("POST yes {}", echo.body.decodeToString())
        assertEquals(404, http.send(request("/missing")).status)
        assertEquals(302, http.send(request("/moved")).status)
    }

    @Test
    fun `JdkHttpClient reports a deadline as Timeout and a closed port as Offline`() {
        val http = JdkHttpClient()
        assertFailsWith<HttpException.Timeout> { http.send(request("/slow", timeoutMs = 200)) }
        val closed = ServerSocket(0).use { it.localPort }
        val offline = assertFailsWith<HttpException.Offline> {
            http.send(HttpRequest(HttpMethod.GET, "http://127.0.0.1:$closed/", emptyList(), ByteArray(0), 2_000))
        }
        assertTrue(offline.message.startsWith("no connection: "), offline.message)
        assertFailsWith<HttpException.Failed> {
            http.send(HttpRequest(HttpMethod.GET, "ftp://127.0.0.1/x", emptyList(), ByteArray(0), 1_000))
        }
    }

    @Test
    fun `FileSecretStore keeps each secret in an owner-only file and refuses names that leave its directory`() {
        val store = FileSecretStore(dir.resolve("keys"))
        assertNull(store.get("app.ed25519"))
        store.put("app.ed25519", byteArrayOf(1, 2, 3))
        store.put("app.ed25519", byteArrayOf(4, 5))
        assertContentEquals(byteArrayOf(4, 5), store.get("app.ed25519"))
        assertEquals(listOf("app.ed25519"), store.names())
        val perms = { p: Path -> PosixFilePermissions.toString(Files.getPosixFilePermissions(p)) }
        assertEquals("rwx------", perms(dir.resolve("keys")))
        assertEquals("rw-------", perms(dir.resolve("keys/app.ed25519")))
        for (bad in listOf("..", ".", "../escape", "a/b", "", "x".repeat(65), "name with space")) {
            assertFailsWith<SecretStoreException.Failed>(bad) { store.put(bad, byteArrayOf(1)) }
        }
        assertEquals(listOf("app.ed25519"), store.names())
        store.delete("app.ed25519")
        store.delete("app.ed25519") // absent is not an error
        assertNull(store.get("app.ed25519"))
        // A second store on the same directory (an app restart) sees what the first wrote.
        store.put("appliance.bond", byteArrayOf(9))
        assertContentEquals(byteArrayOf(9), FileSecretStore(dir.resolve("keys")).get("appliance.bond"))
    }

    @Test
    fun `ConsoleLogSink prints one line per record with level and target`() {
        val out = ByteArrayOutputStream()
        ConsoleLogSink(PrintStream(out, true)).log(LogRecord(LogLevel.WARN, "sunstorm_core::pair", "flow failed code=expired"))
        val line = out.toString().trimEnd()
        assertTrue(Regex("""\d\d:\d\d:\d\d\.\d{3} WARN  sunstorm_core::pair: flow failed code=expired""").matches(line), line)
    }

    @Test
    fun `ConsoleUserPresence with autoApprove shows the reason and approves`() {
        val out = ByteArrayOutputStream()
        assertTrue(ConsoleUserPresence(autoApprove = true, out = PrintStream(out, true)).verify("Approve pairing with Acme"))
        assertTrue(out.toString().contains("Approve pairing with Acme"))
    }
}
