"""Shared fixtures for the Python smoke of the generated bindings."""

import os
import threading

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
