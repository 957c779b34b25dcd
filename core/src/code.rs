//! The six-digit validation code a person types (or a link carries) to prove they are
//! looking at the service provider's page.
//!
//! Typing is forgiving: spaces and dashes (any Unicode space separator, any dash
//! punctuation, the minus sign) are dropped, and any Unicode decimal digit (general category
//! `Nd`: full-width `１`, Arabic-Indic `١`, Devanagari `१`, …) is mapped to its ASCII digit.
//! Anything else is a specific [`CodeError`]. The code is compared in constant time, never
//! printed by `Debug`/`Display`, and wiped from memory on drop.

use std::fmt;
use std::str::FromStr;

use icu_properties::props::GeneralCategory;
use icu_properties::CodePointMapData;
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// Number of digits in a validation code.
pub const CODE_LEN: usize = 6;

/// Longest text (in characters) [`ValidationCode::parse`] looks at; longer input is refused
/// before any work is done.
pub const MAX_INPUT_CHARS: usize = 64;

/// Why typed text is not a validation code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodeError {
    /// Nothing but spaces and dashes (or nothing at all) was typed.
    #[error("no code was entered")]
    Empty,
    /// Fewer than six digits.
    #[error("the code has {digits} digits; it needs 6")]
    TooShort {
        /// How many digits were found.
        digits: usize,
    },
    /// More than six digits.
    #[error("the code has {digits} digits; it needs 6")]
    TooLong {
        /// How many digits were found.
        digits: usize,
    },
    /// The text is far longer than any code (more than [`MAX_INPUT_CHARS`] characters).
    #[error("the text is too long to be a code")]
    InputTooLong,
    /// A letter, symbol or other character that is not a digit, space or dash.
    #[error("the code may only contain digits; found {found} at position {position}")]
    NotADigit {
        /// 1-based character position in the typed text.
        position: usize,
        /// The offending character, escaped (`\u{202e}`) so invisible ones show.
        found: String,
    },
    /// An invisible control or formatting character (NUL, newline, bidi override, …).
    #[error("the code contains an invisible character ({found}) at position {position}")]
    InvisibleCharacter {
        /// 1-based character position in the typed text.
        position: usize,
        /// The offending character, escaped.
        found: String,
    },
}

impl CodeError {
    /// A stable snake_case identifier for this rejection (for JSON and UI string lookup).
    pub fn code(&self) -> &'static str {
        match self {
            CodeError::Empty => "code_empty",
            CodeError::TooShort { .. } => "code_too_short",
            CodeError::TooLong { .. } => "code_too_long",
            CodeError::InputTooLong => "code_input_too_long",
            CodeError::NotADigit { .. } => "code_not_a_digit",
            CodeError::InvisibleCharacter { .. } => "code_invisible_character",
        }
    }
}

/// A validation code: exactly six ASCII digits. Constant-time equality; never printed.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct ValidationCode([u8; CODE_LEN]);

/// What one typed character means for a code.
enum Typed {
    Digit(u8),
    Separator,
    Invisible,
    Other,
}

/// The ASCII value of a Unicode decimal digit (general category `Nd`).
///
/// Unicode guarantees (stability policy) that `Nd` characters come in contiguous runs of ten,
/// in order 0..9, so the value is the distance to the start of the run, modulo 10.
pub fn decimal_digit_value(ch: char) -> Option<u8> {
    let gc = CodePointMapData::<GeneralCategory>::new();
    if gc.get(ch) != GeneralCategory::DecimalNumber {
        return None;
    }
    let mut offset: u32 = 0;
    let mut cp = u32::from(ch);
    // Bounded: the longest run of consecutive Nd characters is 50 (U+1D7CE..U+1D7FF).
    while offset < 100 {
        let Some(prev) = cp.checked_sub(1) else { break };
        if gc.get32(prev) != GeneralCategory::DecimalNumber {
            break;
        }
        cp = prev;
        offset += 1;
    }
    u8::try_from(offset % 10).ok()
}

fn classify(ch: char) -> Typed {
    if ch.is_ascii_digit() {
        return Typed::Digit(ch as u8 - b'0');
    }
    if let Some(d) = decimal_digit_value(ch) {
        return Typed::Digit(d);
    }
    let gc = CodePointMapData::<GeneralCategory>::new().get(ch);
    match gc {
        // Spaces (U+0020, no-break, thin, ideographic …) and dashes (hyphen, en/em dash,
        // full-width hyphen-minus …), plus the minus sign people type from a numeric keypad.
        GeneralCategory::SpaceSeparator | GeneralCategory::DashPunctuation => Typed::Separator,
        _ if ch == '\u{2212}' => Typed::Separator,
        GeneralCategory::Control
        | GeneralCategory::Format
        | GeneralCategory::LineSeparator
        | GeneralCategory::ParagraphSeparator
        | GeneralCategory::Unassigned
        | GeneralCategory::PrivateUse
        | GeneralCategory::Surrogate => Typed::Invisible,
        _ => Typed::Other,
    }
}

impl ValidationCode {
    /// Normalises what a person typed (or a link carried) into a code.
    pub fn parse(text: &str) -> Result<Self, CodeError> {
        if text.chars().count() > MAX_INPUT_CHARS {
            return Err(CodeError::InputTooLong);
        }
        let mut digits = zeroize::Zeroizing::new([0u8; CODE_LEN]);
        let mut n = 0usize;
        for (i, ch) in text.chars().enumerate() {
            match classify(ch) {
                Typed::Digit(d) => {
                    if let Some(slot) = digits.get_mut(n) {
                        *slot = b'0' + d;
                    }
                    n += 1;
                }
                Typed::Separator => {}
                Typed::Invisible => {
                    return Err(CodeError::InvisibleCharacter {
                        position: i + 1,
                        found: ch.escape_unicode().to_string(),
                    })
                }
                Typed::Other => {
                    return Err(CodeError::NotADigit { position: i + 1, found: ch.escape_debug().to_string() })
                }
            }
        }
        match n {
            0 => Err(CodeError::Empty),
            CODE_LEN => Ok(ValidationCode(*digits)),
            n if n < CODE_LEN => Err(CodeError::TooShort { digits: n }),
            n => Err(CodeError::TooLong { digits: n }),
        }
    }

    /// Accepts exactly six ASCII digits and nothing else (the strict form a link carries).
    pub fn from_ascii_digits(text: &str) -> Option<Self> {
        let bytes: [u8; CODE_LEN] = text.as_bytes().try_into().ok()?;
        bytes.iter().all(u8::is_ascii_digit).then_some(ValidationCode(bytes))
    }

    /// The six ASCII digits. Handle with care: this is the secret.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl PartialEq for ValidationCode {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl Eq for ValidationCode {}

impl ConstantTimeEq for ValidationCode {
    fn ct_eq(&self, other: &Self) -> subtle::Choice {
        self.0.ct_eq(&other.0)
    }
}

impl fmt::Debug for ValidationCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ValidationCode(******)")
    }
}

impl fmt::Display for ValidationCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("******")
    }
}

impl FromStr for ValidationCode {
    type Err = CodeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ValidationCode::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ok(s: &str) -> String {
        ValidationCode::parse(s).unwrap().as_str().to_string()
    }

    #[test]
    fn plain_and_separated_codes() {
        assert_eq!(ok("123456"), "123456");
        assert_eq!(ok("123 456"), "123456");
        assert_eq!(ok("123-456"), "123456");
        assert_eq!(ok(" 12 34 56 "), "123456");
        assert_eq!(ok("123\u{2013}456"), "123456"); // en dash
        assert_eq!(ok("123\u{2014}456"), "123456"); // em dash
        assert_eq!(ok("123\u{2212}456"), "123456"); // minus sign
        assert_eq!(ok("123\u{00a0}456"), "123456"); // no-break space
        assert_eq!(ok("123\u{3000}456"), "123456"); // ideographic space
        assert_eq!(ok("123\u{ff0d}456"), "123456"); // full-width hyphen-minus
    }

    #[test]
    fn unicode_digits_map_to_ascii() {
        assert_eq!(ok("１２３４５６"), "123456"); // full-width
        assert_eq!(ok("١٢٣٤٥٦"), "123456"); // Arabic-Indic
        assert_eq!(ok("۱۲۳۴۵۶"), "123456"); // Extended Arabic-Indic (Persian)
        assert_eq!(ok("१२३४५६"), "123456"); // Devanagari
        assert_eq!(ok("০৯৮৭৬৫"), "098765"); // Bengali
        assert_eq!(ok("๑๒๓๔๕๖"), "123456"); // Thai
        assert_eq!(ok("\u{1d7ce}\u{1d7d9}\u{1d7e4}\u{1d7ef}\u{1d7fa}\u{1d7ff}"), "012349"); // math digits
        assert_eq!(ok("1２٣४5６"), "123456"); // mixed
    }

    #[test]
    fn rejections_are_specific() {
        let e = |s: &str| ValidationCode::parse(s).unwrap_err();
        assert_eq!(e(""), CodeError::Empty);
        assert_eq!(e(" - "), CodeError::Empty);
        assert_eq!(e("12345"), CodeError::TooShort { digits: 5 });
        assert_eq!(e("1234567"), CodeError::TooLong { digits: 7 });
        assert_eq!(e(&"1".repeat(65)), CodeError::InputTooLong);
        assert!(matches!(e("12345a"), CodeError::NotADigit { position: 6, .. }));
        assert!(matches!(e("12.456"), CodeError::NotADigit { position: 3, .. }));
        assert!(matches!(e("123_456"), CodeError::NotADigit { .. }));
        assert!(matches!(e("²34567"), CodeError::NotADigit { .. })); // superscript is No, not Nd
        assert!(matches!(e("Ⅻ3456"), CodeError::NotADigit { .. })); // Roman numeral is Nl
        assert!(matches!(e("①23456"), CodeError::NotADigit { .. })); // circled is No
        assert!(matches!(e("123456\n"), CodeError::InvisibleCharacter { position: 7, .. }));
        assert!(matches!(e("123\u{0}456"), CodeError::InvisibleCharacter { .. }));
        assert!(matches!(e("\u{202e}123456"), CodeError::InvisibleCharacter { position: 1, .. }));
        assert!(matches!(e("123\u{200b}456"), CodeError::InvisibleCharacter { .. }));
        assert!(matches!(e("123\t456"), CodeError::InvisibleCharacter { .. }));
    }

    #[test]
    fn codes_are_stable_snake_case() {
        for e in [
            CodeError::Empty,
            CodeError::TooShort { digits: 1 },
            CodeError::TooLong { digits: 9 },
            CodeError::InputTooLong,
            CodeError::NotADigit { position: 1, found: "a".into() },
            CodeError::InvisibleCharacter { position: 1, found: "x".into() },
        ] {
            assert!(e.code().bytes().all(|b| b.is_ascii_lowercase() || b == b'_'));
            assert!(!e.to_string().is_empty());
        }
    }

    #[test]
    fn never_printed() {
        let c = ValidationCode::parse("987654").unwrap();
        assert_eq!(format!("{c:?}"), "ValidationCode(******)");
        assert_eq!(format!("{c}"), "******");
        assert!(!format!("{c:?}{c}{c:#?}").contains("987654"));
    }

    #[test]
    fn equality() {
        let a = ValidationCode::parse("123456").unwrap();
        assert_eq!(a, ValidationCode::parse("１２３-４５６").unwrap());
        assert_ne!(a, ValidationCode::parse("123457").unwrap());
        assert_eq!(ValidationCode::from_ascii_digits("123456"), Some(a));
        assert_eq!(ValidationCode::from_ascii_digits("１２３４５６"), None);
        assert_eq!(ValidationCode::from_ascii_digits("12345"), None);
    }

    /// Cross-checks the Nd handling against the standard library for every scalar value:
    /// every Nd char is numeric, maps to a digit, and the ten digits of each run start at 0.
    #[test]
    fn nd_table_cross_check() {
        let mut zeros = 0;
        for ch in (0u32..=0x10FFFF).filter_map(char::from_u32) {
            if let Some(d) = decimal_digit_value(ch) {
                assert!(ch.is_numeric(), "{ch:?} is Nd but not numeric");
                assert!(d <= 9);
                if d == 0 {
                    zeros += 1;
                    // A complete run 0..9 follows each zero.
                    for k in 1..10u32 {
                        let next = char::from_u32(u32::from(ch) + k).unwrap();
                        assert_eq!(decimal_digit_value(next), Some(k as u8), "{next:?}");
                    }
                }
            }
            if ch.is_ascii() {
                assert_eq!(decimal_digit_value(ch), ch.to_digit(10).map(|d| d as u8));
            }
        }
        // Unicode 15/16 has 70+ decimal digit sets.
        assert!(zeros >= 60, "only {zeros} Nd zeros");
    }

    proptest! {
        #[test]
        fn any_text_ok_or_err(s in "\\PC{0,80}") {
            let _ = ValidationCode::parse(&s);
        }

        #[test]
        fn separators_do_not_matter(d in "[0-9]{6}", seps in proptest::collection::vec(prop::sample::select(vec![" ", "-", "\u{2013}", "\u{00a0}", ""]), 7)) {
            let mut s = String::new();
            for (i, c) in d.chars().enumerate() {
                s.push_str(seps[i]);
                s.push(c);
            }
            s.push_str(seps[6]);
            let c = ValidationCode::parse(&s).unwrap();
            prop_assert_eq!(c.as_str(), d.as_str());
        }

        #[test]
        fn full_width_equals_ascii(d in "[0-9]{6}") {
            let fw: String = d.chars().map(|c| char::from_u32(0xFF10 + (c as u32 - 0x30)).unwrap()).collect();
            prop_assert_eq!(ValidationCode::parse(&fw).unwrap(), ValidationCode::parse(&d).unwrap());
        }

        #[test]
        fn ok_is_always_six_ascii_digits(s in "[0-9 \\-a١２]{0,12}") {
            if let Ok(c) = ValidationCode::parse(&s) {
                prop_assert_eq!(c.as_str().len(), 6);
                prop_assert!(c.as_str().bytes().all(|b| b.is_ascii_digit()));
            }
        }
    }
}
