//! Payload parsing and signature verification (contract D): what exactly the appliance
//! signs for each [`PayloadKind`], and how the phone (and the tests) check what comes back.
//!
//! The payload is always the full thing to sign, never a bare hash: an unsigned EVM
//! transaction, an EIP-191 message, EIP-712 typed data as JSON, or a serialized Solana
//! message. [`signing_target`] re-parses it with maintained codecs (alloy for RLP, ABI and
//! EIP-712; `solana-short-vec` for Solana lengths), refuses a chain mismatch, and derives
//! the digest or message the appliance signs.
//!
//! | kind | payload | signed | signature |
//! |---|---|---|---|
//! | EVM tx, typed (0x01, 0x02) | `type ‖ rlp([...])` | keccak256 of the payload | r‖s‖v, v = y-parity (0/1) |
//! | EVM tx, legacy EIP-155 | `rlp([nonce, gas_price, gas, to, value, data, chain_id, 0, 0])` | keccak256 of the payload | r‖s‖v, v = 35 + 2·chain_id + parity |
//! | EIP-191 | message bytes | `keccak256("\x19Ethereum Signed Message:\n" ‖ len ‖ msg)` | r‖s‖v, v = 27/28 |
//! | EIP-712 | typed-data JSON | `keccak256(0x1901 ‖ domainSeparator ‖ hashStruct(message))` | r‖s‖v, v = 27/28 |
//! | Solana | message bytes | the message itself (Ed25519) | 64 bytes |

pub mod eip712;
pub mod solana;

use alloy_consensus::{SignableTransaction, TxEip1559, TxEip2930, TxLegacy};
use alloy_dyn_abi::TypedData;
use alloy_primitives::{eip191_hash_message, keccak256, U256};
use alloy_rlp::Decodable;
use k256::ecdsa::{RecoveryId, Signature, VerifyingKey};
use thiserror::Error;

use crate::caip::{AccountId, ChainId};
use crate::model::PayloadKind;

pub use solana::{SolanaMessage, SolanaMessageError};

/// Largest payload accepted, in bytes (a Solana packet is 1232 bytes; EVM calldata and
/// typed data can be larger, but a phone screen has no use for more than this).
pub const MAX_PAYLOAD_LEN: usize = 128 * 1024;

/// Largest chain id a legacy (EIP-155) transaction may carry: its `v` must fit the one
/// byte of the 65-byte signature (35 + 2·109 + 1 = 254). Use a typed transaction above it.
pub const MAX_LEGACY_CHAIN_ID: u64 = 109;

/// How the recovery byte `v` of an EVM signature is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EvmVStyle {
    /// Typed transactions (EIP-2718): v is the y-parity, 0 or 1.
    YParity,
    /// Legacy EIP-155 transactions: v = 35 + 2·chain_id + y-parity.
    Eip155 {
        /// The transaction's chain id.
        chain_id: u64,
    },
    /// Messages (EIP-191, EIP-712): v = 27 + y-parity.
    Legacy27,
}

/// What the appliance signs for a payload.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SigningTarget {
    /// A secp256k1 signature over this 32-byte digest, with `v` written in `v_style`.
    EvmDigest {
        /// The prehashed digest (keccak256).
        digest: [u8; 32],
        /// How to encode `v`.
        v_style: EvmVStyle,
    },
    /// An Ed25519 signature over these bytes (a Solana message).
    Ed25519Message(Vec<u8>),
}

/// Why a payload or a signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PayloadError {
    /// The payload is empty.
    #[error("the payload is empty")]
    Empty,
    /// The payload is larger than [`MAX_PAYLOAD_LEN`].
    #[error("the payload is {len} bytes, more than the {max} allowed")]
    TooLarge {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The payload kind belongs to another chain family than the request's chain.
    #[error("a {kind} payload cannot be signed for chain {chain}")]
    WrongNamespace {
        /// The payload kind, in words.
        kind: &'static str,
        /// The request's chain.
        chain: String,
    },
    /// The payload names a different chain than the request.
    #[error("the payload is for chain {payload}, but the request is for {request}")]
    ChainMismatch {
        /// The chain in the payload (CAIP-2 or decimal id).
        payload: String,
        /// The request's chain.
        request: String,
    },
    /// An EVM transaction type other than legacy, EIP-2930 or EIP-1559.
    #[error("unsupported EVM transaction type 0x{0:02x}")]
    UnsupportedTxType(u8),
    /// Bytes that are not a canonical unsigned transaction of its type.
    #[error("not a canonical unsigned EVM transaction: {0}")]
    BadTransaction(String),
    /// A legacy transaction without EIP-155 replay protection.
    #[error("legacy transaction without a chain id (no EIP-155 replay protection)")]
    MissingChainId,
    /// A legacy transaction whose chain id makes `v` too large for one byte.
    #[error("legacy transaction chain id {0} is above {MAX_LEGACY_CHAIN_ID}; use an EIP-1559 transaction")]
    LegacyChainIdTooLarge(u64),
    /// Typed data that does not parse or hash.
    #[error("bad EIP-712 typed data: {0}")]
    BadTypedData(String),
    /// A Solana message that does not parse.
    #[error("bad Solana message: {0}")]
    BadSolanaMessage(#[from] SolanaMessageError),
    /// A signature of the wrong length or form.
    #[error("malformed signature: {0}")]
    MalformedSignature(&'static str),
    /// An EVM signature whose `s` is in the upper half of the curve order.
    #[error("signature has a high s value (not low-s normalised)")]
    HighS,
    /// An EVM signature whose `v` does not match the payload's style.
    #[error("signature recovery byte v={0} does not match the payload type")]
    BadRecoveryByte(u8),
    /// The signature recovers to (or verifies for) another key than the account's.
    #[error("the signature is not from the bound account")]
    WrongSigner,
    /// A signature kind that does not fit the account (EVM vs Solana).
    #[error("the account {0} cannot sign this kind of payload")]
    WrongAccountKind(String),
    /// Typed data whose shape is beyond a decoding limit (see [`eip712::limits`]); refused
    /// before anything expands or hashes it.
    #[error("the typed data is too complex: {what} is over the limit of {limit}")]
    TooComplex {
        /// Which limit (stable snake_case: `types`, `type_depth`, `expanded_types`, …).
        what: &'static str,
        /// The limit.
        limit: usize,
    },
    /// Typed data whose types refer to themselves (directly or through others): such a
    /// type has no finite expansion, and a value of it cannot be hashed.
    #[error("the EIP-712 type {0} is recursive")]
    RecursiveType(String),
    /// Typed data with `primaryType: "EIP712Domain"`: only the domain would be signed,
    /// whatever the message says.
    #[error("primaryType EIP712Domain signs only the domain, not the message")]
    DomainAsPrimaryType,
}

impl PayloadError {
    /// A stable snake_case code (CLI, logs, rejections, tests).
    pub fn code(&self) -> &'static str {
        match self {
            PayloadError::Empty => "empty",
            PayloadError::TooLarge { .. } => "too_large",
            PayloadError::WrongNamespace { .. } => "wrong_namespace",
            PayloadError::ChainMismatch { .. } => "chain_mismatch",
            PayloadError::UnsupportedTxType(_) => "unsupported_tx_type",
            PayloadError::BadTransaction(_) => "bad_transaction",
            PayloadError::MissingChainId => "missing_chain_id",
            PayloadError::LegacyChainIdTooLarge(_) => "legacy_chain_id_too_large",
            PayloadError::BadTypedData(_) => "bad_typed_data",
            PayloadError::BadSolanaMessage(_) => "bad_solana_message",
            PayloadError::MalformedSignature(_) => "malformed_signature",
            PayloadError::HighS => "high_s",
            PayloadError::BadRecoveryByte(_) => "bad_recovery_byte",
            PayloadError::WrongSigner => "wrong_signer",
            PayloadError::WrongAccountKind(_) => "wrong_account_kind",
            PayloadError::TooComplex { .. } => "too_complex",
            PayloadError::RecursiveType(_) => "recursive_type",
            PayloadError::DomainAsPrimaryType => "eip712_domain_primary_type",
        }
    }
}

fn kind_name(kind: PayloadKind) -> &'static str {
    match kind {
        PayloadKind::EvmTransaction => "EVM transaction",
        PayloadKind::Eip191Message => "EIP-191 message",
        PayloadKind::Eip712TypedData => "EIP-712 typed data",
        PayloadKind::SolanaTransaction => "Solana transaction",
    }
}

/// An unsigned EVM transaction, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EvmTx {
    /// Legacy with EIP-155 chain id.
    Legacy(TxLegacy),
    /// EIP-2930 (type 0x01).
    Eip2930(TxEip2930),
    /// EIP-1559 (type 0x02).
    Eip1559(TxEip1559),
}

impl EvmTx {
    /// The transaction's chain id (always present: unprotected legacy is refused).
    pub fn chain_id(&self) -> u64 {
        match self {
            EvmTx::Legacy(t) => t.chain_id.unwrap_or(0),
            EvmTx::Eip2930(t) => t.chain_id,
            EvmTx::Eip1559(t) => t.chain_id,
        }
    }

    /// The signature hash (keccak256 of the signing encoding, which is the payload).
    pub fn signature_hash(&self) -> [u8; 32] {
        match self {
            EvmTx::Legacy(t) => t.signature_hash().0,
            EvmTx::Eip2930(t) => t.signature_hash().0,
            EvmTx::Eip1559(t) => t.signature_hash().0,
        }
    }

    /// How `v` is written for this transaction.
    pub fn v_style(&self) -> EvmVStyle {
        match self {
            EvmTx::Legacy(t) => EvmVStyle::Eip155 { chain_id: t.chain_id.unwrap_or(0) },
            _ => EvmVStyle::YParity,
        }
    }
}

fn check_len(payload: &[u8]) -> Result<(), PayloadError> {
    if payload.is_empty() {
        return Err(PayloadError::Empty);
    }
    if payload.len() > MAX_PAYLOAD_LEN {
        return Err(PayloadError::TooLarge { len: payload.len(), max: MAX_PAYLOAD_LEN });
    }
    Ok(())
}

/// Parses an unsigned EVM transaction and requires it to be canonical: re-encoding it for
/// signing must give back exactly the payload (so what is shown is what is hashed).
pub fn parse_evm_tx(payload: &[u8]) -> Result<EvmTx, PayloadError> {
    check_len(payload)?;
    let first = *payload.first().ok_or(PayloadError::Empty)?;
    let bad = |e: alloy_rlp::Error| PayloadError::BadTransaction(e.to_string());
    let tx = match first {
        0x01 => {
            let mut body = payload.get(1..).unwrap_or(&[]);
            EvmTx::Eip2930(TxEip2930::decode(&mut body).map_err(bad)?)
        }
        0x02 => {
            let mut body = payload.get(1..).unwrap_or(&[]);
            EvmTx::Eip1559(TxEip1559::decode(&mut body).map_err(bad)?)
        }
        0xc0..=0xff => {
            let mut body = payload;
            let t = TxLegacy::decode(&mut body).map_err(bad)?;
            match t.chain_id {
                None => return Err(PayloadError::MissingChainId),
                Some(id) if id > MAX_LEGACY_CHAIN_ID => return Err(PayloadError::LegacyChainIdTooLarge(id)),
                Some(_) => EvmTx::Legacy(t),
            }
        }
        other => return Err(PayloadError::UnsupportedTxType(other)),
    };
    let mut again = Vec::with_capacity(payload.len());
    match &tx {
        EvmTx::Legacy(t) => t.encode_for_signing(&mut again),
        EvmTx::Eip2930(t) => t.encode_for_signing(&mut again),
        EvmTx::Eip1559(t) => t.encode_for_signing(&mut again),
    }
    if again != payload {
        return Err(PayloadError::BadTransaction(
            "not in canonical signing form (extra bytes, non-zero EIP-155 fields or non-minimal RLP)".into(),
        ));
    }
    Ok(tx)
}

/// Parses EIP-712 typed data (a JSON object as in `eth_signTypedData_v4`) and checks it
/// hashes. Its shape is checked against [`eip712::limits`] first (refused as
/// [`PayloadError::TooComplex`] or [`PayloadError::RecursiveType`]), so nothing expands or
/// hashes an unbounded type graph; `primaryType: "EIP712Domain"` is refused.
pub fn parse_typed_data(payload: &[u8]) -> Result<TypedData, PayloadError> {
    Ok(parse_typed_data_hashed(payload)?.0)
}

/// [`parse_typed_data`], also returning the EIP-712 signing hash.
fn parse_typed_data_hashed(payload: &[u8]) -> Result<(TypedData, [u8; 32]), PayloadError> {
    check_len(payload)?;
    let td = eip712::parse(payload)?;
    let digest = td.eip712_signing_hash().map_err(eip712::bad)?;
    Ok((td, digest.0))
}

/// Parses a serialized Solana message (legacy or v0).
pub fn parse_solana_message(payload: &[u8]) -> Result<SolanaMessage, PayloadError> {
    check_len(payload)?;
    Ok(SolanaMessage::parse(payload)?)
}

fn require_evm(kind: PayloadKind, chain: &ChainId) -> Result<u64, PayloadError> {
    match chain {
        ChainId::Evm(id) => Ok(*id),
        ChainId::Solana(_) => Err(PayloadError::WrongNamespace { kind: kind_name(kind), chain: chain.to_string() }),
    }
}

/// Checks that typed data's domain chain id (if it has one) is `chain_id`.
pub fn check_typed_data_chain(td: &TypedData, chain_id: u64) -> Result<(), PayloadError> {
    if let Some(c) = td.domain.chain_id {
        if c != U256::from(chain_id) {
            return Err(PayloadError::ChainMismatch {
                payload: format!("eip155:{c}"),
                request: format!("eip155:{chain_id}"),
            });
        }
    }
    Ok(())
}

/// A payload parsed once by [`prepare`]: the form the decoder reads, so the phone parses,
/// bounds and hashes each request once.
#[derive(Debug)]
pub enum ParsedPayload {
    /// An unsigned EVM transaction (canonical, on the request's chain).
    EvmTx(EvmTx),
    /// An EIP-191 message: the payload's bytes themselves.
    Eip191,
    /// EIP-712 typed data (within the limits, on the request's chain).
    Eip712(Box<TypedData>),
    /// A serialized Solana message.
    Solana(SolanaMessage),
}

/// What the appliance must sign for `payload`: re-parses it, refuses a chain mismatch,
/// and never accepts a bare hash.
pub fn signing_target(kind: PayloadKind, payload: &[u8], chain: &ChainId) -> Result<SigningTarget, PayloadError> {
    prepare(kind, payload, chain).map(|(target, _)| target)
}

/// [`signing_target`], also returning the parsed payload (for [`crate::decode`]): one
/// parse, one hash.
pub fn prepare(
    kind: PayloadKind,
    payload: &[u8],
    chain: &ChainId,
) -> Result<(SigningTarget, ParsedPayload), PayloadError> {
    let result = prepare_inner(kind, payload, chain);
    match &result {
        Ok(_) => tracing::debug!(?kind, %chain, len = payload.len(), "signing target derived"),
        Err(e) => tracing::info!(?kind, %chain, len = payload.len(), error = %e, "payload refused"),
    }
    result
}

fn prepare_inner(
    kind: PayloadKind,
    payload: &[u8],
    chain: &ChainId,
) -> Result<(SigningTarget, ParsedPayload), PayloadError> {
    check_len(payload)?;
    match kind {
        PayloadKind::EvmTransaction => {
            let id = require_evm(kind, chain)?;
            let tx = parse_evm_tx(payload)?;
            if tx.chain_id() != id {
                return Err(PayloadError::ChainMismatch {
                    payload: format!("eip155:{}", tx.chain_id()),
                    request: chain.to_string(),
                });
            }
            let target = SigningTarget::EvmDigest { digest: tx.signature_hash(), v_style: tx.v_style() };
            Ok((target, ParsedPayload::EvmTx(tx)))
        }
        PayloadKind::Eip191Message => {
            require_evm(kind, chain)?;
            let target =
                SigningTarget::EvmDigest { digest: eip191_hash_message(payload).0, v_style: EvmVStyle::Legacy27 };
            Ok((target, ParsedPayload::Eip191))
        }
        PayloadKind::Eip712TypedData => {
            let id = require_evm(kind, chain)?;
            let (td, digest) = parse_typed_data_hashed(payload)?;
            check_typed_data_chain(&td, id)?;
            let target = SigningTarget::EvmDigest { digest, v_style: EvmVStyle::Legacy27 };
            Ok((target, ParsedPayload::Eip712(Box::new(td))))
        }
        PayloadKind::SolanaTransaction => {
            if chain.is_evm() {
                return Err(PayloadError::WrongNamespace { kind: kind_name(kind), chain: chain.to_string() });
            }
            let msg = parse_solana_message(payload)?;
            Ok((SigningTarget::Ed25519Message(payload.to_vec()), ParsedPayload::Solana(msg)))
        }
    }
}

fn v_byte(style: EvmVStyle, y_odd: bool) -> u8 {
    let p = u8::from(y_odd);
    match style {
        EvmVStyle::YParity => p,
        EvmVStyle::Legacy27 => 27 + p,
        EvmVStyle::Eip155 { chain_id } => {
            // Chain ids above MAX_LEGACY_CHAIN_ID never get a target (parse_evm_tx refuses
            // them); saturate rather than wrap so a misuse cannot verify.
            let v = 35u64.saturating_add(chain_id.saturating_mul(2)).saturating_add(u64::from(p));
            u8::try_from(v).unwrap_or(u8::MAX)
        }
    }
}

fn parity_from_v(style: EvmVStyle, v: u8) -> Option<bool> {
    [false, true].into_iter().find(|odd| v_byte(style, *odd) == v && v != u8::MAX)
}

/// Writes a recoverable secp256k1 signature as r‖s‖v, normalising s to the lower half
/// (and flipping the parity accordingly).
pub fn encode_evm_signature(sig: &Signature, recid: RecoveryId, style: EvmVStyle) -> [u8; 65] {
    let (sig, y_odd) = match sig.normalize_s() {
        Some(low) => (low, !recid.is_y_odd()),
        None => (*sig, recid.is_y_odd()),
    };
    let mut out = [0u8; 65];
    let rs = sig.to_bytes();
    for (o, b) in out.iter_mut().zip(rs.iter()) {
        *o = *b;
    }
    out[64] = v_byte(style, y_odd);
    out
}

/// Recovers the 20-byte address that made an EVM signature over `target` (low-s and the
/// `v` style are enforced). For checks independent of [`verify_appliance_signature`].
pub fn evm_signer_address(target: &SigningTarget, sig: &[u8]) -> Result<[u8; 20], PayloadError> {
    let SigningTarget::EvmDigest { digest, v_style } = target else {
        return Err(PayloadError::MalformedSignature("not an EVM signing target"));
    };
    let sig: &[u8; 65] = sig.try_into().map_err(|_| PayloadError::MalformedSignature("expected 65 bytes r||s||v"))?;
    let (rs, v) = sig.split_at(64);
    let v = *v.first().ok_or(PayloadError::MalformedSignature("missing v"))?;
    let signature = Signature::from_slice(rs).map_err(|_| PayloadError::MalformedSignature("r or s out of range"))?;
    if signature.normalize_s().is_some() {
        return Err(PayloadError::HighS);
    }
    let y_odd = parity_from_v(*v_style, v).ok_or(PayloadError::BadRecoveryByte(v))?;
    let recid = RecoveryId::new(y_odd, false);
    let key = VerifyingKey::recover_from_prehash(digest, &signature, recid).map_err(|_| PayloadError::WrongSigner)?;
    Ok(address_of(&key))
}

/// The Ethereum address of a secp256k1 public key.
pub fn address_of(key: &VerifyingKey) -> [u8; 20] {
    let point = key.to_encoded_point(false);
    let hash = keccak256(point.as_bytes().get(1..).unwrap_or(&[]));
    let mut out = [0u8; 20];
    out.copy_from_slice(hash.get(12..).unwrap_or(&[0u8; 20]));
    out
}

/// Checks the appliance's signature over `target` against the bound `account`: EVM
/// signatures must be low-s, carry the right `v` and recover to the account's address;
/// Solana signatures must pass Ed25519 `verify_strict` under the account's key.
pub fn verify_appliance_signature(
    target: &SigningTarget,
    signature: &[u8],
    account: &AccountId,
) -> Result<(), PayloadError> {
    let result = verify_inner(target, signature, account);
    if let Err(e) = &result {
        tracing::warn!(%account, error = %e, "appliance signature refused");
    }
    result
}

fn verify_inner(target: &SigningTarget, signature: &[u8], account: &AccountId) -> Result<(), PayloadError> {
    match target {
        SigningTarget::EvmDigest { .. } => {
            let want = account.evm_address().ok_or_else(|| PayloadError::WrongAccountKind(account.to_string()))?;
            let got = evm_signer_address(target, signature)?;
            if got != want {
                return Err(PayloadError::WrongSigner);
            }
            Ok(())
        }
        SigningTarget::Ed25519Message(msg) => {
            let pk = account.solana_pubkey().ok_or_else(|| PayloadError::WrongAccountKind(account.to_string()))?;
            let key = ed25519_dalek::VerifyingKey::from_bytes(&pk).map_err(|_| PayloadError::WrongSigner)?;
            let sig = ed25519_dalek::Signature::from_slice(signature)
                .map_err(|_| PayloadError::MalformedSignature("expected 64 bytes"))?;
            key.verify_strict(msg, &sig).map_err(|_| PayloadError::WrongSigner)
        }
    }
}

#[cfg(test)]
pub(crate) mod tests;
