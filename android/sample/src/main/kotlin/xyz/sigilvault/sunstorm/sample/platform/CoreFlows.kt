package xyz.sigilvault.sunstorm.sample.platform

import xyz.sigilvault.sunstorm.ApplianceRow
import xyz.sigilvault.sunstorm.CancelHandle
import xyz.sigilvault.sunstorm.FlowListener
import xyz.sigilvault.sunstorm.FlowProgress
import xyz.sigilvault.sunstorm.PairStateView
import xyz.sigilvault.sunstorm.SunstormCore
import xyz.sigilvault.sunstorm.sample.state.ApprovalView
import xyz.sigilvault.sunstorm.sample.state.BondedAppliance
import xyz.sigilvault.sunstorm.sample.state.PairRow
import xyz.sigilvault.sunstorm.sample.state.PairStep
import xyz.sigilvault.sunstorm.sample.state.SignRequestView
import xyz.sigilvault.sunstorm.sample.state.SunstormFlows

/**
 * [SunstormFlows] over the generated `SunstormCore`: every screen operation is one core
 * call, its view record mapped by [CoreViews]. Each call gets its own `CancelHandle`;
 * [cancelAll] is wired to "Cancel".
 *
 * It is also the core's `FlowListener` (registered here; one per core): appliance progress
 * goes to the callback of the approval in progress, pair-state changes to [onPairUpdate].
 */
class CoreFlows(private val core: SunstormCore) : SunstormFlows, FlowListener {
    private val handles = java.util.concurrent.ConcurrentHashMap.newKeySet<CancelHandle>()

    @Volatile private var progress: ((FlowProgress) -> Unit)? = null

    @Volatile private var pairUpdates: ((PairStep) -> Unit)? = null

    init {
        core.setFlowListener(this)
    }

    /** Cancels every call in progress (each ends with `SunstormException.Cancelled`). */
    fun cancelAll() = handles.forEach { it.cancel() }

    /** Stops listening to the core (before dropping this adapter). */
    fun detach() = core.setFlowListener(null)

    private suspend fun <T> cancellable(block: suspend (CancelHandle) -> T): T {
        val handle = CancelHandle()
        handles += handle
        try {
            return block(handle)
        } finally {
            handles -= handle
            handle.close()
        }
    }

    private suspend fun <T> reporting(to: (FlowProgress) -> Unit, block: suspend () -> T): T {
        progress = to
        try {
            return block()
        } finally {
            if (progress === to) progress = null
        }
    }

    override fun onProgress(progress: FlowProgress) {
        this.progress?.invoke(progress)
    }

    override fun onPairState(state: PairStateView) {
        pairUpdates?.invoke(CoreViews.step(state))
    }

    override fun onPairUpdate(listener: ((PairStep) -> Unit)?) {
        pairUpdates = listener
    }

    override suspend fun scanAppliances(timeoutMs: Int): List<ApplianceRow> =
        cancellable { core.scanAppliances(timeoutMs, it) }

    override suspend fun bond(peripheralId: String, pin: String): BondedAppliance = cancellable { handle ->
        val view = core.bondAppliance(peripheralId, pin, cancel = handle)
        BondedAppliance(view.applianceId, view.name, view.identityFingerprint)
    }

    override suspend fun bondedAppliances(): List<BondedAppliance> =
        core.bondedAppliances().map { BondedAppliance(it.applianceId, it.name, it.identityFingerprint) }

    override suspend fun openLink(link: String, applianceId: String?): PairStep {
        // The core does not echo the link's code back; keep it to prefill the field.
        val code = runCatching { core.parseLink(link).code }.getOrNull()
        return CoreViews.step(cancellable { core.openPairLink(link, applianceId = applianceId, cancel = it) }, code)
    }

    override suspend fun submitCode(flowId: String, code: String?): PairStep =
        CoreViews.step(cancellable { core.submitCode(flowId, code, it) })

    override suspend fun approvalList(flowId: String): ApprovalView {
        val rows = cancellable { core.walletChoices(flowId, it) }
        return CoreViews.approval(rows, CoreViews.cardOf(core.pairState(flowId)))
    }

    override suspend fun chooseWallets(flowId: String, accounts: List<String>): PairStep =
        CoreViews.step(cancellable { core.chooseWallets(flowId, accounts, it) })

    override suspend fun approvePair(flowId: String, progress: (FlowProgress) -> Unit): PairStep =
        reporting(progress) { CoreViews.step(cancellable { core.approvePair(flowId, it) }) }

    override suspend fun rejectPair(flowId: String): PairStep = CoreViews.step(core.rejectPair(flowId))

    override suspend fun pendingSignRequests(): List<SignRequestView> =
        cancellable { core.pendingSignRequests(PENDING_WAIT_MS, it) }.map(CoreViews::signRequest)

    override suspend fun approveSign(requestId: String, progress: (FlowProgress) -> Unit) =
        reporting(progress) { cancellable { core.approveSign(requestId, it) } }

    override suspend fun rejectSign(requestId: String) = core.rejectSign(requestId)

    override suspend fun listPairs(): List<PairRow> = core.listPairs().map(CoreViews::pair)

    override suspend fun revoke(pairId: String) = cancellable { core.revokePair(pairId, it) }

    private companion object {
        /** How long "refresh" waits for octane to deliver new sign requests. */
        const val PENDING_WAIT_MS = 2_000
    }
}
