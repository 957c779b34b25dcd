//! The uniffi surface of Sunstorm core.
uniffi::setup_scaffolding!();

/// The version of the Sunstorm core this library was built from.
#[uniffi::export]
pub fn core_version() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}
