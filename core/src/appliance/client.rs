//! The phone side of the appliance link: [`ApplianceClient`] implements [`ApplianceApi`]
//! over a [`Connector`] → [`FramedLink`] → Noise KK ([`crate::ble::channel`]) → CBOR
//! requests ([`crate::appliance::proto`]).
//!
//! Every request waits at most [`ClientConfig::request_timeout`] for the next message from
//! the appliance; a keep-alive (`Status{WaitingForUser}`) restarts that wait, so a user
//! deciding on the appliance never times out while a silent appliance does. A message
//! lost in transit (the appliance NACKs a broken request, or the answer arrives broken) is
//! resent on the same connection; when the link fails or falls silent, the client
//! reconnects (a new Noise handshake) and resends. Either way the SAME request id goes out
//! again, at most [`ClientConfig::max_resends`] resends on one connection and
//! [`ClientConfig::max_retries`] reconnects (linear backoff between reconnects); the appliance answers a repeated id with its first result and never acts
//! twice.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use ed25519_dalek::SigningKey;
use tracing::Instrument;
use uuid::Uuid;

use crate::appliance::proto::{Request, RequestBody, Response, ResponseBody, MAX_OWN_FORGETS};
use crate::appliance::{
    ApplianceApi, ApplianceError, ApplianceInfo, ApplianceProgress, ApplianceSignature, PhoneEntry, ProgressFn,
};
use crate::approval::{ApprovalPolicy, ApprovalProof, ApprovalPublicKey};
use crate::ble::channel::{self, ChannelError, PhoneKeys, SecureChannel};
use crate::ble::framing::{FramedLink, FramingConfig, FramingError};
use crate::ble::transport::{Connector, GattError};
use crate::bytes::Key32;
use crate::caip::{AccountId, ChainId};
use crate::decode::DisplayDigest;
use crate::envelope::Domain;
use crate::envelope::SignedEnvelope;
use crate::model::{CountersignedRequest, PhoneForgotten, SignRequest, STATEMENT_VERSION};
use crate::secrets::SecretStore;

pub use crate::ble::channel::BondRecord;

/// The phone's endorsed app signing key from `store` ([`ApplianceError::NotBonded`] when
/// the phone has no keys yet).
pub fn app_signing_key(store: &dyn SecretStore) -> Result<SigningKey, ApplianceError> {
    channel::load_app_key(store)?.ok_or(ApplianceError::NotBonded)
}

/// Timeouts and retry policy of an [`ApplianceClient`].
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Longest silence from the appliance while a request is pending (reset by keep-alives).
    pub request_timeout: Duration,
    /// Time allowed to open the radio link.
    pub connect_timeout: Duration,
    /// Time allowed for each handshake message.
    pub handshake_timeout: Duration,
    /// Reconnect-and-resend attempts after the first try (a failed or silent link).
    pub max_retries: u32,
    /// Resends on the same connection when a message was lost in part (a NACK, or an
    /// answer arriving broken). Cheap and common on a weak radio, hence its own budget;
    /// each waits at most `request_timeout`.
    pub max_resends: u32,
    /// Backoff before retry n is `n × retry_backoff`.
    pub retry_backoff: Duration,
    /// Framing limits and timeouts.
    pub framing: FramingConfig,
    /// Resends within one bonding exchange (per connection).
    pub bond_retry: channel::BondRetry,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            request_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(10),
            handshake_timeout: channel::HANDSHAKE_TIMEOUT,
            max_retries: 3,
            max_resends: 64,
            retry_backoff: Duration::from_millis(200),
            framing: FramingConfig::default(),
            bond_retry: channel::BondRetry::default(),
        }
    }
}

/// One failed attempt: whether resending on the same connection or reconnecting may help.
enum Failure {
    /// A message was lost whole or in part: resend the request on this connection.
    Resend(ApplianceError),
    /// The connection is broken or silent: reconnect, then resend.
    Retry(ApplianceError),
    /// Resending cannot help.
    Fatal(ApplianceError),
}

fn classify(e: ChannelError) -> Failure {
    match e {
        ChannelError::Framing(FramingError::Link(GattError::Timeout)) => Failure::Retry(ApplianceError::Timeout),
        ChannelError::Framing(FramingError::Link(_)) => Failure::Retry(e.into()),
        ChannelError::Framing(FramingError::TooLarge { .. }) => Failure::Fatal(e.into()),
        ChannelError::Framing(_) | ChannelError::PeerLost => Failure::Resend(e.into()),
        e if e.is_transient() => Failure::Retry(e.into()),
        e => Failure::Fatal(e.into()),
    }
}

/// What the phone learnt about its pending request from the appliance's keep-alives.
#[derive(Default)]
struct Seen {
    /// The appliance holds the request (on this connection).
    received: bool,
    /// A keep-alive arrived since the last failure: the link works, resends start afresh.
    progress: bool,
}

/// The phone's client for its bonded appliance.
pub struct ApplianceClient {
    connector: Arc<dyn Connector>,
    bond: BondRecord,
    keys: PhoneKeys,
    cfg: ClientConfig,
    /// The open channel, if any; held for the whole of a request (one request at a time).
    conn: tokio::sync::Mutex<Option<SecureChannel>>,
}

impl std::fmt::Debug for ApplianceClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApplianceClient")
            .field("appliance", &self.bond.appliance_identity.fingerprint())
            .finish_non_exhaustive()
    }
}

impl ApplianceClient {
    /// A client for the bonded appliance; the phone's keys come from `store`
    /// ([`ApplianceError::NotBonded`] when it has none).
    pub fn new(
        connector: Arc<dyn Connector>,
        bond: BondRecord,
        store: &dyn SecretStore,
        cfg: ClientConfig,
    ) -> Result<Self, ApplianceError> {
        let keys = PhoneKeys::load(store)?.ok_or(ApplianceError::NotBonded)?;
        Ok(Self { connector, bond, keys, cfg, conn: tokio::sync::Mutex::new(None) })
    }

    /// The bond this client talks under.
    pub fn bond_record(&self) -> &BondRecord {
        &self.bond
    }

    /// Closes the current connection, if any.
    pub async fn disconnect(&self) {
        if let Some(ch) = self.conn.lock().await.take() {
            ch.close().await;
        }
    }

    async fn open(&self) -> Result<SecureChannel, Failure> {
        let link = match tokio::time::timeout(self.cfg.connect_timeout, self.connector.connect()).await {
            Ok(Ok(l)) => l,
            Ok(Err(e)) => return Err(Failure::Retry(ApplianceError::Link(e))),
            Err(_) => return Err(Failure::Retry(ApplianceError::Link(GattError::Timeout))),
        };
        let framed = Arc::new(FramedLink::new(link, self.cfg.framing.clone()));
        match channel::connect_phone(framed.clone(), &self.keys, &self.bond, self.cfg.handshake_timeout).await {
            Ok(ch) => Ok(ch),
            Err(e) => {
                framed.close().await;
                Err(match e {
                    // A lost handshake message looks like silence: reconnect.
                    e @ (ChannelError::Framing(_) | ChannelError::PeerLost) => match classify(e) {
                        Failure::Resend(e) | Failure::Retry(e) | Failure::Fatal(e) => Failure::Retry(e),
                    },
                    other => classify(other),
                })
            }
        }
    }

    async fn exchange(
        &self,
        ch: &SecureChannel,
        id: Uuid,
        bytes: &[u8],
        progress: &Option<ProgressFn>,
        seen: &mut Seen,
    ) -> Result<ResponseBody, Failure> {
        let cb =
            progress.clone().map(|p| move |sent: usize, total: usize| p(ApplianceProgress::Sending { sent, total }));
        let cb_ref: Option<&(dyn Fn(usize, usize) + Send + Sync)> =
            cb.as_ref().map(|c| c as &(dyn Fn(usize, usize) + Send + Sync));
        ch.send(bytes, cb_ref).await.map_err(classify)?;
        loop {
            let plain = match ch.recv(self.cfg.request_timeout).await {
                Ok(p) => p,
                Err(ChannelError::PeerLost) if seen.received => {
                    // The appliance holds our request (it sent a keep-alive for it): the
                    // broken copy it NACKs is a redundant resend. Resending again would
                    // only feed a resend/NACK cycle; keep waiting for the answer.
                    tracing::debug!("NACK for a redundant copy; waiting");
                    continue;
                }
                Err(e) => return Err(classify(e)),
            };
            let resp = Response::decode(&plain).map_err(|e| Failure::Fatal(ApplianceError::Protocol(e.to_string())))?;
            if resp.id != id {
                tracing::debug!(stale = %resp.id, "ignoring an answer to another request");
                continue;
            }
            match resp.body {
                ResponseBody::Status { .. } => {
                    tracing::debug!("appliance waits for its user");
                    seen.received = true;
                    seen.progress = true;
                    if let Some(p) = progress {
                        p(ApplianceProgress::WaitingForUser);
                    }
                }
                ResponseBody::Error { code, message } => return Err(Failure::Fatal(code.to_appliance_error(message))),
                body => return Ok(body),
            }
        }
    }

    /// Sends one request (retrying with the same id after link failures) and returns the
    /// final answer; appliance errors come back as [`ApplianceError`].
    pub async fn request(
        &self,
        id: Uuid,
        body: RequestBody,
        progress: Option<ProgressFn>,
    ) -> Result<ResponseBody, ApplianceError> {
        let span = tracing::info_span!("appliance.request", op = body.op(), id = %id);
        async move {
            let bytes = Request::new(id, body).encode().map_err(|e| ApplianceError::Protocol(e.to_string()))?;
            let mut conn = self.conn.lock().await;
            let mut attempt: u32 = 0;
            let mut resends: u32 = 0;
            let mut seen = Seen::default();
            loop {
                let result = match conn.as_ref() {
                    Some(ch) => self.exchange(ch, id, &bytes, &progress, &mut seen).await,
                    None => match self.open().await {
                        Ok(ch) => {
                            let r = self.exchange(&ch, id, &bytes, &progress, &mut seen).await;
                            *conn = Some(ch);
                            r
                        }
                        Err(f) => Err(f),
                    },
                };
                if std::mem::take(&mut seen.progress) {
                    // Keep-alives came through: the resend budget counts from here.
                    resends = 0;
                }
                match result {
                    Ok(body) => {
                        tracing::debug!(attempt, "answered");
                        return Ok(body);
                    }
                    Err(Failure::Resend(e)) if resends < self.cfg.max_resends => {
                        // The connection is fine; the same request id goes out again.
                        resends += 1;
                        tracing::debug!(resends, error = %e, "message lost; resending");
                    }
                    Err(Failure::Retry(e)) if attempt < self.cfg.max_retries => {
                        if let Some(ch) = conn.take() {
                            ch.close().await;
                        }
                        seen.received = false;
                        attempt += 1;
                        tracing::warn!(attempt, error = %e, "appliance link failed; reconnecting");
                        if let Some(p) = &progress {
                            p(ApplianceProgress::Reconnecting { attempt });
                        }
                        tokio::time::sleep(self.cfg.retry_backoff * attempt).await;
                    }
                    Err(Failure::Retry(e) | Failure::Resend(e)) => {
                        if let Some(ch) = conn.take() {
                            ch.close().await;
                        }
                        tracing::warn!(error = %e, "appliance request failed after retries");
                        return Err(e);
                    }
                    Err(Failure::Fatal(e)) => {
                        tracing::info!(error = %e, "appliance request failed");
                        return Err(e);
                    }
                }
            }
        }
        .instrument(span)
        .await
    }
}

/// The appliance's signed statement that it forgot a phone, checked by the phone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForgottenReceipt {
    /// The envelope as the appliance signed it (relayed to octane unchanged).
    pub envelope: SignedEnvelope,
    /// What it says.
    pub statement: PhoneForgotten,
}

impl ApplianceClient {
    /// The phones bonded with the appliance, in bonding order, names sanitised for display.
    pub async fn list_phones(&self) -> Result<Vec<PhoneEntry>, ApplianceError> {
        Ok(self.phones_and_own_forgets().await?.0)
    }

    /// The phones bonded with the appliance (as [`Self::list_phones`]) and the statements of
    /// the phones it forgot on its own side, each checked against the bonded identity (for
    /// the phone to relay to octane).
    pub async fn phones_and_own_forgets(&self) -> Result<(Vec<PhoneEntry>, Vec<ForgottenReceipt>), ApplianceError> {
        let (phones, forgotten) = match self.request(Uuid::new_v4(), RequestBody::ListPhones, None).await? {
            ResponseBody::Phones { phones, forgotten } => (phones, forgotten),
            other => return Err(unexpected(&other)),
        };
        if forgotten.len() > MAX_OWN_FORGETS {
            return Err(ApplianceError::Protocol(format!(
                "{} forget statements, more than {MAX_OWN_FORGETS}",
                forgotten.len()
            )));
        }
        let receipts = forgotten
            .into_iter()
            .map(|envelope| {
                let statement = self.check_forgotten(&envelope)?;
                if statement.forgotten_by.is_some() {
                    return Err(ApplianceError::Protocol("a phone-asked forget among the appliance's own".into()));
                }
                Ok(ForgottenReceipt { envelope, statement })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let phones = phones
            .into_iter()
            .map(|p| PhoneEntry { name: crate::display::clean(&p.name, crate::display::TextKind::Name), ..p })
            .collect();
        Ok((phones, receipts))
    }

    /// Opens a `PhoneForgotten` statement under the bonded appliance's identity.
    fn check_forgotten(&self, envelope: &SignedEnvelope) -> Result<PhoneForgotten, ApplianceError> {
        let statement: PhoneForgotten = envelope
            .open(Domain::PhoneForgotten, self.bond.appliance_identity.as_bytes())
            .map_err(|e| ApplianceError::Protocol(format!("the forget statement: {e}")))?;
        if statement.v != STATEMENT_VERSION || statement.appliance_identity != self.bond.appliance_identity {
            return Err(ApplianceError::Protocol("the forget statement names another appliance".into()));
        }
        Ok(statement)
    }

    /// Asks the appliance to forget the phone with `app_key` (its user confirms on the
    /// appliance); returns its signed statement, checked against the bonded identity.
    /// Retried with the same `request_id`, it returns the first statement.
    pub async fn forget_phone(
        &self,
        request_id: Uuid,
        app_key: Key32,
        progress: Option<ProgressFn>,
    ) -> Result<ForgottenReceipt, ApplianceError> {
        let envelope = match self.request(request_id, RequestBody::ForgetPhone { app_key }, progress).await? {
            ResponseBody::Forgotten { statement } => statement,
            other => return Err(unexpected(&other)),
        };
        let statement = self.check_forgotten(&envelope)?;
        if statement.app_key != app_key {
            return Err(ApplianceError::Protocol("the forget statement names another phone".into()));
        }
        Ok(ForgottenReceipt { envelope, statement })
    }
}

fn unexpected(body: &ResponseBody) -> ApplianceError {
    ApplianceError::Protocol(format!("unexpected answer {body:?}"))
}

#[async_trait]
impl ApplianceApi for ApplianceClient {
    async fn info(&self) -> Result<ApplianceInfo, ApplianceError> {
        match self.request(Uuid::new_v4(), RequestBody::GetInfo, None).await? {
            ResponseBody::Info(i) => Ok(i),
            other => Err(unexpected(&other)),
        }
    }

    async fn wallets(&self, chains: &[ChainId]) -> Result<Vec<AccountId>, ApplianceError> {
        let body = RequestBody::ListWallets { chains: chains.to_vec() };
        match self.request(Uuid::new_v4(), body, None).await? {
            ResponseBody::Wallets { accounts } => Ok(accounts),
            other => Err(unexpected(&other)),
        }
    }

    async fn approve_pair(
        &self,
        request_id: Uuid,
        session: &SignedEnvelope,
        validation_code: &str,
        bindings: &[AccountId],
        progress: Option<ProgressFn>,
    ) -> Result<SignedEnvelope, ApplianceError> {
        let body = RequestBody::ApprovePair {
            session: session.clone(),
            validation_code: validation_code.to_string(),
            bindings: bindings.to_vec(),
        };
        match self.request(request_id, body, progress).await? {
            ResponseBody::PairApproved { attestation } => Ok(attestation),
            other => Err(unexpected(&other)),
        }
    }

    async fn sign(
        &self,
        request: &CountersignedRequest,
        progress: Option<ProgressFn>,
    ) -> Result<Vec<u8>, ApplianceError> {
        // The request id is the sign request's own; the appliance verifies it matches.
        let inner: SignRequest = crate::cbor::from_canonical_slice(&request.body)
            .map_err(|e| ApplianceError::Protocol(format!("sign request body: {e}")))?;
        Ok(self.sign_request(inner.request_id, request, None, None, progress).await?.signature)
    }

    async fn sign_request(
        &self,
        request_id: Uuid,
        request: &CountersignedRequest,
        display_digest: Option<DisplayDigest>,
        approval: Option<ApprovalProof>,
        progress: Option<ProgressFn>,
    ) -> Result<ApplianceSignature, ApplianceError> {
        let body = RequestBody::Sign { request: request.clone(), display_digest, approval };
        match self.request(request_id, body, progress).await? {
            ResponseBody::Signature { signature, receipt } => Ok(ApplianceSignature { signature, receipt }),
            other => Err(unexpected(&other)),
        }
    }

    async fn enrol_approval_key(
        &self,
        request_id: Uuid,
        public_key: &ApprovalPublicKey,
        progress: Option<ProgressFn>,
    ) -> Result<(), ApplianceError> {
        let body = RequestBody::EnrolApprovalKey { public_key: public_key.clone() };
        match self.request(request_id, body, progress).await? {
            ResponseBody::ApprovalKeyEnrolled => Ok(()),
            other => Err(unexpected(&other)),
        }
    }

    async fn set_approval_policy(
        &self,
        request_id: Uuid,
        pair_id: Uuid,
        policy: ApprovalPolicy,
        progress: Option<ProgressFn>,
    ) -> Result<ApprovalPolicy, ApplianceError> {
        match self.request(request_id, RequestBody::SetApprovalPolicy { pair_id, policy }, progress).await? {
            ResponseBody::ApprovalPolicySet { pair_id: p, policy } if p == pair_id => Ok(policy),
            other => Err(unexpected(&other)),
        }
    }

    async fn revoke_pair(&self, request_id: Uuid, pair_id: Uuid) -> Result<SignedEnvelope, ApplianceError> {
        match self.request(request_id, RequestBody::RevokePair { pair_id }, None).await? {
            ResponseBody::PairRevoked { revocation } => Ok(revocation),
            other => Err(unexpected(&other)),
        }
    }

    async fn list_pairs(&self) -> Result<Vec<Uuid>, ApplianceError> {
        match self.request(Uuid::new_v4(), RequestBody::ListPairs, None).await? {
            ResponseBody::Pairs { pair_ids } => Ok(pair_ids),
            other => Err(unexpected(&other)),
        }
    }
}

/// Bonds this phone with the appliance `connector` reaches, using the PIN it shows:
/// creates the phone's keys in `store` if needed and returns the bond record to keep.
///
/// One bonding exchange (one PIN try) is made; lost or broken messages are resent within
/// it ([`ClientConfig::bond_retry`]) and a failed link is reopened (at most
/// [`ClientConfig::max_retries`] times) to continue the SAME exchange, which the appliance
/// recognises, so no resend costs a PIN try. A transport failure is never reported as a
/// wrong PIN.
pub async fn bond(
    connector: &dyn Connector,
    pin: &str,
    store: &dyn SecretStore,
    phone_name: &str,
) -> Result<BondRecord, ApplianceError> {
    bond_with_config(connector, pin, store, phone_name, &ClientConfig::default()).await
}

/// [`bond`] with explicit timeouts and retry policy.
pub async fn bond_with_config(
    connector: &dyn Connector,
    pin: &str,
    store: &dyn SecretStore,
    phone_name: &str,
    cfg: &ClientConfig,
) -> Result<BondRecord, ApplianceError> {
    bond_enrolling(connector, pin, store, phone_name, None, cfg).await
}

/// [`bond_with_config`] that also enrols the phone's approval public key with the bond
/// (the appliance then checks this phone's approval proofs with it).
pub async fn bond_enrolling(
    connector: &dyn Connector,
    pin: &str,
    store: &dyn SecretStore,
    phone_name: &str,
    approval_key: Option<ApprovalPublicKey>,
    cfg: &ClientConfig,
) -> Result<BondRecord, ApplianceError> {
    if !channel::is_valid_pin(pin) {
        return Err(ApplianceError::Channel(ChannelError::Malformed("a PIN is six digits".into())));
    }
    let keys = PhoneKeys::load_or_create(store)?;
    let mut exchange = channel::PhoneBondExchange::start_enrolling(pin, approval_key)?;
    let mut attempt: u32 = 0;
    loop {
        // (error, whether a new connection may help)
        let result: Result<BondRecord, (ApplianceError, bool)> =
            match tokio::time::timeout(cfg.connect_timeout, connector.connect()).await {
                Ok(Ok(link)) => {
                    let framed = FramedLink::new(link, cfg.framing.clone());
                    let r = exchange.run(&framed, &keys, phone_name, &cfg.bond_retry).await;
                    framed.close().await;
                    r.map_err(|e| {
                        // Only link trouble is retried; a PIN verdict or a protocol error is final.
                        let link_trouble = matches!(e, ChannelError::Framing(_) | ChannelError::PeerLost);
                        (ApplianceError::from(e), link_trouble)
                    })
                }
                Ok(Err(e)) => Err((ApplianceError::Link(e), true)),
                Err(_) => Err((ApplianceError::Link(GattError::Timeout), true)),
            };
        match result {
            Ok(rec) => return Ok(rec),
            Err((e, true)) if attempt < cfg.max_retries => {
                attempt += 1;
                tracing::warn!(attempt, error = %e, "bonding link failed; reconnecting to continue the same exchange");
                tokio::time::sleep(cfg.retry_backoff * attempt).await;
            }
            Err((e, _)) => return Err(e),
        }
    }
}
