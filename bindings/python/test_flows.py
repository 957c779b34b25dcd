"""Pair + sign smoke through the generated Python module: octane and appliance simulators
as child processes, the SP as the `sunstorm sp` CLI, a Python BleCentral."""

import asyncio
import json
import subprocess

import sunstorm_ffi as ss
from conftest import CollectingListener, MemorySecretStore, ScriptedPresence, StdlibHttpClient, make_config
from sim import SimProcess
from uds_central import UdsBleCentral

# eip1559_transfer(1, 0, [0x11; 20], ETHER / 20) from sunstorm_sim::samples (chain id 1,
# 0.05 ETH); checked against the generator by bindings/tests/samples.rs.
EIP1559_TRANSFER_HEX = (
    "02ef018084773594008506fc23ac0082520894111111111111111111111111111111111111111187b1a2bc2ec5000080c0"
)
EVM_CHAIN = "eip155:1"


def test_pair_and_evm_sign(tmp_path, sunstorm_bin):
    with SimProcess(sunstorm_bin, ["sim", "octane", "--listen", "127.0.0.1:0", "--json"]) as octane:
        facts = json.loads(octane.await_line("{"))["ok"]
        url, octane_key = facts["url"], facts["octane_public_key"]
        api_key, sp_seed = facts["demo_sp"]["api_key"], facts["demo_sp"]["sp_key_seed"]
        conn = ["--octane", url, "--api-key", api_key, "--json"]
        sock = str(tmp_path / "appliance.sock")
        appliance_args = ["sim", "appliance", "--socket", sock, "--pin", "112233", "--octane-key", octane_key]
        with SimProcess(sunstorm_bin, appliance_args) as appliance:
            appliance.await_line("PIN:")
            presence = ScriptedPresence()
            listener = CollectingListener()
            http = StdlibHttpClient()
            core = ss.SunstormCore(
                make_config(tmp_path, url, octane_key), UdsBleCentral({"sim-1": sock}), http, MemorySecretStore(), presence
            )
            core.set_flow_listener(listener)

            session = subprocess.run(
                [sunstorm_bin, "sp", "create-session", "--chains", EVM_CHAIN, *conn],
                capture_output=True, text=True, timeout=60, check=True,
            )
            s = json.loads(session.stdout)["ok"]

            async def pair():
                await core.bond_appliance("sim-1", "112233", None, None)
                opened = await core.open_pair_link(s["link"], None, None)
                assert isinstance(opened, ss.PairStateView.CODE_NEEDED), opened
                flow = opened.flow_id
                assert opened.card.requested_chains == [EVM_CHAIN]
                verified = await core.submit_code(flow, s["validation_code"], None)
                assert isinstance(verified, ss.PairStateView.CODE_VERIFIED), verified
                rows = await core.wallet_choices(flow, None)
                evm = [r for r in rows if r.chain == EVM_CHAIN and r.state == ss.WalletRowState.SELECTABLE]
                assert evm, rows
                await core.choose_wallets(flow, [evm[0].account], None)
                paired = await core.approve_pair(flow, None)
                assert isinstance(paired, ss.PairStateView.PAIRED), paired
                assert paired.accounts == [evm[0].account]
                return paired

            paired = asyncio.run(pair())
            account = paired.accounts[0]
            assert any(r.startswith("Approve pairing with") for r in presence.reasons)
            # Octane was reached through the Python HttpClient.
            assert any(s.startswith("POST /app/pair/sessions/") and s.endswith("/approve") for s in http.seen), http.seen
            assert any(isinstance(st, ss.PairStateView.PAIRED) for st in listener.states)
            assert [p.pair_id for p in asyncio.run(core.list_pairs())] == [paired.pair_id]

            sp = subprocess.Popen(
                [sunstorm_bin, "sp", "sign", "--sp-key", sp_seed, "--pair", paired.pair_id, "--account", account,
                 "--evm-tx", EIP1559_TRANSFER_HEX, "--octane-key", octane_key, "--timeout", "60", *conn],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            )
            try:
                async def sign():
                    for _ in range(30):
                        pending = await core.pending_sign_requests(2000, None)
                        if pending:
                            break
                    assert len(pending) == 1, pending
                    req = pending[0]
                    assert req.chain == EVM_CHAIN and req.account == account and req.kind == "evm_transaction"
                    assert not req.blocked and not req.violations, req
                    assert any("0.05" in f.value for f in req.fields), req.fields
                    await core.approve_sign(req.request_id, None)
                    return req

                req = asyncio.run(sign())
                out, err = sp.communicate(timeout=60)
            finally:
                if sp.poll() is None:
                    sp.kill()
            assert sp.returncode == 0, (out, err)
            bundle = json.loads(out)["ok"]
            assert bundle["status"] == "signed" and bundle["request_id"] == req.request_id
            assert bundle["sp_sig"] and bundle["octane_sig"] and bundle["appliance_sig"]

            # The activity screen: the signature, with its account and outcome; the audit log.
            history = asyncio.run(core.sign_history(10))
            assert [h.request_id for h in history] == [req.request_id], history
            assert history[0].account == account and history[0].outcome == ss.SignOutcomeView.COMPLETED, history[0]
            events = [a.event for a in asyncio.run(core.audit_log(10))]
            assert isinstance(events[0], ss.AuditEventView.SIGN_SIGNED), events
            assert isinstance(events[1], ss.AuditEventView.SIGN_APPROVED) and events[1].title == req.title, events
            assert any(isinstance(e, ss.AuditEventView.PAIR_APPROVED) and account in e.accounts for e in events), events
