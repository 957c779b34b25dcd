//! Sample payloads an SP asks to sign: what the demo, the tests and the binding tests send.
//! Built with the same maintained crates the core decodes with (alloy), so they are real
//! EIP-1559 transactions, ERC-20 calls and EIP-712 documents, not hand-made bytes.

use alloy_consensus::{SignableTransaction, TxEip1559};
use alloy_primitives::{Address, Bytes, TxKind, U256};
use alloy_sol_types::{sol, SolCall};
use sunstorm_core::caip::{AccountId, ChainId};
use sunstorm_core::model::PayloadKind;

sol! {
    /// ERC-20 `approve`.
    function approve(address spender, uint256 amount) external returns (bool);
    /// ERC-20 `transfer`.
    function transfer(address to, uint256 amount) external returns (bool);
    /// Aave V3 pool `supply` (a deposit).
    function supply(address asset, uint256 amount, address onBehalfOf, uint16 referralCode) external;
    /// Uniswap V3 `SwapRouter02.exactInputSingle`'s parameters.
    struct ExactInputSingleParams {
        address tokenIn;
        address tokenOut;
        uint24 fee;
        address recipient;
        uint256 amountIn;
        uint256 amountOutMinimum;
        uint160 sqrtPriceLimitX96;
    }
    /// Uniswap V3 `SwapRouter02.exactInputSingle`.
    function exactInputSingle(ExactInputSingleParams params) external payable returns (uint256 amountOut);
}

/// 1 ether in wei.
pub const ETHER: u128 = 1_000_000_000_000_000_000;
/// 1 gwei in wei.
pub const GWEI: u128 = 1_000_000_000;

/// USDC's mainnet contract, used as the token in samples.
pub const USDC: [u8; 20] = [
    0xa0, 0xb8, 0x69, 0x91, 0xc6, 0x21, 0x8b, 0x36, 0xc1, 0xd1, 0x9d, 0x4a, 0x2e, 0x9e, 0xb0, 0xce, 0x36, 0x06, 0xeb,
    0x48,
];

/// The Aave V3 pool on Ethereum mainnet (its ERC-7730 descriptor is in the metadata bundle:
/// `registry/aave/calldata-lpv3.json`).
pub const AAVE_V3_POOL: [u8; 20] = [
    0x87, 0x87, 0x0b, 0xca, 0x3f, 0x3f, 0xd6, 0x33, 0x5c, 0x3f, 0x4c, 0xe8, 0x39, 0x2d, 0x69, 0x35, 0x0b, 0x4f, 0xa4,
    0xe2,
];

/// WETH's mainnet contract.
pub const WETH: [u8; 20] = [
    0xc0, 0x2a, 0xaa, 0x39, 0xb2, 0x23, 0xfe, 0x8d, 0x0a, 0x0e, 0x5c, 0x4f, 0x27, 0xea, 0xd9, 0x08, 0x3c, 0x75, 0x6c,
    0xc2,
];

/// Uniswap's `SwapRouter02` on mainnet (`0x68b3465833fb72A70ecDF485E0e4C7bD8665Fc45`).
pub const UNISWAP_V3_ROUTER02: [u8; 20] = [
    0x68, 0xb3, 0x46, 0x58, 0x33, 0xfb, 0x72, 0xa7, 0x0e, 0xcd, 0xf4, 0x85, 0xe0, 0xe4, 0xc7, 0xbd, 0x86, 0x65, 0xfc,
    0x45,
];

/// An unsigned EIP-1559 call of `data` on contract `to` (no value, 30 gwei max fee).
fn call(chain_id: u64, nonce: u64, gas_limit: u64, to: [u8; 20], data: Vec<u8>) -> Vec<u8> {
    let tx = TxEip1559 {
        chain_id,
        nonce,
        gas_limit,
        max_fee_per_gas: 30 * GWEI,
        max_priority_fee_per_gas: 2 * GWEI,
        to: TxKind::Call(Address::from(to)),
        value: U256::ZERO,
        access_list: Default::default(),
        input: Bytes::from(data),
    };
    tx.encoded_for_signing()
}

/// An unsigned EIP-1559 transaction (`0x02 || rlp([...])`) sending `value_wei` to `to`.
pub fn eip1559_transfer(chain_id: u64, nonce: u64, to: [u8; 20], value_wei: u128) -> Vec<u8> {
    let tx = TxEip1559 {
        chain_id,
        nonce,
        gas_limit: 21_000,
        max_fee_per_gas: 30 * GWEI,
        max_priority_fee_per_gas: 2 * GWEI,
        to: TxKind::Call(Address::from(to)),
        value: U256::from(value_wei),
        access_list: Default::default(),
        input: Bytes::new(),
    };
    tx.encoded_for_signing()
}

/// An unsigned EIP-1559 call of ERC-20 `approve(spender, 2^256-1)` on `token`: an
/// unlimited approval, which the default guardrails block.
pub fn erc20_approve_unlimited(chain_id: u64, nonce: u64, token: [u8; 20], spender: [u8; 20]) -> Vec<u8> {
    let data = approveCall { spender: Address::from(spender), amount: U256::MAX }.abi_encode();
    call(chain_id, nonce, 60_000, token, data)
}

/// An unsigned EIP-1559 call of ERC-20 `transfer(to, amount)` on `token`.
pub fn erc20_transfer(chain_id: u64, nonce: u64, token: [u8; 20], to: [u8; 20], amount: u128) -> Vec<u8> {
    let data = transferCall { to: Address::from(to), amount: U256::from(amount) }.abi_encode();
    call(chain_id, nonce, 65_000, token, data)
}

/// An unsigned EIP-1559 call of Uniswap V3 `exactInputSingle` on [`UNISWAP_V3_ROUTER02`]:
/// swap `amount_in` of `token_in` for at least `min_out` of `token_out` in the pool with
/// `fee` (hundredths of a basis point: 3000 = 0.3 %), paid to `recipient`.
#[allow(clippy::too_many_arguments)]
pub fn uniswap_exact_input_single(
    chain_id: u64,
    nonce: u64,
    token_in: [u8; 20],
    token_out: [u8; 20],
    fee: u32,
    recipient: [u8; 20],
    amount_in: u128,
    min_out: u128,
) -> Vec<u8> {
    let params = ExactInputSingleParams {
        tokenIn: Address::from(token_in),
        tokenOut: Address::from(token_out),
        fee: alloy_primitives::Uint::<24, 1>::from(fee & 0x00ff_ffff),
        recipient: Address::from(recipient),
        amountIn: U256::from(amount_in),
        amountOutMinimum: U256::from(min_out),
        sqrtPriceLimitX96: alloy_primitives::U160::ZERO,
    };
    call(chain_id, nonce, 200_000, UNISWAP_V3_ROUTER02, exactInputSingleCall { params }.abi_encode())
}

/// An unsigned EIP-1559 call of the Aave V3 pool's `supply(asset, amount, on_behalf_of, 0)`
/// on Ethereum mainnet: a deposit, rendered from the pool's ERC-7730 descriptor when the
/// phone has the metadata bundle ("Amount to supply 1,000 USDC").
pub fn aave_supply(nonce: u64, asset: [u8; 20], amount: u128, on_behalf_of: [u8; 20]) -> Vec<u8> {
    let data = supplyCall {
        asset: Address::from(asset),
        amount: U256::from(amount),
        onBehalfOf: Address::from(on_behalf_of),
        referralCode: 0,
    }
    .abi_encode();
    call(1, nonce, 300_000, AAVE_V3_POOL, data)
}

/// The EIP-712 "Mail" example from the EIP itself, on `chain_id`.
pub fn eip712_mail(chain_id: u64) -> String {
    serde_json::json!({
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"},
                {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"},
                {"name": "verifyingContract", "type": "address"}
            ],
            "Person": [
                {"name": "name", "type": "string"},
                {"name": "wallet", "type": "address"}
            ],
            "Mail": [
                {"name": "from", "type": "Person"},
                {"name": "to", "type": "Person"},
                {"name": "contents", "type": "string"}
            ]
        },
        "primaryType": "Mail",
        "domain": {
            "name": "Ether Mail",
            "version": "1",
            "chainId": chain_id,
            "verifyingContract": "0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC"
        },
        "message": {
            "from": {"name": "Cow", "wallet": "0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826"},
            "to": {"name": "Bob", "wallet": "0xbBbBBBBbbBBBbbbBbbBbbbbBBbBbbbbBbBbbBBbB"},
            "contents": "Hello, Bob!"
        }
    })
    .to_string()
}

/// An ERC-2612 `Permit` (EIP-712) on `chain_id`: `owner` lets `spender` spend `value`
/// base units of `token`, until `deadline` (Unix seconds). A meaning the phone knows, so
/// it is shown as a token spending permit rather than blind.
pub fn erc2612_permit(
    chain_id: u64,
    token: [u8; 20],
    owner: [u8; 20],
    spender: [u8; 20],
    value: u128,
    deadline: u64,
) -> String {
    serde_json::json!({
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"},
                {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"},
                {"name": "verifyingContract", "type": "address"}
            ],
            "Permit": [
                {"name": "owner", "type": "address"},
                {"name": "spender", "type": "address"},
                {"name": "value", "type": "uint256"},
                {"name": "nonce", "type": "uint256"},
                {"name": "deadline", "type": "uint256"}
            ]
        },
        "primaryType": "Permit",
        "domain": {
            "name": "USD Coin",
            "version": "2",
            "chainId": chain_id,
            "verifyingContract": Address::from(token).to_checksum(None)
        },
        "message": {
            "owner": Address::from(owner).to_checksum(None),
            "spender": Address::from(spender).to_checksum(None),
            "value": value.to_string(),
            "nonce": 0,
            "deadline": deadline
        }
    })
    .to_string()
}

/// A legacy Solana message in which `from` sends `lamports` to `to` through the System
/// program, with `blockhash` as its recent blockhash. (Construction only: every count here
/// is below 128, so each compact-u16 length is one byte.)
pub fn solana_transfer(from: [u8; 32], to: [u8; 32], lamports: u64, blockhash: [u8; 32]) -> Vec<u8> {
    let mut m = vec![1u8, 0, 1]; // header: 1 signer, 0 read-only signed, 1 read-only unsigned
    m.push(3); // three account keys
    m.extend(from);
    m.extend(to);
    m.extend([0u8; 32]); // the System program
    m.extend(blockhash);
    m.push(1); // one instruction
    m.push(2); // program: account 2
    m.extend([2, 0, 1]); // two accounts: from, to
    m.push(12); // data: Transfer (index 2) + lamports
    m.extend(2u32.to_le_bytes());
    m.extend(lamports.to_le_bytes());
    m
}

/// The sample payloads `sunstorm sp sign --sample NAME` offers (docs/signing.md, "Sample
/// payloads"), each built for the account it is sent to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sample {
    /// An EIP-1559 transfer of 0.05 ETH (the chain's native coin) to `0x1111…1111`.
    Eip1559,
    /// An ERC-20 `transfer` of 25 USDC (mainnet contract) to `0x2222…2222`.
    Erc20,
    /// The EIP-712 "Mail" example of the EIP, on the account's chain.
    Eip712,
    /// A Solana System-program transfer of 0.01 SOL from the account.
    Solana,
}

/// Why a sample does not fit an account.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the {sample} sample is for {wanted} accounts, not {account}")]
pub struct SampleMismatch {
    /// The sample's name.
    pub sample: &'static str,
    /// Which accounts it fits.
    pub wanted: &'static str,
    /// The account given.
    pub account: String,
}

impl Sample {
    /// Every sample, in the order the CLI lists them.
    pub const ALL: [Sample; 4] = [Sample::Eip1559, Sample::Erc20, Sample::Eip712, Sample::Solana];

    /// The name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Sample::Eip1559 => "eip1559",
            Sample::Erc20 => "erc20",
            Sample::Eip712 => "eip712",
            Sample::Solana => "solana",
        }
    }

    /// The sample named `name`, if any.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.name() == name)
    }

    /// The payload kind and bytes of this sample for `account` (an EVM account for the EVM
    /// samples, a Solana one for `solana`; the payer is the account itself).
    pub fn payload_for(self, account: &AccountId) -> Result<(PayloadKind, Vec<u8>), SampleMismatch> {
        let mismatch = |wanted| SampleMismatch { sample: self.name(), wanted, account: account.to_string() };
        match (self, &account.chain) {
            (Sample::Eip1559, ChainId::Evm(id)) => {
                Ok((PayloadKind::EvmTransaction, eip1559_transfer(*id, 0, [0x11; 20], ETHER / 20)))
            }
            (Sample::Erc20, ChainId::Evm(id)) => {
                Ok((PayloadKind::EvmTransaction, erc20_transfer(*id, 0, USDC, [0x22; 20], 25_000_000)))
            }
            (Sample::Eip712, ChainId::Evm(id)) => Ok((PayloadKind::Eip712TypedData, eip712_mail(*id).into_bytes())),
            (Sample::Solana, ChainId::Solana(_)) => {
                let from: [u8; 32] = bs58::decode(&account.address)
                    .into_vec()
                    .ok()
                    .and_then(|v| v.try_into().ok())
                    .ok_or_else(|| mismatch("valid Solana"))?;
                Ok((PayloadKind::SolanaTransaction, solana_transfer(from, [0x24; 32], 10_000_000, [0x11; 32])))
            }
            (Sample::Solana, _) => Err(mismatch("Solana (solana:…)")),
            (_, _) => Err(mismatch("EVM (eip155:…)")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sunstorm_core::payload::signing_target;

    #[test]
    fn samples_are_accepted_by_the_core_parser() {
        for (kind, bytes, chain) in [
            (PayloadKind::EvmTransaction, eip1559_transfer(1, 0, [1; 20], ETHER / 20), ChainId::Evm(1)),
            (PayloadKind::EvmTransaction, erc20_approve_unlimited(1, 1, USDC, [2; 20]), ChainId::Evm(1)),
            (PayloadKind::Eip712TypedData, eip712_mail(1).into_bytes(), ChainId::Evm(1)),
            (
                PayloadKind::Eip712TypedData,
                erc2612_permit(1, USDC, [1; 20], [2; 20], 100_000_000, 1_900_000_000).into_bytes(),
                ChainId::Evm(1),
            ),
            (
                PayloadKind::SolanaTransaction,
                solana_transfer([3; 32], [4; 32], 1_000_000, [5; 32]),
                ChainId::Solana(sunstorm_core::caip::SOLANA_MAINNET.into()),
            ),
        ] {
            signing_target(kind, &bytes, &chain).unwrap();
        }
    }

    #[test]
    fn each_sample_fits_its_accounts_and_is_accepted_by_the_core() {
        let evm: AccountId = "eip155:1:0x1111111111111111111111111111111111111111".parse().unwrap();
        let solana = ChainId::Solana(sunstorm_core::caip::SOLANA_MAINNET.into());
        let sol: AccountId = format!("{solana}:{}", bs58::encode([3u8; 32]).into_string()).parse().unwrap();
        for sample in Sample::ALL {
            assert_eq!(Sample::from_name(sample.name()), Some(sample));
            let (fits, other) = if sample == Sample::Solana { (&sol, &evm) } else { (&evm, &sol) };
            let (kind, bytes) = sample.payload_for(fits).unwrap();
            signing_target(kind, &bytes, &fits.chain).unwrap();
            let e = sample.payload_for(other).unwrap_err();
            assert!(e.to_string().contains(sample.name()) && e.to_string().contains(&other.to_string()), "{e}");
        }
        // The EVM transfer on mainnet is the one the binding tests hard-code.
        assert_eq!(Sample::Eip1559.payload_for(&evm).unwrap().1, eip1559_transfer(1, 0, [0x11; 20], ETHER / 20));
        assert_eq!(Sample::from_name("bitcoin"), None);
    }
}
