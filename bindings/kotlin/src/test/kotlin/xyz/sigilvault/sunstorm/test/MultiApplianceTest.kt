package xyz.sigilvault.sunstorm.test

import java.nio.file.Path
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertTrue
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import org.junit.jupiter.api.AfterEach
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.io.TempDir
import xyz.sigilvault.sunstorm.PairStateView
import xyz.sigilvault.sunstorm.SignRequestView
import xyz.sigilvault.sunstorm.SunstormCore
import xyz.sigilvault.sunstorm.SunstormException
import xyz.sigilvault.sunstorm.WalletRowState
import xyz.sigilvault.sunstorm.desktop.Simulators

/**
 * One phone, two appliances, two services, from Kotlin: the octane simulator (with a second
 * demo service) and two appliance simulators run as child processes; the phone bonds both
 * through the package's Kotlin `UdsBleCentral`, pairs each appliance with a different
 * service, and signs on both. Every flow goes to its pair's appliance; a call that needs an
 * appliance and names none is refused with `ChooseAppliance` while two are bonded.
 */
class MultiApplianceTest {
    @TempDir
    lateinit var dir: Path

    private val closeables = mutableListOf<AutoCloseable>()

    @AfterEach
    fun tearDown() {
        closeables.reversed().forEach { runCatching { it.close() } }
    }

    /** Pairs [applianceId] with [service] for Ethereum: (pair id, account). */
    private suspend fun pair(core: SunstormCore, sims: Simulators, service: Int, applianceId: String): Pair<String, String> {
        val session = sims.createSession(listOf(EVM_CHAIN), "alice@example", service = service)
        assertFailsWith<SunstormException.ChooseAppliance> { core.openPairLink(session.link) }
        val opened = core.openPairLink(session.link, applianceId = applianceId)
        assertTrue(opened is PairStateView.CodeNeeded, "$opened")
        assertTrue(core.submitCode(opened.flowId, session.code) is PairStateView.CodeVerified)
        // The wallet list of the flow is its own appliance's.
        val own = core.applianceWallets(listOf(EVM_CHAIN), applianceId = applianceId).map { it.account }
        val rows = core.walletChoices(opened.flowId).filter { it.chain == EVM_CHAIN && it.state != WalletRowState.NOT_REQUESTED }
        assertEquals(own.sorted(), rows.map { it.account }.sorted())
        core.chooseWallets(opened.flowId, listOf(own.first()))
        val paired = core.approvePair(opened.flowId)
        assertTrue(paired is PairStateView.Paired, "$paired")
        return paired.pairId to own.first()
    }

    private suspend fun awaitPending(core: SunstormCore, count: Int): List<SignRequestView> = withTimeout(60_000) {
        var got = core.pendingSignRequests(2_000)
        while (got.size < count) got = core.pendingSignRequests(2_000)
        got
    }

    @Test
    fun `two appliances paired with two services, signing on both`() = runBlocking<Unit> {
        val sims = Simulators.start(dir, extraSps = 1).also { closeables += it }
        sims.startAppliance("sim-2", "43".repeat(32))
        val core = SunstormCore(
            testConfig(dir, sims.octaneUrl, sims.octanePublicKeyHex), sims.bleCentral(), RecordingHttpClient(),
            MemorySecretStore(), ScriptedPresence(),
        ).also { closeables += it }

        val first = core.bondAppliance(sims.applianceId, sims.pin)
        // With one bond, calls that name no appliance use it.
        assertEquals(first.identityFingerprint, core.applianceInfo().identityFingerprint)
        val second = core.bondAppliance("sim-2", sims.pin)
        assertTrue(first.applianceId != second.applianceId)
        assertEquals(
            setOf(first.applianceId to "sim-1", second.applianceId to "sim-2"),
            core.bondedAppliances().map { it.applianceId to it.peripheralId }.toSet(),
        )
        assertFailsWith<SunstormException.ChooseAppliance> { core.applianceInfo() }
        assertFailsWith<SunstormException.NoSuchAppliance> { core.applianceInfo(applianceId = "ab".repeat(32)) }
        assertEquals(second.identityFingerprint, core.applianceInfo(applianceId = second.applianceId).identityFingerprint)

        val (pairA, accountA) = pair(core, sims, 0, first.applianceId)
        val (pairB, accountB) = pair(core, sims, 1, second.applianceId)
        assertTrue(accountA != accountB, "each appliance has its own wallets")
        assertEquals(
            mapOf(pairA to first.applianceId, pairB to second.applianceId),
            core.listPairs().associate { it.pairId to it.applianceId },
        )

        // Each service asks its own pair; one poll brings both; each approval is signed by
        // the appliance that holds the account (the service checks all three signatures).
        val spA = sims.requestSignature(pairA, accountA, listOf("--evm-tx", EIP1559_TRANSFER_HEX), timeoutSecs = 60, service = 0)
            .also { closeables += it }
        val spB = sims.requestSignature(pairB, accountB, listOf("--evm-tx", EIP1559_TRANSFER_HEX), timeoutSecs = 60, service = 1)
            .also { closeables += it }
        val pending = awaitPending(core, 2)
        assertEquals(setOf(pairA to accountA, pairB to accountB), pending.map { it.pairId to it.account }.toSet())
        for (req in pending) core.approveSign(req.requestId)
        for (sp in listOf(spA, spB)) {
            val result = sp.await()
            assertEquals(0, result.exitCode, "sp sign: ${result.output}")
            assertEquals("signed", result.status)
        }

        // Forgetting one leaves the other as the only bond.
        core.forgetAppliance(applianceId = second.applianceId)
        assertEquals(listOf(first.applianceId), core.bondedAppliances().map { it.applianceId })
        assertEquals(first.identityFingerprint, core.applianceInfo().identityFingerprint)
        assertFailsWith<SunstormException.NoSuchAppliance> { core.applianceWallets(applianceId = second.applianceId) }
    }
}
