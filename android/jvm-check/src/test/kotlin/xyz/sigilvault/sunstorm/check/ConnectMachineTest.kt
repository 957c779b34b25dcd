package xyz.sigilvault.sunstorm.check

import kotlin.test.assertEquals
import kotlin.test.assertIs
import org.junit.jupiter.api.Test
import xyz.sigilvault.sunstorm.android.ble.ConnectMachine
import xyz.sigilvault.sunstorm.android.ble.ConnectStep
import xyz.sigilvault.sunstorm.android.ble.GattCommand
import xyz.sigilvault.sunstorm.android.ble.GattEvent
import xyz.sigilvault.sunstorm.android.ble.LinkFailure

/** The connect sequence of the Android BleCentral: connect → discover → notifications → ready. */
class ConnectMachineTest {
    private fun run(vararg events: GattEvent): Pair<ConnectStep, List<GattCommand>> {
        var step: ConnectStep = ConnectStep.Connecting
        val commands = mutableListOf<GattCommand>()
        for (e in events) {
            val (next, cmds) = ConnectMachine.next(step, e)
            step = next
            commands += cmds
        }
        return step to commands
    }

    private val discovered = GattEvent.ServicesDiscovered(success = true, hasWrite = true, hasNotify = true)

    @Test
    fun `the happy path enables notifications before completing connect`() {
        val (step, commands) = run(GattEvent.Connected, discovered, GattEvent.NotificationsEnabled(true))
        assertEquals(ConnectStep.Ready, step)
        assertEquals(listOf(GattCommand.DiscoverServices, GattCommand.EnableNotifications, GattCommand.CompleteConnect), commands)
    }

    @Test
    fun `a peripheral without the Sigil service is refused and closed`() {
        val (step, commands) = run(GattEvent.Connected, GattEvent.ServicesDiscovered(true, hasWrite = true, hasNotify = false))
        assertIs<LinkFailure.Failed>(assertIs<ConnectStep.Closed>(step).failure)
        assertIs<GattCommand.FailConnect>(commands[1])
        assertEquals(GattCommand.CloseGatt, commands.last())
    }

    @Test
    fun `a disconnect at any step before ready fails connect as Disconnected`() {
        val prefixes = listOf(listOf(), listOf(GattEvent.Connected), listOf(GattEvent.Connected, discovered))
        for (prefix in prefixes) {
            val (step, commands) = run(*(prefix + GattEvent.Disconnected(8)).toTypedArray())
            assertIs<LinkFailure.Disconnected>(assertIs<ConnectStep.Closed>(step).failure)
            val fail = commands.filterIsInstance<GattCommand.FailConnect>().single()
            assertIs<LinkFailure.Disconnected>(fail.failure)
            assertEquals(GattCommand.CloseGatt, commands.last())
        }
    }

    @Test
    fun `the connect timeout fails connect, and is ignored once ready`() {
        val (timedOut, cmds) = run(GattEvent.Connected, GattEvent.TimedOut)
        assertIs<LinkFailure.Timeout>(assertIs<ConnectStep.Closed>(timedOut).failure)
        assertIs<GattCommand.FailConnect>(cmds[1])
        val (ready, readyCmds) = run(GattEvent.Connected, discovered, GattEvent.NotificationsEnabled(true), GattEvent.TimedOut)
        assertEquals(ConnectStep.Ready, ready)
        assertEquals(GattCommand.CompleteConnect, readyCmds.last())
    }

    @Test
    fun `a drop after ready reports the disconnect to the session once`() {
        val (step, commands) = run(GattEvent.Connected, discovered, GattEvent.NotificationsEnabled(true), GattEvent.Disconnected(19), GattEvent.Disconnected(19))
        assertIs<ConnectStep.Closed>(step)
        assertEquals(1, commands.count { it == GattCommand.ReportDisconnected })
        assertEquals(0, commands.count { it is GattCommand.FailConnect })
    }

    @Test
    fun `notifications that cannot be enabled fail connect`() {
        val (step, _) = run(GattEvent.Connected, discovered, GattEvent.NotificationsEnabled(false))
        assertIs<LinkFailure.Failed>(assertIs<ConnectStep.Closed>(step).failure)
    }
}
