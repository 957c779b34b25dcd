package xyz.sigilvault.sunstorm.sample.platform

import xyz.sigilvault.sunstorm.AuditActor
import xyz.sigilvault.sunstorm.AuditEventView
import xyz.sigilvault.sunstorm.PairOutcomeView
import xyz.sigilvault.sunstorm.PairStateView
import xyz.sigilvault.sunstorm.PairView
import xyz.sigilvault.sunstorm.SpCardView
import xyz.sigilvault.sunstorm.WalletRowState
import xyz.sigilvault.sunstorm.WalletRowView
import xyz.sigilvault.sunstorm.sample.state.ApprovalView
import xyz.sigilvault.sunstorm.sample.state.FieldView
import xyz.sigilvault.sunstorm.sample.state.PairRow
import xyz.sigilvault.sunstorm.sample.state.PairStep
import xyz.sigilvault.sunstorm.sample.state.SpCard
import xyz.sigilvault.sunstorm.sample.state.ViolationView
import xyz.sigilvault.sunstorm.sample.state.WalletChoice
import xyz.sigilvault.sunstorm.sample.state.WarningView
import xyz.sigilvault.sunstorm.SignRequestView as CoreSignRequest
import xyz.sigilvault.sunstorm.sample.state.SignRequestView as ScreenSignRequest

/**
 * Pure mapping of the generated view records (bindings/src/flow_views.rs) onto the
 * sample's screen types. No I/O, so the JVM tests check it without a device.
 */
object CoreViews {
    /** The SP card. */
    fun card(c: SpCardView): SpCard = SpCard(
        sessionId = c.sessionId,
        spName = c.spName,
        logoUrl = c.logoUrl,
        homepage = c.homepage,
        keyFingerprint = c.keyFingerprint,
        spUserRef = c.userRef,
        requestedChains = c.requestedChains,
        expiresAtEpochSecs = c.expiresAt,
        returnUrl = c.returnUrl,
    )

    /**
     * A pair-flow state. [prefilledCode] is the code the opened link carried (the core
     * does not echo it back); it fills the code field of `CodePrefilled`.
     */
    fun step(s: PairStateView, prefilledCode: String? = null): PairStep = when (s) {
        is PairStateView.LinkOpened -> PairStep.Loading(s.flowId, s.sessionId)
        is PairStateView.SessionLoaded -> PairStep.Loading(s.flowId, s.card.sessionId)
        is PairStateView.CodeNeeded -> PairStep.CodeNeeded(s.flowId, card(s.card), s.attemptsLeft)
        is PairStateView.CodePrefilled -> PairStep.CodePrefilled(s.flowId, card(s.card), prefilledCode.orEmpty())
        is PairStateView.CodeVerified -> PairStep.CodeVerified(s.flowId, card(s.card))
        is PairStateView.WalletsChosen -> PairStep.WalletsChosen(s.flowId, card(s.card), s.accounts)
        is PairStateView.WaitingForAppliance ->
            PairStep.WaitingForAppliance(s.flowId, card(s.card), s.accounts, s.approvedByAppliance)
        is PairStateView.Paired -> PairStep.Paired(
            s.flowId,
            s.pairId,
            s.accounts,
            (s.outcome as? PairOutcomeView.ReturnTo)?.url,
        )
        is PairStateView.Rejected -> PairStep.Rejected(s.flowId)
        is PairStateView.Expired -> PairStep.Expired(s.flowId)
        is PairStateView.Failed -> PairStep.Failed(s.flowId, s.code, s.message)
    }

    /** The SP card of a state, when it has one. */
    fun cardOf(s: PairStateView): SpCardView? = when (s) {
        is PairStateView.SessionLoaded -> s.card
        is PairStateView.CodeNeeded -> s.card
        is PairStateView.CodePrefilled -> s.card
        is PairStateView.CodeVerified -> s.card
        is PairStateView.WalletsChosen -> s.card
        is PairStateView.WaitingForAppliance -> s.card
        else -> null
    }

    /** One wallet row; greyed out (not selectable) on chains the service did not ask for. */
    fun wallet(r: WalletRowView): WalletChoice = WalletChoice(
        chain = r.chain,
        chainName = r.chainName,
        account = r.account,
        shortAddress = r.shortAddress,
        selectable = r.state != WalletRowState.NOT_REQUESTED,
    )

    /**
     * The approval screen: the rows, and the names of requested chains the appliance has
     * no wallet for ([card] null: none known).
     */
    fun approval(rows: List<WalletRowView>, card: SpCardView?): ApprovalView {
        val have = rows.map { it.chain }.toSet()
        val missing = card?.let { c ->
            c.requestedChains.indices.filter { c.requestedChains[it] !in have }
                .map { c.requestedChainNames.getOrNull(it) ?: c.requestedChains[it] }
        }.orEmpty()
        return ApprovalView(rows.map(::wallet), missing)
    }

    /** A pair on the pairs screen. */
    fun pair(p: PairView): PairRow = PairRow(
        pairId = p.pairId,
        spName = p.spName,
        spUserRef = p.userRef,
        bindings = p.accounts,
        active = p.active,
        createdAtEpochSecs = p.createdAt,
    )

    /** A sign request on the review screen. */
    fun signRequest(r: CoreSignRequest): ScreenSignRequest = ScreenSignRequest(
        requestId = r.requestId,
        pairId = r.pairId,
        spName = r.spName,
        chain = r.chain,
        account = r.account,
        title = r.title,
        fields = r.fields.map { FieldView(it.label, it.value, it.key) },
        warnings = r.warnings.map { WarningView(it.code, it.message) },
        blind = r.blind,
        violations = r.violations.map { ViolationView(it.code, it.message) },
        expiresAtEpochSecs = r.expiresAt,
        displayFingerprint = r.displayFingerprint,
    )

    /**
     * The activity screen's sentence for an audit log entry. The library hands over typed
     * events and never a sentence: the wording (and its language) is the app's.
     */
    fun auditSentence(e: AuditEventView): String = when (e) {
        is AuditEventView.PairApproved ->
            "Paired with ${e.spName} (${e.accounts.size} account${if (e.accounts.size == 1) "" else "s"})"
        is AuditEventView.PairRejected -> "Pairing declined ${byWhom(e.by)}"
        is AuditEventView.PairRevoked -> "Pairing revoked ${byWhom(e.by)}"
        is AuditEventView.SignApproved -> "Approved: ${e.title} (screen ${e.displayFingerprint})"
        is AuditEventView.SignSigned -> "Signed by the appliance (signature verified, screen ${e.displayFingerprint})"
        is AuditEventView.SignRejected -> "Signature request declined ${byWhom(e.by)}"
        is AuditEventView.SignBlocked ->
            (if (e.atApproval) "Blocked at approval by your guardrails: " else "Blocked by your guardrails: ") +
                e.violations.joinToString(", ")
        is AuditEventView.GuardrailsChanged -> "Guardrails changed"
        is AuditEventView.ApplianceForgotten -> "Forgot the appliance ${e.name}"
        is AuditEventView.PhoneForgotten -> "A phone was forgotten by appliance ${e.applianceFingerprint}"
        is AuditEventView.MetadataUpdated -> "Clear-signing data updated to version ${e.version}"
        is AuditEventView.AddressLabelChanged -> e.label?.let { "Address labelled \"$it\"" } ?: "Address label removed"
        is AuditEventView.Other -> "Older entry: ${e.kind.replace('_', ' ')}"
    }

    private fun byWhom(a: AuditActor): String = when (a) {
        AuditActor.PHONE -> "on this phone"
        AuditActor.APPLIANCE -> "on the appliance"
        AuditActor.SERVICE -> "by the service"
    }
}
