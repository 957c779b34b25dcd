package xyz.sigilvault.sunstorm.test

import java.nio.file.Files
import java.nio.file.Path
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertNull
import kotlin.test.assertTrue
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.async
import kotlinx.coroutines.delay
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import org.junit.jupiter.api.BeforeAll
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.io.TempDir
import xyz.sigilvault.sunstorm.BleCentral
import xyz.sigilvault.sunstorm.BleEvents
import xyz.sigilvault.sunstorm.BleException
import xyz.sigilvault.sunstorm.BlePeripheral
import xyz.sigilvault.sunstorm.CancelHandle
import xyz.sigilvault.sunstorm.FlowProgress
import xyz.sigilvault.sunstorm.HttpException
import xyz.sigilvault.sunstorm.InternalException
import xyz.sigilvault.sunstorm.LogLevel
import xyz.sigilvault.sunstorm.PairOutcomeView
import xyz.sigilvault.sunstorm.SunstormCore
import xyz.sigilvault.sunstorm.SunstormException
import xyz.sigilvault.sunstorm.debugForcePanic
import xyz.sigilvault.sunstorm.desktop.JdkHttpClient
import xyz.sigilvault.sunstorm.desktop.UdsBleCentral
import xyz.sigilvault.sunstorm.gattUuids
import xyz.sigilvault.sunstorm.setLogSink

/** The surface without any simulator: errors, panics, logging, cancellation, foreign errors. */
class CoreBasicsTest {
    companion object {
        val logs = CollectingLogSink()

        @JvmStatic
        @BeforeAll
        fun installLogSink() {
            setLogSink(logs, LogLevel.DEBUG)
        }
    }

    @TempDir
    lateinit var dir: Path

    private fun core(ble: BleCentral = UdsBleCentral(emptyMap())) =
        SunstormCore(testConfig(dir), ble, JdkHttpClient(), MemorySecretStore(), ScriptedPresence())

    @Test
    fun `a link from another host is refused with the specific variant`() {
        core().use { core ->
            val e = assertFailsWith<SunstormException.InvalidLink> {
                core.parseLink("https://sigilvault.evil/pair?session=AAAAAAAAAAAAAAAAAAAAAA")
            }
            assertEquals("wrong_host", e.code)
            assertTrue(e.reason.contains("sigilvault.evil"), e.reason)
            assertEquals("this is not a valid Sigil pair link: ${e.reason}", e.message)
            val scheme = assertFailsWith<SunstormException.InvalidLink> {
                core.parseLink("sigil://pair?session=AAAAAAAAAAAAAAAAAAAAAA")
            }
            assertEquals("unsupported_scheme", scheme.code)
        }
    }

    @Test
    fun `a single-device link carries its code and a QR link does not`() {
        core().use { core ->
            val single = core.parseLink("https://sigilvault.xyz/pair?session=AAAAAAAAAAAAAAAAAAAAAA&v=123456")
            assertEquals("AAAAAAAAAAAAAAAAAAAAAA", single.sessionId)
            assertEquals("123456", single.code)
            assertNull(core.parseLink("https://sigilvault.xyz/pair?session=AAAAAAAAAAAAAAAAAAAAAA").code)
        }
    }

    @Test
    fun `a typed code is normalised or refused with the reason`() {
        core().use { core ->
            assertEquals("123456", core.normalizeCode("12 34-56"))
            assertEquals("123456", core.normalizeCode("１２３４５６"))
            val e = assertFailsWith<SunstormException.InvalidCode> { core.normalizeCode("12345") }
            assertEquals("code_too_short", e.code)
        }
    }

    @Test
    fun `a bad configuration is InvalidConfig, not a crash`() {
        val e = assertFailsWith<SunstormException.InvalidConfig> {
            SunstormCore(testConfig(dir, octaneKeyHex = "abcd"), UdsBleCentral(emptyMap()), JdkHttpClient(), MemorySecretStore(), ScriptedPresence())
        }
        assertTrue(e.reason.contains("32 bytes"), e.reason)
        assertFailsWith<SunstormException.InvalidConfig> {
            SunstormCore(testConfig(dir, octaneUrl = "http://octane.example"), UdsBleCentral(emptyMap()), JdkHttpClient(), MemorySecretStore(), ScriptedPresence())
        }
    }

    @Test
    fun `a panic in an exported function arrives as an exception`() {
        val e = assertFailsWith<InternalException> { debugForcePanic() }
        assertTrue(e.message!!.contains("deliberate panic"), e.message)
        // The panic is also reported to the log sink, with where it happened.
        val logged = logs.records.firstOrNull { it.target == "sunstorm_ffi::panic" }
        requireNotNull(logged) { "panic not logged: ${logs.records}" }
        assertEquals(LogLevel.ERROR, logged.level)
        assertTrue(logged.message.contains("deliberate panic") && logged.message.contains("lib.rs"), logged.message)
        // The library still works afterwards.
        assertTrue(gattUuids().service.isNotEmpty())
    }

    @Test
    fun `a panic inside a core task arrives as SunstormException Internal`() = runBlocking<Unit> {
        core().use { core ->
            val e = assertFailsWith<SunstormException.Internal> { core.debugForcePanic() }
            assertTrue(e.reason.contains("deliberate panic"), e.reason)
            // The core's runtime survives the panic.
            assertEquals(emptyList(), core.scanAppliances(10))
        }
    }

    @Test
    fun `cancel stops a running call with Cancelled`() = runBlocking<Unit> {
        core().use { core ->
            val handle = CancelHandle()
            val call = async(Dispatchers.Default) { runCatching { core.debugWait(60_000, handle) } }
            delay(200)
            handle.cancel()
            val result = withTimeout(10_000) { call.await() }
            assertTrue(result.exceptionOrNull() is SunstormException.Cancelled, "got $result")
            assertEquals("cancelled", result.exceptionOrNull()?.message)
            assertTrue(handle.isCancelled())
        }
    }

    @Test
    fun `the log sink receives core events with level and target`() {
        core().close()
        val started = logs.records.firstOrNull { it.message.startsWith("core started") }
        requireNotNull(started) { "no 'core started' record in ${logs.records}" }
        assertEquals("sunstorm_ffi", started.target)
        assertEquals(LogLevel.INFO, started.level)
    }

    /** A platform BLE stack that fails in the ways a real one does. */
    private class FailingCentral(private val failure: Throwable) : BleCentral {
        override fun scan(serviceUuid: String, timeoutMs: Int): List<BlePeripheral> = throw failure
        override fun connect(peripheralId: String, events: BleEvents, timeoutMs: Int): Long = throw failure
        override fun requestMtu(connectionId: Long, preferredMtu: Int): Int = throw failure
        override fun write(connectionId: Long, value: ByteArray) = throw failure
        override fun disconnect(connectionId: Long) = throw failure
    }

    @Test
    fun `Bluetooth off in the platform is BluetoothUnavailable`() = runBlocking<Unit> {
        core(FailingCentral(BleException.Unavailable("Bluetooth is off"))).use { core ->
            val e = assertFailsWith<SunstormException.BluetoothUnavailable> { core.scanAppliances(50) }
            assertEquals("Bluetooth is off", e.reason)
            assertEquals("Bluetooth is unavailable: Bluetooth is off", e.message)
        }
    }

    @Test
    fun `an undeclared exception thrown by the platform becomes a declared error`() = runBlocking<Unit> {
        core(FailingCentral(IllegalStateException("radio on fire"))).use { core ->
            val e = assertFailsWith<SunstormException.ApplianceUnreachable> { core.scanAppliances(50) }
            assertTrue(e.reason.contains("radio on fire"), e.reason)
        }
    }

    @Test
    fun `scan lists what the Kotlin central sees`() = runBlocking<Unit> {
        val sock = Files.createFile(dir.resolve("appliance.sock"))
        core(UdsBleCentral(mapOf("sim-1" to sock, "gone" to dir.resolve("missing.sock")))).use { core ->
            val rows = core.scanAppliances(50)
            assertEquals(listOf("sim-1"), rows.map { it.peripheralId })
            assertEquals("Sigil simulator sim-1", rows[0].displayName)
            assertEquals(-40, rows[0].rssi)
        }
    }

    @Test
    fun `an exception's message is its sentence, for the core's errors and the platform's`() {
        val wrong = SunstormException.WrongCode(3)
        assertEquals("wrong validation code (3 attempts left)", wrong.message)
        assertEquals("wrong validation code (3 attempts left)", wrong.localizedMessage)
        // Kotlin's own toString: the type first, as in every stack trace.
        assertEquals("xyz.sigilvault.sunstorm.SunstormException\$WrongCode: wrong validation code (3 attempts left)", wrong.toString())
        assertEquals("no appliance is bonded with this phone", SunstormException.NotBonded().message)
        // Errors a platform implementation throws read the same way.
        assertEquals("Bluetooth unavailable: off", BleException.Unavailable("off").message)
        assertEquals("timed out", HttpException.Timeout().message)
    }

    @Test
    fun `a case without fields prints its name`() {
        assertEquals("ConnectingToAppliance", FlowProgress.ConnectingToAppliance.toString())
        assertEquals("Done", PairOutcomeView.Done.toString())
        assertEquals("SendingToAppliance(sent=1, total=2)", FlowProgress.SendingToAppliance(1, 2).toString())
    }
}
