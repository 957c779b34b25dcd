//! The channel's state machines end to end, without a link.

use ed25519_dalek::SigningKey;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::phone_bond::check_reject;
use super::wire::{decode_cbor, frame_cbor};
use super::*;
use crate::bytes::Key32;
use crate::envelope::Domain;
use crate::model::AppEndorsement;
use crate::secrets::MemorySecretStore;

fn appliance_keys() -> (SigningKey, Zeroizing<[u8; 32]>) {
    (SigningKey::from_bytes(&[9u8; 32]), Zeroizing::new([7u8; 32]))
}

fn bond_once(phone_pin: &str, appliance_pin: &str) -> Result<(BondRecord, BondedPhone, PhoneKeys), ChannelError> {
    let store = MemorySecretStore::default();
    let keys = PhoneKeys::load_or_create(&store)?;
    let (id, chan) = appliance_keys();
    let ak = ApplianceKeys { identity: &id, channel_private: &chan, name: "Sim" };
    let (p, hello) = PhoneBonding::start(phone_pin)?;
    let (a, pake) = ApplianceBonding::start(appliance_pin, &hello)?;
    let (p, confirm) = p.on_pake(&pake, &keys, "phone")?;
    let (phone, accept) = a.on_confirm(&confirm, &ak, 1)?;
    let rec = p.on_accept(&accept)?;
    Ok((rec, phone, keys))
}

#[test]
fn bonding_with_the_right_pin_exchanges_keys_and_endorses_the_app_key() {
    let (rec, phone, keys) = bond_once("123456", "123456").unwrap();
    let (id, chan) = appliance_keys();
    assert_eq!(rec.appliance_identity.0, id.verifying_key().to_bytes());
    assert_eq!(rec.appliance_static, x25519_public(&chan).unwrap());
    assert_eq!(phone.channel_static, keys.channel_public());
    assert_eq!(phone.app_key, keys.app_public());
    let e: AppEndorsement = rec.endorsement.open(Domain::AppEndorsement, rec.appliance_identity.as_bytes()).unwrap();
    assert_eq!(e.app_key, keys.app_public());
}

#[test]
fn a_wrong_pin_fails_key_confirmation_on_the_appliance() {
    assert_eq!(bond_once("123456", "654321").unwrap_err(), ChannelError::KeyConfirmation);
}

#[test]
fn a_reject_message_surfaces_as_wrong_pin() {
    let store = MemorySecretStore::default();
    let keys = PhoneKeys::load_or_create(&store).unwrap();
    let (p, _) = PhoneBonding::start("111111").unwrap();
    let rej = bond_reject_message(BondRejectCode::WrongPin, 2);
    assert_eq!(p.on_pake(&rej, &keys, "x").err(), Some(ChannelError::WrongPin { attempts_left: 2 }));
}

#[test]
fn bonding_mode_and_back_off_rejects_reach_the_phone_as_their_own_errors() {
    let closed = bond_reject_message(BondRejectCode::BondingClosed, 3);
    assert_eq!(check_reject(&closed), Err(ChannelError::BondingClosed));
    let later = bond_reject_message_after(BondRejectCode::TryLater, 3, Some(57));
    assert_eq!(check_reject(&later), Err(ChannelError::BondingTryLater { retry_after_secs: 57 }));
    // The wait travels as an optional key: absent in the old layout, ignored by old phones.
    let old = frame_cbor(MsgType::BondReject, &OldBondReject { code: "wrong_pin".into(), attempts_left: 2 }).unwrap();
    assert_eq!(old, bond_reject_message(BondRejectCode::WrongPin, 2), "unchanged bytes without a wait");
    let seen_by_old: OldBondReject = decode_cbor(&later[1..]).unwrap();
    assert_eq!((seen_by_old.code.as_str(), seen_by_old.attempts_left), ("try_later", 3));
    // A code from a newer appliance is a refusal, never a PIN verdict.
    let newer = frame_cbor(MsgType::BondReject, &OldBondReject { code: "busy".into(), attempts_left: 3 }).unwrap();
    assert!(matches!(check_reject(&newer), Err(ChannelError::Malformed(_))));
}

/// `BondReject` as phones before bonding mode decoded it.
#[derive(Serialize, Deserialize)]
struct OldBondReject {
    code: String,
    attempts_left: u32,
}

#[test]
fn kk_round_trip_and_replay_refused() {
    let (rec, phone, keys) = bond_once("000000", "000000").unwrap();
    let (_, chan) = appliance_keys();
    let (init, m1) = KkInitiator::start(&keys, &rec.appliance_static).unwrap();
    let other = Key32([5u8; 32]);
    let (a_sess, who, m2) = kk_respond(&chan, &[other, phone.channel_static], &m1).unwrap();
    assert_eq!(who, phone.channel_static);
    let p_sess = init.finish(&m2).unwrap();
    let c1 = p_sess.seal(b"hello").unwrap();
    let c2 = p_sess.seal(b"world").unwrap();
    assert_eq!(a_sess.open(&c2).unwrap(), b"world");
    // c1 was "lost" then shows up late: refused as a replay.
    assert_eq!(a_sess.open(&c1), Err(ChannelError::Replay { nonce: 0 }));
    assert_eq!(a_sess.open(&c2), Err(ChannelError::Replay { nonce: 1 }));
    let back = a_sess.seal(b"ok").unwrap();
    assert_eq!(p_sess.open(&back).unwrap(), b"ok");
    let mut tampered = a_sess.seal(b"ok2").unwrap();
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    assert_eq!(p_sess.open(&tampered), Err(ChannelError::Decrypt));
}

#[test]
fn kk_with_an_impostor_appliance_fails() {
    let (rec, phone, keys) = bond_once("000000", "000000").unwrap();
    let (init, m1) = KkInitiator::start(&keys, &rec.appliance_static).unwrap();
    let impostor = [8u8; 32];
    // The impostor cannot read message 1 even if it knows the phone's public key.
    assert_eq!(kk_respond(&impostor, &[phone.channel_static], &m1).err(), Some(ChannelError::UnknownPhone));
    assert_eq!(init.finish(&kk_reject_message()).err(), Some(ChannelError::UnknownAppliance));
}

#[test]
fn garbage_never_panics() {
    let store = MemorySecretStore::default();
    let keys = PhoneKeys::load_or_create(&store).unwrap();
    for g in [&[][..], &[0x10], &[0x11, 0xff], &[0x30, 1, 2], &[0x21, 0, 0, 0], &[0x13, 0xa0]] {
        let _ = ApplianceBonding::start("123456", g);
        let (p, _) = PhoneBonding::start("123456").unwrap();
        let _ = p.on_pake(g, &keys, "x");
        let _ = kk_respond(&[1u8; 32], &[Key32([2u8; 32])], g);
        let (k, _) = KkInitiator::start(&keys, &Key32([3u8; 32])).unwrap();
        let _ = k.finish(g);
    }
}

#[test]
fn random_pins_are_six_digits() {
    for _ in 0..50 {
        assert!(is_valid_pin(&random_pin()));
    }
}
