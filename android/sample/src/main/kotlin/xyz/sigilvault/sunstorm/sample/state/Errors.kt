package xyz.sigilvault.sunstorm.sample.state

import xyz.sigilvault.sunstorm.FlowProgress
import xyz.sigilvault.sunstorm.SunstormException

/** What a screen shows for an error, and whether the flow can go on. */
data class Failure(val message: String, val terminal: Boolean)

/** The sentence and the fate of the flow for each core error (docs/embedding.md §6). */
fun describe(e: SunstormException): Failure = when (e) {
    is SunstormException.InvalidCode -> Failure(e.reason, terminal = false)
    is SunstormException.WrongCode -> Failure("Wrong code, ${e.attemptsLeft} attempts left", terminal = false)
    is SunstormException.CodeLocked -> Failure("Too many wrong codes. Start again on the service's page.", terminal = true)
    is SunstormException.Expired -> Failure("This request has expired. Start again on the service's page.", terminal = true)
    is SunstormException.NotFound -> Failure("This request was not found; it may have been cancelled.", terminal = true)
    is SunstormException.UntrustedSignature ->
        Failure("Warning: a signature did not verify (${e.what}). Nothing was approved.", terminal = true)
    is SunstormException.PairRevoked -> Failure("This pairing was revoked.", terminal = true)
    is SunstormException.InvalidSelection -> Failure(e.reason, terminal = false)
    is SunstormException.GuardrailBlocked -> Failure("Blocked by your guardrails: ${e.summary}", terminal = true)
    is SunstormException.UnsafeReturnUrl -> Failure("Paired. The service's return address is not safe to open.", terminal = true)
    is SunstormException.NotBonded -> Failure("Bond this phone with your appliance first.", terminal = true)
    is SunstormException.ChooseAppliance -> Failure("Several appliances are bonded: choose which one to use.", terminal = false)
    is SunstormException.NoSuchAppliance -> Failure("That appliance is no longer bonded with this phone.", terminal = true)
    is SunstormException.UnknownAppliance -> Failure("Warning: this is not the appliance you bonded with.", terminal = true)
    is SunstormException.WrongPin -> Failure("Wrong PIN, ${e.attemptsLeft} attempts left", terminal = false)
    is SunstormException.PinLocked -> Failure("Too many wrong PINs: the appliance now shows a new PIN.", terminal = false)
    is SunstormException.PhoneForgotten -> Failure("This appliance no longer knows this phone. Bond it again.", terminal = true)
    is SunstormException.ApplianceDeclined -> Failure("Declined on the appliance.", terminal = true)
    is SunstormException.ApplianceRefused -> Failure("The appliance refused: ${e.detail}", terminal = true)
    is SunstormException.ApplianceUnreachable -> Failure("Cannot reach the appliance. Bring it closer and retry.", terminal = false)
    is SunstormException.BluetoothUnavailable -> Failure("Turn Bluetooth on and allow Nearby devices, then retry.", terminal = false)
    is SunstormException.UserPresenceFailed -> Failure("Identity check not passed.", terminal = false)
    is SunstormException.ApprovalCancelled -> Failure("Approval cancelled. Nothing was sent.", terminal = false)
    is SunstormException.BiometricsLockedOut ->
        Failure("Biometrics are locked after too many attempts. Unlock your phone, then approve again.", terminal = false)
    is SunstormException.ApprovalKeyInvalidated ->
        Failure("Your biometrics changed. Enrol this phone's new approval key with your appliance, then approve again.", terminal = false)
    is SunstormException.NoBiometrics -> Failure("Set up a fingerprint or face unlock to approve.", terminal = false)
    is SunstormException.OctaneUnreachable -> Failure("Cannot reach the Sigil service. Check the network and retry.", terminal = false)
    is SunstormException.Cancelled -> Failure("Cancelled.", terminal = true)
    else -> Failure(e.message, terminal = true)
}

/** A status line for a flow's progress ("Confirm on your appliance"). */
fun progressText(p: FlowProgress): String = when (p) {
    is FlowProgress.ConnectingToAppliance -> "Connecting to your appliance…"
    is FlowProgress.SendingToAppliance ->
        if (p.total == 0L) "Sending…" else "Sending… ${p.sent * 100 / p.total}%"
    is FlowProgress.WaitingForApplianceConfirmation -> "Confirm on your appliance"
    is FlowProgress.ReconnectingToAppliance -> "Connection lost, reconnecting (attempt ${p.attempt})…"
}
