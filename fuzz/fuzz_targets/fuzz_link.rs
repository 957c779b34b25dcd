//! Pair links, return URLs and validation codes on arbitrary UTF-8: never a panic, and
//! whatever is accepted satisfies the documented invariants.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sunstorm_core::code::ValidationCode;
use sunstorm_core::link::{parse_link, LinkConfig};
use sunstorm_core::return_url::check_return_url;

fuzz_target!(|text: &str| {
    let config = LinkConfig::default();
    if let Ok(intent) = parse_link(text, &config) {
        // Only canonical links are accepted, so rendering gives back an equivalent link.
        let again = parse_link(&intent.render("sigilvault.xyz"), &config);
        assert_eq!(again.as_ref().ok(), Some(&intent));
        assert!(text.len() <= 2048 && text.is_ascii());
    }
    let allowed = vec!["https://shop.example".to_string(), "https://sigilvault.xyz".to_string()];
    if let Ok(url) = check_return_url(text, &allowed) {
        assert_eq!(url.as_str(), text);
        assert_eq!(url.scheme(), "https");
    }
    if let Ok(code) = ValidationCode::parse(text) {
        assert_eq!(code.as_str().len(), 6);
        assert!(code.as_str().bytes().all(|b| b.is_ascii_digit()));
    }
});
