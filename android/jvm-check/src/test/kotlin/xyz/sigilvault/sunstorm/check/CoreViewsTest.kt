package xyz.sigilvault.sunstorm.check

import kotlin.test.assertEquals
import kotlin.test.assertFalse
import kotlin.test.assertIs
import kotlin.test.assertNull
import kotlin.test.assertTrue
import org.junit.jupiter.api.Test
import xyz.sigilvault.sunstorm.AuditActor
import xyz.sigilvault.sunstorm.AuditEventView
import xyz.sigilvault.sunstorm.FieldRow
import xyz.sigilvault.sunstorm.NoticeView
import xyz.sigilvault.sunstorm.PairOutcomeView
import xyz.sigilvault.sunstorm.PairStateView
import xyz.sigilvault.sunstorm.PairView
import xyz.sigilvault.sunstorm.SignRequestView
import xyz.sigilvault.sunstorm.SpCardView
import xyz.sigilvault.sunstorm.WalletRowState
import xyz.sigilvault.sunstorm.WalletRowView
import xyz.sigilvault.sunstorm.sample.platform.CoreViews
import xyz.sigilvault.sunstorm.sample.state.PairReducer
import xyz.sigilvault.sunstorm.sample.state.PairScreen
import xyz.sigilvault.sunstorm.sample.state.PairStep

/** The generated view records, as the sample's screens show them. */
class CoreViewsTest {
    private val card = SpCardView(
        sessionId = "ps_1",
        spName = "Example Exchange",
        logoUrl = "https://example.com/logo.png",
        homepage = "https://example.com",
        keyFingerprint = "ab12 cd34",
        userRef = "alice@example",
        requestedChains = listOf("eip155:1", "solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp"),
        requestedChainNames = listOf("Ethereum", "Solana"),
        expiresAt = 1_900_000_000,
        returnUrl = "https://example.com/done",
    )

    private fun row(chain: String, account: String, state: WalletRowState) =
        WalletRowView(chain = chain, chainName = "Ethereum", account = account, shortAddress = "0xAb…01", state = state)

    @Test
    fun `the card keeps what octane signed`() {
        val c = CoreViews.card(card)
        assertEquals("Example Exchange", c.spName)
        assertEquals("alice@example", c.spUserRef)
        assertEquals(listOf("eip155:1", "solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp"), c.requestedChains)
        assertEquals(1_900_000_000L, c.expiresAtEpochSecs)
        assertEquals("https://example.com/done", c.returnUrl)
    }

    @Test
    fun `code states reach the code screen, prefilled with the link's code`() {
        val needed = PairReducer.screenFor(CoreViews.step(PairStateView.CodeNeeded("f1", card, 2)), null, "")
        assertIs<PairScreen.EnterCode>(needed)
        assertEquals(2, needed.attemptsLeft)
        assertFalse(needed.prefilled)
        val pre = PairReducer.screenFor(CoreViews.step(PairStateView.CodePrefilled("f1", card), "123456"), null, "")
        assertIs<PairScreen.EnterCode>(pre)
        assertEquals("123456", pre.code)
        assertTrue(pre.prefilled && pre.canSubmit)
    }

    @Test
    fun `wallet rows on unrequested chains are greyed out and missing chains are named`() {
        val rows = listOf(
            row("eip155:1", "eip155:1:0xAb01", WalletRowState.SELECTABLE),
            row("eip155:137", "eip155:137:0xAb01", WalletRowState.NOT_REQUESTED),
        )
        val approval = CoreViews.approval(rows, card)
        assertEquals(listOf(true, false), approval.rows.map { it.selectable })
        assertEquals(listOf("Solana"), approval.chainsWithoutWallet)
        val screen = PairReducer.screenFor(CoreViews.step(PairStateView.CodeVerified("f1", card)), approval, "")
        assertIs<PairScreen.ChooseWallets>(screen)
        assertEquals(setOf("eip155:1:0xAb01"), screen.selected)
    }

    @Test
    fun `approval steps reach confirm-on-appliance, done and ended screens`() {
        val chosen = PairReducer.screenFor(CoreViews.step(PairStateView.WalletsChosen("f1", card, listOf("eip155:1:0xAb01"))), null, "")
        assertIs<PairScreen.ConfirmOnAppliance>(chosen)
        val approved = PairReducer.update(
            chosen,
            CoreViews.step(PairStateView.WaitingForAppliance("f1", card, listOf("eip155:1:0xAb01"), true)),
        )
        assertIs<PairScreen.ConfirmOnAppliance>(approved)
        assertEquals("Approved on your appliance. Telling the service…", approved.status)
        // Updates of another flow leave the screen alone.
        assertEquals(chosen, PairReducer.update(chosen, CoreViews.step(PairStateView.WaitingForAppliance("f2", card, emptyList(), true))))

        val single = PairReducer.screenFor(
            CoreViews.step(PairStateView.Paired("f1", "pair-1", listOf("eip155:1:0xAb01"), PairOutcomeView.ReturnTo("https://example.com/done"))),
            null,
            "Example Exchange",
        )
        assertEquals(PairScreen.Done("pair-1", "Example Exchange", listOf("eip155:1:0xAb01"), "https://example.com/done"), single)
        val two = PairReducer.screenFor(CoreViews.step(PairStateView.Paired("f1", "pair-1", emptyList(), PairOutcomeView.Done)), null, "X")
        assertIs<PairScreen.Done>(two)
        assertNull(two.returnUrl)

        val failed = PairReducer.screenFor(CoreViews.step(PairStateView.Failed("f1", "octane_unreachable", "Octane cannot be reached.")), null, "")
        assertEquals(PairScreen.Ended("Octane cannot be reached."), failed)
        assertEquals(PairStep.Loading("f1", "ps_1"), CoreViews.step(PairStateView.LinkOpened("f1", "ps_1")))
    }

    @Test
    fun `pairs and sign requests keep their ids, rows, warnings and violations`() {
        val pair = CoreViews.pair(
            PairView(
                pairId = "pair-1", spName = "Example Exchange", logoUrl = "https://example.com/logo.png",
                homepage = "https://example.com", keyFingerprint = "ab12", userRef = "alice@example",
                accounts = listOf("eip155:1:0xAb01"), active = false, createdAt = 1_700_000_000, revokedAt = 1_700_000_100,
                applianceId = "5a".repeat(32),
            ),
        )
        assertEquals("pair-1", pair.pairId)
        assertFalse(pair.active)
        assertEquals(1_700_000_000L, pair.createdAtEpochSecs)

        val req = CoreViews.signRequest(
            SignRequestView(
                requestId = "req-1", pairId = "pair-1", spName = "Example Exchange", chain = "eip155:1",
                chainName = "Ethereum", account = "eip155:1:0xAb01", kind = "evm_transaction", title = "Send ETH",
                fields = listOf(FieldRow("To", "0x1234…", "to"), FieldRow("Amount", "1.5 USDC", "amount")),
                warnings = listOf(NoticeView("unlimited_approval", "Unlimited token approval")),
                violations = listOf(NoticeView("daily_limit", "Over the daily limit")),
                blind = false, blocked = true, payloadHash = "00".repeat(32), expiresAt = 1_900_000_000,
            ),
        )
        assertEquals(listOf("To", "Amount"), req.fields.map { it.label })
        assertEquals(listOf("to", "amount"), req.fields.map { it.key })
        assertEquals("Unlimited token approval", req.warnings.single().text)
        assertTrue(req.blocked)
        assertEquals("daily_limit", req.violations.single().code)
    }

    @Test
    fun `the app words each audit event itself`() {
        assertEquals(
            "Paired with Example Exchange (2 accounts)",
            CoreViews.auditSentence(AuditEventView.PairApproved("p1", "Example Exchange", listOf("a", "b"))),
        )
        assertEquals("Pairing revoked by the service", CoreViews.auditSentence(AuditEventView.PairRevoked(AuditActor.SERVICE)))
        assertEquals(
            "Blocked at approval by your guardrails: per_day_limit_exceeded",
            CoreViews.auditSentence(AuditEventView.SignBlocked(listOf("per_day_limit_exceeded"), atApproval = true)),
        )
        assertEquals(
            "A phone was forgotten by appliance ab12:cd34",
            CoreViews.auditSentence(AuditEventView.PhoneForgotten("ab12:cd34", 1_900_000_000)),
        )
        assertEquals("Older entry: made up", CoreViews.auditSentence(AuditEventView.Other("made_up")))
        assertEquals("Clear-signing data updated to version 3", CoreViews.auditSentence(AuditEventView.MetadataUpdated(3)))
        assertEquals("Address labelled \"Alice\"", CoreViews.auditSentence(AuditEventView.AddressLabelChanged("Alice")))
        assertEquals("Address label removed", CoreViews.auditSentence(AuditEventView.AddressLabelChanged(null)))
    }
}
