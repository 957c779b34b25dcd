"""A UI-style test through the appliance simulator's control API (appliance_control.py):
the phone (generated Python over the core) reviews and approves, the test reads the
appliance's own screen, checks it names the same amount and recipient as the phone's
review, and presses the appliance's buttons; the service (`sunstorm sp`) gets its
signatures, or its rejection."""

import asyncio
import json
import subprocess

import pytest

import sunstorm_ffi as ss
from appliance_control import ApplianceControl, ControlError
from conftest import MemorySecretStore, ScriptedPresence, StdlibHttpClient, make_config
from sim import SimProcess
from test_flows import EIP1559_TRANSFER_HEX, EVM_CHAIN
from uds_central import UdsBleCentral


def same_as_phone(screen, review):
    """The appliance computed its screen from what it verified; it must say what the phone said."""
    rows = {f["key"]: f["value"] for f in screen["fields"]}
    phone = {f.key: f.value for f in review.fields}
    assert screen["kind"] == "sign" and screen["request_id"] == review.request_id
    assert screen["action"] == review.title
    assert rows["value"] == phone["value"] == "0.05 ETH"
    assert rows["to"] == phone["to"]
    assert screen["amounts"] == ["0.05 ETH"]
    assert screen["payload_hash"] == review.payload_hash
    assert screen["accounts"] == [review.account]
    assert "Value: 0.05 ETH" in screen["text"], screen["text"]


def test_the_appliance_answers_through_its_control_api(tmp_path, sunstorm_bin):
    with SimProcess(sunstorm_bin, ["sim", "octane", "--listen", "127.0.0.1:0", "--json"]) as octane:
        facts = json.loads(octane.await_line("{"))["ok"]
        url, octane_key = facts["url"], facts["octane_public_key"]
        api_key, sp_seed = facts["demo_sp"]["api_key"], facts["demo_sp"]["sp_key_seed"]
        conn = ["--octane", url, "--api-key", api_key, "--json"]
        sock = str(tmp_path / "appliance.sock")
        args = ["sim", "appliance", "--socket", sock, "--pin", "112233", "--octane-key", octane_key,
                "--user", "api", "--control", "127.0.0.1:0"]
        with SimProcess(sunstorm_bin, args) as sim:
            appliance = ApplianceControl(sim.await_line("control API: ").split(": ", 1)[1])
            sim.await_line("PIN:")
            assert appliance.bonding()["pin"] == "112233"
            # Pairing screens are approved by a rule; sign screens wait for the test.
            appliance.add_rule("approve", kind="pair")
            core = ss.SunstormCore(
                make_config(tmp_path, url, octane_key), UdsBleCentral({"sim-1": sock}), StdlibHttpClient(),
                MemorySecretStore(), ScriptedPresence(),
            )
            session = json.loads(subprocess.run(
                [sunstorm_bin, "sp", "create-session", "--chains", EVM_CHAIN, *conn],
                capture_output=True, text=True, timeout=60, check=True,
            ).stdout)["ok"]

            async def pair():
                await core.bond_appliance("sim-1", "112233", None, None)
                opened = await core.open_pair_link(session["link"], None, None)
                await core.submit_code(opened.flow_id, session["validation_code"], None)
                rows = await core.wallet_choices(opened.flow_id, None)
                evm = [r for r in rows if r.chain == EVM_CHAIN and r.state == ss.WalletRowState.SELECTABLE]
                await core.choose_wallets(opened.flow_id, [evm[0].account], None)
                paired = await core.approve_pair(opened.flow_id, None)
                assert isinstance(paired, ss.PairStateView.PAIRED), paired
                return paired

            paired = asyncio.run(pair())
            account = paired.accounts[0]

            def sp_sign():
                return subprocess.Popen(
                    [sunstorm_bin, "sp", "sign", "--sp-key", sp_seed, "--pair", paired.pair_id, "--account", account,
                     "--evm-tx", EIP1559_TRANSFER_HEX, "--octane-key", octane_key, "--timeout", "60", *conn],
                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                )

            async def review():
                for _ in range(30):
                    pending = await core.pending_sign_requests(2000, None)
                    if pending:
                        return pending[0]
                raise AssertionError("the request never reached the phone")

            async def approve_on_phone_then_on_appliance(press):
                """The user approves on the phone; the person at the appliance, who reads its
                screen, answers with `press`. Returns the phone's review and its outcome."""
                req = await review()
                phone = asyncio.ensure_future(core.approve_sign(req.request_id, None))
                screen = await asyncio.to_thread(
                    appliance.wait_for_screen, lambda s: s["request_id"] == req.request_id)
                same_as_phone(screen, req)
                assert not phone.done(), "nothing answers before the appliance's button is pressed"
                await asyncio.to_thread(press, screen["id"])
                try:
                    return req, await phone, None
                except ss.SunstormError as e:
                    return req, None, e

            # Approved at the appliance: the service gets its signatures.
            sp = sp_sign()
            try:
                req, _, error = asyncio.run(approve_on_phone_then_on_appliance(lambda i: appliance.approve(screen_id=i)))
                out, err = sp.communicate(timeout=60)
            finally:
                if sp.poll() is None:
                    sp.kill()
            assert error is None, error
            assert sp.returncode == 0, (out, err)
            assert json.loads(out)["ok"]["status"] == "signed"

            # Rejected at the appliance: the service gets a rejection.
            sp = sp_sign()
            try:
                req2, _, error = asyncio.run(approve_on_phone_then_on_appliance(lambda i: appliance.reject(screen_id=i)))
                out, err = sp.communicate(timeout=60)
            finally:
                if sp.poll() is None:
                    sp.kill()
            assert isinstance(error, ss.SunstormError.ApplianceDeclined), error
            assert sp.returncode == 2 and "user_rejected" in out + err, (out, err)

            # Exactly one signature, for the approved request id.
            assert appliance.signatures() == {req.request_id: 1}
            kinds = [e["type"] for e in appliance.events()["events"]]
            assert kinds.count("signature_made") == 1 and "screen_answered" in kinds, kinds

            # Refusals carry the server's code.
            with pytest.raises(ControlError) as refused:
                appliance.approve()
            assert (refused.value.status, refused.value.code) == (409, "no_screen")
            with pytest.raises(ControlError) as refused:
                appliance.set_user("delay")
            assert (refused.value.status, refused.value.code) == (400, "invalid_field")
