package xyz.sigilvault.sunstorm.sample.platform

import xyz.sigilvault.sunstorm.ApplianceRow
import xyz.sigilvault.sunstorm.CancelHandle
import xyz.sigilvault.sunstorm.FlowProgress
import xyz.sigilvault.sunstorm.SunstormCore
import xyz.sigilvault.sunstorm.SunstormException
import xyz.sigilvault.sunstorm.sample.state.ApprovalView
import xyz.sigilvault.sunstorm.sample.state.BondedAppliance
import xyz.sigilvault.sunstorm.sample.state.PairRow
import xyz.sigilvault.sunstorm.sample.state.PairStep
import xyz.sigilvault.sunstorm.sample.state.SignRequestView
import xyz.sigilvault.sunstorm.sample.state.SunstormFlows

/**
 * [SunstormFlows] over the generated `SunstormCore`. Calls the FFI binds today (scan,
 * bond, bonded appliance) go straight through; the flow operations the FFI has not bound yet (docs/embedding.md §8) fail with
 * `SunstormException.Internal` naming the operation, so the screens show it instead of
 * pretending. Each call gets its own `CancelHandle`; [cancelAll] is wired to "Cancel".
 */
class CoreFlows(private val core: SunstormCore) : SunstormFlows {
    private val handles = java.util.concurrent.ConcurrentHashMap.newKeySet<CancelHandle>()

    /** Cancels every call in progress (each ends with `SunstormException.Cancelled`). */
    fun cancelAll() = handles.forEach { it.cancel() }

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

    override suspend fun scanAppliances(timeoutMs: Int): List<ApplianceRow> =
        cancellable { core.scanAppliances(timeoutMs.toUInt(), it) }

    override suspend fun bond(peripheralId: String, pin: String): BondedAppliance = cancellable { handle ->
        val view = core.bondAppliance(peripheralId, pin, handle, null)
        BondedAppliance(view.name, view.identityFingerprint)
    }

    override suspend fun bondedAppliance(): BondedAppliance? =
        core.bondedAppliance()?.let { BondedAppliance(it.name, it.identityFingerprint) }

    override suspend fun openLink(link: String): PairStep = notBound("open pair session")
    override suspend fun submitCode(flowId: String, code: String?): PairStep = notBound("submit code")
    override suspend fun approvalList(flowId: String): ApprovalView = notBound("approval list")
    override suspend fun chooseWallets(flowId: String, accounts: List<String>): PairStep = notBound("choose wallets")
    override suspend fun approvePair(flowId: String, progress: (FlowProgress) -> Unit): PairStep = notBound("approve pair")
    override suspend fun rejectPair(flowId: String): PairStep = notBound("reject pair")
    override suspend fun pendingSignRequests(): List<SignRequestView> = notBound("pending sign requests")
    override suspend fun approveSign(requestId: String, progress: (FlowProgress) -> Unit): Unit = notBound("approve sign")
    override suspend fun rejectSign(requestId: String): Unit = notBound("reject sign")
    override suspend fun listPairs(): List<PairRow> = notBound("list pairs")
    override suspend fun revoke(pairId: String): Unit = notBound("revoke")

    private fun notBound(op: String): Nothing =
        throw SunstormException.Internal("$op is not bound by this core build yet; use demo mode")
}
