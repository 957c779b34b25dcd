package xyz.sigilvault.sunstorm.sample.state

import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.flow.MutableStateFlow
import kotlinx.coroutines.flow.StateFlow
import kotlinx.coroutines.flow.asStateFlow
import kotlinx.coroutines.flow.update
import kotlinx.coroutines.launch
import xyz.sigilvault.sunstorm.ApplianceRow
import xyz.sigilvault.sunstorm.SunstormException
import xyz.sigilvault.sunstorm.android.link.LinkRoute

/** The app's top-level destinations. */
sealed interface Destination {
    /** Home: bonded appliance, shortcuts. */
    data object Home : Destination

    /** Appliance bonding (scan, choose, PIN). */
    data object Bond : Destination

    /** The QR scanner. */
    data object Scan : Destination

    /** The pair flow for a link. */
    data class Pair(val link: String, val sessionId: String) : Destination

    /** Pending sign requests. */
    data object SignRequests : Destination

    /** Pairs, with revoke. */
    data object Pairs : Destination

    /** A link that is not a Sigil pair link. */
    data class LinkRefused(val reason: String) : Destination
}

/** Where a routed link leads; [link] is the text that was routed (passed on to the core). */
fun destinationFor(route: LinkRoute, link: String?): Destination? = when (route) {
    is LinkRoute.Pair -> Destination.Pair(link.orEmpty(), route.sessionId)
    is LinkRoute.Refused -> Destination.LinkRefused(route.reason)
    LinkRoute.NoLink -> null
}

/** The bonding screen. */
data class BondScreen(
    val scanning: Boolean = false,
    val appliances: List<ApplianceRow> = emptyList(),
    val chosen: ApplianceRow? = null,
    val pin: String = "",
    val busy: Boolean = false,
    val error: String? = null,
    val bonded: BondedAppliance? = null,
) {
    /** The bond button is enabled. */
    val canBond: Boolean get() = chosen != null && pin.length in 4..8 && !busy
}

/** Scan → choose an appliance → type the PIN it shows → bonded. */
class BondController(private val flows: SunstormFlows, private val scope: CoroutineScope) {
    private val _state = MutableStateFlow(BondScreen())

    /** The current screen. */
    val state: StateFlow<BondScreen> = _state.asStateFlow()

    /** Scans for appliances for [timeoutMs]. */
    fun scan(timeoutMs: Int = 5_000) {
        _state.update { it.copy(scanning = true, error = null) }
        scope.launch {
            try {
                val rows = flows.scanAppliances(timeoutMs)
                _state.update {
                    it.copy(scanning = false, appliances = rows, chosen = rows.singleOrNull(), error = if (rows.isEmpty()) "No appliance found. Is it on and nearby?" else null)
                }
            } catch (e: SunstormException) {
                _state.update { it.copy(scanning = false, error = describe(e).message) }
            }
        }
    }

    /** The user chose an appliance. */
    fun choose(row: ApplianceRow) = _state.update { it.copy(chosen = row, error = null) }

    /** The user typed the PIN (digits only). */
    fun editPin(text: String) = _state.update { it.copy(pin = text.filter(Char::isDigit).take(8), error = null) }

    /** Bonds with the chosen appliance. */
    fun bond() {
        val s = _state.value
        val chosen = s.chosen ?: return
        if (!s.canBond) return
        _state.value = s.copy(busy = true, error = null)
        scope.launch {
            try {
                val bonded = flows.bond(chosen.peripheralId, s.pin)
                _state.update { it.copy(busy = false, bonded = bonded, pin = "") }
            } catch (e: SunstormException) {
                _state.update { it.copy(busy = false, pin = "", error = describe(e).message) }
            }
        }
    }
}

/** The pending sign requests screen. */
data class SignScreen(
    val loading: Boolean = false,
    val requests: List<SignRequestView> = emptyList(),
    val busyRequestId: String? = null,
    val status: String? = null,
    val message: String? = null,
)

/** Lists verified sign requests; approve (user presence + appliance) or reject each. */
class SignController(private val flows: SunstormFlows, private val scope: CoroutineScope) {
    private val _state = MutableStateFlow(SignScreen())

    /** The current screen. */
    val state: StateFlow<SignScreen> = _state.asStateFlow()

    /** Reloads the pending requests. */
    fun refresh() {
        _state.update { it.copy(loading = true, message = null) }
        scope.launch {
            try {
                val list = flows.pendingSignRequests()
                _state.update { it.copy(loading = false, requests = list) }
            } catch (e: SunstormException) {
                _state.update { it.copy(loading = false, message = describe(e).message) }
            }
        }
    }

    /** Approves [requestId]; refused locally when its guardrails block it. */
    fun approve(requestId: String) {
        val request = _state.value.requests.firstOrNull { it.requestId == requestId } ?: return
        if (request.blocked || _state.value.busyRequestId != null) return
        _state.update { it.copy(busyRequestId = requestId, status = "Checking it's you…", message = null) }
        scope.launch {
            try {
                flows.approveSign(requestId) { p -> _state.update { it.copy(status = progressText(p)) } }
                _state.update { s ->
                    s.copy(busyRequestId = null, status = null, requests = s.requests.filterNot { it.requestId == requestId }, message = "Signed and sent to ${request.spName}.")
                }
            } catch (e: SunstormException) {
                val f = describe(e)
                _state.update { s ->
                    s.copy(
                        busyRequestId = null,
                        status = null,
                        message = f.message,
                        requests = if (f.terminal) s.requests.filterNot { it.requestId == requestId } else s.requests,
                    )
                }
            }
        }
    }

    /** Rejects [requestId]. */
    fun reject(requestId: String) {
        scope.launch {
            try {
                flows.rejectSign(requestId)
                _state.update { s -> s.copy(requests = s.requests.filterNot { it.requestId == requestId }, message = "Rejected.") }
            } catch (e: SunstormException) {
                _state.update { it.copy(message = describe(e).message) }
            }
        }
    }
}

/** The pairs screen. */
data class PairsScreen(
    val loading: Boolean = false,
    val pairs: List<PairRow> = emptyList(),
    val confirmRevoke: String? = null,
    val message: String? = null,
)

/** Lists pairs; revoke asks for confirmation first. */
class PairsController(private val flows: SunstormFlows, private val scope: CoroutineScope) {
    private val _state = MutableStateFlow(PairsScreen())

    /** The current screen. */
    val state: StateFlow<PairsScreen> = _state.asStateFlow()

    /** Reloads the pairs. */
    fun refresh() {
        _state.update { it.copy(loading = true) }
        scope.launch {
            try {
                val pairs = flows.listPairs()
                _state.update { it.copy(loading = false, pairs = pairs) }
            } catch (e: SunstormException) {
                _state.update { it.copy(loading = false, message = describe(e).message) }
            }
        }
    }

    /** Asks "revoke this pair?". */
    fun askRevoke(pairId: String) = _state.update { it.copy(confirmRevoke = pairId) }

    /** The user dismissed the question. */
    fun dismissRevoke() = _state.update { it.copy(confirmRevoke = null) }

    /** Revokes the pair the user confirmed. */
    fun confirmRevoke() {
        val pairId = _state.value.confirmRevoke ?: return
        _state.update { it.copy(confirmRevoke = null, loading = true) }
        scope.launch {
            try {
                flows.revoke(pairId)
                _state.update { s ->
                    s.copy(loading = false, message = "Pairing revoked.", pairs = s.pairs.map { if (it.pairId == pairId) it.copy(active = false) else it })
                }
            } catch (e: SunstormException) {
                _state.update { it.copy(loading = false, message = describe(e).message) }
            }
        }
    }
}
