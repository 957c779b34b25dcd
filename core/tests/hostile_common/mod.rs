//! Shared by the hostile-input tables (`hostile_links`, `hostile_return_urls`).

#![allow(clippy::unwrap_used)] // test code

use std::fmt::{Debug, Display};
use std::mem::discriminant;

/// Runs every `(input, expected)` of `table` through `check`: each must be refused with the
/// expected variant, the same stable `code` and a non-empty message. Lists every mismatch.
pub fn assert_all_refused<T: Debug, E: Debug + Display>(
    table: &[(String, E)],
    check: impl Fn(&str) -> Result<T, E>,
    code: impl Fn(&E) -> &'static str,
) {
    let mut failures = Vec::new();
    for (input, expected) in table {
        match check(input) {
            Err(got) if discriminant(&got) == discriminant(expected) => {
                assert_eq!(code(&got), code(expected));
                assert!(!got.to_string().is_empty());
            }
            other => failures.push(format!("{input:?}: expected {expected:?}, got {other:?}")),
        }
    }
    assert!(failures.is_empty(), "{} mismatches:\n{}", failures.len(), failures.join("\n"));
}

/// The IDNA (punycode) form of a host written with lookalike letters, as a browser or a
/// mail client sends it. Recorded (computed with Python's `"…".encode("idna")`): the core
/// carries no IDNA data (ADR 0031), so punycode reaches it only already encoded.
pub fn puny(host: &str) -> String {
    const RECORDED: &[(&str, &str)] = &[
        ("sh\u{43e}p.example", "xn--shp-ted.example"),
        ("\u{3c3}p.example.com", "xn--p-zmb.example.com"),
        ("s\u{456}gilvault.xyz", "xn--sgilvault-v9h.xyz"),
        ("sigilv\u{430}ult.xyz", "xn--sigilvult-5yh.xyz"),
        ("\u{3c3}igilvault.xyz", "xn--igilvault-u2g.xyz"),
    ];
    // A host not in the table is a mistake in the test itself.
    RECORDED.iter().find(|(unicode, _)| *unicode == host).map(|(_, ascii)| (*ascii).to_string()).unwrap()
}
