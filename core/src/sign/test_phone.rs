//! The phone the sign engine's tests run on: a store with two pairs (A and B) on one bonded
//! [`FakeAppliance`], a [`FakeOctane`], a [`ManualClock`], and helpers that make countersigned
//! requests and read back what a user would notice (the outcome in the history, what octane
//! was told, whether the appliance was asked).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use alloy_consensus::{SignableTransaction, TxEip1559};
use alloy_primitives::{Address, TxKind, U256};
use ed25519_dalek::SigningKey;

use super::*;
use crate::bytes::Key32;
use crate::clock::ManualClock;
use crate::fakes::{FakeAppliance, FakeOctane};
use crate::guardrails::NativeLimits;
use crate::model::SpProfile;
use crate::store::BondedAppliance;

pub(crate) const ETH: u128 = 1_000_000_000_000_000_000;
pub(crate) const GWEI: u128 = 1_000_000_000;
/// 01:00 UTC.
pub(crate) const T0: u64 = 1_799_971_200 + 3_600;
/// The fee of [`Phone::send`]'s transactions: 21,000 gas × 30 gwei.
pub(crate) const FEE: u128 = 21_000 * 30 * GWEI;

/// The SP's signing key (pinned in both pairs).
pub(crate) fn sp_key() -> SigningKey {
    SigningKey::from_bytes(&[2; 32])
}

/// A phone with two pairs (A and B) on one bonded appliance, both bound to the appliance's
/// wallet on Ethereum and Optimism.
pub(crate) struct Phone {
    pub store: Arc<Store>,
    pub clock: Arc<ManualClock>,
    pub octane: Arc<FakeOctane>,
    pub engine: SignEngine,
    pub appliance: FakeAppliance,
    /// The wallet address both pairs are bound to (the appliance's at the start).
    pub wallet: [u8; 20],
    pub pair_a: Uuid,
    pub pair_b: Uuid,
}

impl Phone {
    pub fn new() -> Phone {
        Phone::on(Arc::new(Store::open_in_memory().unwrap()), true)
    }

    /// A phone on `store` (a restarted app when `fresh` is false: the pairs are there).
    pub fn on(store: Arc<Store>, fresh: bool) -> Phone {
        let clock = Arc::new(ManualClock::new(T0));
        let appliance = FakeAppliance::default();
        let identity = appliance.identity_key();
        let wallet = appliance.address();
        let (pair_a, pair_b) = (Uuid::from_bytes([0xa; 16]), Uuid::from_bytes([0xb; 16]));
        if fresh {
            store
                .put_appliance(&BondedAppliance {
                    identity,
                    static_key: Key32([8; 32]),
                    name: "Sigil".into(),
                    endorsement: SignedEnvelope { body: vec![1], sig: vec![2; 64] },
                    bonded_at: 1,
                })
                .unwrap();
            for pair_id in [pair_a, pair_b] {
                let sp_public = Key32(sp_key().verifying_key().to_bytes());
                store
                    .insert_pair(&PairRecord {
                        pair_id,
                        appliance_identity: identity,
                        session_id: format!("s-{pair_id}"),
                        sp: SpProfile {
                            sp_id: "sp".into(),
                            name: "Acme".into(),
                            logo_url: "https://acme.example/logo.png".into(),
                            homepage: "https://acme.example".into(),
                            public_key: sp_public,
                            allowed_return_origins: vec![],
                        },
                        sp_user_ref: "alice".into(),
                        sp_public_key: sp_public,
                        bindings: vec![AccountId::evm(1, wallet), AccountId::evm(10, wallet)],
                        status: PairStatus::Active,
                        created_at: T0,
                        revoked_at: None,
                    })
                    .unwrap();
            }
        }
        let octane = Arc::new(FakeOctane::default());
        let engine = SignEngine::new(store.clone(), octane.clone(), clock.clone());
        Phone { store, clock, octane, engine, appliance, wallet, pair_a, pair_b }
    }

    pub fn now(&self) -> u64 {
        self.clock.now_unix()
    }

    pub fn advance(&self, secs: u64) {
        self.clock.advance(secs);
    }

    pub fn limits(&self, chain: u64, per_pair: Option<u128>, per_day: Option<u128>) {
        let mut g = self.engine.guardrails().unwrap();
        g.limits.insert(ChainId::Evm(chain), NativeLimits { per_pair, per_day });
        self.engine.set_guardrails(&g).unwrap();
    }

    /// The bound wallet on `chain`.
    pub fn account(&self, chain: u64) -> AccountId {
        AccountId::evm(chain, self.wallet)
    }

    /// The signed request of an EIP-1559 transaction on `chain` sending `value` wei, with a
    /// gas limit and a max fee per gas (the worst-case fee is their product).
    pub fn tx_request(
        &self,
        pair_id: Uuid,
        chain: u64,
        value: u128,
        gas_limit: u64,
        max_fee_per_gas: u128,
    ) -> SignRequest {
        let tx = TxEip1559 {
            chain_id: chain,
            nonce: 1,
            gas_limit,
            max_fee_per_gas,
            max_priority_fee_per_gas: 1,
            to: TxKind::Call(Address::from([0x11; 20])),
            value: U256::from(value),
            access_list: Default::default(),
            input: Default::default(),
        };
        self.evm_request(pair_id, &tx)
    }

    /// The signed request of `tx` (on its chain) from the bound wallet.
    pub fn evm_request(&self, pair_id: Uuid, tx: &TxEip1559) -> SignRequest {
        let mut payload = Vec::new();
        tx.encode_for_signing(&mut payload);
        let now = self.now();
        SignRequest {
            v: STATEMENT_VERSION,
            request_id: Uuid::new_v4(),
            pair_id,
            chain: ChainId::Evm(tx.chain_id),
            account: self.account(tx.chain_id),
            kind: PayloadKind::EvmTransaction,
            payload,
            created_at: now,
            expires_at: now + 120,
        }
    }

    /// A call on Ethereum to `to` with `value` wei and calldata `input`, countersigned.
    pub fn call(&self, pair_id: Uuid, to: Address, value: u128, input: Vec<u8>) -> PendingSignRequest {
        let tx = TxEip1559 {
            chain_id: 1,
            nonce: 1,
            gas_limit: 100_000,
            max_fee_per_gas: 30 * GWEI,
            max_priority_fee_per_gas: 1,
            to: TxKind::Call(to),
            value: U256::from(value),
            access_list: Default::default(),
            input: input.into(),
        };
        self.countersigned(&self.evm_request(pair_id, &tx))
    }

    /// [`Phone::tx_request`], countersigned as octane delivers it.
    pub fn tx(
        &self,
        pair_id: Uuid,
        chain: u64,
        value: u128,
        gas_limit: u64,
        max_fee_per_gas: u128,
    ) -> PendingSignRequest {
        self.countersigned(&self.tx_request(pair_id, chain, value, gas_limit, max_fee_per_gas))
    }

    /// [`Phone::tx`] on Ethereum with an ordinary fee ([`FEE`]).
    pub fn send(&self, pair_id: Uuid, value: u128) -> PendingSignRequest {
        self.tx(pair_id, 1, value, 21_000, 30 * GWEI)
    }

    /// `req` signed by the SP and countersigned by octane, as octane delivers it.
    pub fn countersigned(&self, req: &SignRequest) -> PendingSignRequest {
        let body = crate::cbor::to_vec(req).unwrap();
        PendingSignRequest {
            pair_id: req.pair_id,
            request_id: req.request_id,
            request: CountersignedRequest {
                sp_sig: crate::envelope::sign_bytes(Domain::SpSignRequest, &sp_key(), &body).to_vec(),
                octane_sig: crate::envelope::sign_bytes(Domain::OctaneSignRequest, &self.octane.key, &body).to_vec(),
                body,
            },
        }
    }

    pub async fn ingest(&self, r: &PendingSignRequest) -> PendingSignature {
        self.engine.ingest(r).await.unwrap()
    }

    pub async fn approve(&self, r: &PendingSignRequest) -> Result<SignedOutcome, SignError> {
        self.engine.approve(r.request_id, &self.appliance, None).await
    }

    /// The reason codes the phone posted to octane for `r`'s rejection.
    pub fn rejections(&self, r: &PendingSignRequest) -> Vec<String> {
        self.octane.sign_rejections(r.request_id)
    }

    /// `r`'s outcome in the history.
    pub fn outcome(&self, r: &PendingSignRequest) -> SignOutcome {
        self.store.sign_record(r.request_id).unwrap().unwrap().outcome
    }

    /// Whether the appliance was asked to sign `r`.
    pub fn asked(&self, r: &PendingSignRequest) -> bool {
        self.appliance.asked_to_sign(r.request_id)
    }

    /// Whether `r` is in the list the user decides from.
    pub fn waiting(&self, r: &PendingSignRequest) -> bool {
        self.engine.pending().iter().any(|p| p.request_id == r.request_id)
    }
}

/// The codes of the guardrails `p` breaks.
pub(crate) fn codes(p: &PendingSignature) -> Vec<&str> {
    p.violations.iter().map(|v| v.code.as_str()).collect()
}
