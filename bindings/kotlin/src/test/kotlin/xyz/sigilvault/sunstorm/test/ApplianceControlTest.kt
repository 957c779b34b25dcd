package xyz.sigilvault.sunstorm.test

import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertFalse
import kotlin.test.assertTrue
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.async
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import org.junit.jupiter.api.Test
import xyz.sigilvault.sunstorm.PairStateView
import xyz.sigilvault.sunstorm.SignRequestView
import xyz.sigilvault.sunstorm.SunstormCore
import xyz.sigilvault.sunstorm.SunstormException
import xyz.sigilvault.sunstorm.WalletRowState
import xyz.sigilvault.sunstorm.desktop.ApplianceControl
import xyz.sigilvault.sunstorm.desktop.ApplianceControlException
import xyz.sigilvault.sunstorm.desktop.Simulators

/**
 * UI-style tests with the appliance simulator as a test instrument: the appliance runs
 * with `--user api --control 127.0.0.1:0`, so it answers nothing until the test presses
 * its buttons through the control API ([ApplianceControl]), after reading its screen.
 * The phone is the generated Kotlin over the Rust core; the service is `sunstorm sp`.
 */
class ApplianceControlTest : ClosingTest() {
    private inner class Rig {
        val sims = Simulators.start(dir, applianceArgs = listOf("--user", "api"), control = true).also { closeables += it }
        val appliance: ApplianceControl = sims.control()
        val core = SunstormCore(
            testConfig(dir, sims.octaneUrl, sims.octanePublicKeyHex),
            sims.bleCentral(),
            RecordingHttpClient(),
            MemorySecretStore(),
            ScriptedPresence(),
        ).also { closeables += it }

        /** Bond, then pair on [EVM_CHAIN]; the appliance's pair screen is approved by a rule. */
        suspend fun paired(): Pair<String, String> {
            appliance.addRule("approve", kind = "pair")
            core.bondAppliance(sims.applianceId, sims.pin)
            val session = sims.createSession(listOf(EVM_CHAIN), "alice@example")
            val opened = core.openPairLink(session.link)
            assertTrue(opened is PairStateView.CodeNeeded, "$opened")
            assertTrue(core.submitCode(opened.flowId, session.code) is PairStateView.CodeVerified)
            val row = core.walletChoices(opened.flowId).first { it.chain == EVM_CHAIN && it.state == WalletRowState.SELECTABLE }
            core.chooseWallets(opened.flowId, listOf(row.account))
            val paired = core.approvePair(opened.flowId)
            assertTrue(paired is PairStateView.Paired, "$paired")
            return paired.pairId to row.account
        }

        /** Long-polls until octane delivered [requestId] to the phone: its review screen. */
        suspend fun review(requestId: String? = null): SignRequestView = withTimeout(60_000) {
            var got: SignRequestView? = null
            while (got == null) {
                got = core.pendingSignRequests(2_000).firstOrNull { requestId == null || it.requestId == requestId }
            }
            got
        }
    }

    /** The appliance's own screen names what the phone's review screen showed. */
    private fun assertSameAsPhone(screen: ApplianceControl.Screen, review: SignRequestView) {
        assertEquals("sign", screen.kind)
        assertEquals(review.requestId, screen.requestId)
        assertEquals(review.title, screen.action)
        assertEquals(review.fields.first { it.key == "value" }.value, screen.field("value"), "the amount")
        assertEquals(review.fields.first { it.key == "to" }.value, screen.field("to"), "the recipient")
        assertEquals(listOf("0.05 ETH"), screen.amounts)
        assertEquals(review.payloadHash, screen.payloadHash)
        assertEquals(listOf(review.account), screen.accounts)
        assertTrue(screen.text.contains("Value: 0.05 ETH"), "${screen.text}")
    }

    @Test
    fun `the appliance shows the phone's request and its approve, then its reject, reach the service`() = runBlocking<Unit> {
        val rig = Rig()
        val (pairId, account) = rig.paired()

        // 1. The service asks for 0.05 ETH; the user reviews and approves on the phone.
        val sp = rig.sims.requestSignature(pairId, account, listOf("--evm-tx", EIP1559_TRANSFER_HEX), timeoutSecs = 60)
            .also { closeables += it }
        val review = rig.review()
        assertEquals("0.05 ETH", review.fields.first { it.key == "value" }.value)
        val approving = async(Dispatchers.IO) { rig.core.approveSign(review.requestId) }
        // The appliance shows the request, computed from what it verified, and waits.
        val screen = rig.appliance.waitForScreen { it.requestId == review.requestId }
        assertSameAsPhone(screen, review)
        assertFalse(approving.isCompleted, "nothing answers before the appliance's button is pressed")
        assertEquals(emptyMap(), rig.appliance.state().signatures)
        // The person at the appliance approves.
        rig.appliance.approve(screenId = screen.id)
        approving.await()
        val signed = sp.await()
        assertEquals(0, signed.exitCode, "sp sign: ${signed.output}")
        assertEquals("signed", signed.status)
        assertEquals(review.requestId, signed.requestId)

        // 2. Another request; this time the person at the appliance rejects it.
        val sp2 = rig.sims.requestSignature(pairId, account, listOf("--evm-tx", EIP1559_TRANSFER_HEX), timeoutSecs = 60)
            .also { closeables += it }
        val review2 = rig.review()
        assertTrue(review2.requestId != review.requestId)
        // runCatching: the phone's failure is the expected outcome, not the test's.
        val approving2 = async(Dispatchers.IO) { runCatching { rig.core.approveSign(review2.requestId) } }
        val screen2 = rig.appliance.waitForScreen { it.requestId == review2.requestId }
        assertSameAsPhone(screen2, review2)
        rig.appliance.reject(requestId = review2.requestId)
        val declined = approving2.await().exceptionOrNull()
        assertTrue(declined is SunstormException.ApplianceDeclined, "$declined")
        val rejected = sp2.await()
        assertEquals(2, rejected.exitCode, "sp sign: ${rejected.output}")
        assertTrue(rejected.output.any { it.contains("user_rejected") }, "${rejected.output}")

        // Exactly one signature, for the approved request id; none for the rejected one.
        val state = rig.appliance.state()
        assertEquals(mapOf(review.requestId to 1), state.signatures)
        assertEquals(1L, state.totalSignatures)
        assertEquals(listOf(pairId), state.pairIds)
        // Nothing is left on screen to press.
        val e = assertFailsWith<ApplianceControlException> { rig.appliance.approve() }
        assertEquals("no_screen", e.code)
        assertEquals(409, e.status)
    }

    @Test
    fun `a disconnect during a sign, then recovery, still signs once`() = runBlocking<Unit> {
        val rig = Rig()
        val (pairId, account) = rig.paired()
        val sp = rig.sims.requestSignature(pairId, account, listOf("--evm-tx", EIP1559_TRANSFER_HEX), timeoutSecs = 60)
            .also { closeables += it }
        val review = rig.review()
        val approving = async(Dispatchers.IO) { rig.core.approveSign(review.requestId) }
        rig.appliance.waitForScreen { it.requestId == review.requestId }

        // The radio link breaks while the appliance waits for its user.
        assertTrue(rig.appliance.disconnect() >= 1)
        // The phone reconnects by itself and sends the same request again.
        val deadline = System.currentTimeMillis() + 20_000
        while (rig.appliance.openConnections() == 0) {
            check(System.currentTimeMillis() < deadline) { "the phone did not reconnect" }
            Thread.sleep(50)
        }
        assertEquals(review.requestId, rig.appliance.screen()?.requestId, "the screen stays")
        rig.appliance.approve(requestId = review.requestId)
        approving.await()
        val signed = sp.await()
        assertEquals(0, signed.exitCode, "sp sign: ${signed.output}")
        assertEquals(mapOf(review.requestId to 1), rig.appliance.state().signatures)
        val log = rig.appliance.events().events.map { it.type }
        assertTrue(log.contains("faults_changed") && log.contains("signature_made"), "$log")
    }
}
