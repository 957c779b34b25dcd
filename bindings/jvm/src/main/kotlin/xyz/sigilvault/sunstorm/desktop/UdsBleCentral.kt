package xyz.sigilvault.sunstorm.desktop

import java.io.IOException
import java.net.UnixDomainSocketAddress
import java.nio.ByteBuffer
import java.nio.channels.SocketChannel
import java.nio.file.Files
import java.nio.file.Path
import java.util.concurrent.ConcurrentHashMap
import java.util.concurrent.CompletableFuture
import java.util.concurrent.TimeUnit
import java.util.concurrent.TimeoutException
import java.util.concurrent.atomic.AtomicLong
import xyz.sigilvault.sunstorm.BleCentral
import xyz.sigilvault.sunstorm.BleEvents
import xyz.sigilvault.sunstorm.BleException
import xyz.sigilvault.sunstorm.BlePeripheral

/**
 * The core's [BleCentral] over the appliance simulator's Unix socket (`sunstorm sim
 * appliance --socket PATH`) instead of a radio: on a desktop, this is the appliance.
 *
 * Written the way an Android shell writes one over `BluetoothGatt`, speaking the protocol
 * of docs/ble-protocol.md ("Simulator link over a Unix socket"): records `type: u8 |
 * len: u16 BE | payload`; 0x01 MTU_REQUEST, 0x02 MTU_RESPONSE, 0x03 WRITE, 0x04 NOTIFY,
 * 0x05 DISCONNECT.
 *
 * [peripherals] maps a peripheral id (what `scanAppliances` lists and `bondAppliance`
 * takes) to a socket path; a scan lists those whose socket exists. A reader thread per
 * connection plays the role of `onCharacteristicChanged` and pushes notifications into the
 * core's [BleEvents].
 */
class UdsBleCentral(
    private val peripherals: Map<String, Path>,
    private val phoneMtu: Int = 517,
) : BleCentral {
    private class Conn(val channel: SocketChannel, val mtu: Int, val events: BleEvents) {
        val writeLock = Any()
        @Volatile var open = true
    }

    private val nextId = AtomicLong(1)
    private val conns = ConcurrentHashMap<Long, Conn>()

    /** Number of WRITE records sent, across connections (diagnostics). */
    val writes = AtomicLong(0)

    override fun scan(serviceUuid: String, timeoutMs: Int): List<BlePeripheral> =
        peripherals.filterValues { Files.exists(it) }.map { (id, _) ->
            BlePeripheral(id = id, name = "Sigil simulator $id", rssi = -40)
        }

    override fun connect(peripheralId: String, events: BleEvents, timeoutMs: Int): Long {
        val path = peripherals[peripheralId] ?: throw BleException.NotFound()
        val channel = try {
            SocketChannel.open(UnixDomainSocketAddress.of(path))
        } catch (e: IOException) {
            throw BleException.NotFound()
        }
        try {
            writeRecord(channel, MTU_REQUEST, u16(phoneMtu))
            // A blocking channel has no read timeout: bound the handshake with a future.
            val (type, payload) = try {
                CompletableFuture.supplyAsync { readRecord(channel) }
                    .get(timeoutMs.toLong(), TimeUnit.MILLISECONDS)
                    ?: throw BleException.Disconnected()
            } catch (e: TimeoutException) {
                throw BleException.Timeout()
            }
            if (type != MTU_RESPONSE || payload.size != 2) {
                throw BleException.Failed("expected MTU_RESPONSE, got type $type")
            }
            val mtu = ((payload[0].toInt() and 0xff) shl 8) or (payload[1].toInt() and 0xff)
            val id = nextId.getAndIncrement()
            val conn = Conn(channel, mtu, events)
            conns[id] = conn
            Thread({ readLoop(id, conn) }, "uds-ble-reader-$id").apply { isDaemon = true }.start()
            return id
        } catch (e: BleException) {
            channel.close()
            throw e
        } catch (e: Exception) {
            channel.close()
            throw BleException.Failed(e.toString())
        }
    }

    private fun readLoop(id: Long, conn: Conn) {
        try {
            while (conn.open) {
                val (type, payload) = readRecord(conn.channel) ?: break
                when (type) {
                    NOTIFY -> try {
                        conn.events.onNotification(payload)
                    } catch (e: BleException.Disconnected) {
                        break // the core closed this connection
                    } catch (e: BleException) {
                        // Queue full: the core fails that message and retries; keep reading.
                    }
                    DISCONNECT -> break
                    else -> {} // unknown records are ignored, as a BLE stack ignores unknown handles
                }
            }
        } catch (e: IOException) {
            // socket closed
        } finally {
            conn.open = false
            conns.remove(id)
            runCatching { conn.channel.close() }
            runCatching { conn.events.onDisconnected() }
        }
    }

    override fun requestMtu(connectionId: Long, preferredMtu: Int): Int {
        val conn = conns[connectionId] ?: throw BleException.Disconnected()
        return minOf(conn.mtu, preferredMtu)
    }

    override fun write(connectionId: Long, value: ByteArray) {
        val conn = conns[connectionId] ?: throw BleException.Disconnected()
        if (value.size > conn.mtu - 3) throw BleException.Failed("PDU of ${value.size} bytes exceeds MTU ${conn.mtu}")
        try {
            synchronized(conn.writeLock) { writeRecord(conn.channel, WRITE, value) }
            writes.incrementAndGet()
        } catch (e: IOException) {
            throw BleException.Disconnected()
        }
    }

    override fun disconnect(connectionId: Long) {
        val conn = conns.remove(connectionId) ?: return
        conn.open = false
        runCatching { synchronized(conn.writeLock) { writeRecord(conn.channel, DISCONNECT, ByteArray(0)) } }
        runCatching { conn.channel.close() }
    }

    companion object {
        const val MTU_REQUEST = 0x01
        const val MTU_RESPONSE = 0x02
        const val WRITE = 0x03
        const val NOTIFY = 0x04
        const val DISCONNECT = 0x05

        private fun u16(v: Int) = byteArrayOf((v shr 8).toByte(), v.toByte())

        private fun writeRecord(ch: SocketChannel, type: Int, payload: ByteArray) {
            val buf = ByteBuffer.allocate(3 + payload.size)
            buf.put(type.toByte()).put((payload.size shr 8).toByte()).put(payload.size.toByte()).put(payload).flip()
            while (buf.hasRemaining()) ch.write(buf)
        }

        private fun readFully(ch: SocketChannel, n: Int): ByteArray? {
            val buf = ByteBuffer.allocate(n)
            while (buf.hasRemaining()) {
                if (ch.read(buf) < 0) return null
            }
            return buf.array()
        }

        /** One record, or null at end of stream. */
        private fun readRecord(ch: SocketChannel): Pair<Int, ByteArray>? {
            val head = readFully(ch, 3) ?: return null
            val len = ((head[1].toInt() and 0xff) shl 8) or (head[2].toInt() and 0xff)
            val payload = readFully(ch, len) ?: return null
            return (head[0].toInt() and 0xff) to payload
        }
    }
}
