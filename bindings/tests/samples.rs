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

/// `erc20_transfer(1, 0, USDC, [0x22; 20], 1_500_000)`: 1.5 USDC to 0x2222…2222 on Ethereum
/// mainnet. Also in `bindings/kotlin/.../ClearSigningTest.kt`.
const USDC_TRANSFER_HEX: &str =
    "02f86d018084773594008506fc23ac0082fde894a0b86991c6218b36c1d19d4a2e9eb0ce3606eb4880b844a9059cbb0000000000000000000000002222222222222222222222222222222222222222000000000000000000000000000000000000000000000000000000000016e360c0";

/// `uniswap_exact_input_single(1, 1, WETH, USDC, 3000, [0x22; 20], ETHER, 3_000_000_000)`:
/// swap 1 WETH for at least 3,000 USDC through Uniswap's SwapRouter02 on Ethereum mainnet.
/// Also in `bindings/kotlin/.../ClearSigningTest.kt`.
const UNISWAP_SWAP_HEX: &str = "02f9010e010184773594008506fc23ac0083030d409468b3465833fb72a70ecdf485e0e4c7bd8665fc4580b8e404e45aaf000000000000000000000000c02aaa39b223fe8d0a0e5c4f27ead9083c756cc2000000000000000000000000a0b86991c6218b36c1d19d4a2e9eb0ce3606eb480000000000000000000000000000000000000000000000000000000000000bb800000000000000000000000022222222222222222222222222222222222222220000000000000000000000000000000000000000000000000de0b6b3a764000000000000000000000000000000000000000000000000000000000000b2d05e000000000000000000000000000000000000000000000000000000000000000000c0";

#[test]
fn hard_coded_clear_signing_samples_match_the_generator() {
    use sunstorm_sim::samples::{erc20_transfer, uniswap_exact_input_single, ETHER, USDC, WETH};
    let usdc = erc20_transfer(1, 0, USDC, [0x22; 20], 1_500_000);
    let swap = uniswap_exact_input_single(1, 1, WETH, USDC, 3000, [0x22; 20], ETHER, 3_000_000_000);
    println!("usdc {}\nswap {}", hex::encode(&usdc), hex::encode(&swap));
    assert_eq!(hex::encode(&usdc), USDC_TRANSFER_HEX);
    assert_eq!(hex::encode(&swap), UNISWAP_SWAP_HEX);
}
