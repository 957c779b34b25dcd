"""Shared fixtures for the Python smoke of the generated bindings."""

import http.client
import os
import socket
import threading
import urllib.parse

import pytest

import sunstorm_ffi as ss

TEST_OCTANE_KEY = "11" * 32


class MemorySecretStore(ss.SecretStore):
    def __init__(self):
        self._map = {}
        self._lock = threading.Lock()

    def get(self, name):
        with self._lock:
            return self._map.get(name)

    def put(self, name, value):
        with self._lock:
            self._map[name] = bytes(value)

    def delete(self, name):
        with self._lock:
            self._map.pop(name, None)


class StdlibHttpClient(ss.HttpClient):
    """The core's HTTP client in Python, over http.client (which never follows redirects):
    any status is an answer; a refused connection is Offline, a slow answer Timeout."""

    def __init__(self):
        self.seen = []
        self.offline = False

    def send(self, request):
        url = urllib.parse.urlsplit(request.url)
        method = "GET" if request.method == ss.HttpMethod.GET else "POST"
        self.seen.append(f"{method} {url.path}")
        if self.offline:
            raise ss.HttpError.Offline("The Internet connection appears to be offline.")
        timeout = request.timeout_ms / 1000
        cls = http.client.HTTPSConnection if url.scheme == "https" else http.client.HTTPConnection
        conn = cls(url.hostname, url.port, timeout=timeout)
        target = url.path + (f"?{url.query}" if url.query else "")
        try:
            body = bytes(request.body) if method == "POST" else None
            conn.request(method, target, body=body, headers={h.name: h.value for h in request.headers})
            resp = conn.getresponse()
            return ss.HttpResponse(status=resp.status, body=resp.read())
        except (socket.timeout, TimeoutError):
            raise ss.HttpError.Timeout()
        except (ConnectionRefusedError, socket.gaierror) as e:
            raise ss.HttpError.Offline(str(e))
        except OSError as e:
            raise ss.HttpError.Failed(str(e))
        finally:
            conn.close()


class ScriptedPresence(ss.UserPresence):
    def __init__(self, answer=True):
        self.answer = answer
        self.reasons = []

    def verify(self, reason):
        self.reasons.append(reason)
        return self.answer


class CollectingLogSink(ss.LogSink):
    def __init__(self):
        self.records = []

    def log(self, record):
        self.records.append(record)


class CollectingListener(ss.FlowListener):
    def __init__(self):
        self.events = []
        self.states = []

    def on_progress(self, progress):
        self.events.append(progress)

    def on_pair_state(self, state):
        self.states.append(state)


LOGS = CollectingLogSink()
ss.set_log_sink(LOGS, ss.LogLevel.DEBUG)


def make_config(tmp_path, octane_url="http://127.0.0.1:9", key=TEST_OCTANE_KEY):
    return ss.CoreConfig(
        octane_url=octane_url,
        octane_public_key_hex=key,
        accepted_link_hosts=["sigilvault.xyz"],
        database_path=str(tmp_path / "sunstorm.db"),
        phone_name="Python test phone",
    )


@pytest.fixture
def logs():
    return LOGS


@pytest.fixture
def sunstorm_bin():
    path = os.environ.get("SUNSTORM_BIN")
    assert path and os.path.exists(path), "SUNSTORM_BIN must point at the built `sunstorm` CLI"
    return path
