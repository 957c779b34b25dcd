package xyz.sigilvault.sunstorm.test

import java.nio.file.Files
import java.nio.file.Path
import java.nio.file.attribute.PosixFilePermissions
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertTrue
import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.io.TempDir
import xyz.sigilvault.sunstorm.FlowProgress
import xyz.sigilvault.sunstorm.SunstormCore
import xyz.sigilvault.sunstorm.SunstormException
import xyz.sigilvault.sunstorm.desktop.FileSecretStore
import xyz.sigilvault.sunstorm.desktop.JdkHttpClient
import xyz.sigilvault.sunstorm.desktop.SimProcess
import xyz.sigilvault.sunstorm.desktop.UdsBleCentral

/**
 * Bonding with and querying the appliance simulator as a separate process, through the
 * generated Kotlin and the package's desktop helpers: the Kotlin [UdsBleCentral] (the path
 * the Android shell's BleCentral takes) and the file-backed secret store.
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
            val secrets = FileSecretStore(dir.resolve("secrets"))
            SunstormCore(testConfig(dir), central, JdkHttpClient(), secrets, ScriptedPresence()).use { core ->
                assertTrue(core.bondedAppliances().isEmpty())
                assertFailsWith<SunstormException.NotBonded> { core.applianceInfo() }
                assertEquals(listOf("sim-1"), core.scanAppliances(100).map { it.peripheralId })

                val wrong = assertFailsWith<SunstormException.WrongPin> { core.bondAppliance("sim-1", "135790") }
                assertTrue(wrong.attemptsLeft > 0, "attempts left: ${wrong.attemptsLeft}")
                // The message is the sentence; the type stays in toString (stack traces).
                assertEquals("wrong PIN (${wrong.attemptsLeft} attempts left)", wrong.message)
                assertEquals("xyz.sigilvault.sunstorm.SunstormException\$WrongPin: ${wrong.message}", wrong.toString())

                val listener = CollectingListener()
                val bonded = core.bondAppliance("sim-1", "246810", listener = listener)
                assertEquals("Sigil simulator", bonded.name)
                assertEquals("sim-1", bonded.peripheralId)
                assertTrue(FlowProgress.ConnectingToAppliance in listener.events, "${listener.events}")
                // The secret store holds the phone's keys; the bond is the core's (no copy here).
                assertEquals(listOf("app.ed25519", "channel.x25519"), secrets.names())
                assertEquals(listOf(bonded), core.bondedAppliances())
                assertEquals(64, bonded.applianceId.length)

                val info = core.applianceInfo()
                assertEquals(bonded.identityFingerprint, info.identityFingerprint)
                assertEquals("Sigil simulator", info.name)

                val wallets = core.applianceWallets(listOf("eip155:1"))
                assertTrue(wallets.isNotEmpty())
                assertTrue(wallets.all { it.chain == "eip155:1" && it.account.startsWith("eip155:1:0x") }, "$wallets")
                assertEquals("Ethereum", wallets[0].chainName)
                assertTrue(core.applianceWallets().size > wallets.size, "all chains by default")
                assertTrue(central.writes.get() > 0)

                assertFailsWith<SunstormException.InvalidSelection> { core.applianceWallets(listOf("not a chain")) }
            }
            // The keys are files only their owner can read, in a directory only they can list.
            val perms = { p: Path -> PosixFilePermissions.toString(Files.getPosixFilePermissions(p)) }
            assertEquals("rwx------", perms(dir.resolve("secrets")))
            assertEquals("rw-------", perms(dir.resolve("secrets/channel.x25519")))
        }
    }
}
