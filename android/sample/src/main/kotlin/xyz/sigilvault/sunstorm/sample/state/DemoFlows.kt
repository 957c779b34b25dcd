package xyz.sigilvault.sunstorm.sample.state

import kotlinx.coroutines.delay
import xyz.sigilvault.sunstorm.ApplianceRow
import xyz.sigilvault.sunstorm.FlowProgress
import xyz.sigilvault.sunstorm.SunstormException

/**
 * A scripted [SunstormFlows] with one appliance, one SP and one pending sign request, so
 * every screen can be previewed in the emulator without an appliance or octane (the
 * sample's opt-in "demo mode", `SampleApplication.DEMO_MODE`) and the controllers are
 * tested on the JVM. The right code is [code], the PIN [pin]; wrong ones answer like the core does (attempts left, then locked).
 */
class DemoFlows(
    val code: String = "123456",
    val pin: String = "4321",
    private val stepDelayMs: Long = 0,
) : SunstormFlows {
    private var codeAttempts = 3
    private var pinAttempts = 3
    private var bonded: BondedAppliance? = null
    private var chosen: List<String> = emptyList()
    private val pairs = mutableListOf<PairRow>()
    private val pending = mutableListOf(demoSignRequest(blocked = false), demoSignRequest(blocked = true))

    /** The SP card the demo session shows. */
    val card = SpCard(
        sessionId = "ps_demo",
        spName = "Acme Exchange",
        logoUrl = "https://acme.example/logo.png",
        homepage = "https://acme.example",
        keyFingerprint = "ACME-7F3C-91D2",
        spUserRef = "alice@acme",
        requestedChains = listOf("eip155:1", "solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp"),
        expiresAtEpochSecs = 4_102_444_800,
        returnUrl = "https://acme.example/sigil/done",
    )

    override suspend fun scanAppliances(timeoutMs: Int): List<ApplianceRow> {
        delay(stepDelayMs)
        return listOf(ApplianceRow(peripheralId = "AA:BB:CC:DD:EE:01", displayName = "Sigil appliance", rssi = -48))
    }

    override suspend fun bond(peripheralId: String, pin: String): BondedAppliance {
        delay(stepDelayMs)
        if (pinAttempts == 0) throw SunstormException.PinLocked()
        if (pin != this.pin) {
            pinAttempts--
            throw if (pinAttempts == 0) SunstormException.PinLocked() else SunstormException.WrongPin(pinAttempts)
        }
        return BondedAppliance("5a".repeat(32), "Sigil appliance", "SGL-0A1B-2C3D").also { bonded = it }
    }

    override suspend fun bondedAppliances(): List<BondedAppliance> = listOfNotNull(bonded)

    override suspend fun openLink(link: String, applianceId: String?): PairStep {
        if (applianceId != null && applianceId != bonded?.id) throw SunstormException.NoSuchAppliance()
        delay(stepDelayMs)
        val v = Regex("[?&]v=(\\d{6})").find(link)?.groupValues?.get(1)
        return if (v != null) PairStep.CodePrefilled("flow-1", card, v) else PairStep.CodeNeeded("flow-1", card, null)
    }

    override suspend fun submitCode(flowId: String, code: String?): PairStep {
        delay(stepDelayMs)
        if (codeAttempts == 0) throw SunstormException.CodeLocked()
        if (code != null && code != this.code) {
            codeAttempts--
            throw if (codeAttempts == 0) SunstormException.CodeLocked() else SunstormException.WrongCode(codeAttempts)
        }
        return PairStep.CodeVerified(flowId, card)
    }

    override suspend fun approvalList(flowId: String) = ApprovalView(
        rows = listOf(
            WalletChoice("eip155:1", "Ethereum", "eip155:1:0x52908400098527886E0F7030069857D2E4169EE7", "0x5290…9EE7", true),
            WalletChoice("eip155:1", "Ethereum", "eip155:1:0x8617E340B3D01FA5F11F306F4090FD50E238070D", "0x8617…070D", true),
            WalletChoice("solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp", "Solana", "solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp:7S3P4HxJpyyigGzodYwHtCxZyUQe9JiBMHyRWXArAaKv", "7S3P…AaKv", true),
            WalletChoice("eip155:137", "Polygon", "eip155:137:0x52908400098527886E0F7030069857D2E4169EE7", "0x5290…9EE7", false),
        ),
        chainsWithoutWallet = emptyList(),
    )

    override suspend fun chooseWallets(flowId: String, accounts: List<String>): PairStep {
        if (accounts.isEmpty()) throw SunstormException.InvalidSelection("choose at least one wallet")
        chosen = accounts
        return PairStep.WaitingForAppliance(flowId, card, accounts)
    }

    override suspend fun approvePair(flowId: String, progress: (FlowProgress) -> Unit): PairStep {
        if (bonded == null) throw SunstormException.NotBonded()
        progress(FlowProgress.ConnectingToAppliance)
        progress(FlowProgress.SendingToAppliance(512, 1024))
        progress(FlowProgress.SendingToAppliance(1024, 1024))
        progress(FlowProgress.WaitingForApplianceConfirmation)
        delay(stepDelayMs * 4)
        pairs.add(0, PairRow("6f1c2d3e-0000-4000-8000-000000000001", card.spName, card.spUserRef, chosen, true, 1_700_000_000))
        return PairStep.Paired(flowId, pairs.first().pairId, chosen, card.returnUrl)
    }

    override suspend fun rejectPair(flowId: String): PairStep = PairStep.Rejected(flowId)

    override suspend fun pendingSignRequests(): List<SignRequestView> = pending.toList()

    override suspend fun approveSign(requestId: String, progress: (FlowProgress) -> Unit) {
        val r = pending.firstOrNull { it.requestId == requestId } ?: throw SunstormException.NotFound()
        if (r.blocked) throw SunstormException.GuardrailBlocked(r.violations.joinToString { it.message })
        progress(FlowProgress.WaitingForApplianceConfirmation)
        delay(stepDelayMs)
        pending.remove(r)
    }

    override suspend fun rejectSign(requestId: String) {
        if (!pending.removeIf { it.requestId == requestId }) throw SunstormException.NotFound()
    }

    override suspend fun listPairs(): List<PairRow> = pairs.toList()

    override suspend fun revoke(pairId: String) {
        val i = pairs.indexOfFirst { it.pairId == pairId }
        if (i < 0) throw SunstormException.NotFound()
        pairs[i] = pairs[i].copy(active = false)
    }

    private fun demoSignRequest(blocked: Boolean) = SignRequestView(
        requestId = if (blocked) "req-approve-unlimited" else "req-send-eth",
        pairId = "6f1c2d3e-0000-4000-8000-000000000001",
        spName = "Acme Exchange",
        chain = "eip155:1",
        account = "eip155:1:0x52908400098527886E0F7030069857D2E4169EE7",
        title = if (blocked) "ERC-20 approval" else "Send ETH",
        fields = if (blocked) {
            listOf(FieldView("Token", "USDC (0xA0b8…eB48)"), FieldView("Spender", "0x1111…1111"), FieldView("Amount", "Unlimited"))
        } else {
            listOf(FieldView("To", "0x8617…070D"), FieldView("Amount", "0.25 ETH"), FieldView("Max fee", "0.00042 ETH"))
        },
        warnings = if (blocked) listOf(WarningView("unlimited_approval", "Unlimited approval: the spender may move all your USDC")) else emptyList(),
        blind = false,
        violations = if (blocked) listOf(ViolationView("no_unlimited_approvals", "Your guardrails forbid unlimited approvals")) else emptyList(),
        expiresAtEpochSecs = 4_102_444_800,
    )
}
