//! The display model's text rules: every string from outside the phone (payload text, field
//! names, service, wallet, token and appliance names) passes [`sanitize()`] before it becomes
//! part of a screen. See `docs/signing.md`, *What reaches the screen*.

pub mod sanitize;

pub use sanitize::{clean, must_escape, sanitize, sanitize_string, Sanitized, TextKind};
