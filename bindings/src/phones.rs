//! The phones bonded with an appliance, and forgetting one (a lost phone), over the core's
//! [`Sunstorm::bonded_phones`](sunstorm_core::sunstorm::Sunstorm::bonded_phones) and
//! [`Sunstorm::forget_phone`](sunstorm_core::sunstorm::Sunstorm::forget_phone).

use std::sync::Arc;

use sunstorm_core::appliance::PhoneEntry;
use sunstorm_core::bytes::Key32;
use sunstorm_core::sunstorm::ForgottenPhone;

use crate::appliance::parse_appliance_id;
use crate::cancel::CancelHandle;
use crate::error::SunstormError;
use crate::sunstorm::SunstormCore;
use crate::views::unix;

/// One phone bonded with an appliance, as the appliance lists it.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct BondedPhoneView {
    /// The phone's app key (64 hex characters): pass it to `forget_phone`.
    pub app_key: String,
    /// Short fingerprint of the app key, for telling phones with the same name apart.
    pub fingerprint: String,
    /// The name the phone gave when it bonded (made safe to show).
    pub name: String,
    /// When it bonded (Unix seconds, the appliance's clock).
    pub bonded_at: i64,
    /// This phone (which cannot forget itself: use another phone or the appliance).
    pub this_phone: bool,
}

impl From<PhoneEntry> for BondedPhoneView {
    fn from(p: PhoneEntry) -> Self {
        BondedPhoneView {
            app_key: p.app_key.to_hex(),
            fingerprint: p.app_key.fingerprint(),
            // The core's client already cleaned the name the appliance sent.
            name: p.name,
            bonded_at: unix(p.bonded_at),
            this_phone: p.this_phone,
        }
    }
}

/// What forgetting a phone did.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ForgottenPhoneView {
    /// The forgotten phone's app key (64 hex characters).
    pub app_key: String,
    /// When the appliance forgot it (Unix seconds, the appliance's clock).
    pub forgotten_at: i64,
    /// Octane was told at once, so it no longer routes the appliance's requests to that
    /// phone. When false (octane unreachable), the appliance's statement waits on this
    /// phone and the next `sync_pairs` delivers it; the appliance refuses the forgotten
    /// phone either way.
    pub octane_told: bool,
}

impl From<ForgottenPhone> for ForgottenPhoneView {
    fn from(f: ForgottenPhone) -> Self {
        ForgottenPhoneView {
            app_key: f.app_key.to_hex(),
            forgotten_at: unix(f.forgotten_at),
            octane_told: f.octane_told,
        }
    }
}

/// Parses an app key passed by the app; a malformed one names no bonded phone.
fn parse_app_key(key: &str) -> Result<Key32, SunstormError> {
    Key32::from_hex(key.trim()).ok_or_else(|| {
        tracing::warn!(target: "sunstorm_ffi", "malformed app key passed by the app");
        SunstormError::UnknownPhone
    })
}

#[uniffi::export(async_runtime = "tokio")]
impl SunstormCore {
    /// The phones bonded with appliance `appliance_id` (may be omitted when one is bonded,
    /// else `ChooseAppliance`), in bonding order, this phone marked `this_phone`. Asks the
    /// appliance over the secure channel: `PhoneForgotten` when it forgot this phone.
    #[uniffi::method(default(appliance_id = None, cancel = None))]
    pub async fn bonded_phones(
        &self,
        appliance_id: Option<String>,
        cancel: Option<Arc<CancelHandle>>,
    ) -> Result<Vec<BondedPhoneView>, SunstormError> {
        let id = parse_appliance_id(appliance_id.as_deref())?;
        let s = self.facade.clone();
        self.run(cancel, async move {
            Ok(s.bonded_phones(id.as_ref()).await?.into_iter().map(BondedPhoneView::from).collect())
        })
        .await
    }

    /// Forgets the phone with `app_key` (from `bonded_phones`) on appliance `appliance_id`
    /// (may be omitted when one is bonded): the lost-phone procedure. The appliance asks
    /// its user to confirm (the app-wide `FlowListener` hears `WaitingForUser`), drops that
    /// phone's keys and refuses it from then on; octane is told and stops routing the
    /// appliance's requests to it (`octane_told`; when octane is unreachable the next
    /// `sync_pairs` tells it). Fails with `CannotForgetSelf` for this phone's own key,
    /// `UnknownPhone` for a key not bonded, `ApplianceDeclined` when the appliance's user
    /// declines.
    #[uniffi::method(default(appliance_id = None, cancel = None))]
    pub async fn forget_phone(
        &self,
        app_key: String,
        appliance_id: Option<String>,
        cancel: Option<Arc<CancelHandle>>,
    ) -> Result<ForgottenPhoneView, SunstormError> {
        let key = parse_app_key(&app_key)?;
        let id = parse_appliance_id(appliance_id.as_deref())?;
        let s = self.facade.clone();
        self.run(cancel, async move { Ok(s.forget_phone(id.as_ref(), key).await?.into()) }).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_malformed_app_key_names_no_phone() {
        assert_eq!(parse_app_key("zz"), Err(SunstormError::UnknownPhone));
        assert_eq!(parse_app_key(&"ab".repeat(31)), Err(SunstormError::UnknownPhone));
        let k = Key32([7; 32]);
        assert_eq!(parse_app_key(&format!(" {} ", k.to_hex())), Ok(k));
    }

    #[test]
    fn a_phone_entry_shows_its_key_name_and_time() {
        let v = BondedPhoneView::from(PhoneEntry {
            app_key: Key32([1; 32]),
            name: "Pixel".into(),
            bonded_at: 1_700_000_000,
            this_phone: true,
        });
        assert_eq!(v.app_key, "01".repeat(32));
        assert_eq!(v.fingerprint, Key32([1; 32]).fingerprint());
        assert_eq!((v.name.as_str(), v.bonded_at, v.this_phone), ("Pixel", 1_700_000_000, true));
    }
}
