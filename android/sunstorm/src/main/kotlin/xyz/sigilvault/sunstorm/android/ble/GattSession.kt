package xyz.sigilvault.sunstorm.android.ble

import java.util.ArrayDeque
import java.util.concurrent.CompletableFuture
import java.util.concurrent.ExecutionException
import java.util.concurrent.TimeUnit
import java.util.concurrent.TimeoutException

/**
 * Why a link operation failed. Framework-free; [AndroidBleCentral] maps each case to the
 * generated `BleException` the core expects.
 */
sealed class LinkFailure(reason: String) : Exception(reason) {
    /** The connection is gone (peripheral dropped it, Bluetooth off, or closed locally). */
    class Disconnected : LinkFailure("disconnected")

    /** The operation did not complete in the time the core gave it. */
    class Timeout : LinkFailure("timed out")

    /** Any other platform failure, with the platform's reason. */
    class Failed(reason: String) : LinkFailure(reason)
}

/** What the platform answered when asked to queue one write. */
enum class SubmitResult {
    /** Queued; completion follows through [GattSession.onWriteComplete]. */
    ACCEPTED,

    /** The stack's queue is full or another GATT operation is outstanding: retry later. */
    BUSY,

    /** Refused for good (characteristic gone, not connected…). */
    FAILED,
}

/** The one GATT operation a [GattSession] drives: implemented over `BluetoothGatt`, faked in tests. */
fun interface GattWritePort {
    /** Hands one PDU to the write characteristic (write without response). Must not block. */
    fun submitWrite(value: ByteArray): SubmitResult
}

/** Runs an action later (a `Handler.postDelayed` on the GATT thread; a manual clock in tests). */
fun interface Scheduler {
    /** Runs [action] after [delayMs] milliseconds. */
    fun schedule(delayMs: Long, action: () -> Unit)
}

/** Where one connection's notifications and its disconnection go (the core's `BleEvents`). */
interface LinkEvents {
    /** One notification; returns false when the receiver is gone (stop delivering). */
    fun notification(value: ByteArray): Boolean

    /** The link dropped. Called at most once. */
    fun disconnected()
}

/**
 * One live GATT connection's data path, without the Android framework: a FIFO write queue
 * with back-pressure and in-order notification delivery.
 *
 * Android allows one outstanding GATT operation per connection, and
 * `writeCharacteristic` refuses (`ERROR_GATT_WRITE_REQUEST_BUSY`, or `false` before API 33)
 * while the stack's queue is full. So writes go out one at a time: the next is submitted
 * when `onCharacteristicWrite` reports the previous one ([onWriteComplete]), when another
 * GATT operation finishes ([onGattIdle]), or after [busyRetryMs] when the stack refused.
 * A write completes (its caller returns) when the stack reports it written.
 *
 * A disconnect fails every queued and in-flight write with [LinkFailure.Disconnected],
 * drops later notifications and tells [events] once. Thread-safe: callers block in
 * [write] on the core's worker threads while GATT callbacks arrive on the GATT thread.
 */
class GattSession(
    private val port: GattWritePort,
    private val events: LinkEvents,
    private val scheduler: Scheduler,
    private val busyRetryMs: Long = DEFAULT_BUSY_RETRY_MS,
    private val maxQueued: Int = DEFAULT_MAX_QUEUED,
) {
    private class PendingWrite(val value: ByteArray) {
        val done = CompletableFuture<Unit>()
    }

    private val lock = Any()
    private val deliveryLock = Any()
    private val queue = ArrayDeque<PendingWrite>()
    private var inFlight: PendingWrite? = null
    private var retryScheduled = false
    private var open = true
    private var receiverGone = false
    private var busyRefusals = 0L
    private var writesDone = 0L

    /** Whether the connection is still up (neither disconnected nor closed). */
    val isOpen: Boolean get() = synchronized(lock) { open }

    /** How many times the stack refused a write because its queue was full. */
    val busyCount: Long get() = synchronized(lock) { busyRefusals }

    /** Writes the stack confirmed. */
    val completedWrites: Long get() = synchronized(lock) { writesDone }

    /** Writes waiting for their turn (not counting the one in flight). */
    val queuedWrites: Int get() = synchronized(lock) { queue.size }

    /**
     * Queues [value] and returns a future completed when the stack confirmed it, or failed
     * with a [LinkFailure]. Does not block.
     */
    fun submit(value: ByteArray): CompletableFuture<Unit> {
        val w = PendingWrite(value.copyOf())
        synchronized(lock) {
            if (!open) {
                w.done.completeExceptionally(LinkFailure.Disconnected())
                return w.done
            }
            if (queue.size >= maxQueued) {
                w.done.completeExceptionally(LinkFailure.Failed("write queue full ($maxQueued PDUs)"))
                return w.done
            }
            queue.addLast(w)
        }
        pump()
        return w.done
    }

    /**
     * Writes [value] and blocks until the stack confirmed it (the core's `BleCentral.write`
     * contract). A write still queued when [timeoutMs] elapses is withdrawn, never sent late.
     */
    fun write(value: ByteArray, timeoutMs: Long) {
        val future = submit(value)
        try {
            future.get(timeoutMs, TimeUnit.MILLISECONDS)
        } catch (e: TimeoutException) {
            synchronized(lock) {
                queue.removeIf { it.done === future }
                // A confirmation that never came must not wedge the queue: the next write
                // is submitted (and the stack answers BUSY if it really is still busy). A
                // late confirmation then completes the next write early: harmless for
                // writes without response, whose order the stack keeps.
                if (inFlight?.done === future) inFlight = null
            }
            future.completeExceptionally(LinkFailure.Timeout())
            pump()
            throw LinkFailure.Timeout()
        } catch (e: ExecutionException) {
            throw (e.cause as? LinkFailure) ?: LinkFailure.Failed(e.cause?.toString() ?: "write failed")
        } catch (e: InterruptedException) {
            Thread.currentThread().interrupt()
            throw LinkFailure.Failed("interrupted")
        }
    }

    /** `onCharacteristicWrite` for the write characteristic: the in-flight write finished. */
    fun onWriteComplete(success: Boolean, status: Int = 0) {
        val w = synchronized(lock) {
            val current = inFlight ?: return
            inFlight = null
            if (success) writesDone++
            current
        }
        if (success) {
            w.done.complete(Unit)
        } else {
            w.done.completeExceptionally(LinkFailure.Failed("write failed with GATT status $status"))
        }
        pump()
    }

    /** Another GATT operation finished (descriptor write, MTU change): the stack may accept writes again. */
    fun onGattIdle() {
        synchronized(lock) { retryScheduled = false }
        pump()
    }

    /** `onCharacteristicChanged` for the notify characteristic. Delivered in arrival order. */
    fun onNotification(value: ByteArray) {
        synchronized(deliveryLock) {
            synchronized(lock) { if (!open || receiverGone) return }
            if (!events.notification(value)) {
                synchronized(lock) { receiverGone = true }
            }
        }
    }

    /** The link dropped: fail everything pending and tell the core once. */
    fun onDisconnected() {
        if (failAll()) {
            synchronized(deliveryLock) { events.disconnected() }
        }
    }

    /** The core disconnected: fail everything pending; nothing more is delivered. */
    fun close() {
        synchronized(lock) { receiverGone = true }
        failAll()
    }

    /** Marks the session closed and fails its writes; false when it already was. */
    private fun failAll(): Boolean {
        val failed = ArrayList<PendingWrite>()
        synchronized(lock) {
            if (!open) return false
            open = false
            inFlight?.let { failed.add(it) }
            inFlight = null
            failed.addAll(queue)
            queue.clear()
        }
        failed.forEach { it.done.completeExceptionally(LinkFailure.Disconnected()) }
        return true
    }

    /** Submits queued writes while the stack takes them; at most one in flight. */
    private fun pump() {
        while (true) {
            val next = synchronized(lock) {
                if (!open || inFlight != null || retryScheduled) return
                // Writes withdrawn after a timeout are already done: skip them.
                var head = queue.pollFirst() ?: return
                while (head.done.isDone) head = queue.pollFirst() ?: return
                inFlight = head
                head
            }
            val result = try {
                port.submitWrite(next.value)
            } catch (e: SecurityException) {
                failInFlight(next, LinkFailure.Failed("Bluetooth permission revoked: ${e.message}"))
                continue
            } catch (e: RuntimeException) {
                failInFlight(next, LinkFailure.Failed("write refused: ${e.message}"))
                continue
            }
            when (result) {
                SubmitResult.ACCEPTED -> return
                SubmitResult.FAILED -> {
                    failInFlight(next, LinkFailure.Failed("the stack refused the write"))
                    continue
                }
                SubmitResult.BUSY -> {
                    synchronized(lock) {
                        if (inFlight === next) {
                            inFlight = null
                            busyRefusals++
                            if (open) {
                                queue.addFirst(next)
                                retryScheduled = true
                            }
                        }
                    }
                    scheduler.schedule(busyRetryMs) { onGattIdle() }
                    return
                }
            }
        }
    }

    private fun failInFlight(w: PendingWrite, failure: LinkFailure) {
        synchronized(lock) { if (inFlight === w) inFlight = null }
        w.done.completeExceptionally(failure)
    }

    /** Defaults. */
    companion object {
        /** Delay before retrying a write the stack refused as busy. */
        const val DEFAULT_BUSY_RETRY_MS = 10L

        /** PDUs that may wait (the core writes one at a time; this bounds misuse). */
        const val DEFAULT_MAX_QUEUED = 64
    }
}
