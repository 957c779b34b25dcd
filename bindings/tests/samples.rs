//! The sample transactions hard-coded in the Kotlin and Python binding tests, checked
//! against the simulator's generator so they cannot drift.

/// `eip1559_transfer(1, 0, [0x11; 20], ETHER / 20)`: 0.05 ETH on Ethereum mainnet.
/// Also in `bindings/kotlin/.../FlowsTest.kt` and `bindings/python/test_flows.py`.
const EIP1559_TRANSFER_HEX: &str =
    "02ef018084773594008506fc23ac0082520894111111111111111111111111111111111111111187b1a2bc2ec5000080c0";

#[test]
fn hard_coded_eip1559_sample_matches_the_generator() {
    let tx = sunstorm_sim::samples::eip1559_transfer(1, 0, [0x11; 20], sunstorm_sim::samples::ETHER / 20);
    assert_eq!(hex::encode(&tx), EIP1559_TRANSFER_HEX);
}
