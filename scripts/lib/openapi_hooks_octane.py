"""schemathesis hooks for octane's OpenAPI run (loaded by scripts/test-openapi.sh).

Without them every app-API request would stop at 401, and every id would be unknown (404),
so the request bodies and the success answers of those operations would go untested. With
them:

1. App authentication. The app API's requests are signed as `docs/octane-api.md` ("App
   API / Authentication") and `docs/openapi/octane.yaml` describe: a test appliance
   endorses a test app key (a CBOR `SignedEnvelope` of an `AppEndorsement`), and every
   request gets a fresh timestamp, nonce and the app key's Ed25519 signature over the
   canonical string, computed on the exact bytes sent (a `requests` auth hook, which runs
   after the body is serialized). It is registered as schemathesis' custom auth, so the
   `ignored_auth` check still probes each operation with the credentials removed or
   replaced (those probes are left unsigned and must get 401).
2. Known ids. Before the run, objects in each state are made through the API itself:
   sessions open, claimed (code verified), rejected, locked and paired; a pair with a
   rejected and a pending sign request, and a pair the SP revoked (the attestations and sign
   requests are canonical CBOR statements signed with the test appliance's key and the demo
   SP's key seed octane printed). Half of the generated `session_id`s, `pair_id`s and
   `request_id`s are swapped for one of them. The SP's long-polls only get decided objects,
   and every long-poll gets `timeout_secs=0`, so nothing waits.

This is a second, independent implementation of the documented authentication, in test
tooling only: if the docs and octane disagree, every signed request fails and so does the
run.

Environment (set by the runner): SUNSTORM_OPENAPI_URL (base URL), SUNSTORM_OPENAPI_STARTUP
(the server's stdout: `sunstorm sim octane --json`), SUNSTORM_OPENAPI_SEED.
"""

import base64
import hashlib
import json
import os
import random
import threading
import time
import uuid

import cbor2
import requests
import schemathesis
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

URL = os.environ["SUNSTORM_OPENAPI_URL"]
RNG = random.Random(int(os.environ.get("SUNSTORM_OPENAPI_SEED", "0")))
APP_HEADERS = ("x-sigil-endorsement", "x-sigil-timestamp", "x-sigil-nonce", "x-sigil-signature")
# What the custom auth puts in the four headers; replaced by real values when still intact.
PLACEHOLDER = "signed-at-send"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def startup():
    with open(os.environ["SUNSTORM_OPENAPI_STARTUP"], encoding="utf-8") as f:
        for line in f:
            if line.strip().startswith("{"):
                return json.loads(line)["ok"]
    raise RuntimeError("octane printed no startup JSON")


def seal(domain: bytes, key: Ed25519PrivateKey, body: bytes) -> bytes:
    """Ed25519 over `domain tag || 0x00 || body` (core/src/envelope.rs)."""
    return key.sign(domain + b"\x00" + body)


class App:
    """A phone app whose key a (test) appliance endorsed."""

    def __init__(self):
        self.appliance = Ed25519PrivateKey.generate()
        self.key = Ed25519PrivateKey.generate()
        endorsement = cbor2.dumps(
            {
                "v": 1,
                "app_key": self.key.public_key().public_bytes_raw(),
                "appliance_identity": self.appliance.public_key().public_bytes_raw(),
                "issued_at": int(time.time()),
            },
            canonical=True,
        )
        envelope = {"body": endorsement, "sig": seal(b"sigil/v1/app-endorsement", self.appliance, endorsement)}
        self.endorsement = b64(cbor2.dumps(envelope, canonical=True))

    def headers(self, method: str, target: str, body: bytes) -> dict:
        timestamp = str(int(time.time()))
        nonce = b64(os.urandom(16))
        canonical = "\n".join(
            ["sigil-app-request/v1", method.upper(), target, timestamp, nonce, hashlib.sha256(body).hexdigest()]
        ).encode()
        return {
            "x-sigil-endorsement": self.endorsement,
            "x-sigil-timestamp": timestamp,
            "x-sigil-nonce": nonce,
            "x-sigil-signature": b64(seal(b"sigil/v1/app-request", self.key, canonical)),
        }

    def sign(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        """`requests` auth hook: signs the request exactly as it will be sent."""
        body = r.body or b""
        if isinstance(body, str):
            body = body.encode()
        r.headers.update(self.headers(r.method, r.path_url, body))
        return r

    def call(self, method: str, path: str, body=None) -> requests.Response:
        data = b"" if body is None else json.dumps(body).encode()
        headers = {"content-type": "application/json"} if data else {}
        return requests.request(method, URL + path, data=data, headers=headers, auth=self.sign, timeout=10)


APP = App()


# The one account the test pairs bind (all digits: its EIP-55 form is itself).
ACCOUNT = "eip155:1:0x" + "11" * 20


class World:
    """Objects in each state, made once through the API itself (see the module doc)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._ids = None

    def ids(self) -> dict:
        with self._lock:
            if self._ids is None:
                self._ids = self._make()
            return self._ids

    @staticmethod
    def _make() -> dict:
        sp = startup()["demo_sp"]
        bearer = {"Authorization": f"Bearer {sp['api_key']}"}
        sp_key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(sp["sp_key_seed"]))

        def expect(r: requests.Response, status: int, what: str):
            if r.status_code != status:
                raise RuntimeError(f"{what}: expected {status}, got {r.status_code} {r.text}")
            return r.json()

        def create():
            body = {"sp_user_ref": "schemathesis", "chains": ["eip155:1"]}
            r = requests.post(URL + "/sp/pair/sessions", json=body, headers=bearer, timeout=10)
            s = expect(r, 201, "create a session")
            return s["session_id"], s["validation_code"]

        def pair():
            """A session approved by the test appliance: the pair id."""
            sid, code = create()
            expect(APP.call("POST", f"/app/pair/sessions/{sid}/code", {"code": code}), 200, "verify the code")
            pair_id = uuid.uuid4()
            attestation = cbor2.dumps(
                {
                    "v": 1,
                    "pair_id": pair_id.bytes,
                    "session_id": sid,
                    "validation_code": code,
                    "sp_id": sp["sp_id"],
                    "sp_public_key": bytes.fromhex(sp["sp_public_key"]),
                    "bindings": [ACCOUNT],
                    "appliance_identity": APP.appliance.public_key().public_bytes_raw(),
                    "approved_at": int(time.time()),
                },
                canonical=True,
            )
            envelope = {"body": b64(attestation), "sig": b64(seal(b"sigil/v1/pair-attestation", APP.appliance, attestation))}
            expect(APP.call("POST", f"/app/pair/sessions/{sid}/approve", {"attestation": envelope}), 200, "approve")
            return sid, str(pair_id)

        def sign_request(pair_id: str):
            """An EIP-191 sign request from the SP: its id."""
            request_id = uuid.uuid4()
            now = int(time.time())
            body = cbor2.dumps(
                {
                    "v": 1,
                    "request_id": request_id.bytes,
                    "pair_id": uuid.UUID(pair_id).bytes,
                    "chain": "eip155:1",
                    "account": ACCOUNT,
                    "kind": "eip191_message",
                    "payload": b"schemathesis",
                    "created_at": now,
                    "expires_at": now + 300,
                },
                canonical=True,
            )
            submit = {"pair_id": pair_id, "request": {"body": b64(body), "sig": b64(seal(b"sigil/v1/sp-sign-request", sp_key, body))}}
            expect(requests.post(URL + "/sp/sign", json=submit, headers=bearer, timeout=10), 202, "submit a sign request")
            return str(request_id)

        open_id, _ = create()
        claimed, code = create()
        expect(APP.call("POST", f"/app/pair/sessions/{claimed}/code", {"code": code}), 200, "verify the code")
        rejected, code = create()
        expect(APP.call("POST", f"/app/pair/sessions/{rejected}/code", {"code": code}), 200, "verify the code")
        expect(APP.call("POST", f"/app/pair/sessions/{rejected}/reject", {"reason": "openapi run"}), 200, "reject")
        locked, code = create()
        wrong = f"{(int(code) + 1) % 1_000_000:06}"
        for _ in range(5):
            APP.call("POST", f"/app/pair/sessions/{locked}/code", {"code": wrong})
        expect(APP.call("POST", f"/app/pair/sessions/{locked}/code", {"code": code}), 423, "lock the session")
        paired, active = pair()
        answered = sign_request(active)
        reject = {"reason_code": "user_rejected", "message": "openapi run"}
        expect(APP.call("POST", f"/app/sign/{answered}/reject", reject), 200, "reject a sign request")
        pending = sign_request(active)
        _, revoked = pair()
        expect(requests.post(URL + f"/sp/pairs/{revoked}/revoke", headers=bearer, timeout=10), 200, "revoke")
        # The SP's long-polls answer decided objects at once; pending ones would hold them.
        return {
            ("sp", "session_id"): [rejected, locked, paired],
            ("app", "session_id"): [open_id, claimed, rejected, locked, paired],
            ("sp", "pair_id"): [active, revoked],
            ("app", "pair_id"): [active, revoked],
            ("sp", "request_id"): [answered],
            ("app", "request_id"): [answered, pending],
        }


WORLD = World()


@schemathesis.auth(refresh_interval=None, retry_on=[]).apply_to(path_regex=r"^/app/")
class SigilAppAuth:
    """Marks app-API cases as authenticated; `before_call` signs them at send time."""

    def get(self, case, ctx):
        return PLACEHOLDER

    def set(self, case, data, ctx):
        case.headers = dict(case.headers or {})
        for name in APP_HEADERS:
            case.headers[name] = data


@schemathesis.hook
def before_call(context, case, kwargs):
    op = case.operation
    api = "sp" if op.path.startswith("/sp/") else "app"
    for name in list(case.path_parameters or {}):
        known = WORLD.ids().get((api, name))
        if known and RNG.random() < 0.5:
            case.path_parameters[name] = RNG.choice(known)
    # A long-poll on something pending (e.g. a session schemathesis created itself and reused)
    # would hold the request for up to 30 s: waiting is left to the Rust tests. Values too
    # large for a u64 stay, since octane must refuse them.
    wait = (case.query or {}).get("timeout_secs")
    if isinstance(wait, (int, str)) and str(wait).isdigit() and 0 < int(wait) < 2**64:
        case.query["timeout_secs"] = 0
    headers = {k.lower(): v for k, v in (case.headers or {}).items()}
    if all(headers.get(name) == PLACEHOLDER for name in APP_HEADERS):
        kwargs["auth"] = APP.sign
