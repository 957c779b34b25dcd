package xyz.sigilvault.sunstorm.check

import java.nio.file.Files
import kotlin.test.assertEquals
import kotlin.test.assertIs
import kotlin.test.assertTrue
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.Test
import xyz.sigilvault.sunstorm.BleCentral
import xyz.sigilvault.sunstorm.BleEvents
import xyz.sigilvault.sunstorm.BleException
import xyz.sigilvault.sunstorm.BlePeripheral
import xyz.sigilvault.sunstorm.CoreConfig
import xyz.sigilvault.sunstorm.SecretStore
import xyz.sigilvault.sunstorm.SunstormCore
import xyz.sigilvault.sunstorm.SunstormException
import xyz.sigilvault.sunstorm.UserPresence
import xyz.sigilvault.sunstorm.android.http.PlatformHttpClient
import xyz.sigilvault.sunstorm.sample.platform.CoreFlows
import xyz.sigilvault.sunstorm.sample.state.BondController
import xyz.sigilvault.sunstorm.sample.state.PairController
import xyz.sigilvault.sunstorm.sample.state.PairScreen

/** The sample's adapter over the real core: what the bonding screen shows with Bluetooth off. */
class CoreFlowsTest {
    private class BluetoothOff : BleCentral {
        override fun scan(serviceUuid: String, timeoutMs: Int): List<BlePeripheral> = throw BleException.Unavailable("Bluetooth is off")
        override fun connect(peripheralId: String, events: BleEvents, timeoutMs: Int): Long = throw BleException.Unavailable("Bluetooth is off")
        override fun requestMtu(connectionId: Long, preferredMtu: Int): Int = throw BleException.Disconnected()
        override fun write(connectionId: Long, value: ByteArray) = throw BleException.Disconnected()
        override fun disconnect(connectionId: Long) = Unit
    }

    private class Memory : SecretStore {
        private val map = java.util.concurrent.ConcurrentHashMap<String, ByteArray>()
        override fun get(name: String): ByteArray? = map[name]
        override fun put(name: String, value: ByteArray) { map[name] = value }
        override fun delete(name: String) { map.remove(name) }
    }

    private object Yes : UserPresence {
        override fun verify(reason: String) = true
    }

    private fun core() = SunstormCore(
        CoreConfig("http://127.0.0.1:9", "11".repeat(32), listOf("sigilvault.xyz"), Files.createTempDirectory("cf").resolve("db").toString(), "jvm-check"),
        BluetoothOff(), PlatformHttpClient(), Memory(), Yes,
    )

    @Test
    fun `no bond yet, and Bluetooth off reaches the bonding screen as a retryable message`() {
        core().use { core ->
            val flows = CoreFlows(core)
            assertTrue(runBlocking { flows.bondedAppliances() }.isEmpty())
            assertIs<SunstormException.BluetoothUnavailable>(
                runCatching { runBlocking { flows.bond("AA:BB:CC:DD:EE:01", "135790") } }.exceptionOrNull(),
            )
            val bond = BondController(flows, CoroutineScope(Dispatchers.Unconfined))
            runBlocking {
                bond.scan(timeoutMs = 10)
                // The scan runs on the core's runtime: wait for the controller to settle.
                kotlinx.coroutines.withTimeout(30_000) { while (bond.state.value.scanning) kotlinx.coroutines.delay(5) }
            }
            assertEquals("Turn Bluetooth on and allow Nearby devices, then retry.", bond.state.value.error)
        }
    }

    @Test
    fun `pair and sign flows go to the bound core, and without a bond the pair screen says so`() {
        core().use { core ->
            val flows = CoreFlows(core)
            assertEquals(emptyList(), runBlocking { flows.listPairs() })
            val link = "https://sigilvault.xyz/pair?session=$SID&v=123456"
            assertIs<SunstormException.NotBonded>(runCatching { runBlocking { flows.openLink(link) } }.exceptionOrNull())
            assertIs<SunstormException.NotBonded>(runCatching { runBlocking { flows.pendingSignRequests() } }.exceptionOrNull())
            // Malformed ids never reach the appliance.
            assertIs<SunstormException.NotFound>(runCatching { runBlocking { flows.revoke("not-a-uuid") } }.exceptionOrNull())

            val pair = PairController(flows, CoroutineScope(Dispatchers.Unconfined))
            pair.open(link, SID)
            runBlocking {
                kotlinx.coroutines.withTimeout(30_000) { while (pair.state.value is PairScreen.Loading) kotlinx.coroutines.delay(5) }
            }
            assertEquals(PairScreen.Ended("Bond this phone with your appliance first."), pair.state.value)
            flows.detach()
        }
    }

    private companion object {
        const val SID = "ps_4kT9xQ2mV7nB1cR8sL0wYz"
    }
}
