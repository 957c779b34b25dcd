package xyz.sigilvault.sunstorm.test

import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertTrue
import kotlinx.coroutines.async
import kotlinx.coroutines.delay
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import org.junit.jupiter.api.Test
import xyz.sigilvault.sunstorm.AuditActor
import xyz.sigilvault.sunstorm.AuditEventView
import xyz.sigilvault.sunstorm.CancelHandle
import xyz.sigilvault.sunstorm.ChainLimitSetting
import xyz.sigilvault.sunstorm.FlowProgress
import xyz.sigilvault.sunstorm.HistoryWarning
import xyz.sigilvault.sunstorm.PairOutcomeView
import xyz.sigilvault.sunstorm.PairStateView
import xyz.sigilvault.sunstorm.SignOutcomeView
import xyz.sigilvault.sunstorm.SignRequestView
import xyz.sigilvault.sunstorm.SunstormCore
import xyz.sigilvault.sunstorm.SunstormException
import xyz.sigilvault.sunstorm.WalletRowState
import xyz.sigilvault.sunstorm.desktop.PendingSignature
import xyz.sigilvault.sunstorm.desktop.Simulators

/** `eip1559_transfer(1, 0, [0x11; 20], ETHER / 20)` from `sunstorm_sim::samples`: 0.05 ETH on
 *  Ethereum mainnet (chain id 1). Checked against the generator by `bindings/tests/samples.rs`. */
const val EIP1559_TRANSFER_HEX =
    "02ef018084773594008506fc23ac0082520894111111111111111111111111111111111111111187b1a2bc2ec5000080c0"
const val EVM_CHAIN = "eip155:1"

private fun jsonField(json: String, name: String): String =
    requireNotNull(Regex("\"$name\":\"([^\"]*)\"").find(json)?.groupValues?.get(1)) { "no $name in $json" }

/**
 * The pair and sign flows end to end from Kotlin: the octane simulator and the appliance
 * simulator run as child processes, the SP is the `sunstorm sp` CLI, and the phone is the
 * generated Kotlin over the Rust core with the package's Kotlin `UdsBleCentral` (the
 * Android path).
 */
class FlowsTest : ClosingTest() {
    private inner class Rig(applianceArgs: List<String> = emptyList()) {
        /** octane and the appliance, as `sunstorm sim` processes (the package's [Simulators]). */
        val sims = Simulators.start(dir, applianceArgs = applianceArgs).also { closeables += it }
        val presence = ScriptedPresence()
        val listener = CollectingListener()
        /** The package's JdkHttpClient, which every octane call goes through. */
        val http = RecordingHttpClient()
        val secrets = MemorySecretStore()
        var core: SunstormCore = open()

        private fun open(): SunstormCore =
            SunstormCore(testConfig(dir, sims.octaneUrl, sims.octanePublicKeyHex), sims.bleCentral(), http, secrets, presence)
                .also { closeables += it; it.setFlowListener(listener) }

        /** Closes the core and opens a new one on the same database and secret store (an app restart). */
        fun restart() {
            core.close()
            core = open()
        }

        /** A new pair session: (link, validation code). */
        fun createSession(): Pair<String, String> =
            sims.createSession(listOf(EVM_CHAIN), "alice@example").let { it.link to it.code }

        /** Bond, open the link, enter [code]; returns the flow id and the state. */
        suspend fun openAndBond(): Triple<String, String, PairStateView.CodeNeeded> {
            core.bondAppliance(sims.applianceId, sims.pin)
            val (link, code) = createSession()
            val opened = core.openPairLink(link)
            assertTrue(opened is PairStateView.CodeNeeded, "$opened")
            return Triple(opened.flowId, code, opened)
        }

        /** Code, wallets: returns the flow id and the chosen account. */
        suspend fun upToWalletsChosen(): Pair<String, String> {
            val (flow, code, _) = openAndBond()
            assertTrue(core.submitCode(flow, code) is PairStateView.CodeVerified)
            val rows = core.walletChoices(flow)
            val row = rows.first { it.chain == EVM_CHAIN && it.state != WalletRowState.NOT_REQUESTED }
            val chosen = core.chooseWallets(flow, listOf(row.account))
            assertTrue(chosen is PairStateView.WalletsChosen && chosen.accounts == listOf(row.account), "$chosen")
            return flow to row.account
        }

        /** A complete two-device pair on [EVM_CHAIN]: (pair id, account, service name). */
        suspend fun paired(): Triple<String, String, String> {
            val (flow, account) = upToWalletsChosen()
            val sp = (core.pairState(flow) as PairStateView.WalletsChosen).card.spName
            val paired = core.approvePair(flow)
            assertTrue(paired is PairStateView.Paired, "$paired")
            return Triple(paired.pairId, account, sp)
        }

        /** The SP asks for [EIP1559_TRANSFER_HEX] in the background and waits for the answer. */
        fun spSign(pairId: String, account: String): PendingSignature =
            sims.requestSignature(pairId, account, listOf("--evm-tx", EIP1559_TRANSFER_HEX), timeoutSecs = 60)
                .also { closeables += it }

        /** Long-polls until octane delivered at least one request. */
        suspend fun awaitPending(): List<SignRequestView> = withTimeout(60_000) {
            var got = core.pendingSignRequests(2_000)
            while (got.isEmpty()) got = core.pendingSignRequests(2_000)
            got
        }
    }

    @Test
    fun `octane unreachable through the platform HTTP client is a clear error, and the link can be retried`() = runBlocking<Unit> {
        val rig = Rig()
        rig.core.bondAppliance(rig.sims.applianceId, rig.sims.pin)
        val (link, _) = rig.createSession()
        rig.http.offline = true
        val err = assertFailsWith<SunstormException.OctaneUnreachable> { rig.core.openPairLink(link) }
        assertTrue(err.reason.contains("offline"), err.reason)
        assertEquals("cannot reach the Sigil service: ${err.reason}", err.message)
        rig.http.offline = false
        val opened = rig.core.openPairLink(link)
        assertTrue(opened is PairStateView.CodeNeeded, "$opened")
    }

    @Test
    fun `two-device pair then an EVM sign, with a Kotlin BleCentral`() = runBlocking<Unit> {
        val rig = Rig()
        val core = rig.core
        val (flow, code, opened) = rig.openAndBond()
        assertEquals("alice@example", opened.card.userRef)
        assertEquals(listOf(EVM_CHAIN), opened.card.requestedChains)
        assertTrue(opened.card.spName.isNotBlank() && opened.card.keyFingerprint.isNotBlank(), "${opened.card}")

        val verified = core.submitCode(flow, code)
        assertTrue(verified is PairStateView.CodeVerified, "$verified")
        val rows = core.walletChoices(flow)
        val evm = rows.filter { it.chain == EVM_CHAIN }
        assertTrue(evm.isNotEmpty() && evm.all { it.state == WalletRowState.SELECTABLE }, "$rows")
        assertTrue(rows.filter { it.chain != EVM_CHAIN }.all { it.state == WalletRowState.NOT_REQUESTED }, "$rows")
        val account = evm.first().account
        core.chooseWallets(flow, listOf(account))

        val paired = core.approvePair(flow)
        assertTrue(paired is PairStateView.Paired, "$paired")
        assertEquals(listOf(account), paired.accounts)
        assertEquals(PairOutcomeView.Done, paired.outcome)
        assertTrue(rig.presence.reasons.any { it.startsWith("Approve pairing with") }, "${rig.presence.reasons}")
        assertTrue(rig.listener.states.any { it is PairStateView.Paired }, "${rig.listener.states}")
        assertTrue(rig.listener.events.any { it is FlowProgress.SendingToAppliance }, "${rig.listener.events}")
        val pairs = core.listPairs()
        assertEquals(listOf(paired.pairId), pairs.map { it.pairId })
        assertTrue(pairs[0].active && pairs[0].accounts == listOf(account))
        // Every octane call of the pair went through the Kotlin HttpClient.
        val seen = rig.http.seen.toList()
        assertTrue(seen.any { it.startsWith("POST /app/pair/sessions/") && it.endsWith("/code") }, "$seen")
        assertTrue(seen.any { it.startsWith("POST /app/pair/sessions/") && it.endsWith("/approve") }, "$seen")

        // The SP asks for an EIP-1559 transfer and waits for the bundle in the background.
        val sp = rig.spSign(paired.pairId, account)
        val pending = rig.awaitPending()
        assertEquals(1, pending.size, "$pending")
        val req = pending[0]
        assertEquals(EVM_CHAIN, req.chain)
        assertEquals(account, req.account)
        assertEquals("evm_transaction", req.kind)
        assertTrue(req.violations.isEmpty() && !req.blocked && !req.blind, "$req")
        assertTrue(req.fields.any { it.value.contains("0.05") }, "${req.fields}")
        assertTrue(req.fields.any { it.value.lowercase().contains("0x1111111111111111111111111111111111111111") }, "${req.fields}")

        core.approveSign(req.requestId)
        val result = sp.await()
        assertEquals(0, result.exitCode, "sp sign: ${result.output}")
        val out = requireNotNull(result.json) { "${result.output}" }
        assertEquals("signed", result.status)
        assertEquals(req.requestId, result.requestId)
        for (sig in listOf("sp_sig", "octane_sig", "appliance_sig")) assertTrue(jsonField(out, sig).isNotEmpty(), out)
        // The screen the user saw: the SP verified the appliance's receipt over its digest.
        assertTrue(Regex("[0-9a-f]{64}").matches(req.displayDigest), req.displayDigest)
        assertTrue(Regex("[0-9A-F]{4}-[0-9A-F]{4}").matches(req.displayFingerprint), req.displayFingerprint)
        assertEquals(req.displayDigest, jsonField(out, "display_digest"), out)
        assertEquals(req.displayFingerprint, jsonField(out, "display_fingerprint"), out)
        assertTrue(core.pendingSignRequests(0).isEmpty())

        // The activity screen: what was signed, for whom, with which account.
        val history = core.signHistory(10)
        assertEquals(1, history.size, "$history")
        val row = history[0]
        assertEquals(req.requestId, row.requestId)
        assertEquals(paired.pairId, row.pairId)
        assertEquals(opened.card.spName, row.spName)
        assertEquals(account, row.account)
        assertEquals(EVM_CHAIN, row.chain)
        assertEquals(SignOutcomeView.COMPLETED, row.outcome)
        assertEquals(req.title, row.title)
        assertEquals("0.05 ETH", row.value)
        assertEquals(req.displayDigest, row.displayDigest)
        assertEquals(req.displayFingerprint, row.displayFingerprint)
        assertTrue(row.decidedAt != null && row.decidedAt!! >= row.receivedAt, "$row")
        assertTrue(core.signHistory(0).isEmpty())
        assertEquals(history, core.signHistory())
        // The audit log has the pair and the approval, newest first.
        val audit = core.auditLog()
        val events = audit.map { it.event }
        val approvedAt = events.indexOfFirst { it is AuditEventView.SignApproved }
        assertTrue(approvedAt in 0 until events.indexOfFirst { it is AuditEventView.PairApproved }, "$events")
        assertTrue(events.indexOfFirst { it is AuditEventView.SignSigned } in 0 until approvedAt, "$events")
        assertEquals(req.requestId, audit.first { it.event is AuditEventView.SignSigned }.subject)
        val pairRow = audit.first { it.event is AuditEventView.PairApproved }
        assertEquals(opened.card.sessionId, pairRow.subject)
        val pairEvent = pairRow.event as AuditEventView.PairApproved
        assertEquals(opened.card.spName, pairEvent.spName)
        assertEquals(paired.pairId, pairEvent.pairId)
        // The shell words the event; the library hands over no sentence.
        assertEquals("Paired with ${opened.card.spName} (1 account)", sentence(pairRow.event))
        assertEquals(req.requestId, audit.first { it.event is AuditEventView.SignApproved }.subject)
        // Both entries name the screen the user saw: the same fingerprint as the review.
        val approved = audit.first { it.event is AuditEventView.SignApproved }.event as AuditEventView.SignApproved
        val signed = audit.first { it.event is AuditEventView.SignSigned }.event as AuditEventView.SignSigned
        assertEquals(req.displayFingerprint, approved.displayFingerprint)
        assertEquals(req.displayFingerprint, signed.displayFingerprint)
    }

    @Test
    fun `guardrails block a request, survive a restart, and the block shows in history and audit`() = runBlocking<Unit> {
        val rig = Rig()
        val (pairId, account, spName) = rig.paired()

        val defaults = rig.core.guardrails()
        assertTrue(defaults.blockUnlimitedApprovals && !defaults.allowBlindSigning && defaults.limits.isEmpty(), "$defaults")
        assertTrue(defaults.blockHistoryWarnings.isEmpty(), "history warnings ask by default: $defaults")
        // A daily limit of 0.01 ETH on Ethereum: the SP's 0.05 ETH transfer breaks it. A first
        // payment to a recipient blocks instead of asking: this one is the first.
        val wanted = defaults.copy(
            limits = listOf(ChainLimitSetting(EVM_CHAIN, perDay = "0.010")),
            blockHistoryWarnings = listOf(HistoryWarning.FIRST_RECIPIENT),
        )
        val stored = rig.core.setGuardrails(wanted)
        assertEquals(listOf(HistoryWarning.FIRST_RECIPIENT), stored.blockHistoryWarnings)
        assertEquals("0.01", stored.limits.single().perDay)
        assertEquals("ETH", stored.limits.single().currency)
        // Nonsense is refused with the field named, and changes nothing.
        val bad = assertFailsWith<SunstormException.InvalidSelection> {
            rig.core.setGuardrails(wanted.copy(limits = listOf(ChainLimitSetting(EVM_CHAIN, perPair = "-1"))))
        }
        assertTrue(bad.reason.contains("negative"), bad.reason)
        assertFailsWith<SunstormException.InvalidSelection> {
            rig.core.setGuardrails(wanted.copy(recipientAllowlist = listOf("0x1234")))
        }

        rig.restart()
        assertEquals(stored, rig.core.guardrails(), "guardrails survive closing and reopening the core")

        val sp = rig.spSign(pairId, account)
        val req = rig.awaitPending().single()
        assertTrue(req.blocked, "$req")
        assertEquals(listOf("per_day_limit_exceeded", "first_recipient"), req.violations.map { it.code })
        assertTrue(req.warnings.any { it.code == "first_recipient" }, "${req.warnings}")
        // The service is told at once: its request ends rejected with the guardrail reason.
        val result = sp.await()
        assertEquals(2, result.exitCode, "sp sign: ${result.output}")
        assertTrue(result.output.any { it.contains("guardrail") }, "${result.output}")

        val row = rig.core.signHistory(10).single()
        assertEquals(req.requestId, row.requestId)
        assertEquals(SignOutcomeView.BLOCKED, row.outcome)
        assertEquals("guardrail", row.reason)
        assertEquals(account, row.account)
        assertEquals(spName, row.spName)

        val audit = rig.core.auditLog(50)
        assertEquals(
            listOf(AuditEventView.SignBlocked::class, AuditEventView.GuardrailsChanged::class, AuditEventView.PairApproved::class),
            audit.map { it.event::class },
        )
        assertEquals(req.requestId, audit[0].subject)
        val rules = listOf("per_day_limit_exceeded", "first_recipient")
        assertEquals(AuditEventView.SignBlocked(rules, atApproval = false), audit[0].event)
        assertEquals(stored, (audit[1].event as AuditEventView.GuardrailsChanged).settings)
        assertEquals("Blocked by your rules: per_day_limit_exceeded, first_recipient", sentence(audit[0].event))
    }

    @Test
    fun `a wrong code gives WrongCode with attempts left, and the flow stays open`() = runBlocking<Unit> {
        val rig = Rig()
        val (flow, code, _) = rig.openAndBond()
        val wrong = if (code == "000000") "111111" else "000000"
        val e = assertFailsWith<SunstormException.WrongCode> { rig.core.submitCode(flow, wrong) }
        assertTrue(e.attemptsLeft > 0, "attempts left: ${e.attemptsLeft}")
        assertEquals("wrong validation code (${e.attemptsLeft} attempts left)", e.message)
        assertTrue(rig.core.submitCode(flow, code) is PairStateView.CodeVerified)
        assertFailsWith<SunstormException.WrongStep> { rig.core.approvePair(flow) }
        assertFailsWith<SunstormException.NotFound> { rig.core.submitCode("not-a-flow", code) }
    }

    @Test
    fun `cancelling an approval while the appliance user thinks`() = runBlocking<Unit> {
        val rig = Rig(listOf("--delay-ms", "30000"))
        val (flow, _) = rig.upToWalletsChosen()
        val cancel = CancelHandle()
        val approving = async { runCatching { rig.core.approvePair(flow, cancel) } }
        withTimeout(30_000) {
            while (FlowProgress.WaitingForApplianceConfirmation !in rig.listener.events) delay(50)
        }
        cancel.cancel()
        val r = withTimeout(10_000) { approving.await() }
        assertTrue(r.exceptionOrNull() is SunstormException.Cancelled, "$r")
        assertTrue(rig.core.listPairs().isEmpty())
    }

    @Test
    fun `a refused presence check stops the approval before the appliance`() = runBlocking<Unit> {
        val rig = Rig()
        val (flow, _) = rig.upToWalletsChosen()
        rig.presence.answer = false
        assertFailsWith<SunstormException.UserPresenceFailed> { rig.core.approvePair(flow) }
        assertTrue(FlowProgress.WaitingForApplianceConfirmation !in rig.listener.events)
        assertTrue(rig.core.pairState(flow) is PairStateView.WalletsChosen)
    }
}

/** How an app words an audit event (the library hands over typed events, never sentences). */
private fun sentence(e: AuditEventView): String = when (e) {
    is AuditEventView.PairApproved -> "Paired with ${e.spName} (${e.accounts.size} account${if (e.accounts.size == 1) "" else "s"})"
    is AuditEventView.PairRejected -> "Pairing declined ${byWhom(e.by)}"
    is AuditEventView.PairRevoked -> "Pairing revoked ${byWhom(e.by)}"
    is AuditEventView.SignApproved -> "Approved: ${e.title} (screen ${e.displayFingerprint})"
    is AuditEventView.SignSigned -> "Signed by the appliance (signature verified, screen ${e.displayFingerprint})"
    is AuditEventView.SignRejected -> "Signature request declined ${byWhom(e.by)}"
    is AuditEventView.SignBlocked -> "Blocked by your rules: ${e.violations.joinToString(", ")}"
    is AuditEventView.GuardrailsChanged -> "Guardrails changed"
    is AuditEventView.ApplianceForgotten -> "Forgot ${e.name}"
    is AuditEventView.PhoneForgotten -> "A phone was forgotten by appliance ${e.applianceFingerprint}"
    is AuditEventView.MetadataUpdated -> "Clear-signing data updated to version ${e.version}"
    is AuditEventView.AddressLabelChanged -> e.label?.let { "Labelled $it" } ?: "Label removed"
    is AuditEventView.Other -> e.kind.replace('_', ' ')
}

private fun byWhom(a: AuditActor): String = when (a) {
    AuditActor.PHONE -> "on this phone"
    AuditActor.APPLIANCE -> "on the appliance"
    AuditActor.SERVICE -> "by the service"
}
