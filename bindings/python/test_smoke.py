"""Smoke of the generated Python bindings: the same surface the shells use."""

import asyncio

import pytest

import sunstorm_ffi as ss
from conftest import MemorySecretStore, ScriptedPresence, StdlibHttpClient, make_config
from uds_central import UdsBleCentral


def new_core(tmp_path, ble=None):
    return ss.SunstormCore(make_config(tmp_path), ble or UdsBleCentral({}), StdlibHttpClient(), MemorySecretStore(), ScriptedPresence())


def test_bad_link_is_the_specific_variant(tmp_path):
    core = new_core(tmp_path)
    with pytest.raises(ss.SunstormError.InvalidLink) as e:
        core.parse_link("https://sigilvault.xyz.evil.example/pair?session=AAAAAAAAAAAAAAAAAAAAAA")
    assert e.value.code == "wrong_host"
    link = core.parse_link("https://sigilvault.xyz/pair?session=AAAAAAAAAAAAAAAAAAAAAA&v=654321")
    assert (link.session_id, link.code) == ("AAAAAAAAAAAAAAAAAAAAAA", "654321")


def test_code_normalisation(tmp_path):
    core = new_core(tmp_path)
    assert core.normalize_code("654 321") == "654321"
    with pytest.raises(ss.SunstormError.InvalidCode) as e:
        core.normalize_code("65a321")
    assert e.value.code == "code_not_a_digit"


def test_panics_arrive_as_errors(tmp_path):
    with pytest.raises(ss.InternalError):
        ss.debug_force_panic()
    core = new_core(tmp_path)
    with pytest.raises(ss.SunstormError.Internal) as e:
        asyncio.run(core.debug_force_panic())
    assert "deliberate panic" in e.value.reason


def test_cancel_handle_stops_a_call(tmp_path):
    core = new_core(tmp_path)
    handle = ss.CancelHandle()

    async def scenario():
        call = asyncio.ensure_future(core.debug_wait(60_000, handle))
        await asyncio.sleep(0.2)
        handle.cancel()
        with pytest.raises(ss.SunstormError.Cancelled):
            await asyncio.wait_for(call, 10)

    asyncio.run(scenario())


def test_log_sink_gets_level_and_target(tmp_path, logs):
    new_core(tmp_path)
    started = [r for r in logs.records if r.message.startswith("core started")]
    assert started, logs.records
    assert started[0].target == "sunstorm_ffi"
    assert started[0].level == ss.LogLevel.INFO


def test_python_central_scan(tmp_path):
    sock = tmp_path / "appliance.sock"
    sock.touch()
    core = new_core(tmp_path, UdsBleCentral({"sim-1": str(sock)}))
    rows = asyncio.run(core.scan_appliances(50, None))
    assert [r.peripheral_id for r in rows] == ["sim-1"]


def test_bond_and_query_the_appliance_process(tmp_path, sunstorm_bin):
    from sim import SimProcess

    sock = str(tmp_path / "appliance.sock")
    with SimProcess(sunstorm_bin, ["sim", "appliance", "--socket", sock, "--pin", "112233", "--mtu", "64"]) as sim:
        assert sim.await_line("PIN:") == "PIN: 112233"
        central = UdsBleCentral({"sim-1": sock})
        secrets = MemorySecretStore()
        core = ss.SunstormCore(make_config(tmp_path), central, StdlibHttpClient(), secrets, ScriptedPresence())

        async def scenario():
            with pytest.raises(ss.SunstormError.WrongPin) as e:
                await core.bond_appliance("sim-1", "999999", None, None)
            assert e.value.attempts_left > 0
            bonded = await core.bond_appliance("sim-1", "112233", None, None)
            assert bonded.name == "Sigil simulator"
            info = await core.appliance_info(None, None)
            assert info.identity_fingerprint == bonded.identity_fingerprint
            wallets = await core.appliance_wallets(["eip155:1"], None, None)
            assert wallets and all(w.account.startswith("eip155:1:0x") for w in wallets)

        asyncio.run(scenario())
