package xyz.sigilvault.sunstorm.sample.state

import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.Job
import kotlinx.coroutines.flow.MutableStateFlow
import kotlinx.coroutines.flow.StateFlow
import kotlinx.coroutines.flow.asStateFlow
import kotlinx.coroutines.flow.update
import kotlinx.coroutines.launch
import xyz.sigilvault.sunstorm.SunstormException

/** What the pair screens show, one state per screen. */
sealed interface PairScreen {
    /** Nothing open. */
    data object Idle : PairScreen

    /** Loading and verifying the session. */
    data class Loading(val sessionId: String) : PairScreen

    /** The SP card and the code field (prefilled in the single-device flow). */
    data class EnterCode(
        val flowId: String,
        val card: SpCard,
        val code: String,
        val prefilled: Boolean,
        val attemptsLeft: Int?,
        val error: String?,
        val busy: Boolean,
    ) : PairScreen {
        /** The submit button is enabled. */
        val canSubmit: Boolean get() = !busy && code.count(Char::isDigit) == 6
    }

    /** The SP card with the requested wallets to select. */
    data class ChooseWallets(
        val flowId: String,
        val card: SpCard,
        val rows: List<WalletChoice>,
        val chainsWithoutWallet: List<String>,
        val selected: Set<String>,
        val error: String?,
        val busy: Boolean,
    ) : PairScreen {
        /** The approve button is enabled: at least one wallet chosen. */
        val canApprove: Boolean get() = !busy && selected.isNotEmpty()
    }

    /** "Confirm on your appliance", with the latest progress. */
    data class ConfirmOnAppliance(val flowId: String, val card: SpCard, val bindings: List<String>, val status: String) : PairScreen

    /** Paired: open [returnUrl] (single-device) or show "done" (two-device). */
    data class Done(val pairId: String, val spName: String, val bindings: List<String>, val returnUrl: String?) : PairScreen

    /** The flow ended without a pair. */
    data class Ended(val message: String) : PairScreen
}

/** Pure transitions of the pair screens (no I/O), kept apart so they are easy to test. */
object PairReducer {
    /** The code field after the user typed [text]: digits only, at most six. */
    fun editCode(s: PairScreen.EnterCode, text: String): PairScreen.EnterCode =
        s.copy(code = text.filter(Char::isDigit).take(6), error = null)

    /** Toggles [account] when it is selectable. */
    fun toggle(s: PairScreen.ChooseWallets, account: String): PairScreen.ChooseWallets {
        val row = s.rows.firstOrNull { it.account == account } ?: return s
        if (!row.selectable) return s
        val selected = if (account in s.selected) s.selected - account else s.selected + account
        return s.copy(selected = selected, error = null)
    }

    /** The first screen for a core step; [approval] is needed for `CodeVerified`. */
    fun screenFor(step: PairStep, approval: ApprovalView?, spName: String): PairScreen = when (step) {
        is PairStep.Loading -> PairScreen.Loading(step.sessionId)
        is PairStep.CodeNeeded -> PairScreen.EnterCode(step.flowId, step.card, "", false, step.attemptsLeft, null, false)
        is PairStep.CodePrefilled -> PairScreen.EnterCode(step.flowId, step.card, step.code, true, null, null, false)
        is PairStep.CodeVerified -> {
            val rows = approval?.rows.orEmpty()
            // One selectable wallet per requested chain is preselected; more needs a choice.
            val preselected = rows.filter { it.selectable }.groupBy { it.chain }.values
                .filter { it.size == 1 }.map { it.single().account }.toSet()
            PairScreen.ChooseWallets(step.flowId, step.card, rows, approval?.chainsWithoutWallet.orEmpty(), preselected, null, false)
        }
        is PairStep.WalletsChosen -> PairScreen.ConfirmOnAppliance(step.flowId, step.card, step.bindings, "Connecting to your appliance…")
        is PairStep.WaitingForAppliance -> PairScreen.ConfirmOnAppliance(step.flowId, step.card, step.bindings, waitingText(step))
        is PairStep.Paired -> PairScreen.Done(step.pairId, spName, step.bindings, step.returnUrl)
        is PairStep.Rejected -> PairScreen.Ended("Pairing declined.")
        is PairStep.Expired -> PairScreen.Ended("This pairing request has expired. Start again on the service's page.")
        is PairStep.Failed -> PairScreen.Ended(step.message)
    }

    /** The status line of "confirm on your appliance". */
    fun waitingText(step: PairStep.WaitingForAppliance): String =
        if (step.approvedByAppliance) "Approved on your appliance. Telling the service…" else "Confirm on your appliance"

    /**
     * The screen after the core reported [step] on its own while [s] is shown: only the
     * "confirm on your appliance" screen of the same flow follows such updates.
     */
    fun update(s: PairScreen, step: PairStep): PairScreen {
        if (s !is PairScreen.ConfirmOnAppliance || s.flowId != step.flowId) return s
        return when (step) {
            is PairStep.WaitingForAppliance -> s.copy(status = waitingText(step))
            else -> s
        }
    }

    /** The screen after [e] on screen [s]: an inline error, or the end of the flow. */
    fun failed(s: PairScreen, e: SunstormException): PairScreen {
        val f = describe(e)
        if (f.terminal) return PairScreen.Ended(f.message)
        return when (s) {
            is PairScreen.EnterCode -> s.copy(
                busy = false,
                error = f.message,
                attemptsLeft = (e as? SunstormException.WrongCode)?.attemptsLeft ?: s.attemptsLeft,
                code = if (e is SunstormException.WrongCode) "" else s.code,
                prefilled = false,
            )
            is PairScreen.ChooseWallets -> s.copy(busy = false, error = f.message)
            is PairScreen.ConfirmOnAppliance -> PairScreen.Ended(f.message)
            else -> PairScreen.Ended(f.message)
        }
    }
}

/**
 * Drives the pair screens: link → SP card + code → wallets → "confirm on your appliance"
 * → done. Plain Kotlin over [SunstormFlows]; the Compose screens render [state] and call
 * these methods.
 */
class PairController(private val flows: SunstormFlows, private val scope: CoroutineScope) {
    private val _state = MutableStateFlow<PairScreen>(PairScreen.Idle)
    private var job: Job? = null

    /** The current screen. */
    val state: StateFlow<PairScreen> = _state.asStateFlow()

    init {
        flows.onPairUpdate { step -> _state.update { PairReducer.update(it, step) } }
    }

    /**
     * Opens an accepted pair link (from an App Link or a QR code) for appliance
     * [applianceId] (null: the only bonded one).
     */
    fun open(link: String, sessionId: String, applianceId: String? = null) = run(PairScreen.Loading(sessionId)) {
        show(flows.openLink(link, applianceId))
    }

    /** The user typed in the code field. */
    fun editCode(text: String) {
        val s = _state.value as? PairScreen.EnterCode ?: return
        _state.value = PairReducer.editCode(s, text)
    }

    /** Submits the code (the prefilled one untouched in the single-device flow). */
    fun submitCode() {
        val s = _state.value as? PairScreen.EnterCode ?: return
        if (!s.canSubmit) return
        run(s.copy(busy = true, error = null)) {
            show(flows.submitCode(s.flowId, if (s.prefilled) null else s.code))
        }
    }

    /** The user tapped a wallet row. */
    fun toggleWallet(account: String) {
        val s = _state.value as? PairScreen.ChooseWallets ?: return
        _state.value = PairReducer.toggle(s, account)
    }

    /** Sends the choice to the appliance and waits for its confirmation. */
    fun approve() {
        val s = _state.value as? PairScreen.ChooseWallets ?: return
        if (!s.canApprove) return
        run(s.copy(busy = true, error = null)) {
            val chosen = s.rows.map { it.account }.filter { it in s.selected }
            show(flows.chooseWallets(s.flowId, chosen))
            try {
                show(
                    flows.approvePair(s.flowId) { p ->
                        val now = _state.value
                        if (now is PairScreen.ConfirmOnAppliance) _state.value = now.copy(status = progressText(p))
                    },
                )
            } catch (e: SunstormException) {
                // A radio problem is retryable: back to the wallets with the reason.
                val f = describe(e)
                _state.value = if (f.terminal) PairScreen.Ended(f.message) else s.copy(busy = false, error = f.message)
            }
        }
    }

    /** Declines the pair. */
    fun reject() {
        val flowId = when (val s = _state.value) {
            is PairScreen.EnterCode -> s.flowId
            is PairScreen.ChooseWallets -> s.flowId
            else -> return
        }
        run(_state.value) { show(flows.rejectPair(flowId)) }
    }

    /** Back to idle (the screen was closed). */
    fun close() {
        job?.cancel()
        _state.value = PairScreen.Idle
    }

    private suspend fun show(step: PairStep) {
        val spName = when (val s = _state.value) {
            is PairScreen.EnterCode -> s.card.spName
            is PairScreen.ChooseWallets -> s.card.spName
            is PairScreen.ConfirmOnAppliance -> s.card.spName
            else -> ""
        }
        val approval = if (step is PairStep.CodeVerified) flows.approvalList(step.flowId) else null
        _state.value = PairReducer.screenFor(step, approval, spName)
    }

    private fun run(busy: PairScreen, block: suspend () -> Unit) {
        job?.cancel()
        _state.value = busy
        job = scope.launch {
            try {
                block()
            } catch (e: SunstormException) {
                _state.value = PairReducer.failed(_state.value, e)
            }
        }
    }
}
