package xyz.sigilvault.sunstorm.test

import java.nio.file.Files
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertTrue
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import org.junit.jupiter.api.Test
import xyz.sigilvault.sunstorm.BondedApplianceView
import xyz.sigilvault.sunstorm.PairStateView
import xyz.sigilvault.sunstorm.SignRequestView
import xyz.sigilvault.sunstorm.SunstormCore
import xyz.sigilvault.sunstorm.SunstormException
import xyz.sigilvault.sunstorm.WalletRowState
import xyz.sigilvault.sunstorm.desktop.PendingSignature
import xyz.sigilvault.sunstorm.desktop.Simulators

/**
 * One phone, two appliances, two services, from Kotlin: the octane simulator (with a second
 * demo service) and two appliance simulators run as child processes; the phone bonds both
 * through the package's Kotlin `UdsBleCentral`, pairs each appliance with a different
 * service, and signs on both. Every flow goes to its pair's appliance; a call that needs an
 * appliance and names none is refused with `ChooseAppliance` while two are bonded. Then a
 * second phone bonded with one of them forgets the first (a lost phone).
 */
class MultiApplianceTest : ClosingTest() {
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

    /** Polls [core] until [done] holds for its pending requests (at most 60 s). */
    private suspend fun awaitPending(core: SunstormCore, done: (List<SignRequestView>) -> Boolean): List<SignRequestView> =
        withTimeout(60_000) {
            var got = core.pendingSignRequests(2_000)
            while (!done(got)) got = core.pendingSignRequests(2_000)
            got
        }

    /** Phone one with appliances A and B bonded, each paired with its own service. */
    private class TwoAppliances(
        val sims: Simulators,
        val core: SunstormCore,
        val a: BondedApplianceView,
        val b: BondedApplianceView,
        val pairA: String,
        val accountA: String,
        val pairB: String,
        val accountB: String,
    )

    /**
     * Starts octane (two services) and appliances A (`sim-1`) and B (`sim-2`); phone one
     * bonds both, pairs A with service 0 and B with service 1, and signs on both: every flow
     * goes to its pair's appliance, and a call that needs an appliance and names none is
     * refused with `ChooseAppliance` while two are bonded.
     */
    private suspend fun bondPairAndSignOnBoth(control: Boolean = false): TwoAppliances {
        val sims = Simulators.start(dir, extraSps = 1, control = control).also { closeables += it }
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
        val spA = sign(sims, pairA, accountA, service = 0)
        val spB = sign(sims, pairB, accountB, service = 1)
        val pending = awaitPending(core) { it.size >= 2 }
        assertEquals(setOf(pairA to accountA, pairB to accountB), pending.map { it.pairId to it.account }.toSet())
        for (req in pending) core.approveSign(req.requestId)
        for (sp in listOf(spA, spB)) assertSigned(sp)
        return TwoAppliances(sims, core, first, second, pairA, accountA, pairB, accountB)
    }

    /** Service [service] asks [account] of [pairId] to sign a transfer (waiting in the background). */
    private fun sign(sims: Simulators, pairId: String, account: String, service: Int): PendingSignature =
        sims.requestSignature(pairId, account, listOf("--evm-tx", EIP1559_TRANSFER_HEX), timeoutSecs = 60, service = service)
            .also { closeables += it }

    private fun assertSigned(sp: PendingSignature) {
        val result = sp.await()
        assertEquals(0, result.exitCode, "sp sign: ${result.output}")
        assertEquals("signed", result.status)
    }

    @Test
    fun `two appliances paired with two services, signing on both`() = runBlocking<Unit> {
        val t = bondPairAndSignOnBoth()
        val core = t.core
        // Forgetting one leaves the other as the only bond.
        core.forgetAppliance(applianceId = t.b.applianceId)
        assertEquals(listOf(t.a.applianceId), core.bondedAppliances().map { it.applianceId })
        assertEquals(t.a.identityFingerprint, core.applianceInfo().identityFingerprint)
        assertFailsWith<SunstormException.NoSuchAppliance> { core.applianceWallets(applianceId = t.b.applianceId) }
    }

    /**
     * The lost-phone procedure: phone two, bonded with appliance A only, lists A's phones and
     * forgets phone one. Appliance A refuses phone one from then on (its held request and any
     * call), octane refuses phone one's requests about A (`PhoneForgotten`), and phone one
     * goes on signing with appliance B, which never forgot it.
     */
    @Test
    fun `a second phone forgets the first on appliance A, which A and octane then refuse`() = runBlocking<Unit> {
        val t = bondPairAndSignOnBoth(control = true)
        val one = t.core
        val twoDir = dir.resolve("phone-two").also { Files.createDirectories(it) }
        val two = SunstormCore(
            testConfig(twoDir, t.sims.octaneUrl, t.sims.octanePublicKeyHex).copy(phoneName = "Phone two"),
            t.sims.bleCentral(), RecordingHttpClient(), MemorySecretStore(), ScriptedPresence(),
        ).also { closeables += it }
        // A bond closed A's bonding mode: its user opens it again for phone two.
        t.sims.control().openBonding()
        two.bondAppliance(t.sims.applianceId, t.sims.pin)

        val phones = two.bondedPhones()
        assertEquals(listOf("Kotlin test phone" to false, "Phone two" to true), phones.map { it.name to it.thisPhone })
        val lost = phones.first { !it.thisPhone }
        val seenByOne = one.bondedPhones(applianceId = t.a.applianceId)
        assertEquals(phones.map { it.appKey }, seenByOne.map { it.appKey })
        assertEquals(listOf(true, false), seenByOne.map { it.thisPhone })

        // Phone one holds a request of service 0 (appliance A) when it is forgotten.
        val held = sign(t.sims, t.pairA, t.accountA, service = 0)
        val heldRequest = awaitPending(one) { p -> p.any { it.pairId == t.pairA } }.first { it.pairId == t.pairA }

        assertFailsWith<SunstormException.CannotForgetSelf> { two.forgetPhone(phones.first { it.thisPhone }.appKey) }
        assertFailsWith<SunstormException.UnknownPhone> { two.forgetPhone("zz") }
        val forgotten = two.forgetPhone(lost.appKey)
        assertEquals(lost.appKey, forgotten.appKey)
        assertTrue(forgotten.octaneTold, "octane was told at once")
        assertEquals(listOf("Phone two"), two.bondedPhones().map { it.name })
        assertFailsWith<SunstormException.UnknownPhone> { two.forgetPhone(lost.appKey) }

        // Appliance A refuses phone one: its held request, and any call.
        assertFailsWith<SunstormException.PhoneForgotten> { one.approveSign(heldRequest.requestId) }
        held.close()
        assertFailsWith<SunstormException.PhoneForgotten> { one.applianceInfo(applianceId = t.a.applianceId) }

        // Appliance B never forgot phone one: it signs for service 1 as before.
        val spB = sign(t.sims, t.pairB, t.accountB, service = 1)
        val fromB = awaitPending(one) { p -> p.any { it.pairId == t.pairB } }.first { it.pairId == t.pairB }
        one.approveSign(fromB.requestId)
        assertSigned(spB)

        // Octane no longer routes appliance A's requests to phone one: with B forgotten on
        // phone one, its only poll (about A) is refused.
        one.forgetAppliance(applianceId = t.b.applianceId)
        assertFailsWith<SunstormException.PhoneForgotten> { one.pendingSignRequests(0) }
    }
}
