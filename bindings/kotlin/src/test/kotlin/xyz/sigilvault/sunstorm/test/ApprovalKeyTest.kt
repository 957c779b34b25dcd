package xyz.sigilvault.sunstorm.test

import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertFalse
import kotlin.test.assertNotEquals
import kotlin.test.assertTrue
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.async
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import org.junit.jupiter.api.Test
import xyz.sigilvault.sunstorm.ApprovalPolicyView
import xyz.sigilvault.sunstorm.PairStateView
import xyz.sigilvault.sunstorm.SignRequestView
import xyz.sigilvault.sunstorm.SunstormCore
import xyz.sigilvault.sunstorm.SunstormException
import xyz.sigilvault.sunstorm.desktop.PendingSignature
import xyz.sigilvault.sunstorm.desktop.SignatureResult
import xyz.sigilvault.sunstorm.desktop.JdkHttpClient
import xyz.sigilvault.sunstorm.desktop.Simulators
import xyz.sigilvault.sunstorm.desktop.UdsBleCentral

/**
 * Approvals the appliance can verify, from Kotlin: the phone's approval key (a JCA P-256 key
 * with a scriptable person at the "biometric prompt", [JcaApprovalKey]) is handed to the core,
 * enrolled with the appliance simulator while bonding, and signs every approval over the
 * request and the screen. The appliance (policy `always` for a pair made from a phone with a
 * key) signs only with a valid proof; the service (`sunstorm sp sign`) reads each refusal's
 * reason.
 */
class ApprovalKeyTest : ClosingTest() {
    private inner class Rig {
        val sims = Simulators.start(dir, control = true).also { closeables += it }
        val appliance = sims.control()
        val key = JcaApprovalKey()
        /** Guards pairing; with an approval key, the key's prompt is the presence check when signing. */
        val presence = ScriptedPresence(answer = true)
        val core = SunstormCore(
            testConfig(dir, sims.octaneUrl, sims.octanePublicKeyHex),
            sims.bleCentral(),
            RecordingHttpClient(),
            MemorySecretStore(),
            presence,
            key,
        ).also { closeables += it }
        private val seen = mutableSetOf<String>()

        /** Bond (the key is enrolled inside the bonding exchange) and pair for Ethereum. */
        suspend fun paired(): Pair<String, String> {
            core.bondAppliance(sims.applianceId, sims.pin)
            val session = sims.createSession(listOf(EVM_CHAIN))
            val opened = core.openPairLink(session.link) as PairStateView.CodeNeeded
            assertTrue(core.submitCode(opened.flowId, session.code) is PairStateView.CodeVerified)
            val account = core.applianceWallets(listOf(EVM_CHAIN)).first().account
            core.chooseWallets(opened.flowId, listOf(account))
            return (core.approvePair(opened.flowId) as PairStateView.Paired).pairId to account
        }

        /** The service asks for 0.05 ETH; returns its waiting process and the phone's review. */
        suspend fun request(pairId: String, account: String): Pair<PendingSignature, SignRequestView> {
            val sp = sims.requestSignature(pairId, account, listOf("--evm-tx", EIP1559_TRANSFER_HEX), timeoutSecs = 60)
                .also { closeables += it }
            val review: SignRequestView = withTimeout(60_000) {
                var fresh: SignRequestView? = null
                while (fresh == null) fresh = core.pendingSignRequests(2_000).firstOrNull { it.requestId !in seen }
                requireNotNull(fresh)
            }
            seen += review.requestId
            return sp to review
        }

        /** The appliance's refusal code when approving [review] fails there. */
        suspend fun refusedByAppliance(review: SignRequestView): String =
            assertFailsWith<SunstormException.ApplianceRefused> { core.approveSign(review.requestId) }.code

        fun signaturesFor(requestId: String): Int = appliance.state().signatures[requestId] ?: 0
    }

    private fun assertServiceRead(reason: String, result: SignatureResult) {
        assertEquals(2, result.exitCode, "sp sign: ${result.output}")
        assertTrue(result.output.any { it.contains("sign_rejected") }, "${result.output}")
        assertTrue(result.output.any { it.contains(reason) }, "the service reads why: ${result.output}")
    }

    @Test
    fun `with policy always only a valid proof over this request and screen is signed`() = runBlocking<Unit> {
        val rig = Rig()
        val (pairId, account) = rig.paired()
        val fingerprint = rig.core.approvalKeyFingerprint()
        val state = rig.appliance.state()
        assertEquals(listOf<String?>(fingerprint), state.approvalKeys, "enrolled while bonding")
        assertEquals("always", state.approvalPolicies[pairId])

        // A valid proof: the prompt is shown once (no second presence check), the appliance signs.
        val (sp, review) = rig.request(pairId, account)
        val asked = rig.presence.reasons.size
        rig.presence.answer = false // would refuse: the key's prompt is what signing asks
        rig.core.approveSign(review.requestId)
        assertEquals(1, rig.key.prompts)
        assertEquals(asked, rig.presence.reasons.size, "the key's prompt replaced the presence check")
        assertEquals("signed", sp.await().status)
        assertEquals(1, rig.signaturesFor(review.requestId))
        val (firstMessage, firstProof) = rig.key.signed.single()
        assertTrue(firstMessage.decodeToString(0, 24) == "sigil/v1/approval-proof\u0000", "domain-separated statement")

        // A forged proof (a key the appliance never enrolled).
        val (forgedSp, forged) = rig.request(pairId, account)
        rig.key.forgeWith = JcaApprovalKey.newKey()
        assertEquals("approval_invalid", rig.refusedByAppliance(forged))
        rig.key.forgeWith = null
        assertServiceRead("approval_invalid", forgedSp.await())
        assertEquals(0, rig.signaturesFor(forged.requestId))

        // A proof over another screen than the one shown (its display digest swapped).
        val (otherSp, other) = rig.request(pairId, account)
        val shown = hex(other.displayDigest)
        rig.key.swapDigest = shown to ByteArray(32) { 0x5a }
        assertEquals("approval_invalid", rig.refusedByAppliance(other))
        rig.key.swapDigest = null
        assertServiceRead("approval_invalid", otherSp.await())
        assertEquals(0, rig.signaturesFor(other.requestId))

        // The first request's proof replayed for another request.
        val (replaySp, replayed) = rig.request(pairId, account)
        rig.key.replay = firstProof
        assertEquals("approval_invalid", rig.refusedByAppliance(replayed))
        rig.key.replay = null
        assertServiceRead("approval_invalid", replaySp.await())
        assertEquals(0, rig.signaturesFor(replayed.requestId))

        // A cancelled prompt: nothing reaches the appliance, the request still waits; the
        // user then declines it and the service reads that.
        val (cancelSp, cancelled) = rig.request(pairId, account)
        rig.key.user = JcaApprovalKey.User.CANCEL
        val e = assertFailsWith<SunstormException.ApprovalCancelled> { rig.core.approveSign(cancelled.requestId) }
        assertEquals("the approval was cancelled at the biometric prompt; nothing was sent", e.message)
        rig.key.user = JcaApprovalKey.User.APPROVE
        assertTrue(rig.core.pendingSignRequests(0).any { it.requestId == cancelled.requestId }, "still waiting")
        assertEquals(0, rig.signaturesFor(cancelled.requestId))
        rig.core.rejectSign(cancelled.requestId)
        assertServiceRead("user_rejected", cancelSp.await())

        assertEquals(1L, rig.appliance.state().totalSignatures, "only the valid proof was signed")
    }

    @Test
    fun `after the key is invalidated a new key confirmed on the appliance restores signing`() = runBlocking<Unit> {
        val rig = Rig()
        val (pairId, account) = rig.paired()
        val oldFingerprint = rig.core.approvalKeyFingerprint()

        // Biometrics changed: the key is invalidated; the request keeps waiting.
        val (sp, review) = rig.request(pairId, account)
        rig.key.invalidate()
        assertFailsWith<SunstormException.ApprovalKeyInvalidated> { rig.core.approveSign(review.requestId) }
        assertEquals(0, rig.signaturesFor(review.requestId))

        // The platform makes a new key; the person at the appliance is asked, sees its
        // fingerprint, and declines first: the appliance keeps the old key.
        val newFingerprint = rig.core.approvalKeyFingerprint()
        assertNotEquals(oldFingerprint, newFingerprint)
        rig.appliance.setUser("api")
        val declining = async(Dispatchers.IO) { runCatching { rig.core.enrolApprovalKey() } }
        val screen = rig.appliance.waitForScreen { it.kind == "enrol_approval_key" }
        assertEquals(newFingerprint, screen.field("approval_key"))
        rig.appliance.reject(screenId = screen.id)
        assertTrue(declining.await().exceptionOrNull() is SunstormException.ApplianceDeclined)
        assertEquals(listOf<String?>(oldFingerprint), rig.appliance.state().approvalKeys)

        // Confirmed: the appliance holds the new key, and the request that waited is signed.
        val enrolling = async(Dispatchers.IO) { rig.core.enrolApprovalKey() }
        val again = rig.appliance.waitForScreen { it.kind == "enrol_approval_key" }
        rig.appliance.approve(screenId = again.id)
        enrolling.await()
        assertEquals(listOf<String?>(newFingerprint), rig.appliance.state().approvalKeys)
        rig.appliance.setUser("approve")
        rig.core.approveSign(review.requestId)
        assertEquals("signed", sp.await().status)
        assertEquals(1, rig.signaturesFor(review.requestId))
    }

    @Test
    fun `the policy changes only with the appliance's confirmation`() = runBlocking<Unit> {
        val rig = Rig()
        val (pairId, _) = rig.paired()
        rig.appliance.setUser("reject")
        assertFailsWith<SunstormException.ApplianceDeclined> { rig.core.setApprovalPolicy(pairId, ApprovalPolicyView.Never) }
        assertEquals("always", rig.appliance.state().approvalPolicies[pairId])

        rig.appliance.setUser("approve")
        val above = ApprovalPolicyView.Above("50000000000000000")
        assertEquals(above, rig.core.setApprovalPolicy(pairId, above))
        assertEquals("above:50000000000000000", rig.appliance.state().approvalPolicies[pairId])
        val bad = assertFailsWith<SunstormException.InvalidSelection> {
            rig.core.setApprovalPolicy(pairId, ApprovalPolicyView.Above("0.05"))
        }
        assertTrue(bad.reason.contains("smallest unit"), bad.reason)
        assertEquals(ApprovalPolicyView.Never, rig.core.setApprovalPolicy(pairId, ApprovalPolicyView.Never))
        assertEquals("never", rig.appliance.state().approvalPolicies[pairId])
    }

    @Test
    fun `without an approval key the calls that need one say so`() = runBlocking<Unit> {
        val core = SunstormCore(testConfig(dir), UdsBleCentral(emptyMap()), JdkHttpClient(), MemorySecretStore(), ScriptedPresence())
            .also { closeables += it }
        assertFalse(core.hasApprovalKey())
        val e = assertFailsWith<SunstormException.InvalidConfig> { core.enrolApprovalKey() }
        assertEquals("invalid configuration: the core was created without an approval key", e.message)
        assertFailsWith<SunstormException.InvalidConfig> { core.approvalKeyFingerprint() }
    }

    private fun hex(s: String): ByteArray = ByteArray(s.length / 2) { s.substring(2 * it, 2 * it + 2).toInt(16).toByte() }
}
