//! The pair engine over fakes ([`crate::fakes`]): every state transition and every error
//! branch, each asserting what a user would notice (the state shown, the error, what is
//! stored, what octane and the appliance were asked).
//!
//! | Branch | Test |
//! |---|---|
//! | `open_link`: link refused (`Link`), nothing stored | `a_refused_link_stores_nothing` |
//! | `open_link` → `LinkOpened` → `SessionLoaded` → `CodeNeeded` (two-device, attempts left) | `two_device_flow_reaches_paired_through_every_state` |
//! | `open_link` → `CodePrefilled` (single-device) → `Paired` with `ReturnTo` | `single_device_flow_pairs_and_returns_to_the_service` |
//! | `open_link`: session already paired here → `Paired`/`Done`, octane not asked | `a_session_already_paired_here_shows_paired_without_octane` |
//! | `open_link`: same session waiting on the appliance → that flow, no new one | `opening_a_session_waiting_on_the_appliance_continues_it` |
//! | `open_link`: same session open elsewhere → the old flow `Failed` (superseded) | `opening_a_session_again_supersedes_the_open_flow` |
//! | `open_link`: the link's code cannot be kept (`Secret`) | `a_secret_store_failure_is_reported` |
//! | `load_session`: octane's signature fails → `Failed` | `a_session_octane_did_not_sign_fails_the_flow` |
//! | `load_session`: octane expired / locked / used / not found → `Expired` / `Failed` | `final_octane_answers_end_the_flow_on_load` |
//! | `load_session`: octane unreachable / timeout → stays `LinkOpened`, resumed later | `an_unreachable_octane_leaves_the_flow_to_resume` |
//! | `load_session`: no chains requested → `Failed` (`bad_session`) | `a_session_asking_for_no_chain_fails` |
//! | `load_session`: unsafe return URL → `Failed` (`return_url_refused`) | `a_session_with_an_unsafe_return_url_fails` |
//! | `load_session`: expired by the clock → `Expired` | `a_session_past_its_expiry_is_expired_on_load` |
//! | `load_session`: status `Expired` / `Locked` / `Paired` / `Rejected` | `final_session_statuses_end_the_flow_on_load` |
//! | `submit_code`: unknown flow, wrong state | `steps_out_of_order_are_refused_with_the_state` |
//! | `submit_code`: not a code (`Code`), no attempt spent | `typing_something_that_is_not_a_code_spends_no_attempt` |
//! | `submit_code`: wrong code → `CodeRejected`, flow open; right code then verifies | `a_wrong_code_leaves_the_flow_open_for_another_try` |
//! | `submit_code`: attempt limit → `SessionLocked`, `Failed`, code wiped | `too_many_wrong_codes_lock_the_session` |
//! | `submit_code`: octane timeout → flow stays `CodeNeeded` | `an_octane_timeout_on_the_code_leaves_the_flow_open` |
//! | `submit_code`: expired by the clock → `Expired` | `every_step_refuses_an_expired_session` |
//! | `submit_code`: prefilled code missing → `Code(Empty)` | `a_prefilled_flow_without_its_code_asks_for_one` |
//! | `approval_list`, `choose_wallets`: appliance failure (`Appliance`) | `an_appliance_failure_while_listing_wallets_is_reported` |
//! | `choose_wallets`: invalid selection (`Selection`), wrong state, expired, re-choice | `wallet_choices_are_checked_against_the_appliance` |
//! | `approve`: request id persisted before asking; appliance timeout → retry with the same id | `an_appliance_timeout_is_retried_with_the_same_request_id` |
//! | `approve`: declined on the appliance → `Rejected`, octane told (even if it fails) | `declined_on_the_appliance_rejects_the_flow` |
//! | `approve`: tampered / wrong-key / wrong-code attestation → `Failed`, secrets wiped | `a_tampered_attestation_fails_the_flow` |
//! | `approve`: code gone → `BadSession`; no appliance identity → `NotBonded` | `approve_needs_the_code_and_the_bonded_appliance` |
//! | `deliver`: octane fails after the attestation is stored (crash point) → resumed without asking the appliance | `a_stored_attestation_is_delivered_without_asking_again` |
//! | `deliver`: octane final answer → `Expired` / `Failed` | `a_final_octane_answer_on_delivery_ends_the_flow` |
//! | `deliver`: octane names another pair id → `Failed` | `octane_naming_another_pair_fails_the_flow` |
//! | `load_attestation`: unreadable stored attestation → appliance asked again (same id) | `an_unreadable_stored_attestation_is_asked_again` |
//! | `details`: stored session edited in the database → refused | `an_edited_stored_session_is_refused` |
//! | `reject`: before / after the code (octane told only after), final flow, attestation held | `declining_on_the_phone` |
//! | `resume_pending`: every stage (link opened, waiting with/without attestation, expired, open) | `resume_continues_each_open_flow_from_where_it_stopped` |
//! | `resume_pending_for`: only the flows of the appliance at hand | `with_several_appliances_each_flow_resumes_with_its_own` |
//! | `state`: a failed flow shows its code and sentence | `a_failed_flow_shows_its_code_and_sentence` |
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::sync::atomic::Ordering;
use std::sync::Mutex;

use ed25519_dalek::SigningKey;

use super::*;
use crate::clock::ManualClock;
use crate::fakes::{ApplianceCall, FakeAppliance, FakeOctane, FakeSecrets, OctaneCall};
use crate::octane::api::SessionStatus;
use crate::secrets::SecretStore;

/// 01:00 UTC on a day in 2027.
const T0: u64 = 1_799_974_800;
const SESSION: &str = "sessionAAAAAAAAAAAAAAAA";
const CODE: &str = "123456";

fn details() -> PairSessionDetails {
    PairSessionDetails {
        v: STATEMENT_VERSION,
        session_id: SESSION.into(),
        sp: SpProfile {
            sp_id: "acme".into(),
            name: "Acme".into(),
            logo_url: "https://acme.example/logo.png".into(),
            homepage: "https://acme.example".into(),
            public_key: Key32([3; 32]),
            allowed_return_origins: vec!["https://acme.example".into()],
        },
        sp_user_ref: "alice".into(),
        requested_chains: vec![ChainId::Evm(1)],
        return_url: None,
        created_at: T0,
        expires_at: T0 + 600,
    }
}

fn link(code: Option<&str>) -> String {
    let code = code.map(|c| ValidationCode::from_ascii_digits(c).unwrap());
    crate::link::PairIntent { session_id: SESSION.into(), code }.render(crate::link::DEFAULT_HOST)
}

/// A phone with a bonded [`FakeAppliance`], a [`FakeOctane`] and a pair engine over them;
/// every state the listener is told is recorded.
struct Phone {
    store: Arc<Store>,
    octane: Arc<FakeOctane>,
    appliance: FakeAppliance,
    secrets: Arc<FakeSecrets>,
    clock: Arc<ManualClock>,
    engine: PairEngine,
    told: Arc<Mutex<Vec<&'static str>>>,
}

impl Phone {
    fn new() -> Phone {
        let store = Arc::new(Store::open_in_memory().unwrap());
        let octane = Arc::new(FakeOctane::default());
        let secrets = Arc::new(FakeSecrets::default());
        let clock = Arc::new(ManualClock::new(T0 + 10));
        let told = Arc::new(Mutex::new(Vec::new()));
        let seen = told.clone();
        let engine =
            PairEngine::new(store.clone(), octane.clone(), secrets.clone(), clock.clone(), LinkConfig::default())
                .with_listener(Some(Arc::new(move |s: &PairState| seen.lock().unwrap().push(s.name()))));
        let appliance = FakeAppliance::default();
        // Bonded: pairs reference the bonded appliance.
        store
            .put_appliance(&crate::store::BondedAppliance {
                identity: appliance.identity_key(),
                static_key: Key32([8; 32]),
                name: "Sigil".into(),
                endorsement: SignedEnvelope { body: vec![1], sig: vec![2; 64] },
                bonded_at: 1,
            })
            .unwrap();
        Phone { store, octane, appliance, secrets, clock, engine, told }
    }

    fn identity(&self) -> Key32 {
        self.appliance.identity_key()
    }

    fn wallet(&self) -> AccountId {
        AccountId::evm(1, self.appliance.address())
    }

    /// Octane answers the next `session` with `d` in `status`, 5 attempts left.
    fn serve(&self, d: &PairSessionDetails, status: SessionStatus) {
        self.octane.sessions.push(Ok(self.octane.loaded(d, status, 5)));
    }

    async fn open(&self, code: Option<&str>) -> Result<PairState, PairError> {
        self.engine.open_link(&link(code), self.identity()).await
    }

    /// A two-device flow opened and served: `CodeNeeded`.
    async fn code_needed(&self) -> Uuid {
        self.serve(&details(), SessionStatus::Open);
        self.open(None).await.unwrap().flow_id()
    }

    async fn code_verified(&self) -> Uuid {
        let flow = self.code_needed().await;
        self.engine.submit_code(flow, Some(CODE)).await.unwrap();
        flow
    }

    async fn wallets_chosen(&self) -> Uuid {
        let flow = self.code_verified().await;
        self.engine.choose_wallets(flow, &[self.wallet()], &self.appliance).await.unwrap();
        flow
    }

    async fn approve(&self, flow: Uuid) -> Result<PairState, PairError> {
        self.engine.approve(flow, &self.appliance, None).await
    }

    fn flow(&self, flow: Uuid) -> FlowRecord {
        self.store.flow(flow).unwrap().unwrap()
    }

    fn stage(&self, flow: Uuid) -> FlowStage {
        self.flow(flow).stage
    }

    fn code_kept(&self, flow: Uuid) -> bool {
        self.secrets.get(&code_secret_name(flow)).unwrap().is_some()
    }

    fn attestation_kept(&self, flow: Uuid) -> bool {
        self.secrets.get(&attestation_secret_name(flow)).unwrap().is_some()
    }

    fn told(&self) -> Vec<&'static str> {
        std::mem::take(&mut *self.told.lock().unwrap())
    }

    fn approvals_asked(&self) -> Vec<Uuid> {
        self.appliance
            .calls()
            .into_iter()
            .filter_map(|c| match c {
                ApplianceCall::ApprovePair(id, ..) => Some(id),
                _ => None,
            })
            .collect()
    }

    fn octane_approvals(&self) -> usize {
        self.octane.count(|c| matches!(c, OctaneCall::ApproveSession(_)))
    }
}

// ---- the happy paths ----

#[tokio::test]
async fn two_device_flow_reaches_paired_through_every_state() {
    let phone = Phone::new();
    phone.serve(&details(), SessionStatus::Open);
    let state = phone.open(None).await.unwrap();
    let PairState::CodeNeeded { flow_id: flow, card, attempts_left } = state else { panic!("{state:?}") };
    assert_eq!((card.sp.name.as_str(), card.sp_user_ref.as_str(), attempts_left), ("Acme", "alice", Some(5)));
    assert_eq!(phone.told(), ["link_opened", "session_loaded", "code_needed"]);
    assert!(!phone.code_kept(flow), "a two-device link carries no code");

    let state = phone.engine.submit_code(flow, Some(CODE)).await.unwrap();
    assert_eq!(state.name(), "code_verified");
    assert!(phone.code_kept(flow), "the code is kept for the appliance, in the secret store");
    assert!(phone.octane.calls().contains(&OctaneCall::CheckCode(SESSION.into(), CODE.into())));

    let list = phone.engine.approval_list(flow, &phone.appliance).await.unwrap();
    assert_eq!(list, approval_list(&[ChainId::Evm(1)], &[phone.wallet()], &[]));
    let state = phone.engine.choose_wallets(flow, &[phone.wallet()], &phone.appliance).await.unwrap();
    assert!(matches!(&state, PairState::WalletsChosen { bindings, .. } if *bindings == [phone.wallet()]));

    let state = phone.approve(flow).await.unwrap();
    let PairState::Paired { pair_id, bindings, outcome, .. } = state else { panic!("{state:?}") };
    assert_eq!((pair_id, outcome), (phone.appliance.pair_id, PairOutcome::Done));
    assert_eq!(bindings, [phone.wallet()]);
    assert_eq!(
        phone.told(),
        ["code_verified", "wallets_chosen", "waiting_for_appliance", "waiting_for_appliance", "paired"]
    );

    let pair = phone.store.pair(pair_id).unwrap().unwrap();
    assert_eq!(
        (pair.status, pair.sp.name.as_str(), pair.bindings.as_slice()),
        (PairStatus::Active, "Acme", &[phone.wallet()][..])
    );
    assert_eq!(pair.appliance_identity, phone.identity());
    assert!(!phone.code_kept(flow) && !phone.attestation_kept(flow), "secrets wiped when the flow ends");
    assert!(phone.flow(flow).attestation.is_none(), "the attestation never reaches SQLite");
    assert_eq!(
        phone.store.last_audit(SESSION, "pair_approved").unwrap().map(|e| e.event.kind()),
        Some("pair_approved")
    );
    // Asked once, with the code the user typed and the chosen wallets.
    let asked = phone.appliance.calls();
    assert!(
        matches!(&asked[..], [ApplianceCall::Wallets, ApplianceCall::Wallets, ApplianceCall::ApprovePair(_, code, b)] if code == CODE && *b == [phone.wallet()])
    );
}

#[tokio::test]
async fn single_device_flow_pairs_and_returns_to_the_service() {
    let phone = Phone::new();
    let d = PairSessionDetails { return_url: Some("https://acme.example/done".into()), ..details() };
    phone.serve(&d, SessionStatus::Open);
    let state = phone.open(Some(CODE)).await.unwrap();
    let flow = state.flow_id();
    assert_eq!(state.name(), "code_prefilled");
    assert!(!phone.flow(flow).link.contains(CODE), "the code never reaches SQLite");
    assert!(phone.code_kept(flow));
    assert_eq!(phone.engine.submit_code(flow, None).await.unwrap().name(), "code_verified");
    phone.engine.choose_wallets(flow, &[phone.wallet()], &phone.appliance).await.unwrap();
    let state = phone.approve(flow).await.unwrap();
    assert!(
        matches!(&state, PairState::Paired { outcome: PairOutcome::ReturnTo { url }, .. } if url == "https://acme.example/done"),
        "{state:?}"
    );
    assert_eq!(phone.engine.state(flow).unwrap(), state, "the stored flow shows the same");
}

// ---- open_link ----

#[tokio::test]
async fn a_refused_link_stores_nothing() {
    let phone = Phone::new();
    let e = phone.engine.open_link("http://sigilvault.xyz/pair?session=x", phone.identity()).await.unwrap_err();
    assert!(matches!(e, PairError::Link(_)) && e.is_rejection(), "{e:?}");
    assert!(phone.store.open_flows().unwrap().is_empty());
    assert!(phone.octane.calls().is_empty());
}

#[tokio::test]
async fn a_session_already_paired_here_shows_paired_without_octane() {
    let phone = Phone::new();
    let d = PairSessionDetails { return_url: Some("https://acme.example/done".into()), ..details() };
    phone.serve(&d, SessionStatus::Open);
    let flow = phone.open(Some(CODE)).await.unwrap().flow_id();
    phone.engine.submit_code(flow, None).await.unwrap();
    phone.engine.choose_wallets(flow, &[phone.wallet()], &phone.appliance).await.unwrap();
    phone.approve(flow).await.unwrap();
    let calls = phone.octane.calls().len();
    // Tapped again: paired, and the return URL is not handed out a second time.
    let again = phone.open(Some(CODE)).await.unwrap();
    assert!(matches!(again, PairState::Paired { flow_id, outcome: PairOutcome::Done, .. } if flow_id == flow));
    assert_eq!(phone.octane.calls().len(), calls, "octane was not asked");
    // Once the pair is revoked, the link opens a new flow (octane then says what it is).
    phone.store.revoke_pair(phone.appliance.pair_id, T0).unwrap();
    phone.serve(&d, SessionStatus::Paired);
    let e = phone.open(None).await.unwrap_err();
    assert!(matches!(e, PairError::SessionUsed), "{e:?}");
}

#[tokio::test]
async fn opening_a_session_waiting_on_the_appliance_continues_it() {
    let phone = Phone::new();
    let flow = phone.wallets_chosen().await;
    phone.appliance.approve.push(Err(ApplianceError::Timeout));
    assert!(matches!(phone.approve(flow).await, Err(PairError::Appliance(ApplianceError::Timeout))));
    let again = phone.open(None).await.unwrap();
    assert_eq!((again.flow_id(), again.name()), (flow, "waiting_for_appliance"));
    assert_eq!(phone.store.open_flows().unwrap().len(), 1, "no second flow");
}

#[tokio::test]
async fn opening_a_session_again_supersedes_the_open_flow() {
    let phone = Phone::new();
    let old = phone.code_needed().await;
    let new = phone.code_needed().await;
    assert_ne!(old, new);
    assert_eq!(phone.stage(old), FlowStage::Failed);
    let shown = phone.engine.state(old).unwrap();
    assert!(matches!(shown, PairState::Failed { code, .. } if code == "superseded"));
    assert_eq!(phone.engine.state(new).unwrap().name(), "code_needed");
}

#[tokio::test]
async fn a_secret_store_failure_is_reported() {
    let phone = Phone::new();
    phone.secrets.fail_puts.store(true, Ordering::SeqCst);
    let e = phone.open(Some(CODE)).await.unwrap_err();
    assert_eq!(e.code(), "secret_store_error");
    assert!(phone.store.open_flows().unwrap().is_empty(), "no flow without its code");
    // After the code is verified, keeping it can fail too: the flow stays where it was.
    phone.secrets.fail_puts.store(false, Ordering::SeqCst);
    let flow = phone.code_needed().await;
    phone.secrets.fail_puts.store(true, Ordering::SeqCst);
    assert!(matches!(phone.engine.submit_code(flow, Some(CODE)).await, Err(PairError::Secret(_))));
    assert_eq!(phone.stage(flow), FlowStage::SessionLoaded);
}

// ---- load_session ----

#[tokio::test]
async fn a_session_octane_did_not_sign_fails_the_flow() {
    let phone = Phone::new();
    phone.octane.sessions.push(Err(OctaneError::BadSignature("the pair session".into())));
    let e = phone.open(None).await.unwrap_err();
    assert_eq!(e.code(), "octane_bad_signature");
    let flow = phone.store.flows_for_session(SESSION).unwrap()[0].flow_id;
    assert_eq!(phone.stage(flow), FlowStage::Failed);
}

#[tokio::test]
async fn final_octane_answers_end_the_flow_on_load() {
    for (answer, stage, code) in [
        (OctaneError::SessionExpired, FlowStage::Expired, "session_expired"),
        (OctaneError::SessionLocked, FlowStage::Failed, "session_locked"),
        (OctaneError::SessionUsed, FlowStage::Failed, "session_used"),
        (OctaneError::NotFound, FlowStage::Failed, "not_found"),
    ] {
        let phone = Phone::new();
        phone.octane.sessions.push(Err(answer));
        let e = phone.open(None).await.unwrap_err();
        assert_eq!(e.code(), code);
        let flow = phone.store.flows_for_session(SESSION).unwrap()[0].flow_id;
        assert_eq!(phone.stage(flow), stage, "{code}");
        assert!(phone.store.open_flows().unwrap().is_empty());
    }
}

#[tokio::test]
async fn an_unreachable_octane_leaves_the_flow_to_resume() {
    let phone = Phone::new();
    phone
        .octane
        .sessions
        .push(Err(OctaneError::Offline(crate::octane::transport::TransportError::Offline("no network".into()))));
    let e = phone.open(None).await.unwrap_err();
    assert_eq!(e.code(), "octane_offline");
    let flow = phone.store.flows_for_session(SESSION).unwrap()[0].flow_id;
    assert_eq!(phone.engine.state(flow).unwrap().name(), "link_opened");
    phone.serve(&details(), SessionStatus::Open);
    let resumed = phone.engine.resume_pending(None).await.unwrap();
    assert_eq!(resumed.len(), 1);
    assert_eq!(resumed[0].as_ref().unwrap().name(), "code_needed");
}

#[tokio::test]
async fn a_session_asking_for_no_chain_fails() {
    let phone = Phone::new();
    phone.serve(&PairSessionDetails { requested_chains: vec![], ..details() }, SessionStatus::Open);
    let e = phone.open(None).await.unwrap_err();
    assert_eq!(e.code(), "bad_session");
    let flow = phone.store.flows_for_session(SESSION).unwrap()[0].flow_id;
    assert_eq!(phone.stage(flow), FlowStage::Failed);
}

#[tokio::test]
async fn a_session_with_an_unsafe_return_url_fails() {
    let phone = Phone::new();
    let d = PairSessionDetails { return_url: Some("https://evil.example/steal".into()), ..details() };
    phone.serve(&d, SessionStatus::Open);
    let e = phone.open(Some(CODE)).await.unwrap_err();
    assert!(matches!(e, PairError::ReturnUrl(_)), "{e:?}");
    let flow = phone.store.flows_for_session(SESSION).unwrap()[0].flow_id;
    assert_eq!(phone.stage(flow), FlowStage::Failed);
    assert!(!phone.code_kept(flow), "the link's code is wiped with the flow");
}

#[tokio::test]
async fn a_session_past_its_expiry_is_expired_on_load() {
    let phone = Phone::new();
    phone.clock.advance(600);
    phone.serve(&details(), SessionStatus::Open);
    assert!(matches!(phone.open(None).await, Err(PairError::SessionExpired)));
    let flow = phone.store.flows_for_session(SESSION).unwrap()[0].flow_id;
    assert_eq!(phone.engine.state(flow).unwrap(), PairState::Expired { flow_id: flow });
}

#[tokio::test]
async fn final_session_statuses_end_the_flow_on_load() {
    for (status, stage, code) in [
        (SessionStatus::Expired, FlowStage::Expired, "session_expired"),
        (SessionStatus::Locked, FlowStage::Failed, "session_locked"),
        (SessionStatus::Paired, FlowStage::Failed, "session_used"),
        (SessionStatus::Rejected, FlowStage::Failed, "session_used"),
    ] {
        let phone = Phone::new();
        phone.serve(&details(), status);
        assert_eq!(phone.open(None).await.unwrap_err().code(), code);
        let flow = phone.store.flows_for_session(SESSION).unwrap()[0].flow_id;
        assert_eq!(phone.stage(flow), stage, "{status:?}");
    }
    // A session whose code was verified elsewhere can still be continued here.
    let phone = Phone::new();
    phone.serve(&details(), SessionStatus::CodeVerified);
    assert_eq!(phone.open(None).await.unwrap().name(), "code_needed");
}

// ---- submit_code ----

#[tokio::test]
async fn steps_out_of_order_are_refused_with_the_state() {
    let phone = Phone::new();
    let e = phone.engine.submit_code(Uuid::new_v4(), Some(CODE)).await.unwrap_err();
    assert!(matches!(e, PairError::UnknownFlow));
    assert!(matches!(phone.engine.state(Uuid::new_v4()), Err(PairError::UnknownFlow)));
    let flow = phone.code_needed().await;
    let e = phone.engine.choose_wallets(flow, &[phone.wallet()], &phone.appliance).await.unwrap_err();
    assert!(matches!(e, PairError::WrongState { action: "choose wallets", state: "code_needed" }), "{e:?}");
    let e = phone.approve(flow).await.unwrap_err();
    assert!(matches!(e, PairError::WrongState { action: "approve", state: "code_needed" }), "{e:?}");
    phone.engine.submit_code(flow, Some(CODE)).await.unwrap();
    let e = phone.engine.submit_code(flow, Some(CODE)).await.unwrap_err();
    assert!(matches!(e, PairError::WrongState { action: "submit a code", state: "code_verified" }), "{e:?}");
}

#[tokio::test]
async fn typing_something_that_is_not_a_code_spends_no_attempt() {
    let phone = Phone::new();
    let flow = phone.code_needed().await;
    let e = phone.engine.submit_code(flow, Some("12a")).await.unwrap_err();
    assert!(matches!(e, PairError::Code(_)) && e.is_rejection(), "{e:?}");
    assert_eq!(phone.octane.count(|c| matches!(c, OctaneCall::CheckCode(..))), 0);
    assert_eq!(phone.stage(flow), FlowStage::SessionLoaded);
}

#[tokio::test]
async fn a_wrong_code_leaves_the_flow_open_for_another_try() {
    let phone = Phone::new();
    let flow = phone.code_needed().await;
    phone.octane.check_code.push(Err(OctaneError::CodeRejected { attempts_left: 2 }));
    let e = phone.engine.submit_code(flow, Some("654321")).await.unwrap_err();
    assert!(matches!(e, PairError::CodeRejected { attempts_left: 2 }), "{e:?}");
    assert_eq!(phone.engine.state(flow).unwrap().name(), "code_needed");
    assert!(!phone.code_kept(flow), "a rejected code is not kept");
    assert_eq!(phone.engine.submit_code(flow, Some(CODE)).await.unwrap().name(), "code_verified");
}

#[tokio::test]
async fn too_many_wrong_codes_lock_the_session() {
    let phone = Phone::new();
    let d = PairSessionDetails { return_url: Some("https://acme.example/done".into()), ..details() };
    phone.serve(&d, SessionStatus::Open);
    let flow = phone.open(Some(CODE)).await.unwrap().flow_id();
    phone.octane.check_code.push(Err(OctaneError::SessionLocked));
    assert!(matches!(phone.engine.submit_code(flow, None).await, Err(PairError::SessionLocked)));
    assert!(matches!(phone.engine.state(flow).unwrap(), PairState::Failed { code, .. } if code == "session_locked"));
    assert!(!phone.code_kept(flow), "the code is wiped");
}

#[tokio::test]
async fn an_octane_timeout_on_the_code_leaves_the_flow_open() {
    let phone = Phone::new();
    let flow = phone.code_needed().await;
    phone.octane.check_code.push(Err(OctaneError::Timeout));
    assert_eq!(phone.engine.submit_code(flow, Some(CODE)).await.unwrap_err().code(), "octane_timeout");
    assert_eq!(phone.engine.state(flow).unwrap().name(), "code_needed");
}

#[tokio::test]
async fn a_prefilled_flow_without_its_code_asks_for_one() {
    let phone = Phone::new();
    let flow = phone.code_needed().await;
    let e = phone.engine.submit_code(flow, None).await.unwrap_err();
    assert!(matches!(e, PairError::Code(CodeError::Empty)), "{e:?}");
}

#[tokio::test]
async fn every_step_refuses_an_expired_session() {
    let phone = Phone::new();
    let flow = phone.code_needed().await;
    phone.clock.advance(600);
    assert!(matches!(phone.engine.submit_code(flow, Some(CODE)).await, Err(PairError::SessionExpired)));
    assert_eq!(phone.engine.state(flow).unwrap().name(), "expired");
    assert_eq!(phone.octane.count(|c| matches!(c, OctaneCall::CheckCode(..))), 0);

    let phone = Phone::new();
    let flow = phone.code_verified().await;
    phone.clock.advance(600);
    let e = phone.engine.choose_wallets(flow, &[phone.wallet()], &phone.appliance).await.unwrap_err();
    assert!(matches!(e, PairError::SessionExpired));
    assert_eq!(phone.stage(flow), FlowStage::Expired);
    assert!(!phone.code_kept(flow));

    let phone = Phone::new();
    let flow = phone.wallets_chosen().await;
    phone.clock.advance(600);
    assert!(matches!(phone.approve(flow).await, Err(PairError::SessionExpired)));
    assert!(phone.approvals_asked().is_empty(), "the appliance was not asked");
}

// ---- wallets ----

#[tokio::test]
async fn an_appliance_failure_while_listing_wallets_is_reported() {
    let phone = Phone::new();
    let flow = phone.code_verified().await;
    phone.appliance.wallets.push(Err(ApplianceError::Timeout));
    let e = phone.engine.approval_list(flow, &phone.appliance).await.unwrap_err();
    assert_eq!(e.code(), "appliance_error");
    phone.appliance.wallets.push(Err(ApplianceError::Timeout));
    let e = phone.engine.choose_wallets(flow, &[phone.wallet()], &phone.appliance).await.unwrap_err();
    assert!(matches!(e, PairError::Appliance(ApplianceError::Timeout)));
    assert_eq!(phone.stage(flow), FlowStage::CodeVerified);
}

#[tokio::test]
async fn wallet_choices_are_checked_against_the_appliance() {
    let phone = Phone::new();
    let flow = phone.code_verified().await;
    let elsewhere = AccountId::evm(1, [0x42; 20]);
    let e = phone.engine.choose_wallets(flow, &[elsewhere], &phone.appliance).await.unwrap_err();
    assert!(matches!(e, PairError::Selection(SelectionError::NotOnAppliance(_))) && e.is_rejection(), "{e:?}");
    let e = phone.engine.choose_wallets(flow, &[], &phone.appliance).await.unwrap_err();
    assert!(matches!(e, PairError::Selection(SelectionError::NothingSelected)), "{e:?}");
    assert_eq!(phone.stage(flow), FlowStage::CodeVerified);
    // Chosen, then chosen again (the user went back): the second choice holds.
    phone.engine.choose_wallets(flow, &[phone.wallet()], &phone.appliance).await.unwrap();
    let other = AccountId::evm(1, [0x43; 20]);
    phone.appliance.wallets.push(Ok(vec![phone.wallet(), other.clone()]));
    let state = phone.engine.choose_wallets(flow, std::slice::from_ref(&other), &phone.appliance).await.unwrap();
    assert!(matches!(state, PairState::WalletsChosen { bindings, .. } if bindings == [other]));
    // Once the appliance was asked, the choice is fixed.
    phone.appliance.approve.push(Err(ApplianceError::Timeout));
    phone.approve(flow).await.unwrap_err();
    let e = phone.engine.choose_wallets(flow, &[phone.wallet()], &phone.appliance).await.unwrap_err();
    assert!(matches!(e, PairError::WrongState { state: "waiting_for_appliance", .. }), "{e:?}");
}

// ---- approve and deliver ----

#[tokio::test]
async fn an_appliance_timeout_is_retried_with_the_same_request_id() {
    let phone = Phone::new();
    let flow = phone.wallets_chosen().await;
    for e in [
        ApplianceError::Timeout,
        ApplianceError::Cancelled,
        ApplianceError::Channel(crate::ble::channel::ChannelError::Decrypt),
    ] {
        phone.appliance.approve.push(Err(e.clone()));
        assert!(matches!(phone.approve(flow).await, Err(PairError::Appliance(got)) if got == e));
        let state = phone.engine.state(flow).unwrap();
        assert!(matches!(state, PairState::WaitingForAppliance { approved_by_appliance: false, .. }), "{state:?}");
    }
    let request_id = phone.flow(flow).approve_request_id.unwrap();
    assert_eq!(phone.approve(flow).await.unwrap().name(), "paired");
    assert_eq!(phone.approvals_asked(), vec![request_id; 4], "one request id for every try");
}

#[tokio::test]
async fn declined_on_the_appliance_rejects_the_flow() {
    let phone = Phone::new();
    let flow = phone.wallets_chosen().await;
    phone.appliance.approve.push(Err(ApplianceError::UserRejected));
    phone.octane.reject_session.push(Err(OctaneError::Timeout));
    let e = phone.approve(flow).await.unwrap_err();
    assert!(matches!(e, PairError::RejectedOnAppliance), "{e:?}");
    assert_eq!(phone.engine.state(flow).unwrap(), PairState::Rejected { flow_id: flow });
    assert!(phone
        .octane
        .calls()
        .contains(&OctaneCall::RejectSession(SESSION.into(), Some("declined on the appliance".into()))));
    assert!(!phone.code_kept(flow));
    let audit = phone.store.last_audit(SESSION, "pair_rejected").unwrap().unwrap();
    assert_eq!(audit.event, AuditEvent::PairRejected { by: Actor::Appliance });
    assert!(phone.store.pairs().unwrap().is_empty());
}

/// Makes the attestation an appliance answers with.
type Forge = Box<dyn Fn(&Phone) -> SignedEnvelope>;

#[tokio::test]
async fn a_tampered_attestation_fails_the_flow() {
    let impostor = SigningKey::from_bytes(&[0x66; 32]);
    let cases: Vec<(&str, Forge)> = vec![
        (
            "signature",
            Box::new(|p: &Phone| {
                let mut env = p.appliance.attestation(&p.flow_session(), CODE, &[p.wallet()], &p.appliance.identity);
                env.sig[0] ^= 1;
                env
            }),
        ),
        (
            "signature",
            Box::new(move |p: &Phone| p.appliance.attestation(&p.flow_session(), CODE, &[p.wallet()], &impostor)),
        ),
        (
            "validation code differs",
            Box::new(|p: &Phone| {
                p.appliance.attestation(&p.flow_session(), "000000", &[p.wallet()], &p.appliance.identity)
            }),
        ),
        (
            "bindings differs",
            Box::new(|p: &Phone| {
                p.appliance.attestation(&p.flow_session(), CODE, &[AccountId::evm(1, [9; 20])], &p.appliance.identity)
            }),
        ),
    ];
    for (what, make) in cases {
        let phone = Phone::new();
        let flow = phone.wallets_chosen().await;
        phone.appliance.approve.push(Ok(make(&phone)));
        let e = phone.approve(flow).await.unwrap_err();
        assert!(matches!(&e, PairError::BadAttestation(r) if r.contains(what)), "{what}: {e:?}");
        assert!(
            matches!(phone.engine.state(flow).unwrap(), PairState::Failed { code, .. } if code == "bad_attestation")
        );
        assert_eq!(phone.octane_approvals(), 0, "{what}: octane never saw it");
        assert!(!phone.code_kept(flow) && !phone.attestation_kept(flow));
        assert!(phone.store.pairs().unwrap().is_empty());
    }
}

impl Phone {
    /// The stored session envelope of the only flow.
    fn flow_session(&self) -> SignedEnvelope {
        self.store.flows_for_session(SESSION).unwrap()[0].session.clone().unwrap()
    }
}

#[tokio::test]
async fn approve_needs_the_code_and_the_bonded_appliance() {
    let phone = Phone::new();
    let flow = phone.wallets_chosen().await;
    phone.secrets.delete(&code_secret_name(flow)).unwrap();
    let e = phone.approve(flow).await.unwrap_err();
    assert!(matches!(&e, PairError::BadSession(r) if r.contains("code")), "{e:?}");

    let phone = Phone::new();
    let flow = phone.wallets_chosen().await;
    let mut record = phone.flow(flow);
    record.appliance_identity = None;
    phone.store.put_flow(&record).unwrap();
    assert!(matches!(phone.approve(flow).await, Err(PairError::NotBonded)));
    assert!(phone.approvals_asked().is_empty());
}

#[tokio::test]
async fn a_stored_attestation_is_delivered_without_asking_again() {
    let phone = Phone::new();
    let flow = phone.wallets_chosen().await;
    // The appliance approved; octane cannot be reached (as if the app died here).
    phone
        .octane
        .approve
        .push(Err(OctaneError::Offline(crate::octane::transport::TransportError::Offline("no network".into()))));
    assert_eq!(phone.approve(flow).await.unwrap_err().code(), "octane_offline");
    let state = phone.engine.state(flow).unwrap();
    assert!(matches!(state, PairState::WaitingForAppliance { approved_by_appliance: true, .. }), "{state:?}");
    assert!(phone.attestation_kept(flow), "kept in the secret store");
    assert!(phone.flow(flow).attestation.is_none(), "never in SQLite");
    // Restarted: resume delivers it; the appliance is not asked a second time.
    let resumed = phone.engine.resume_pending(Some(&phone.appliance)).await.unwrap();
    assert_eq!(resumed[0].as_ref().unwrap().name(), "paired");
    assert_eq!(phone.approvals_asked().len(), 1);
    assert_eq!(phone.octane_approvals(), 2);
    // Approve called again after that is refused for the state it is in.
    assert!(matches!(phone.approve(flow).await, Err(PairError::WrongState { state: "paired", .. })));
}

#[tokio::test]
async fn a_final_octane_answer_on_delivery_ends_the_flow() {
    for (answer, state) in [
        (OctaneError::SessionExpired, "expired"),
        (OctaneError::SessionUsed, "failed"),
        (OctaneError::SessionLocked, "failed"),
        (OctaneError::NotFound, "failed"),
    ] {
        let phone = Phone::new();
        let flow = phone.wallets_chosen().await;
        phone.octane.approve.push(Err(answer.clone()));
        phone.approve(flow).await.unwrap_err();
        assert_eq!(phone.engine.state(flow).unwrap().name(), state, "{answer:?}");
        assert!(!phone.attestation_kept(flow));
        assert!(phone.store.pairs().unwrap().is_empty());
    }
}

#[tokio::test]
async fn octane_naming_another_pair_fails_the_flow() {
    let phone = Phone::new();
    let flow = phone.wallets_chosen().await;
    phone.octane.approve.push(Ok(Uuid::new_v4()));
    let e = phone.approve(flow).await.unwrap_err();
    assert!(matches!(&e, PairError::Octane(OctaneError::Protocol(m)) if m.contains("another pair id")), "{e:?}");
    assert_eq!(phone.stage(flow), FlowStage::Failed);
    assert!(phone.store.pairs().unwrap().is_empty());
}

#[tokio::test]
async fn an_unreadable_stored_attestation_is_asked_again() {
    let phone = Phone::new();
    let flow = phone.wallets_chosen().await;
    phone.octane.approve.push(Err(OctaneError::Timeout));
    phone.approve(flow).await.unwrap_err();
    phone.secrets.put(&attestation_secret_name(flow), b"not json").unwrap();
    let state = phone.engine.state(flow).unwrap();
    assert!(matches!(state, PairState::WaitingForAppliance { approved_by_appliance: false, .. }), "{state:?}");
    assert_eq!(phone.approve(flow).await.unwrap().name(), "paired");
    let asked = phone.approvals_asked();
    assert_eq!(asked.len(), 2);
    assert_eq!(asked[0], asked[1], "the same request id: the appliance answers as the first time");
}

#[tokio::test]
async fn an_edited_stored_session_is_refused() {
    let phone = Phone::new();
    let flow = phone.code_verified().await;
    let mut record = phone.flow(flow);
    let edited = PairSessionDetails { sp_user_ref: "mallory".into(), ..details() };
    let forged = SignedEnvelope::seal(Domain::OctaneSession, &SigningKey::from_bytes(&[0x77; 32]), &edited).unwrap();
    record.session = Some(forged);
    phone.store.put_flow(&record).unwrap();
    let e = phone.engine.choose_wallets(flow, &[phone.wallet()], &phone.appliance).await.unwrap_err();
    assert_eq!(e.code(), "octane_bad_signature");
    assert!(phone.engine.state(flow).is_err(), "the edited card is never shown");
}

// ---- reject ----

#[tokio::test]
async fn declining_on_the_phone() {
    // Before the code: octane is not told (it only takes it from the app that proved it).
    let phone = Phone::new();
    let flow = phone.code_needed().await;
    assert_eq!(phone.engine.reject(flow).await.unwrap(), PairState::Rejected { flow_id: flow });
    assert_eq!(phone.octane.count(|c| matches!(c, OctaneCall::RejectSession(..))), 0);
    assert_eq!(
        phone.store.last_audit(SESSION, "pair_rejected").unwrap().unwrap().event,
        AuditEvent::PairRejected { by: Actor::Phone }
    );
    // Rejecting a finished flow shows it as it is.
    assert_eq!(phone.engine.reject(flow).await.unwrap().name(), "rejected");

    // After the code: octane is told; a failure to tell it does not keep the flow open.
    let phone = Phone::new();
    let flow = phone.code_verified().await;
    phone
        .octane
        .reject_session
        .push(Err(OctaneError::Offline(crate::octane::transport::TransportError::Offline("down".into()))));
    assert_eq!(phone.engine.reject(flow).await.unwrap().name(), "rejected");
    assert!(phone
        .octane
        .calls()
        .contains(&OctaneCall::RejectSession(SESSION.into(), Some("declined on the phone".into()))));
    assert!(!phone.code_kept(flow));

    // The appliance already approved: too late to decline on the phone.
    let phone = Phone::new();
    let flow = phone.wallets_chosen().await;
    phone.octane.approve.push(Err(OctaneError::Timeout));
    phone.approve(flow).await.unwrap_err();
    let e = phone.engine.reject(flow).await.unwrap_err();
    assert!(matches!(e, PairError::WrongState { action: "reject", .. }), "{e:?}");
}

// ---- resume ----

#[tokio::test]
async fn resume_continues_each_open_flow_from_where_it_stopped() {
    let phone = Phone::new();
    // Waiting on the appliance, never answered: retried with the same id when an appliance
    // is at hand, left waiting otherwise.
    let flow = phone.wallets_chosen().await;
    phone.appliance.approve.push(Err(ApplianceError::Timeout));
    phone.approve(flow).await.unwrap_err();
    let waiting = phone.engine.resume_pending(None).await.unwrap();
    assert_eq!(waiting[0].as_ref().unwrap().name(), "waiting_for_appliance");
    let resumed = phone.engine.resume_pending(Some(&phone.appliance)).await.unwrap();
    assert_eq!(resumed[0].as_ref().unwrap().name(), "paired");
    assert!(phone.engine.resume_pending(None).await.unwrap().is_empty(), "nothing left open");

    // An open flow is shown as it is, or closed when it expired meanwhile.
    let phone = Phone::new();
    let flow = phone.code_verified().await;
    assert_eq!(phone.engine.resume_pending(None).await.unwrap()[0].as_ref().unwrap().name(), "code_verified");
    phone.clock.advance(600);
    let resumed = phone.engine.resume_pending(None).await.unwrap();
    assert!(matches!(resumed[0], Err(PairError::SessionExpired)));
    assert_eq!(phone.stage(flow), FlowStage::Expired);
    assert!(!phone.code_kept(flow));
}

#[tokio::test]
async fn with_several_appliances_each_flow_resumes_with_its_own() {
    let phone = Phone::new();
    // A second appliance, bonded too.
    let office = FakeAppliance::new(SigningKey::from_bytes(&[9; 32]), Uuid::from_bytes([0xb; 16]));
    phone
        .store
        .put_appliance(&crate::store::BondedAppliance {
            identity: office.identity_key(),
            static_key: Key32([7; 32]),
            name: "Office".into(),
            endorsement: SignedEnvelope { body: vec![1], sig: vec![2; 64] },
            bonded_at: 2,
        })
        .unwrap();
    // One flow waits on each appliance (neither answered).
    let kitchen_flow = phone.wallets_chosen().await;
    phone.appliance.approve.push(Err(ApplianceError::Timeout));
    phone.approve(kitchen_flow).await.unwrap_err();
    let d = PairSessionDetails { session_id: "sessionBBBBBBBBBBBBBBBB".into(), ..details() };
    phone.serve(&d, SessionStatus::Open);
    let link =
        crate::link::PairIntent { session_id: d.session_id.clone(), code: None }.render(crate::link::DEFAULT_HOST);
    let office_flow = phone.engine.open_link(&link, office.identity_key()).await.unwrap().flow_id();
    phone.engine.submit_code(office_flow, Some(CODE)).await.unwrap();
    phone.engine.choose_wallets(office_flow, &[phone.wallet()], &office).await.unwrap();
    office.approve.push(Err(ApplianceError::Timeout));
    phone.engine.approve(office_flow, &office, None).await.unwrap_err();

    // The office's appliance at hand: only its flow resumes, with it.
    let resumed = phone.engine.resume_pending_for(&office.identity_key(), Some(&office)).await.unwrap();
    assert_eq!(resumed.len(), 1);
    assert!(matches!(resumed[0], Ok(PairState::Paired { flow_id, .. }) if flow_id == office_flow));
    assert_eq!(phone.stage(kitchen_flow), FlowStage::WaitingForAppliance);
    assert_eq!(phone.approvals_asked().len(), 1, "the kitchen's appliance was not asked again");
    let resumed = phone.engine.resume_pending_for(&phone.identity(), Some(&phone.appliance)).await.unwrap();
    assert!(matches!(resumed[..], [Ok(PairState::Paired { flow_id, .. })] if flow_id == kitchen_flow));
}

#[tokio::test]
async fn a_failed_flow_shows_its_code_and_sentence() {
    let phone = Phone::new();
    phone.serve(&details(), SessionStatus::Locked);
    phone.open(None).await.unwrap_err();
    let flow = phone.store.flows_for_session(SESSION).unwrap()[0].flow_id;
    let PairState::Failed { code, error, .. } = phone.engine.state(flow).unwrap() else { panic!() };
    assert_eq!(code, "session_locked");
    assert_eq!(error, PairError::SessionLocked.to_string());
}
