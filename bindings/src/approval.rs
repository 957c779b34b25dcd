//! Approvals the appliance can verify, through the FFI: the platform's biometric-bound
//! approval key as a foreign trait ([`ApprovalKey`], with its errors [`ApprovalKeyError`]),
//! its adapter to the core's port ([`ForeignApprovalKey`]), the per-pair approval policy
//! the appliance holds ([`ApprovalPolicyView`]) and the calls that change what the
//! appliance holds (`enrol_approval_key`, `set_approval_policy`), both confirmed by the
//! appliance's user. See `docs/signing.md` ("Approvals the appliance can verify"),
//! `docs/embedding.md` and ADR 0029.

use std::sync::Arc;

use sunstorm_core::approval::{
    ApprovalKey as CoreApprovalKey, ApprovalKeyError as CoreKeyError, ApprovalPolicy, ApprovalPublicKey,
    MAX_APPROVAL_SIGNATURE_LEN,
};
use uuid::Uuid;

use crate::appliance::parse_appliance_id;
use crate::cancel::CancelHandle;
use crate::error::SunstormError;
use crate::sunstorm::SunstormCore;

/// Why the platform approval key could not give its public key or sign (thrown by the
/// platform's implementation). Each reaches the app as its own `SunstormError`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, uniffi::Error)]
#[uniffi::export(Display)]
pub enum ApprovalKeyError {
    /// The user dismissed the biometric prompt (or the app cancelled it).
    #[error("the approval was cancelled at the biometric prompt")]
    Cancelled,
    /// Too many failed attempts: the platform locked biometrics (Android
    /// `ERROR_LOCKOUT`/`ERROR_LOCKOUT_PERMANENT`, iOS `LAError.biometryLockout`).
    #[error("biometrics are locked after too many attempts")]
    LockedOut,
    /// The key was invalidated because biometrics were added or removed (Android
    /// `KeyPermanentlyInvalidatedException`, iOS `.biometryCurrentSet`). The
    /// implementation deletes it, so that the next `public_key` creates a new one, which
    /// the app enrols with `enrol_approval_key`.
    #[error("the approval key was invalidated by a change of biometrics")]
    KeyInvalidated,
    /// No biometrics are enrolled on the phone (or the hardware is absent).
    #[error("no biometrics are enrolled on this phone")]
    NoBiometrics,
    /// Any other failure of the platform key.
    #[error("the approval key failed: {reason}")]
    Failed {
        /// The platform's reason.
        reason: String,
    },
}

impl From<uniffi::UnexpectedUniFFICallbackError> for ApprovalKeyError {
    fn from(e: uniffi::UnexpectedUniFFICallbackError) -> Self {
        ApprovalKeyError::Failed { reason: format!("unexpected error from the approval key: {}", e.reason) }
    }
}

impl From<ApprovalKeyError> for CoreKeyError {
    fn from(e: ApprovalKeyError) -> Self {
        match e {
            ApprovalKeyError::Cancelled => CoreKeyError::Cancelled,
            ApprovalKeyError::LockedOut => CoreKeyError::LockedOut,
            ApprovalKeyError::KeyInvalidated => CoreKeyError::KeyInvalidated,
            ApprovalKeyError::NoBiometrics => CoreKeyError::NoBiometrics,
            ApprovalKeyError::Failed { reason } => CoreKeyError::Other(reason),
        }
    }
}

/// The platform's approval key: a P-256 key in the Android Keystore (StrongBox when
/// available) or the Secure Enclave that can be used only after a biometric check, every
/// time, and that the platform invalidates when biometrics change. The appliance checks
/// its signature over each request and the screen the user approved (ADR 0029).
///
/// Synchronous (ADR 0009): the core calls it from a worker thread and waits; `sign`
/// blocks while the platform shows its biometric prompt.
#[uniffi::export(with_foreign)]
pub trait ApprovalKey: Send + Sync {
    /// The key's public half, SEC1 uncompressed (`0x04 || x || y`, 65 bytes). Creates the
    /// key when there is none (first use, or after `sign` reported `KeyInvalidated` and
    /// the implementation deleted it). Needs no biometric check.
    fn public_key(&self) -> Result<Vec<u8>, ApprovalKeyError>;

    /// After the user's biometric check, signs `message` with ECDSA P-256 over its
    /// SHA-256 (the platform hashes: Android `SHA256withECDSA`, iOS
    /// `.ecdsaSignatureMessageX962SHA256`) and returns the DER signature. Blocks until the
    /// user answers the prompt.
    fn sign(&self, message: Vec<u8>) -> Result<Vec<u8>, ApprovalKeyError>;
}

/// The core's approval-key port over the platform's [`ApprovalKey`]: maps its errors and
/// checks what it returns (a P-256 public key, a signature no longer than DER allows)
/// before the core uses it.
pub struct ForeignApprovalKey {
    inner: Arc<dyn ApprovalKey>,
}

impl ForeignApprovalKey {
    /// Wraps the platform's key.
    pub fn new(inner: Arc<dyn ApprovalKey>) -> Self {
        Self { inner }
    }
}

impl CoreApprovalKey for ForeignApprovalKey {
    fn public_key(&self) -> Result<Vec<u8>, CoreKeyError> {
        let key = self.inner.public_key()?;
        if !ApprovalPublicKey(key.clone()).is_valid() {
            return Err(CoreKeyError::Other(format!(
                "the platform's approval key is not an uncompressed SEC1 P-256 public key ({} bytes)",
                key.len()
            )));
        }
        Ok(key)
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, CoreKeyError> {
        let sig = self.inner.sign(message.to_vec())?;
        if sig.is_empty() || sig.len() > MAX_APPROVAL_SIGNATURE_LEN {
            return Err(CoreKeyError::Other(format!(
                "the platform's approval key returned a {}-byte signature (DER ECDSA P-256 is at most {MAX_APPROVAL_SIGNATURE_LEN})",
                sig.len()
            )));
        }
        Ok(sig)
    }
}

/// When the appliance asks for the phone's approval proof before signing for a pair. The
/// appliance holds it per pair and changes it only with its user's confirmation
/// (`set_approval_policy`); a pair made from a phone with an approval key starts at
/// `Always`, others at `Never`.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum ApprovalPolicyView {
    /// Every signature needs a valid proof.
    Always,
    /// Only requests that can move more than `native` (value plus worst-case fee) need a
    /// valid proof.
    Above {
        /// The threshold (exclusive) in the chain's smallest unit (wei, lamports), as
        /// decimal digits (`"50000000000000000"` for 0.05 ETH).
        native: String,
    },
    /// No proof is needed (one that is sent is still checked).
    Never,
}

impl From<ApprovalPolicy> for ApprovalPolicyView {
    fn from(p: ApprovalPolicy) -> Self {
        match p {
            ApprovalPolicy::Always => ApprovalPolicyView::Always,
            ApprovalPolicy::Above { native } => ApprovalPolicyView::Above { native: native.to_string() },
            ApprovalPolicy::Never => ApprovalPolicyView::Never,
        }
    }
}

impl TryFrom<ApprovalPolicyView> for ApprovalPolicy {
    type Error = SunstormError;

    fn try_from(v: ApprovalPolicyView) -> Result<Self, SunstormError> {
        Ok(match v {
            ApprovalPolicyView::Always => ApprovalPolicy::Always,
            ApprovalPolicyView::Never => ApprovalPolicy::Never,
            ApprovalPolicyView::Above { native } => {
                let digits = native.trim();
                let ok = !digits.is_empty() && digits.len() <= 39 && digits.bytes().all(|b| b.is_ascii_digit());
                let value = if ok { digits.parse::<u128>().ok() } else { None };
                let native = value.ok_or_else(|| SunstormError::InvalidSelection {
                    reason: "the approval threshold must be a whole number of the chain's smallest unit (e.g. wei)"
                        .into(),
                })?;
                ApprovalPolicy::Above { native }
            }
        })
    }
}

fn parse_pair_id(id: &str) -> Result<Uuid, SunstormError> {
    Uuid::parse_str(id.trim()).map_err(|_| {
        tracing::warn!(target: "sunstorm_ffi", "malformed pair id passed by the app");
        SunstormError::NotFound
    })
}

/// The error for a call that needs the approval key when the core was created without one.
fn no_approval_key() -> SunstormError {
    SunstormError::InvalidConfig { reason: "the core was created without an approval key".into() }
}

#[uniffi::export(async_runtime = "tokio")]
impl SunstormCore {
    /// Whether the core was created with an approval key (then every sign approval asks
    /// it, and its biometric prompt is the presence check).
    pub fn has_approval_key(&self) -> bool {
        self.approval_key.is_some()
    }

    /// The approval key's fingerprint (16 hex digits: the first 8 bytes of the SHA-256 of
    /// its public key), the one the appliance shows when the key is enrolled: the user can
    /// compare them. Creates the key when there is none (no biometric check).
    pub async fn approval_key_fingerprint(&self) -> Result<String, SunstormError> {
        let key = self.approval_key.clone().ok_or_else(no_approval_key)?;
        self.run(None, async move {
            let public = crate::blocking::on_blocking_pool(move || key.public_key())
                .await
                .map_err(|e| SunstormError::internal(format!("approval key task failed: {e}")))?
                .map_err(SunstormError::from)?;
            Ok(ApprovalPublicKey(public).fingerprint())
        })
        .await
    }

    /// Enrols the approval key's current public key with appliance `appliance_id` (may be
    /// omitted when one is bonded, else `ChooseAppliance`); the person at the appliance
    /// confirms (it shows the key's fingerprint). Needed after `ApprovalKeyInvalidated`:
    /// the platform made a new key, and until the appliance holds it, the pairs that ask
    /// for proofs refuse this phone's approvals (`approval_invalid`). The first key is
    /// enrolled while bonding. `ApplianceDeclined` when declined there; `InvalidConfig`
    /// without an approval key.
    #[uniffi::method(default(appliance_id = None, cancel = None))]
    pub async fn enrol_approval_key(
        &self,
        appliance_id: Option<String>,
        cancel: Option<Arc<CancelHandle>>,
    ) -> Result<(), SunstormError> {
        if self.approval_key.is_none() {
            return Err(no_approval_key());
        }
        let id = parse_appliance_id(appliance_id.as_deref())?;
        let s = self.facade.clone();
        self.run(cancel, async move {
            tracing::info!(target: "sunstorm_ffi::approval", "enrolling the approval key");
            Ok(s.enrol_approval_key(id.as_ref()).await?)
        })
        .await
    }

    /// Asks the appliance of pair `pair_id` to hold `policy` for it; the person at the
    /// appliance confirms (it shows the old and new policy). Returns the policy the
    /// appliance now holds. `ApplianceDeclined` when declined there (the old policy
    /// stays); `InvalidSelection` for a threshold that is not a whole number.
    #[uniffi::method(default(cancel = None))]
    pub async fn set_approval_policy(
        &self,
        pair_id: String,
        policy: ApprovalPolicyView,
        cancel: Option<Arc<CancelHandle>>,
    ) -> Result<ApprovalPolicyView, SunstormError> {
        let pair = parse_pair_id(&pair_id)?;
        let policy = ApprovalPolicy::try_from(policy)?;
        let s = self.facade.clone();
        self.run(cancel, async move {
            tracing::info!(target: "sunstorm_ffi::approval", policy = policy.as_str(), "asking for an approval policy");
            Ok(ApprovalPolicyView::from(s.set_approval_policy(pair, policy).await?))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use sunstorm_core::approval::{ApprovalProof, ApprovalStatement, SoftwareApprovalKey};
    use sunstorm_core::secrets::MemorySecretStore;

    /// A platform key over the core's software key, failing with `error` when set.
    struct ScriptedKey {
        key: SoftwareApprovalKey,
        error: Mutex<Option<ApprovalKeyError>>,
        public: Mutex<Option<Vec<u8>>>,
        signature: Mutex<Option<Vec<u8>>>,
    }

    impl ScriptedKey {
        fn new() -> Self {
            let key = SoftwareApprovalKey::create(&MemorySecretStore::default()).unwrap();
            Self { key, error: Mutex::new(None), public: Mutex::new(None), signature: Mutex::new(None) }
        }
    }

    impl ApprovalKey for ScriptedKey {
        fn public_key(&self) -> Result<Vec<u8>, ApprovalKeyError> {
            if let Some(p) = self.public.lock().unwrap().clone() {
                return Ok(p);
            }
            CoreApprovalKey::public_key(&self.key).map_err(|e| ApprovalKeyError::Failed { reason: e.to_string() })
        }
        fn sign(&self, message: Vec<u8>) -> Result<Vec<u8>, ApprovalKeyError> {
            if let Some(e) = self.error.lock().unwrap().clone() {
                return Err(e);
            }
            if let Some(s) = self.signature.lock().unwrap().clone() {
                return Ok(s);
            }
            CoreApprovalKey::sign(&self.key, &message).map_err(|e| ApprovalKeyError::Failed { reason: e.to_string() })
        }
    }

    #[test]
    fn the_platform_key_signs_proofs_the_appliance_verifies() {
        let platform = Arc::new(ScriptedKey::new());
        let key = ForeignApprovalKey::new(platform.clone());
        let public = ApprovalPublicKey(key.public_key().unwrap());
        let statement = ApprovalStatement {
            v: 1,
            request_id: Uuid::from_u128(1),
            pair_id: Uuid::from_u128(2),
            payload_sha256: sunstorm_core::bytes::Key32([3; 32]),
            display_digest: sunstorm_core::decode::DisplayDigest([4; 32]),
        };
        let message = statement.message().unwrap();
        let proof = ApprovalProof { signature: key.sign(&message).unwrap() };
        assert!(sunstorm_core::approval::verify_proof(&public, &statement, &proof));
    }

    #[test]
    fn each_platform_failure_keeps_its_own_meaning() {
        let platform = Arc::new(ScriptedKey::new());
        let key = ForeignApprovalKey::new(platform.clone());
        for (thrown, seen) in [
            (ApprovalKeyError::Cancelled, CoreKeyError::Cancelled),
            (ApprovalKeyError::LockedOut, CoreKeyError::LockedOut),
            (ApprovalKeyError::KeyInvalidated, CoreKeyError::KeyInvalidated),
            (ApprovalKeyError::NoBiometrics, CoreKeyError::NoBiometrics),
            (ApprovalKeyError::Failed { reason: "keystore".into() }, CoreKeyError::Other("keystore".into())),
        ] {
            *platform.error.lock().unwrap() = Some(thrown);
            assert_eq!(key.sign(b"m"), Err(seen));
        }
        let odd = ApprovalKeyError::from(uniffi::UnexpectedUniFFICallbackError::new("IllegalStateException"));
        assert!(matches!(odd, ApprovalKeyError::Failed { ref reason } if reason.contains("IllegalStateException")));
    }

    #[test]
    fn what_the_platform_returns_is_checked_before_use() {
        let platform = Arc::new(ScriptedKey::new());
        let key = ForeignApprovalKey::new(platform.clone());
        // An X.509 SubjectPublicKeyInfo (what Android's `PublicKey.encoded` gives) is not SEC1.
        *platform.public.lock().unwrap() = Some(vec![0x30; 91]);
        assert!(matches!(key.public_key(), Err(CoreKeyError::Other(r)) if r.contains("SEC1")));
        *platform.signature.lock().unwrap() = Some(vec![0x30; 200]);
        assert!(matches!(key.sign(b"m"), Err(CoreKeyError::Other(r)) if r.contains("200-byte")));
        *platform.signature.lock().unwrap() = Some(Vec::new());
        assert!(key.sign(b"m").is_err());
    }

    #[test]
    fn policies_cross_the_ffi_both_ways_and_bad_thresholds_are_refused() {
        for p in [ApprovalPolicy::Always, ApprovalPolicy::Never, ApprovalPolicy::Above { native: u128::MAX }] {
            assert_eq!(ApprovalPolicy::try_from(ApprovalPolicyView::from(p)).unwrap(), p);
        }
        let above = |s: &str| ApprovalPolicy::try_from(ApprovalPolicyView::Above { native: s.into() });
        assert_eq!(above(" 50000000000000000 ").unwrap(), ApprovalPolicy::Above { native: 50_000_000_000_000_000 });
        for bad in ["", "0.05", "-1", "1e18", "340282366920938463463374607431768211456", "١٢"] {
            assert!(matches!(above(bad), Err(SunstormError::InvalidSelection { .. })), "{bad}");
        }
    }
}
