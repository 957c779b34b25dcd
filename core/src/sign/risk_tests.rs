//! The warnings from the phone's own history ([`crate::risk`]) on the sign path: each one
//! appears when it should and not otherwise, is part of the screen the user reviews, and
//! blocks (octane told `guardrail`) when the user chose "block", at arrival and at approval.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use alloy_primitives::{Address, U256};
use alloy_sol_types::{sol, SolCall};

use super::test_phone::{codes, Phone, ETH};
use super::*;
use crate::risk::{RiskAction, RiskRules};

sol! {
    function transfer(address to, uint256 amount) external returns (bool);
    function approve(address spender, uint256 amount) external returns (bool);
}

const DAY: u64 = 86_400;
/// Where [`Phone::send`] sends value.
const PAYEE: Address = Address::repeat_byte(0x11);
const TOKEN: Address = Address::repeat_byte(0x77);
const OTHER_TOKEN: Address = Address::repeat_byte(0x78);
const FRIEND: Address = Address::repeat_byte(0x22);
const SPENDER: Address = Address::repeat_byte(0x55);

/// The history warnings on `p`'s screen, by code.
fn history(p: &PendingSignature) -> Vec<&'static str> {
    let risky = ["first_recipient", "first_spender", "tokens_to_token_contract", "unusual_value", "idle_pair"];
    p.decoded.warnings.iter().map(|w| w.code()).filter(|c| risky.contains(c)).collect()
}

fn transfer(phone: &Phone, token: Address, to: Address) -> PendingSignRequest {
    phone.call(phone.pair_a, token, 0, transferCall { to, amount: U256::from(5u8) }.abi_encode())
}

fn approval(phone: &Phone, spender: Address) -> PendingSignRequest {
    phone.call(phone.pair_a, TOKEN, 0, approveCall { spender, amount: U256::from(5u8) }.abi_encode())
}

/// Shown and approved: signed by the appliance and delivered.
async fn sign(phone: &Phone, r: &PendingSignRequest) -> PendingSignature {
    let view = phone.ingest(r).await;
    assert!(!view.blocked(), "{:?}", view.violations);
    phone.approve(r).await.unwrap();
    view
}

fn set_risk(phone: &Phone, risk: RiskRules) {
    let mut g = phone.engine.guardrails().unwrap();
    g.risk = risk;
    phone.engine.set_guardrails(&g).unwrap();
}

#[tokio::test]
async fn a_first_payment_warns_and_the_second_does_not() {
    let phone = Phone::new();
    let first = phone.send(phone.pair_a, ETH);
    let view = sign(&phone, &first).await;
    assert_eq!(history(&view), ["first_recipient"]);
    let w = view.decoded.warnings.iter().find(|w| w.code() == "first_recipient").unwrap();
    assert!(w.message().contains(&PAYEE.to_checksum(None)), "{w}");
    // The warning is part of what was recorded as shown, and of the display digest.
    let summary = phone.store.sign_record(first.request_id).unwrap().unwrap().summary;
    assert!(summary.to_string().contains("first_recipient"), "{summary}");
    assert_eq!(view.display_digest, crate::decode::display_digest(&first.request_id, &view.decoded));
    let mut unwarned = view.decoded.clone();
    unwarned.warnings.retain(|w| w.code() != "first_recipient");
    assert_ne!(view.display_digest, crate::decode::display_digest(&first.request_id, &unwarned));
    // Paid once: no warning, through the other pair too (it is the account's history).
    assert!(history(&phone.ingest(&phone.send(phone.pair_a, ETH)).await).is_empty());
    assert!(history(&phone.ingest(&phone.send(phone.pair_b, ETH)).await).is_empty());
    // A token transfer to someone new warns; its token contract is not a recipient.
    assert_eq!(history(&phone.ingest(&transfer(&phone, TOKEN, FRIEND)).await), ["first_recipient"]);
}

#[tokio::test]
async fn a_payment_declined_or_waiting_does_not_make_a_recipient_known() {
    let phone = Phone::new();
    let first = phone.send(phone.pair_a, ETH);
    phone.ingest(&first).await;
    let waiting = phone.ingest(&phone.send(phone.pair_a, ETH)).await;
    assert_eq!(history(&waiting), ["first_recipient"]);
    phone.engine.reject(first.request_id).await.unwrap();
    assert_eq!(history(&phone.ingest(&phone.send(phone.pair_a, ETH)).await), ["first_recipient"]);
}

#[tokio::test]
async fn a_first_approval_of_a_spender_warns_once() {
    let phone = Phone::new();
    let view = sign(&phone, &approval(&phone, SPENDER)).await;
    assert_eq!(history(&view), ["first_spender"]);
    assert!(history(&phone.ingest(&approval(&phone, SPENDER)).await).is_empty());
    // Approving is not paying: a payment to the spender is still a first.
    let pay = phone.call(phone.pair_a, SPENDER, ETH, vec![]);
    assert_eq!(history(&phone.ingest(&pay).await), ["first_recipient"]);
    assert_eq!(history(&phone.ingest(&approval(&phone, FRIEND)).await), ["first_spender"]);
}

#[tokio::test]
async fn tokens_sent_to_a_token_contract_warn() {
    let phone = Phone::new();
    // To the token's own contract.
    let own = phone.ingest(&transfer(&phone, TOKEN, TOKEN)).await;
    assert_eq!(history(&own), ["first_recipient", "tokens_to_token_contract"]);
    // To a contract the phone knows as a token because it signed a transfer of it.
    assert!(!history(&phone.ingest(&transfer(&phone, OTHER_TOKEN, FRIEND)).await).contains(&"tokens_to_token_contract"));
    sign(&phone, &transfer(&phone, OTHER_TOKEN, FRIEND)).await;
    let into_other = phone.ingest(&transfer(&phone, TOKEN, OTHER_TOKEN)).await;
    assert!(history(&into_other).contains(&"tokens_to_token_contract"), "{:?}", history(&into_other));
    // To a person: no such warning.
    assert!(history(&phone.ingest(&transfer(&phone, TOKEN, FRIEND)).await).is_empty());
}

#[tokio::test]
async fn a_value_far_above_the_pairs_usual_warns_once_it_has_a_history() {
    let phone = Phone::new();
    // Two signed payments are no history yet.
    for _ in 0..2 {
        sign(&phone, &phone.send(phone.pair_a, ETH)).await;
    }
    assert!(history(&phone.ingest(&phone.send(phone.pair_a, 100 * ETH)).await).is_empty());
    sign(&phone, &phone.send(phone.pair_a, ETH)).await;
    // Average 1 ETH: ten times is usual enough, a wei more is not.
    assert!(history(&phone.ingest(&phone.send(phone.pair_a, 10 * ETH)).await).is_empty());
    let big = phone.ingest(&phone.send(phone.pair_a, 10 * ETH + 1)).await;
    assert_eq!(history(&big), ["unusual_value"]);
    let w = big.decoded.warnings.iter().find(|w| w.code() == "unusual_value").unwrap();
    assert!(w.message().contains("1 ETH on average"), "{w}");
    // Each pair has its own usual; calls without value count for nothing.
    assert!(history(&phone.ingest(&phone.send(phone.pair_b, 100 * ETH)).await).is_empty());
    sign(&phone, &approval(&phone, SPENDER)).await;
    assert_eq!(history(&phone.ingest(&phone.send(phone.pair_a, 11 * ETH)).await), ["unusual_value"]);
}

#[tokio::test]
async fn a_pair_idle_for_more_than_30_days_warns() {
    let phone = Phone::new();
    sign(&phone, &phone.send(phone.pair_a, ETH)).await;
    phone.advance(30 * DAY);
    assert!(history(&phone.ingest(&phone.send(phone.pair_a, ETH)).await).is_empty());
    phone.advance(DAY);
    let idle = phone.ingest(&phone.send(phone.pair_a, ETH)).await;
    assert_eq!(history(&idle), ["idle_pair"]);
    assert!(idle.decoded.warnings.iter().any(|w| w.message().contains("31 days")));
    // Pair B never signed: idle since it was paired.
    assert_eq!(history(&phone.ingest(&phone.send(phone.pair_b, ETH)).await), ["idle_pair"]);
    // A request signed now makes the pair active again.
    sign(&phone, &phone.send(phone.pair_a, ETH)).await;
    assert!(history(&phone.ingest(&phone.send(phone.pair_a, ETH)).await).is_empty());
}

#[tokio::test]
async fn block_blocks_at_arrival_and_octane_is_told() {
    let phone = Phone::new();
    set_risk(&phone, RiskRules { first_recipient: RiskAction::Block, ..Default::default() });
    let r = phone.send(phone.pair_a, ETH);
    let view = phone.ingest(&r).await;
    assert_eq!(codes(&view), ["first_recipient"]);
    assert!(view.violations[0].message.contains("You chose to block"), "{:?}", view.violations);
    assert_eq!(phone.rejections(&r), ["guardrail"]);
    assert_eq!(phone.outcome(&r), SignOutcome::Blocked);
    assert!(phone.approve(&r).await.is_err());
    assert!(!phone.asked(&r));
    // "Ask" (the default) only warns.
    set_risk(&phone, RiskRules::default());
    let asked = phone.send(phone.pair_a, ETH);
    let view = phone.ingest(&asked).await;
    assert!(!view.blocked() && history(&view) == ["first_recipient"]);
}

#[tokio::test]
async fn block_chosen_while_a_request_waits_blocks_it_at_approval() {
    let phone = Phone::new();
    let r = approval(&phone, SPENDER);
    assert!(!phone.ingest(&r).await.blocked());
    set_risk(&phone, RiskRules { first_spender: RiskAction::Block, ..Default::default() });
    match phone.approve(&r).await {
        Err(SignError::Blocked(rules)) => assert_eq!(rules, ["first_spender"]),
        other => panic!("approved against the user's rule: {other:?}"),
    }
    assert!(!phone.asked(&r));
    assert_eq!(phone.rejections(&r), ["guardrail"]);
    assert_eq!(phone.outcome(&r), SignOutcome::Blocked);
}
