package xyz.sigilvault.sunstorm.test

import java.nio.file.Path
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertNull
import kotlin.test.assertTrue
import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.io.TempDir
import xyz.sigilvault.sunstorm.FlowProgress
import xyz.sigilvault.sunstorm.SunstormCore
import xyz.sigilvault.sunstorm.SunstormException

/**
 * Bonding with and querying the appliance simulator as a separate process, through the
 * generated Kotlin and a BleCentral implemented in Kotlin (the path the Android shell uses).
 */
class ApplianceSimTest {
    @TempDir
    lateinit var dir: Path

    @Test
    fun `bond with and query the appliance simulator through a Kotlin BleCentral`() = runBlocking<Unit> {
        val sock = dir.resolve("appliance.sock")
        SimProcess(listOf("sim", "appliance", "--socket", sock.toString(), "--pin", "246810", "--mtu", "185")).use { sim ->
            assertEquals("PIN: 246810", sim.awaitLine("PIN:"))
            val central = UdsBleCentral(mapOf("sim-1" to sock))
            val secrets = MemorySecretStore()
            SunstormCore(testConfig(dir), central, JdkHttpClient(), secrets, ScriptedPresence()).use { core ->
                assertNull(core.bondedAppliance())
                assertFailsWith<SunstormException.NotBonded> { core.applianceInfo(null) }
                assertEquals(listOf("sim-1"), core.scanAppliances(100u, null).map { it.peripheralId })

                val wrong = assertFailsWith<SunstormException.WrongPin> {
                    core.bondAppliance("sim-1", "135790", null, null)
                }
                assertTrue(wrong.attemptsLeft > 0u, "attempts left: ${wrong.attemptsLeft}")

                val listener = CollectingListener()
                val bonded = core.bondAppliance("sim-1", "246810", null, listener)
                assertEquals("Sigil simulator", bonded.name)
                assertEquals("sim-1", bonded.peripheralId)
                assertTrue(FlowProgress.ConnectingToAppliance in listener.events, "${listener.events}")
                assertTrue(secrets.names().containsAll(listOf("app.ed25519", "channel.x25519", "appliance.bond")), "${secrets.names()}")
                assertEquals(bonded, core.bondedAppliance())

                val info = core.applianceInfo(null)
                assertEquals(bonded.identityFingerprint, info.identityFingerprint)
                assertEquals("Sigil simulator", info.name)

                val wallets = core.applianceWallets(listOf("eip155:1"), null)
                assertTrue(wallets.isNotEmpty())
                assertTrue(wallets.all { it.chain == "eip155:1" && it.account.startsWith("eip155:1:0x") }, "$wallets")
                assertEquals("Ethereum", wallets[0].chainName)
                assertTrue(central.writes.get() > 0)

                assertFailsWith<SunstormException.InvalidSelection> { core.applianceWallets(listOf("not a chain"), null) }
            }
        }
    }
}
