package xyz.sigilvault.sunstorm.android.ble

/** Where a connection attempt stands. */
sealed interface ConnectStep {
    /** `connectGatt` was called; waiting for `STATE_CONNECTED`. */
    data object Connecting : ConnectStep

    /** `discoverServices` was called. */
    data object DiscoveringServices : ConnectStep

    /** The CCC descriptor (0x2902) of the notify characteristic is being written. */
    data object EnablingNotifications : ConnectStep

    /** Connected, service found, notifications on: the core may write. */
    data object Ready : ConnectStep

    /** The attempt (or the connection) ended; [failure] says why. */
    data class Closed(val failure: LinkFailure) : ConnectStep
}

/** What the GATT callback reported, reduced to what the connect sequence needs. */
sealed interface GattEvent {
    /** `onConnectionStateChange(…, STATE_CONNECTED)` with `GATT_SUCCESS`. */
    data object Connected : GattEvent

    /** `onConnectionStateChange(…, STATE_DISCONNECTED)` or a failed status. */
    data class Disconnected(val status: Int) : GattEvent

    /** `onServicesDiscovered`: whether the Sigil service and both characteristics exist. */
    data class ServicesDiscovered(val success: Boolean, val hasWrite: Boolean, val hasNotify: Boolean) : GattEvent

    /** `onDescriptorWrite` for the notify characteristic's CCC descriptor. */
    data class NotificationsEnabled(val success: Boolean) : GattEvent

    /** The connect timeout elapsed. */
    data object TimedOut : GattEvent
}

/** What the adapter must do next on the `BluetoothGatt`. */
sealed interface GattCommand {
    /** Call `discoverServices()`. */
    data object DiscoverServices : GattCommand

    /** `setCharacteristicNotification(notify, true)` and write `ENABLE_NOTIFICATION_VALUE` to 0x2902. */
    data object EnableNotifications : GattCommand

    /** Complete the core's `connect` call successfully. */
    data object CompleteConnect : GattCommand

    /** Fail the core's `connect` call with this failure. */
    data class FailConnect(val failure: LinkFailure) : GattCommand

    /** `disconnect()` and `close()` the `BluetoothGatt`. */
    data object CloseGatt : GattCommand

    /** Tell the live session the link dropped. */
    data object ReportDisconnected : GattCommand
}

/**
 * The connect sequence as a pure transition function: connect → discover services →
 * enable notifications → ready, with every failure and a disconnect at any step handled.
 * Android-free, so it is tested on the JVM; [AndroidBleCentral] executes the commands.
 */
object ConnectMachine {
    /** The next step and the commands to run for [event] in [step]. */
    fun next(step: ConnectStep, event: GattEvent): Pair<ConnectStep, List<GattCommand>> = when (step) {
        is ConnectStep.Closed -> step to emptyList()
        ConnectStep.Ready -> when (event) {
            is GattEvent.Disconnected -> closed(LinkFailure.Disconnected(), GattCommand.ReportDisconnected, GattCommand.CloseGatt)
            else -> step to emptyList()
        }
        ConnectStep.Connecting -> when (event) {
            GattEvent.Connected -> ConnectStep.DiscoveringServices to listOf(GattCommand.DiscoverServices)
            else -> failConnect(event)
        }
        ConnectStep.DiscoveringServices -> when (event) {
            is GattEvent.ServicesDiscovered -> when {
                !event.success -> failConnect(LinkFailure.Failed("service discovery failed"))
                !event.hasWrite || !event.hasNotify ->
                    failConnect(LinkFailure.Failed("the peripheral does not offer the Sigil service"))
                else -> ConnectStep.EnablingNotifications to listOf(GattCommand.EnableNotifications)
            }
            GattEvent.Connected -> step to emptyList()
            else -> failConnect(event)
        }
        ConnectStep.EnablingNotifications -> when (event) {
            is GattEvent.NotificationsEnabled ->
                if (event.success) {
                    ConnectStep.Ready to listOf(GattCommand.CompleteConnect)
                } else {
                    failConnect(LinkFailure.Failed("could not enable notifications"))
                }
            GattEvent.Connected, is GattEvent.ServicesDiscovered -> step to emptyList()
            else -> failConnect(event)
        }
    }

    private fun failConnect(event: GattEvent): Pair<ConnectStep, List<GattCommand>> = failConnect(
        when (event) {
            GattEvent.TimedOut -> LinkFailure.Timeout()
            is GattEvent.Disconnected -> LinkFailure.Disconnected()
            else -> LinkFailure.Failed("unexpected GATT event $event")
        },
    )

    private fun failConnect(f: LinkFailure) = closed(f, GattCommand.FailConnect(f), GattCommand.CloseGatt)

    private fun closed(f: LinkFailure, vararg commands: GattCommand) = ConnectStep.Closed(f) to commands.toList()
}
