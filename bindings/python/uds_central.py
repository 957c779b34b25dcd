"""A `BleCentral` in Python over the appliance simulator's Unix-socket protocol.

Contract A: records are ``type: u8 | len: u16 BE | payload``; 0x01 MTU_REQUEST,
0x02 MTU_RESPONSE, 0x03 WRITE, 0x04 NOTIFY, 0x05 DISCONNECT. Each peripheral id maps to a
socket path; a reader thread per connection pushes notifications into the core's
``BleEvents`` like a platform's "characteristic changed" callback.
"""

import itertools
import os
import socket
import struct
import threading

import sunstorm_ffi as ss

MTU_REQUEST, MTU_RESPONSE, WRITE, NOTIFY, DISCONNECT = 1, 2, 3, 4, 5


def _read_exact(sock, n):
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return bytes(buf)


def _read_record(sock):
    head = _read_exact(sock, 3)
    if head is None:
        return None
    kind, length = head[0], struct.unpack(">H", head[1:3])[0]
    payload = _read_exact(sock, length)
    if payload is None:
        return None
    return kind, payload


def _record(kind, payload):
    return bytes([kind]) + struct.pack(">H", len(payload)) + payload


class _Conn:
    def __init__(self, sock, mtu, events):
        self.sock = sock
        self.mtu = mtu
        self.events = events
        self.lock = threading.Lock()
        self.open = True


class UdsBleCentral(ss.BleCentral):
    """Peripheral id -> socket path."""

    def __init__(self, peripherals, phone_mtu=517):
        self.peripherals = dict(peripherals)
        self.phone_mtu = phone_mtu
        self._ids = itertools.count(1)
        self._conns = {}
        self._lock = threading.Lock()

    def scan(self, service_uuid, timeout_ms):
        return [
            ss.BlePeripheral(id=pid, name=f"Sigil simulator {pid}", rssi=-40)
            for pid, path in self.peripherals.items()
            if os.path.exists(path)
        ]

    def connect(self, peripheral_id, events, timeout_ms):
        path = self.peripherals.get(peripheral_id)
        if path is None:
            raise ss.BleError.NotFound()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(timeout_ms / 1000)
            sock.connect(path)
            sock.sendall(_record(MTU_REQUEST, struct.pack(">H", self.phone_mtu)))
            rec = _read_record(sock)
        except socket.timeout:
            sock.close()
            raise ss.BleError.Timeout()
        except OSError:
            sock.close()
            raise ss.BleError.NotFound()
        if rec is None or rec[0] != MTU_RESPONSE or len(rec[1]) != 2:
            sock.close()
            raise ss.BleError.Failed(reason="no MTU_RESPONSE")
        sock.settimeout(None)
        conn = _Conn(sock, struct.unpack(">H", rec[1])[0], events)
        with self._lock:
            cid = next(self._ids)
            self._conns[cid] = conn
        threading.Thread(target=self._read_loop, args=(cid, conn), daemon=True).start()
        return cid

    def _read_loop(self, cid, conn):
        try:
            while conn.open:
                rec = _read_record(conn.sock)
                if rec is None:
                    break
                kind, payload = rec
                if kind == NOTIFY:
                    try:
                        conn.events.on_notification(payload)
                    except ss.BleError.Disconnected:
                        break
                    except ss.BleError:
                        pass  # queue full: the core fails that message and retries
                elif kind == DISCONNECT:
                    break
        except OSError:
            pass
        finally:
            conn.open = False
            with self._lock:
                self._conns.pop(cid, None)
            try:
                conn.sock.close()
            except OSError:
                pass
            try:
                conn.events.on_disconnected()
            except Exception:
                pass

    def _conn(self, cid):
        with self._lock:
            conn = self._conns.get(cid)
        if conn is None:
            raise ss.BleError.Disconnected()
        return conn

    def request_mtu(self, connection_id, preferred_mtu):
        return min(self._conn(connection_id).mtu, preferred_mtu)

    def write(self, connection_id, value):
        conn = self._conn(connection_id)
        if len(value) > conn.mtu - 3:
            raise ss.BleError.Failed(reason=f"PDU of {len(value)} bytes exceeds MTU {conn.mtu}")
        try:
            with conn.lock:
                conn.sock.sendall(_record(WRITE, bytes(value)))
        except OSError:
            raise ss.BleError.Disconnected()

    def disconnect(self, connection_id):
        with self._lock:
            conn = self._conns.pop(connection_id, None)
        if conn is None:
            return
        conn.open = False
        try:
            with conn.lock:
                conn.sock.sendall(_record(DISCONNECT, b""))
        except OSError:
            pass
        try:
            conn.sock.shutdown(socket.SHUT_RDWR)
            conn.sock.close()
        except OSError:
            pass
