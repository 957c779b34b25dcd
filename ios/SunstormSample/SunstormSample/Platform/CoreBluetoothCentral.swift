import CoreBluetooth
import Foundation
import Sunstorm

/// The core's `BleCentral` on CoreBluetooth.
///
/// The core calls every method on its own worker threads (never the main thread) and each
/// blocks until done or until its timeout; CoreBluetooth's delegate callbacks arrive on
/// `queue`, a private serial queue that also owns all mutable state — hence
/// `@unchecked Sendable`. Writes are "without response" with back-pressure: when
/// `canSendWriteWithoutResponse` is false the writer waits for
/// `peripheralIsReady(toSendWriteWithoutResponse:)`. The manager is created with a state
/// restoration identifier so iOS can relaunch the app for an appliance in the background.
final class CoreBluetoothCentral: NSObject, BleCentral, @unchecked Sendable {
    static let service = CBUUID(string: "5A3C0001-7E1F-4B8E-9C2D-51A7E5000001")
    static let writeCharacteristic = CBUUID(string: "5A3C0002-7E1F-4B8E-9C2D-51A7E5000001")
    static let notifyCharacteristic = CBUUID(string: "5A3C0003-7E1F-4B8E-9C2D-51A7E5000001")
    static let restoreIdentifier = "xyz.sigilvault.sunstorm.central"

    /// One live connection; touched only on `queue` except for the semaphores.
    private final class Connection {
        let id: Int64
        let peripheral: CBPeripheral
        let events: BleEvents
        var writeChar: CBCharacteristic?
        var notifyChar: CBCharacteristic?
        var connectResult: Result<Void, BleError>?
        let connected = DispatchSemaphore(value: 0)
        let writable = DispatchSemaphore(value: 0)
        let writeLock = NSLock()
        var open = true
        var receiverGone = false

        init(id: Int64, peripheral: CBPeripheral, events: BleEvents) {
            self.id = id
            self.peripheral = peripheral
            self.events = events
        }

        func finishConnect(_ result: Result<Void, BleError>) {
            guard connectResult == nil else { return }
            connectResult = result
            connected.signal()
        }
    }

    private let queue = DispatchQueue(label: "xyz.sigilvault.sunstorm.ble")
    private var manager: CBCentralManager!
    private var poweredOn = DispatchSemaphore(value: 0)
    private var seen: [UUID: BlePeripheral] = [:]
    private var known: [UUID: CBPeripheral] = [:]
    private var connections: [Int64: Connection] = [:]
    private var nextId: Int64 = 1
    private static let writeTimeout: DispatchTimeInterval = .seconds(5)

    override init() {
        super.init()
        manager = CBCentralManager(
            delegate: self, queue: queue,
            options: [CBCentralManagerOptionRestoreIdentifierKey: Self.restoreIdentifier,
                      CBCentralManagerOptionShowPowerAlertKey: true])
    }

    // MARK: BleCentral

    func scan(serviceUuid: String, timeoutMs: Int32) throws -> [BlePeripheral] {
        try waitPoweredOn(timeoutMs: timeoutMs)
        queue.sync {
            seen.removeAll()
            manager.scanForPeripherals(withServices: [CBUUID(string: serviceUuid)],
                                       options: [CBCentralManagerScanOptionAllowDuplicatesKey: false])
        }
        Thread.sleep(forTimeInterval: Double(timeoutMs) / 1000)
        return queue.sync {
            manager.stopScan()
            return Array(seen.values)
        }
    }

    func connect(peripheralId: String, events: BleEvents, timeoutMs: Int32) throws -> Int64 {
        try waitPoweredOn(timeoutMs: timeoutMs)
        guard let uuid = UUID(uuidString: peripheralId) else { throw BleError.NotFound }
        let conn: Connection = try queue.sync {
            guard let p = known[uuid] ?? manager.retrievePeripherals(withIdentifiers: [uuid]).first else {
                throw BleError.NotFound
            }
            known[uuid] = p
            p.delegate = self
            let c = Connection(id: nextId, peripheral: p, events: events)
            nextId += 1
            connections[c.id] = c
            manager.connect(p, options: nil)
            return c
        }
        if conn.connected.wait(timeout: .now() + .milliseconds(Int(timeoutMs))) == .timedOut {
            queue.sync {
                conn.finishConnect(.failure(.Timeout))
                close(conn)
            }
            throw BleError.Timeout
        }
        let result = queue.sync { conn.connectResult }
        switch result {
        case .success?: return conn.id
        case .failure(let e)?: throw e
        case nil: throw BleError.Failed(reason: "connect ended without a result")
        }
    }

    func requestMtu(connectionId: Int64, preferredMtu: Int32) throws -> Int32 {
        try queue.sync {
            guard let c = connections[connectionId], c.open else { throw BleError.Disconnected }
            // iOS negotiates the MTU itself; report what a write without response may carry.
            let att = c.peripheral.maximumWriteValueLength(for: .withoutResponse) + 3
            return Int32(clamping: min(max(att, 23), Int(min(preferredMtu, 517))))
        }
    }

    func write(connectionId: Int64, value: Data) throws {
        guard let c = queue.sync(execute: { connections[connectionId] }) else { throw BleError.Disconnected }
        c.writeLock.lock() // one writer per connection keeps PDUs in order
        defer { c.writeLock.unlock() }
        let deadline = DispatchTime.now() + Self.writeTimeout
        while true {
            let sent: Bool = try queue.sync {
                guard c.open, let ch = c.writeChar else { throw BleError.Disconnected }
                guard c.peripheral.canSendWriteWithoutResponse else { return false }
                c.peripheral.writeValue(value, for: ch, type: .withoutResponse)
                return true
            }
            if sent { return }
            // Back-pressure: wait for peripheralIsReady(toSendWriteWithoutResponse:).
            if c.writable.wait(timeout: deadline) == .timedOut { throw BleError.Timeout }
        }
    }

    func disconnect(connectionId: Int64) throws {
        queue.sync {
            guard let c = connections[connectionId] else { return }
            c.receiverGone = true
            close(c)
        }
    }

    // MARK: helpers (on queue)

    private func waitPoweredOn(timeoutMs: Int32) throws {
        let state = queue.sync { manager.state }
        switch state {
        case .poweredOn: return
        case .unauthorized: throw BleError.Unavailable(reason: "Bluetooth permission not granted")
        case .unsupported: throw BleError.Unavailable(reason: "this device has no Bluetooth LE")
        case .poweredOff: throw BleError.Unavailable(reason: "Bluetooth is off")
        default:
            if poweredOn.wait(timeout: .now() + .milliseconds(Int(timeoutMs))) == .timedOut {
                throw BleError.Unavailable(reason: "Bluetooth is not ready")
            }
            poweredOn.signal() // keep it signalled for the next caller
        }
    }

    private func close(_ c: Connection) {
        guard c.open else { return }
        c.open = false
        connections[c.id] = nil
        if let n = c.notifyChar { c.peripheral.setNotifyValue(false, for: n) }
        manager.cancelPeripheralConnection(c.peripheral)
        c.writable.signal()
    }

    private func connection(for p: CBPeripheral) -> Connection? {
        connections.values.first { $0.peripheral.identifier == p.identifier && $0.open }
    }

    private func fail(_ p: CBPeripheral, _ error: BleError) {
        guard let c = connection(for: p) else { return }
        c.finishConnect(.failure(error))
        close(c)
    }
}

extension CoreBluetoothCentral: CBCentralManagerDelegate {
    func centralManagerDidUpdateState(_ central: CBCentralManager) {
        if central.state == .poweredOn { poweredOn.signal() }
        if central.state == .poweredOff || central.state == .unauthorized {
            for c in connections.values { dropped(c) }
        }
    }

    func centralManager(_ central: CBCentralManager, willRestoreState dict: [String: Any]) {
        // Relaunched by iOS: remember the peripherals so the core can reconnect by id. The
        // core's connection ids did not survive, so nothing is resumed silently.
        for p in dict[CBCentralManagerRestoredStatePeripheralsKey] as? [CBPeripheral] ?? [] {
            known[p.identifier] = p
            p.delegate = self
        }
    }

    func centralManager(_ central: CBCentralManager, didDiscover peripheral: CBPeripheral,
                        advertisementData: [String: Any], rssi RSSI: NSNumber) {
        known[peripheral.identifier] = peripheral
        let name = advertisementData[CBAdvertisementDataLocalNameKey] as? String ?? peripheral.name
        seen[peripheral.identifier] = BlePeripheral(
            id: peripheral.identifier.uuidString, name: name, rssi: Int32(clamping: RSSI.intValue))
    }

    func centralManager(_ central: CBCentralManager, didConnect peripheral: CBPeripheral) {
        peripheral.discoverServices([Self.service])
    }

    func centralManager(_ central: CBCentralManager, didFailToConnect peripheral: CBPeripheral, error: Error?) {
        fail(peripheral, .Failed(reason: error?.localizedDescription ?? "connection failed"))
    }

    func centralManager(_ central: CBCentralManager, didDisconnectPeripheral peripheral: CBPeripheral, error: Error?) {
        guard let c = connection(for: peripheral) else { return }
        dropped(c)
    }

    private func dropped(_ c: Connection) {
        c.finishConnect(.failure(.Disconnected))
        let tell = !c.receiverGone
        close(c)
        if tell { try? c.events.onDisconnected() }
    }
}

extension CoreBluetoothCentral: CBPeripheralDelegate {
    func peripheral(_ peripheral: CBPeripheral, didDiscoverServices error: Error?) {
        guard error == nil, let s = peripheral.services?.first(where: { $0.uuid == Self.service }) else {
            return fail(peripheral, .Failed(reason: "the peripheral does not offer the Sigil service"))
        }
        peripheral.discoverCharacteristics([Self.writeCharacteristic, Self.notifyCharacteristic], for: s)
    }

    func peripheral(_ peripheral: CBPeripheral, didDiscoverCharacteristicsFor service: CBService, error: Error?) {
        guard let c = connection(for: peripheral) else { return }
        c.writeChar = service.characteristics?.first { $0.uuid == Self.writeCharacteristic }
        c.notifyChar = service.characteristics?.first { $0.uuid == Self.notifyCharacteristic }
        guard error == nil, c.writeChar != nil, let n = c.notifyChar else {
            return fail(peripheral, .Failed(reason: "the Sigil characteristics are missing"))
        }
        peripheral.setNotifyValue(true, for: n) // writes the CCC descriptor
    }

    func peripheral(_ peripheral: CBPeripheral, didUpdateNotificationStateFor characteristic: CBCharacteristic, error: Error?) {
        guard characteristic.uuid == Self.notifyCharacteristic, let c = connection(for: peripheral) else { return }
        if error == nil && characteristic.isNotifying {
            c.finishConnect(.success(()))
        } else {
            fail(peripheral, .Failed(reason: "could not enable notifications"))
        }
    }

    func peripheral(_ peripheral: CBPeripheral, didUpdateValueFor characteristic: CBCharacteristic, error: Error?) {
        guard characteristic.uuid == Self.notifyCharacteristic, error == nil,
              let c = connection(for: peripheral), !c.receiverGone, let value = characteristic.value else { return }
        do {
            try c.events.onNotification(value: value) // in arrival order: one serial queue
        } catch BleError.Disconnected {
            c.receiverGone = true // the core closed this connection
        } catch {
            // Queue overflow: the core fails and retries that message itself.
        }
    }

    func peripheralIsReady(toSendWriteWithoutResponse peripheral: CBPeripheral) {
        connection(for: peripheral)?.writable.signal()
    }
}
