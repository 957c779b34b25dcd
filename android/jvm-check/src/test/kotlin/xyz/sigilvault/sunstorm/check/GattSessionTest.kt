package xyz.sigilvault.sunstorm.check

import java.util.concurrent.CompletableFuture
import java.util.concurrent.CopyOnWriteArrayList
import java.util.concurrent.ExecutionException
import java.util.concurrent.atomic.AtomicInteger
import kotlin.test.assertContentEquals
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertFalse
import kotlin.test.assertIs
import kotlin.test.assertTrue
import org.junit.jupiter.api.Test
import xyz.sigilvault.sunstorm.BleException
import xyz.sigilvault.sunstorm.android.ble.GattSession
import xyz.sigilvault.sunstorm.android.ble.GattWritePort
import xyz.sigilvault.sunstorm.android.ble.LinkEvents
import xyz.sigilvault.sunstorm.android.ble.LinkFailure
import xyz.sigilvault.sunstorm.android.ble.Scheduler
import xyz.sigilvault.sunstorm.android.ble.SubmitResult
import xyz.sigilvault.sunstorm.android.ble.toBleException

/** A stack whose answers are scripted: BUSY while [busyFor] > 0, then ACCEPTED. */
private class FakeStack(var busyFor: Int = 0, var failNext: Boolean = false) : GattWritePort {
    val submitted = CopyOnWriteArrayList<ByteArray>()
    val attempts = AtomicInteger()

    override fun submitWrite(value: ByteArray): SubmitResult {
        attempts.incrementAndGet()
        if (failNext) {
            failNext = false
            return SubmitResult.FAILED
        }
        if (busyFor > 0) {
            busyFor--
            return SubmitResult.BUSY
        }
        submitted += value
        return SubmitResult.ACCEPTED
    }
}

/** A scheduler whose timers fire when the test says so. */
private class ManualScheduler : Scheduler {
    val pending = ArrayDeque<() -> Unit>()
    override fun schedule(delayMs: Long, action: () -> Unit) {
        pending.addLast(action)
    }
    fun fireAll() {
        while (pending.isNotEmpty()) pending.removeFirst()()
    }
}

private class RecordingEvents(var accept: Boolean = true) : LinkEvents {
    val notifications = CopyOnWriteArrayList<ByteArray>()
    val disconnects = AtomicInteger()
    override fun notification(value: ByteArray): Boolean {
        notifications += value
        return accept
    }
    override fun disconnected() {
        disconnects.incrementAndGet()
    }
}

private fun failureOf(f: CompletableFuture<Unit>): Throwable =
    assertFailsWith<ExecutionException> { f.get() }.cause!!

/** The BLE adapter's data path: write queue back-pressure, disconnects, notification order. */
class GattSessionTest {
    private fun pdu(n: Int) = byteArrayOf(n.toByte(), 0x55)

    @Test
    fun `writes go out one at a time, in order, each completing on onCharacteristicWrite`() {
        val stack = FakeStack()
        val session = GattSession(stack, RecordingEvents(), ManualScheduler())
        val futures = (1..3).map { session.submit(pdu(it)) }

        assertEquals(1, stack.submitted.size, "only one write may be outstanding on Android")
        assertFalse(futures[0].isDone, "a write completes when the stack reports it written")
        session.onWriteComplete(success = true)
        assertTrue(futures[0].isDone)
        assertEquals(2, stack.submitted.size)
        session.onWriteComplete(success = true)
        session.onWriteComplete(success = true)
        futures.forEach { it.get() }
        assertEquals(listOf(1, 2, 3), stack.submitted.map { it[0].toInt() })
        assertEquals(3, session.completedWrites)
    }

    @Test
    fun `a full stack queue holds the write and retries it, never reordering or dropping`() {
        val stack = FakeStack(busyFor = 2)
        val timers = ManualScheduler()
        val session = GattSession(stack, RecordingEvents(), timers)
        val first = session.submit(pdu(1))
        val second = session.submit(pdu(2))

        assertEquals(0, stack.submitted.size, "refused while busy")
        assertEquals(1, session.busyCount)
        assertEquals(2, session.queuedWrites, "the refused write waits at the head of the queue")
        timers.fireAll() // retry: busy again, a new timer
        assertEquals(2, session.busyCount)
        timers.fireAll() // retry: accepted
        assertEquals(listOf(1), stack.submitted.map { it[0].toInt() })
        session.onWriteComplete(true)
        session.onWriteComplete(true)
        first.get()
        second.get()
        assertEquals(listOf(1, 2), stack.submitted.map { it[0].toInt() })
    }

    @Test
    fun `another GATT operation finishing retries a refused write before the timer`() {
        val stack = FakeStack(busyFor = 1)
        val timers = ManualScheduler()
        val session = GattSession(stack, RecordingEvents(), timers)
        val w = session.submit(pdu(7))
        assertEquals(0, stack.submitted.size)
        session.onGattIdle() // e.g. onDescriptorWrite / onMtuChanged
        assertEquals(1, stack.submitted.size)
        session.onWriteComplete(true)
        w.get()
        timers.fireAll() // the stale timer finds nothing to do
        assertEquals(1, stack.submitted.size)
    }

    @Test
    fun `a refused or failed write fails alone and the queue moves on`() {
        val stack = FakeStack(failNext = true)
        val session = GattSession(stack, RecordingEvents(), ManualScheduler())
        val refused = session.submit(pdu(1))
        val next = session.submit(pdu(2))
        assertIs<LinkFailure.Failed>(failureOf(refused))
        session.onWriteComplete(success = false, status = 133)
        val failed = assertIs<LinkFailure.Failed>(failureOf(next))
        assertTrue(failed.message!!.contains("133"))
        val third = session.submit(pdu(3))
        session.onWriteComplete(true)
        third.get()
    }

    @Test
    fun `disconnect mid-write fails the in-flight and queued writes and tells the core once`() {
        val stack = FakeStack()
        val events = RecordingEvents()
        val session = GattSession(stack, events, ManualScheduler())
        val inFlight = session.submit(pdu(1))
        val queued = session.submit(pdu(2))

        session.onDisconnected()
        session.onDisconnected() // the stack may report it twice
        assertIs<LinkFailure.Disconnected>(failureOf(inFlight))
        assertIs<LinkFailure.Disconnected>(failureOf(queued))
        assertEquals(1, events.disconnects.get())
        assertFalse(session.isOpen)
        // A late onCharacteristicWrite changes nothing; new writes fail at once.
        session.onWriteComplete(true)
        assertIs<LinkFailure.Disconnected>(failureOf(session.submit(pdu(3))))
        assertEquals(1, stack.submitted.size)
        // The core sees the error its BleCentral contract declares.
        assertIs<BleException.Disconnected>(LinkFailure.Disconnected().toBleException())
    }

    @Test
    fun `disconnect while a write waits for the busy stack fails it`() {
        val stack = FakeStack(busyFor = 100)
        val timers = ManualScheduler()
        val session = GattSession(stack, RecordingEvents(), timers)
        val w = session.submit(pdu(1))
        session.onDisconnected()
        timers.fireAll()
        assertIs<LinkFailure.Disconnected>(failureOf(w))
        assertEquals(0, session.queuedWrites)
    }

    @Test
    fun `a blocking write that times out is withdrawn and never sent late`() {
        val stack = FakeStack(busyFor = Int.MAX_VALUE)
        val timers = ManualScheduler()
        val session = GattSession(stack, RecordingEvents(), timers)
        val e = assertFailsWith<LinkFailure.Timeout> { session.write(pdu(1), timeoutMs = 20) }
        assertIs<BleException.Timeout>(e.toBleException())
        stack.busyFor = 0
        timers.fireAll()
        assertEquals(0, stack.submitted.size, "the timed-out PDU must not reach the radio")
        val next = session.submit(pdu(2))
        session.onWriteComplete(true)
        next.get()
        assertEquals(listOf(2), stack.submitted.map { it[0].toInt() })
    }

    @Test
    fun `a write whose confirmation never comes times out without wedging the queue`() {
        val stack = FakeStack()
        val session = GattSession(stack, RecordingEvents(), ManualScheduler())
        assertFailsWith<LinkFailure.Timeout> { session.write(pdu(1), timeoutMs = 20) }
        assertEquals(1, stack.submitted.size, "it was handed to the stack")
        val next = session.submit(pdu(2))
        assertEquals(2, stack.submitted.size, "the next write goes out")
        session.onWriteComplete(true)
        next.get()
    }

    @Test
    fun `notifications reach the core in arrival order, and none after a disconnect`() {
        val events = RecordingEvents()
        val session = GattSession(FakeStack(), events, ManualScheduler())
        (1..50).forEach { session.onNotification(pdu(it)) }
        session.onDisconnected()
        session.onNotification(pdu(99))
        assertEquals((1..50).toList(), events.notifications.map { it[0].toInt() })
    }

    @Test
    fun `notifications from several callback threads are delivered whole and in order per thread`() {
        val events = RecordingEvents()
        val session = GattSession(FakeStack(), events, ManualScheduler())
        val threads = (0 until 4).map { t ->
            Thread { repeat(200) { i -> session.onNotification(byteArrayOf(t.toByte(), i.toByte(), (i shr 8).toByte())) } }
        }
        threads.forEach(Thread::start)
        threads.forEach(Thread::join)
        assertEquals(800, events.notifications.size)
        for (t in 0 until 4) {
            val seq = events.notifications.filter { it[0].toInt() == t }.map { (it[1].toInt() and 0xff) or (it[2].toInt() shl 8) }
            assertEquals((0 until 200).toList(), seq)
        }
    }

    @Test
    fun `once the core closed the connection, notifications stop and writes fail`() {
        val events = RecordingEvents(accept = false) // BleEvents threw Disconnected
        val session = GattSession(FakeStack(), events, ManualScheduler())
        session.onNotification(pdu(1))
        session.onNotification(pdu(2))
        assertEquals(1, events.notifications.size)
        session.close()
        assertIs<LinkFailure.Disconnected>(failureOf(session.submit(pdu(3))))
        session.onDisconnected()
        assertEquals(0, events.disconnects.get(), "nothing is delivered after a local disconnect")
    }

    @Test
    fun `the queue is bounded`() {
        val session = GattSession(FakeStack(busyFor = Int.MAX_VALUE), RecordingEvents(), ManualScheduler(), maxQueued = 2)
        session.submit(pdu(1))
        session.submit(pdu(2))
        val third = assertIs<LinkFailure.Failed>(failureOf(session.submit(pdu(3))))
        assertTrue(third.message!!.contains("queue full"))
    }

    @Test
    fun `the stack gets a copy, so the caller may reuse its buffer`() {
        val stack = FakeStack()
        val session = GattSession(stack, RecordingEvents(), ManualScheduler())
        val buf = pdu(1)
        session.submit(buf)
        buf[0] = 9
        assertContentEquals(pdu(1), stack.submitted.single())
    }
}
