//! The display sanitiser on arbitrary text, for every kind: the output never holds a
//! character it must escape (bar one emoji presentation selector after a symbol), is
//! bounded, and is the input itself when nothing was escaped or cut.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sunstorm_core::display::{must_escape, sanitize, TextKind};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    for kind in [TextKind::Name, TextKind::UserRef, TextKind::Label, TextKind::Value, TextKind::Message] {
        let s = sanitize(&text, kind);
        let mut prev: Option<char> = None;
        for c in s.text.chars() {
            let emoji = matches!(c, '\u{fe0e}' | '\u{fe0f}') && prev.is_some_and(|p| !p.is_ascii());
            assert!(!must_escape(c, kind) || emoji, "{c:?} escaped nowhere ({kind:?})");
            prev = Some(c);
        }
        if s.cut == 0 {
            assert!(s.text.chars().count() <= kind.max_chars());
        } else {
            let marker = format!("…⟨{} more characters⟩", s.cut);
            assert!(s.text.ends_with(&marker));
            assert!(s.text.chars().count() <= kind.max_chars() + marker.chars().count());
        }
        if s.escaped == 0 && s.cut == 0 {
            assert_eq!(s.text, text);
        }
    }
});
