package xyz.sigilvault.sunstorm.android.ble

import android.Manifest
import android.annotation.SuppressLint
import android.bluetooth.BluetoothAdapter
import android.bluetooth.BluetoothDevice
import android.bluetooth.BluetoothGatt
import android.bluetooth.BluetoothGattCallback
import android.bluetooth.BluetoothGattCharacteristic
import android.bluetooth.BluetoothGattDescriptor
import android.bluetooth.BluetoothManager
import android.bluetooth.BluetoothProfile
import android.bluetooth.BluetoothStatusCodes
import android.bluetooth.le.ScanCallback
import android.bluetooth.le.ScanFilter
import android.bluetooth.le.ScanResult
import android.bluetooth.le.ScanSettings
import android.content.Context
import android.content.pm.PackageManager
import android.os.Build
import android.os.Handler
import android.os.HandlerThread
import android.os.ParcelUuid
import java.util.UUID
import java.util.concurrent.CompletableFuture
import java.util.concurrent.ConcurrentHashMap
import java.util.concurrent.ExecutionException
import java.util.concurrent.TimeUnit
import java.util.concurrent.TimeoutException
import java.util.concurrent.atomic.AtomicLong
import xyz.sigilvault.sunstorm.BleCentral
import xyz.sigilvault.sunstorm.BleEvents
import xyz.sigilvault.sunstorm.BleException
import xyz.sigilvault.sunstorm.BlePeripheral

/** The Sigil GATT UUIDs (core/src/ble/transport.rs; also `gattUuids()` from the core). */
object SigilGatt {
    /** Primary service, used as the scan filter. */
    val SERVICE: UUID = UUID.fromString("5a3c0001-7e1f-4b8e-9c2d-51a7e5000001")

    /** Phone → appliance, write without response. */
    val WRITE: UUID = UUID.fromString("5a3c0002-7e1f-4b8e-9c2d-51a7e5000001")

    /** Appliance → phone, notify. */
    val NOTIFY: UUID = UUID.fromString("5a3c0003-7e1f-4b8e-9c2d-51a7e5000001")

    /** Client Characteristic Configuration descriptor. */
    val CCC: UUID = UUID.fromString("00002902-0000-1000-8000-00805f9b34fb")

    /** The largest ATT MTU (Android caps `requestMtu` at 517). */
    const val MAX_MTU = 517
}

/**
 * The core's [BleCentral] on `android.bluetooth`: scan filtered by the Sigil service UUID,
 * `connectGatt` (LE transport), service discovery, notifications through the CCC
 * descriptor, `requestMtu(517)`, and writes without response through a [GattSession]
 * (one at a time, retried while the stack's queue is full).
 *
 * The core calls every method from its worker threads and each blocks until done or until
 * its timeout. All GATT callbacks run on one [HandlerThread], so the connect sequence
 * and notifications are serialised in the order the stack reports them.
 *
 * The app must hold `BLUETOOTH_SCAN` and `BLUETOOTH_CONNECT` (Android 12+) or
 * `ACCESS_FINE_LOCATION` (Android 11 and lower) before the core scans; without them every
 * method throws `BleException.Unavailable`, which the core shows as "Bluetooth unavailable".
 */
@SuppressLint("MissingPermission") // checked by requirePermissions() before every call
class AndroidBleCentral(private val context: Context) : BleCentral {
    private val thread = HandlerThread("sunstorm-gatt").apply { start() }
    private val handler = Handler(thread.looper)
    private val scheduler = Scheduler { delay, action -> handler.postDelayed(action, delay) }
    private val nextId = AtomicLong(1)
    private val connections = ConcurrentHashMap<Long, Connection>()

    private val adapter: BluetoothAdapter?
        get() = context.getSystemService(BluetoothManager::class.java)?.adapter

    override fun scan(serviceUuid: String, timeoutMs: Int): List<BlePeripheral> {
        requirePermissions(scan = true)
        val scanner = enabledAdapter().bluetoothLeScanner ?: throw BleException.Unavailable("no LE scanner")
        val seen = ConcurrentHashMap<String, BlePeripheral>()
        val failed = CompletableFuture<Int>()
        val callback = object : ScanCallback() {
            override fun onScanResult(callbackType: Int, result: ScanResult) {
                val device = result.device
                seen[device.address] = BlePeripheral(
                    id = device.address,
                    name = result.scanRecord?.deviceName ?: device.name,
                    rssi = result.rssi,
                )
            }

            override fun onScanFailed(errorCode: Int) {
                failed.complete(errorCode)
            }
        }
        val filter = ScanFilter.Builder().setServiceUuid(ParcelUuid(UUID.fromString(serviceUuid))).build()
        val settings = ScanSettings.Builder().setScanMode(ScanSettings.SCAN_MODE_LOW_LATENCY).build()
        scanner.startScan(listOf(filter), settings, callback)
        try {
            val code = failed.get(timeoutMs.toLong(), TimeUnit.MILLISECONDS)
            throw BleException.Failed("scan failed with code $code")
        } catch (_: TimeoutException) {
            // The scan window ended: report what was seen.
        } finally {
            runCatching { scanner.stopScan(callback) }
        }
        return seen.values.toList()
    }

    override fun connect(peripheralId: String, events: BleEvents, timeoutMs: Int): Long {
        requirePermissions(scan = false)
        val adapter = enabledAdapter()
        if (!BluetoothAdapter.checkBluetoothAddress(peripheralId)) throw BleException.NotFound()
        val device = adapter.getRemoteDevice(peripheralId)
        val id = nextId.getAndIncrement()
        val conn = Connection(id, device, CoreEvents(events))
        connections[id] = conn
        try {
            conn.open(timeoutMs.toLong())
        } catch (e: BleException) {
            connections.remove(id)
            throw e
        }
        return id
    }

    override fun requestMtu(connectionId: Long, preferredMtu: Int): Int {
        val conn = connection(connectionId)
        return conn.requestMtu(preferredMtu.coerceIn(23, SigilGatt.MAX_MTU))
    }

    override fun write(connectionId: Long, value: ByteArray) {
        val conn = connection(connectionId)
        try {
            conn.session.write(value, WRITE_TIMEOUT_MS)
        } catch (f: LinkFailure) {
            throw f.toBleException()
        }
    }

    override fun disconnect(connectionId: Long) {
        val conn = connections.remove(connectionId) ?: return
        conn.close()
    }

    /** Stops the GATT thread; call when the app no longer needs Bluetooth. */
    fun shutdown() {
        connections.values.forEach { it.close() }
        connections.clear()
        thread.quitSafely()
    }

    private fun connection(id: Long): Connection =
        connections[id]?.takeIf { it.session.isOpen } ?: throw BleException.Disconnected()

    private fun enabledAdapter(): BluetoothAdapter {
        val a = adapter ?: throw BleException.Unavailable("this device has no Bluetooth")
        if (!a.isEnabled) throw BleException.Unavailable("Bluetooth is off")
        return a
    }

    private fun requirePermissions(scan: Boolean) {
        val needed = BlePermissions.required(Build.VERSION.SDK_INT, scan)
        val missing = needed.filter { context.checkSelfPermission(it) != PackageManager.PERMISSION_GRANTED }
        if (missing.isNotEmpty()) throw BleException.Unavailable("permission not granted: ${missing.joinToString()}")
    }

    /** One `BluetoothGatt` and its session. */
    private inner class Connection(val id: Long, val device: BluetoothDevice, val events: LinkEvents) {
        @Volatile private var gatt: BluetoothGatt? = null
        @Volatile private var writeChar: BluetoothGattCharacteristic? = null
        private var step: ConnectStep = ConnectStep.Connecting
        private val connected = CompletableFuture<Unit>()
        @Volatile private var mtuFuture: CompletableFuture<Int>? = null

        val session = GattSession(GattWritePort { submit(it) }, events, scheduler)

        fun open(timeoutMs: Long) {
            handler.post {
                gatt = device.connectGatt(context, false, callback, BluetoothDevice.TRANSPORT_LE, BluetoothDevice.PHY_LE_1M_MASK, handler)
            }
            handler.postDelayed({ feed(GattEvent.TimedOut) }, timeoutMs)
            try {
                connected.get(timeoutMs + 1_000, TimeUnit.MILLISECONDS)
            } catch (e: ExecutionException) {
                throw (e.cause as? LinkFailure)?.toBleException() ?: BleException.Failed(e.cause.toString())
            } catch (e: TimeoutException) {
                handler.post { feed(GattEvent.TimedOut) }
                throw BleException.Timeout()
            }
        }

        fun requestMtu(preferred: Int): Int {
            val f = CompletableFuture<Int>()
            mtuFuture = f
            handler.post {
                if (gatt?.requestMtu(preferred) != true) f.completeExceptionally(LinkFailure.Failed("requestMtu refused"))
            }
            return try {
                f.get(MTU_TIMEOUT_MS, TimeUnit.MILLISECONDS)
            } catch (e: ExecutionException) {
                throw (e.cause as? LinkFailure)?.toBleException() ?: BleException.Failed(e.cause.toString())
            } catch (e: TimeoutException) {
                throw BleException.Timeout()
            } finally {
                handler.post { session.onGattIdle() }
            }
        }

        fun close() {
            session.close()
            handler.post {
                gatt?.disconnect()
                gatt?.close()
                gatt = null
            }
        }

        /** Runs on the GATT thread. */
        private fun submit(value: ByteArray): SubmitResult {
            val g = gatt ?: return SubmitResult.FAILED
            val c = writeChar ?: return SubmitResult.FAILED
            return if (Build.VERSION.SDK_INT >= Build.VERSION_CODES.TIRAMISU) {
                when (g.writeCharacteristic(c, value, BluetoothGattCharacteristic.WRITE_TYPE_NO_RESPONSE)) {
                    BluetoothStatusCodes.SUCCESS -> SubmitResult.ACCEPTED
                    BluetoothStatusCodes.ERROR_GATT_WRITE_REQUEST_BUSY -> SubmitResult.BUSY
                    else -> SubmitResult.FAILED
                }
            } else {
                @Suppress("DEPRECATION")
                c.writeType = BluetoothGattCharacteristic.WRITE_TYPE_NO_RESPONSE
                @Suppress("DEPRECATION")
                c.value = value
                // Before API 33 a false return means "busy" (an operation is outstanding).
                @Suppress("DEPRECATION")
                if (g.writeCharacteristic(c)) SubmitResult.ACCEPTED else SubmitResult.BUSY
            }
        }

        /** Feeds one event to the connect machine and runs its commands (GATT thread). */
        private fun feed(event: GattEvent) {
            val (nextStep, commands) = ConnectMachine.next(step, event)
            step = nextStep
            for (command in commands) {
                when (command) {
                    GattCommand.DiscoverServices -> if (gatt?.discoverServices() != true) feed(GattEvent.ServicesDiscovered(false, false, false))
                    GattCommand.EnableNotifications -> enableNotifications()
                    GattCommand.CompleteConnect -> connected.complete(Unit)
                    is GattCommand.FailConnect -> connected.completeExceptionally(command.failure)
                    GattCommand.ReportDisconnected -> {
                        session.onDisconnected()
                        mtuFuture?.completeExceptionally(LinkFailure.Disconnected())
                    }
                    GattCommand.CloseGatt -> {
                        session.close()
                        gatt?.close()
                        gatt = null
                        connections.remove(id)
                    }
                }
            }
        }

        private fun enableNotifications() {
            val g = gatt ?: return feed(GattEvent.NotificationsEnabled(false))
            val notify = g.getService(SigilGatt.SERVICE)?.getCharacteristic(SigilGatt.NOTIFY)
            val ccc = notify?.getDescriptor(SigilGatt.CCC)
            if (notify == null || ccc == null || !g.setCharacteristicNotification(notify, true)) {
                return feed(GattEvent.NotificationsEnabled(false))
            }
            val started = if (Build.VERSION.SDK_INT >= Build.VERSION_CODES.TIRAMISU) {
                g.writeDescriptor(ccc, BluetoothGattDescriptor.ENABLE_NOTIFICATION_VALUE) == BluetoothStatusCodes.SUCCESS
            } else {
                @Suppress("DEPRECATION")
                ccc.value = BluetoothGattDescriptor.ENABLE_NOTIFICATION_VALUE
                @Suppress("DEPRECATION")
                g.writeDescriptor(ccc)
            }
            if (!started) feed(GattEvent.NotificationsEnabled(false))
        }

        private val callback = object : BluetoothGattCallback() {
            override fun onConnectionStateChange(g: BluetoothGatt, status: Int, newState: Int) {
                if (status == BluetoothGatt.GATT_SUCCESS && newState == BluetoothProfile.STATE_CONNECTED) {
                    feed(GattEvent.Connected)
                } else if (newState == BluetoothProfile.STATE_DISCONNECTED || status != BluetoothGatt.GATT_SUCCESS) {
                    feed(GattEvent.Disconnected(status))
                }
            }

            override fun onServicesDiscovered(g: BluetoothGatt, status: Int) {
                val service = g.getService(SigilGatt.SERVICE)
                writeChar = service?.getCharacteristic(SigilGatt.WRITE)
                val notify = service?.getCharacteristic(SigilGatt.NOTIFY)
                feed(GattEvent.ServicesDiscovered(status == BluetoothGatt.GATT_SUCCESS, writeChar != null, notify != null))
            }

            override fun onDescriptorWrite(g: BluetoothGatt, d: BluetoothGattDescriptor, status: Int) {
                if (d.uuid == SigilGatt.CCC && d.characteristic.uuid == SigilGatt.NOTIFY) {
                    feed(GattEvent.NotificationsEnabled(status == BluetoothGatt.GATT_SUCCESS))
                }
                session.onGattIdle()
            }

            override fun onMtuChanged(g: BluetoothGatt, mtu: Int, status: Int) {
                val f = mtuFuture ?: return
                if (status == BluetoothGatt.GATT_SUCCESS) f.complete(mtu) else f.complete(23)
            }

            override fun onCharacteristicWrite(g: BluetoothGatt, c: BluetoothGattCharacteristic, status: Int) {
                if (c.uuid == SigilGatt.WRITE) {
                    session.onWriteComplete(status == BluetoothGatt.GATT_SUCCESS, status)
                } else {
                    session.onGattIdle()
                }
            }

            // API 33+: the value comes as an argument.
            override fun onCharacteristicChanged(g: BluetoothGatt, c: BluetoothGattCharacteristic, value: ByteArray) {
                if (c.uuid == SigilGatt.NOTIFY) session.onNotification(value)
            }

            // API 32 and lower.
            @Deprecated("Deprecated in API 33")
            override fun onCharacteristicChanged(g: BluetoothGatt, c: BluetoothGattCharacteristic) {
                if (Build.VERSION.SDK_INT < Build.VERSION_CODES.TIRAMISU && c.uuid == SigilGatt.NOTIFY) {
                    @Suppress("DEPRECATION")
                    session.onNotification(c.value ?: ByteArray(0))
                }
            }
        }
    }

    private companion object {
        const val WRITE_TIMEOUT_MS = 5_000L
        const val MTU_TIMEOUT_MS = 5_000L
    }
}

/** The core's [BleEvents] as a session's [LinkEvents]. */
private class CoreEvents(private val events: BleEvents) : LinkEvents {
    override fun notification(value: ByteArray): Boolean = try {
        events.onNotification(value)
        true
    } catch (_: BleException.Disconnected) {
        false // the core closed this connection
    } catch (_: BleException) {
        true // queue overflow: the core fails and retries that message itself
    }

    override fun disconnected() {
        runCatching { events.onDisconnected() }
    }
}

/** Maps a session failure to the error the core's `BleCentral` contract declares. */
fun LinkFailure.toBleException(): BleException = when (this) {
    is LinkFailure.Disconnected -> BleException.Disconnected()
    is LinkFailure.Timeout -> BleException.Timeout()
    is LinkFailure.Failed -> BleException.Failed(message ?: "Bluetooth failure")
}

/** The runtime permissions the BLE central needs, per Android version. */
object BlePermissions {
    /** Permissions to request before scanning ([scan]) or connecting, on API level [sdk]. */
    fun required(sdk: Int, scan: Boolean): List<String> = if (sdk >= 31) {
        if (scan) listOf(Manifest.permission.BLUETOOTH_SCAN, Manifest.permission.BLUETOOTH_CONNECT) else listOf(Manifest.permission.BLUETOOTH_CONNECT)
    } else {
        listOf(Manifest.permission.ACCESS_FINE_LOCATION)
    }
}
