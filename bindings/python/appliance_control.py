"""A client of the appliance simulator's control API, standard library only.

Start the simulator with ``sunstorm sim appliance --socket S --control 127.0.0.1:0 --user
api``; it prints ``control API: http://127.0.0.1:PORT``. Reference:
docs/openapi/appliance-control.yaml; guide: docs/ble-testing.md, "The control API".

    appliance = ApplianceControl("http://127.0.0.1:PORT")
    screen = appliance.wait_for_screen(lambda s: s["kind"] == "sign")
    assert screen["amounts"] == ["0.05 ETH"]
    appliance.approve(screen_id=screen["id"])

Answers are the API's JSON documents as dicts (a screen: ``id``, ``kind``,
``request_id``, ``sp_name``, ``action``, ``chain``, ``accounts``, ``amounts``,
``recipients``, ``fields``, ``warnings``, ``blind``, ``payload_hash``, ``text``, …).
Every call has a timeout; a refusal raises :class:`ControlError` with the server's code.
"""

import http.client
import json
import time
import urllib.parse


class ControlError(Exception):
    """The control API refused a call (``status`` 0: no answer), with its stable ``code``."""

    def __init__(self, status, code, message):
        super().__init__(f"appliance control: {code} ({status}): {message}")
        self.status = status
        self.code = code
        self.message = message


class ApplianceControl:
    """One simulator's control API at ``base_url`` (``http://127.0.0.1:PORT``)."""

    def __init__(self, base_url, timeout=20.0):
        url = urllib.parse.urlsplit(base_url)
        if url.scheme != "http" or not url.hostname or not url.port:
            raise ValueError(f"the control API speaks plain http on a loopback port: {base_url}")
        self.host, self.port, self.timeout = url.hostname, url.port, timeout

    def _send(self, method, path, body=None):
        conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        try:
            data = None if body is None else json.dumps(body).encode()
            headers = {"accept": "application/json"}
            if data is not None:
                headers["content-type"] = "application/json"
            conn.request(method, path, body=data, headers=headers)
            resp = conn.getresponse()
            raw = resp.read()
        except OSError as e:
            raise ControlError(0, "unreachable", f"control API at {self.host}:{self.port}: {e}") from e
        finally:
            conn.close()
        try:
            doc = json.loads(raw)
        except ValueError:
            raise ControlError(resp.status, "unexpected", f"not JSON: {raw[:200]!r}") from None
        if not 200 <= resp.status < 300:
            err = doc.get("error", {}) if isinstance(doc, dict) else {}
            raise ControlError(resp.status, err.get("code", "unexpected"), err.get("message", ""))
        return doc

    # ---- the screen and its buttons ------------------------------------------------------

    def screen(self):
        """The screen shown now (a dict), or None when the appliance shows nothing."""
        return self._send("GET", "/screen")["screen"]

    def waiting(self):
        """Every screen waiting for an answer, the one shown first."""
        return self._send("GET", "/screen")["waiting"]

    def events(self, after=0, wait_ms=0, limit=100):
        """Log events after ``after`` (waiting up to ``wait_ms`` ≤ 10000 for one): a dict
        with ``events``, ``next`` (the following call's ``after``) and ``truncated``."""
        wait_ms = max(0, min(int(wait_ms), 10_000))
        return self._send("GET", f"/screen/events?after={int(after)}&wait_ms={wait_ms}&limit={int(limit)}")

    def wait_for_screen(self, predicate=lambda s: True, timeout=30.0):
        """Waits until a screen for which ``predicate`` holds is waiting; returns it."""
        deadline = time.monotonic() + timeout
        after = 0
        while True:
            for s in self.waiting():
                if predicate(s):
                    return s
            left = deadline - time.monotonic()
            if left <= 0:
                raise ControlError(0, "no_matching_screen", f"no matching screen within {timeout} s")
            after = self.events(after, wait_ms=min(left, 1.0) * 1000)["next"]

    @staticmethod
    def _which(screen_id, request_id):
        body = {}
        if screen_id is not None:
            body["screen_id"] = screen_id
        if request_id is not None:
            body["request_id"] = request_id
        return body

    def approve(self, screen_id=None, request_id=None):
        """Presses approve on that screen (the current one by default); returns the screen."""
        return self._send("POST", "/screen/approve", self._which(screen_id, request_id))["screen"]

    def reject(self, screen_id=None, request_id=None):
        """Presses reject, like :meth:`approve`."""
        return self._send("POST", "/screen/reject", self._which(screen_id, request_id))["screen"]

    # ---- automation ----------------------------------------------------------------------

    def add_rule(self, action, after_ms=0, times=None, **match):
        """Adds a rule: ``action`` (``approve``, ``reject``, ``ignore``) after ``after_ms``
        for screens matching every condition in ``match`` (``kind``, ``text_contains``,
        ``sp_name``, ``chain``, ``account``), for ``times`` screens. Returns the rule."""
        body = {"action": action, "after_ms": after_ms, "match": match}
        if times is not None:
            body["times"] = times
        return self._send("POST", "/rules", body)

    def rules(self):
        """The rules in force, in the order they are tried."""
        return self._send("GET", "/rules")["rules"]

    def remove_rule(self, rule_id):
        """Removes one rule."""
        self._send("DELETE", f"/rules/{int(rule_id)}")

    def clear_rules(self):
        """Removes every rule; returns how many there were."""
        return self._send("DELETE", "/rules")["removed"]

    def set_user(self, mode, delay_ms=None):
        """What the appliance's user does when no rule matches: ``api``, ``approve``,
        ``reject``, or ``delay`` with ``delay_ms``."""
        body = {"mode": mode}
        if delay_ms is not None:
            body["delay_ms"] = delay_ms
        return self._send("PUT", "/user", body)

    # ---- faults, bonding, state ----------------------------------------------------------

    def faults(self):
        """The link faults now (``effective``, ``configured``), ``refuse_connections`` and
        ``open_connections``."""
        return self._send("GET", "/faults")

    def set_faults(self, **faults):
        """Replaces the run-time faults: ``drop``, ``duplicate``, ``reorder`` (0..1),
        ``latency_ms``, ``refuse_connections``; absent ones go back to the start values."""
        return self._send("PUT", "/faults", faults)

    def disconnect(self):
        """Drops every open connection now; returns how many."""
        return self._send("POST", "/faults/disconnect", {})["disconnected"]

    def bonding(self):
        """Bonding mode: ``open``, ``remaining_secs``, ``pin``, ``pin_failures``, …"""
        return self._send("GET", "/bonding")

    def open_bonding(self, secs=None):
        """Presses the bonding button (for ``secs``, or the simulator's window)."""
        return self._send("POST", "/bonding/open", {} if secs is None else {"secs": secs})

    def close_bonding(self):
        """Closes bonding mode."""
        return self._send("POST", "/bonding/close", {})

    def phones(self):
        """``phones`` bonded (bonding order) and ``forgotten`` phones (oldest first)."""
        return self._send("GET", "/phones")

    def forget_phone(self, app_key):
        """Forgets the phone with this app key (hex) on the appliance; returns
        ``app_key``, ``forgotten_at`` and the signed ``statement``."""
        return self._send("POST", "/phones/%s/forget" % app_key, {})

    def state(self):
        """Bonded phones, pairs, revocations, ``signatures`` per request id."""
        return self._send("GET", "/state")

    def signatures(self):
        """``{request_id: count}`` of the signatures made."""
        return {s["request_id"]: s["count"] for s in self.state()["signatures"]}

    def reset(self):
        """Back to a fresh appliance with the same keys."""
        return self._send("POST", "/reset", {})
