package xyz.sigilvault.sunstorm.sample.state

import xyz.sigilvault.sunstorm.ApplianceRow
import xyz.sigilvault.sunstorm.FlowProgress

/*
 * What the sample's screens need from the core, as one interface. `platform/CoreFlows.kt`
 * implements it over the generated `SunstormCore` (open_pair_link, submit_code,
 * wallet_choices, choose_wallets, approve_pair, reject_pair, list_pairs, revoke_pair,
 * pending_sign_requests, approve_sign, reject_sign) and maps the generated view records
 * (SpCardView, PairStateView, WalletRowView, PairView, SignRequestView) onto the screen
 * types below (`platform/CoreViews.kt`). `DemoFlows` scripts it for UI previews and tests
 * only. Errors are the generated `SunstormException` variants.
 */

/** The SP card: who asks to pair, all of it signed by octane. */
data class SpCard(
    val sessionId: String,
    val spName: String,
    val logoUrl: String,
    val homepage: String,
    val keyFingerprint: String,
    val spUserRef: String,
    val requestedChains: List<String>,
    val expiresAtEpochSecs: Long,
    val returnUrl: String?,
)

/** One appliance wallet on the approval screen. */
data class WalletChoice(
    val chain: String,
    val chainName: String,
    val account: String,
    val shortAddress: String,
    val selectable: Boolean,
)

/** The approval list: the appliance's wallets, and requested chains it has no wallet for. */
data class ApprovalView(val rows: List<WalletChoice>, val chainsWithoutWallet: List<String>)

/** Where a pair flow stands (the core's `PairState`). */
sealed interface PairStep {
    /** The flow. */
    val flowId: String

    /** The session is being loaded and verified. */
    data class Loading(override val flowId: String, val sessionId: String) : PairStep

    /** Two-device flow: ask for the code on the SP's page. */
    data class CodeNeeded(override val flowId: String, val card: SpCard, val attemptsLeft: Int?) : PairStep

    /** Single-device flow: the link carried the code. */
    data class CodePrefilled(override val flowId: String, val card: SpCard, val code: String) : PairStep

    /** Octane accepted the code: choose wallets. */
    data class CodeVerified(override val flowId: String, val card: SpCard) : PairStep

    /** Wallets chosen; the appliance is about to be asked. */
    data class WalletsChosen(override val flowId: String, val card: SpCard, val bindings: List<String>) : PairStep

    /**
     * The appliance was asked; [approvedByAppliance]: it approved and only octane's answer
     * is missing.
     */
    data class WaitingForAppliance(
        override val flowId: String,
        val card: SpCard,
        val bindings: List<String>,
        val approvedByAppliance: Boolean = false,
    ) : PairStep

    /** Paired; [returnUrl] is set (and validated by the core) in the single-device flow. */
    data class Paired(override val flowId: String, val pairId: String, val bindings: List<String>, val returnUrl: String?) : PairStep

    /** Declined on the phone or the appliance. */
    data class Rejected(override val flowId: String) : PairStep

    /** The session expired. */
    data class Expired(override val flowId: String) : PairStep

    /** The flow failed for good ([code]: the core's stable snake_case code). */
    data class Failed(override val flowId: String, val code: String, val message: String) : PairStep
}

/**
 * One decoded row of a sign request ("To", "Amount"…). [key] is the core's stable key
 * (`amount`, `clear.params.amountIn`…): what a translated app looks its own label up by.
 */
data class FieldView(val label: String, val value: String, val key: String = "")

/** A warning the decoder raised (blind signing, unlimited approval…). */
data class WarningView(val code: String, val text: String)

/** A broken guardrail. */
data class ViolationView(val code: String, val message: String)

/** A verified sign request as the user is shown it (the core's `PendingSignature`). */
data class SignRequestView(
    val requestId: String,
    val pairId: String,
    val spName: String,
    val chain: String,
    val account: String,
    val title: String,
    val fields: List<FieldView>,
    val warnings: List<WarningView>,
    val blind: Boolean,
    val violations: List<ViolationView>,
    val expiresAtEpochSecs: Long,
    /** Short fingerprint of this exact screen ("3F9A-12C4"); the appliance shows the same. */
    val displayFingerprint: String = "",
) {
    /** Guardrails block it: no approve button. */
    val blocked: Boolean get() = violations.isNotEmpty()
}

/** A pair on the "pairs" screen. */
data class PairRow(
    val pairId: String,
    val spName: String,
    val spUserRef: String,
    val bindings: List<String>,
    val active: Boolean,
    val createdAtEpochSecs: Long,
)

/** A bonded appliance ([id]: what the calls that take an appliance id want). */
data class BondedAppliance(val id: String, val name: String, val identityFingerprint: String)

/** Everything the screens call. Suspend functions; each throws `SunstormException`. */
interface SunstormFlows {
    /** Appliances in range, strongest first. */
    suspend fun scanAppliances(timeoutMs: Int): List<ApplianceRow>

    /** Bonds with the appliance showing [pin]. */
    suspend fun bond(peripheralId: String, pin: String): BondedAppliance

    /** The bonded appliances, most recently bonded first (a phone can bond several). */
    suspend fun bondedAppliances(): List<BondedAppliance>

    /**
     * Opens a pair link (already accepted by `parseLink`) for appliance [applianceId] (null:
     * the only bonded one; with several, `ChooseAppliance`): loads and verifies the session.
     */
    suspend fun openLink(link: String, applianceId: String? = null): PairStep

    /** Submits the typed code (null: the prefilled one). */
    suspend fun submitCode(flowId: String, code: String?): PairStep

    /** The wallets the user may approve. */
    suspend fun approvalList(flowId: String): ApprovalView

    /** Records the chosen wallets (CAIP-10). */
    suspend fun chooseWallets(flowId: String, accounts: List<String>): PairStep

    /** Asks the appliance ("confirm on your appliance"); [progress] gets its updates. */
    suspend fun approvePair(flowId: String, progress: (FlowProgress) -> Unit): PairStep

    /** Declines the pair. */
    suspend fun rejectPair(flowId: String): PairStep

    /** Verified sign requests waiting for the user. */
    suspend fun pendingSignRequests(): List<SignRequestView>

    /** Relays one to the appliance after the user-presence check. */
    suspend fun approveSign(requestId: String, progress: (FlowProgress) -> Unit)

    /** Declines one. */
    suspend fun rejectSign(requestId: String)

    /** Pairs, newest first. */
    suspend fun listPairs(): List<PairRow>

    /** Revokes a pair (the appliance signs the revocation). */
    suspend fun revoke(pairId: String)

    /**
     * Sets (or clears, with null) the receiver of pair-flow state changes the core reports
     * on its own (e.g. "the appliance approved, telling the service"). Called on a core
     * thread. The scripted demo reports none.
     */
    fun onPairUpdate(listener: ((PairStep) -> Unit)?) = Unit
}
