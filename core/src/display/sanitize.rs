//! The one display sanitiser. Characters that are invisible, reorder text or break lines —
//! Unicode general categories Cc, Cf, Zl, Zp, Co, Cn and Cs, spaces other than U+0020,
//! default-ignorable code points (zero-width characters, variation selectors, Hangul
//! fillers, tag characters…), U+2800 and long runs of combining marks — are shown escaped
//! as `⟨U+202E⟩`; text longer than its kind allows is cut with a visible marker. A caller
//! that has a warnings list adds `text_escaped` / `text_truncated` when [`Sanitized`] says
//! something changed.

use icu_properties::props::{DefaultIgnorableCodePoint, GeneralCategory};
use icu_properties::{CodePointMapData, CodePointSetData};

/// What a string is: decides how long it may be and whether it may span lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TextKind {
    /// A name: service, wallet, appliance, token or contract, EIP-712 domain name or type.
    Name,
    /// The service's reference for its user (`sp_user_ref`).
    UserRef,
    /// A row label built from payload text (an EIP-712 field path).
    Label,
    /// A value from a payload shown on one row (an EIP-712 string).
    Value,
    /// Multi-line text the user reads as a whole (an EIP-191 message): line feeds stay.
    Message,
}

impl TextKind {
    /// Most characters shown (an escape counts as the characters it shows) before the text
    /// is cut.
    pub const fn max_chars(self) -> usize {
        match self {
            TextKind::Name => 64,
            TextKind::UserRef => 128,
            TextKind::Label => 160,
            TextKind::Value => 512,
            TextKind::Message => 4096,
        }
    }

    const fn keeps_line_feeds(self) -> bool {
        matches!(self, TextKind::Message)
    }
}

/// Combining marks allowed in a row on one base character; more are escaped (stacked
/// marks can spill over neighbouring rows).
pub const MAX_COMBINING_RUN: usize = 4;

/// The result of [`sanitize`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sanitized {
    /// The text to show.
    pub text: String,
    /// How many characters were shown escaped.
    pub escaped: usize,
    /// How many characters of the input were cut off (0 = none).
    pub cut: usize,
}

impl Sanitized {
    /// True if some character was escaped (warning `text_escaped`).
    pub fn was_escaped(&self) -> bool {
        self.escaped > 0
    }

    /// True if the text was cut (warning `text_truncated`).
    pub fn was_truncated(&self) -> bool {
        self.cut > 0
    }
}

/// Whether `c` is shown escaped (apart from the combining-run rule).
pub fn must_escape(c: char, kind: TextKind) -> bool {
    if c == ' ' || (c == '\n' && kind.keeps_line_feeds()) {
        return false;
    }
    if c.is_ascii() {
        return c.is_ascii_control();
    }
    let invisible = matches!(
        CodePointMapData::<GeneralCategory>::new().get(c),
        GeneralCategory::Control
            | GeneralCategory::Format
            | GeneralCategory::LineSeparator
            | GeneralCategory::ParagraphSeparator
            | GeneralCategory::SpaceSeparator
            | GeneralCategory::PrivateUse
            | GeneralCategory::Unassigned
            | GeneralCategory::Surrogate
    );
    // U+2800 BRAILLE PATTERN BLANK renders as nothing and is not default-ignorable.
    invisible || c == '\u{2800}' || CodePointSetData::new::<DefaultIgnorableCodePoint>().contains(c)
}

/// U+FE0E / U+FE0F right after a non-ASCII symbol shown as is (`❤️`): the one variation
/// selector use that changes how the text looks, not what it hides. Any other variation
/// selector is escaped (they can carry hidden data and make equal-looking names differ).
fn is_emoji_presentation(c: char, prev: Option<char>) -> bool {
    matches!(c, '\u{fe0e}' | '\u{fe0f}') && prev.is_some_and(|p| !p.is_ascii() && !matches!(p, '\u{fe00}'..='\u{fe0f}'))
}

fn is_combining(c: char) -> bool {
    !c.is_ascii()
        && matches!(
            CodePointMapData::<GeneralCategory>::new().get(c),
            GeneralCategory::NonspacingMark | GeneralCategory::EnclosingMark
        )
}

/// Escapes what must not reach a screen as is and cuts `input` to its kind's length.
pub fn sanitize(input: &str, kind: TextKind) -> Sanitized {
    let max = kind.max_chars();
    // Most text (addresses, amounts, names) is short printable ASCII: nothing to escape,
    // nothing to cut.
    if input.len() <= max && input.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return Sanitized { text: input.to_string(), escaped: 0, cut: 0 };
    }
    let mut text = String::with_capacity(input.len().min(max.saturating_mul(4)));
    let (mut shown, mut escaped, mut cut, mut run) = (0usize, 0usize, 0usize, 0usize);
    let mut chars = input.chars();
    // The previous character when it was shown as is.
    let mut prev: Option<char> = None;
    while let Some(c) = chars.next() {
        run = if is_combining(c) { run + 1 } else { 0 };
        let escape =
            if is_emoji_presentation(c, prev) { false } else { must_escape(c, kind) || run > MAX_COMBINING_RUN };
        prev = (!escape).then_some(c);
        // A character shown as is costs no allocation; only an escape is formatted.
        let piece = escape.then(|| format!("⟨U+{:04X}⟩", u32::from(c)));
        let width = piece.as_ref().map_or(1, |p| p.chars().count());
        if shown + width > max {
            cut = 1 + chars.count();
            break;
        }
        shown += width;
        match piece {
            Some(p) => {
                escaped += 1;
                text.push_str(&p);
            }
            None => text.push(c),
        }
    }
    if cut > 0 {
        text.push_str(&format!("…⟨{cut} more characters⟩"));
    }
    Sanitized { text, escaped, cut }
}

/// [`sanitize`], taking the text by value: clean text is returned as is, not copied.
pub fn sanitize_string(input: String, kind: TextKind) -> Sanitized {
    if input.len() <= kind.max_chars() && input.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return Sanitized { text: input, escaped: 0, cut: 0 };
    }
    sanitize(&input, kind)
}

/// [`sanitize`]'s text alone, for places that show a string but keep no warnings (names
/// on the pairing and settings screens).
pub fn clean(input: &str, kind: TextKind) -> String {
    sanitize(input, kind).text
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn bidi_zero_width_and_line_breaks_are_escaped() {
        let s = sanitize("pay\u{202e}lave\u{200b}.eth\r\nTo", TextKind::Value);
        assert_eq!(s.text, "pay⟨U+202E⟩lave⟨U+200B⟩.eth⟨U+000D⟩⟨U+000A⟩To");
        assert_eq!(s.escaped, 4);
        assert!(!s.was_truncated());
        // A variation selector hides nothing only once, after a non-ASCII symbol.
        assert_eq!(sanitize("❤\u{fe0f}\u{fe0f}", TextKind::Name).text, "❤\u{fe0f}⟨U+FE0F⟩");
        // The characters the old EIP-191 filter let through.
        for c in [
            '\u{200e}',
            '\u{200f}',
            '\u{061c}',
            '\u{200b}',
            '\u{2028}',
            '\u{2029}',
            '\u{feff}',
            '\u{2066}',
            '\u{2069}',
            '\u{202a}',
            '\u{00ad}',
            '\u{180e}',
            '\u{3164}',
            '\u{115f}',
            '\u{fe0f}',
            '\u{e0041}',
            '\u{00a0}',
            '\u{3000}',
            '\u{2800}',
            '\u{e000}',
            '\u{0378}',
        ] {
            let s = sanitize(&format!("a{c}b"), TextKind::Message);
            assert_eq!(s.text, format!("a⟨U+{:04X}⟩b", u32::from(c)), "{c:?}");
        }
    }

    #[test]
    fn messages_keep_line_feeds_only() {
        let s = sanitize("Sign in\nNonce: 1\tx", TextKind::Message);
        assert_eq!(s.text, "Sign in\nNonce: 1⟨U+0009⟩x");
        assert_eq!(sanitize("a\nb", TextKind::Name).text, "a⟨U+000A⟩b");
    }

    #[test]
    fn ordinary_text_in_any_script_is_unchanged() {
        for t in ["Uniswap", "Ether Mail", "Café Zürich", "東京", "مرحبا", "שלום", "Ελλάδα", "ṩ̃", "👍🏽", "❤️", ""]
        {
            let s = sanitize(t, TextKind::Name);
            assert_eq!(s.text, t);
            assert!(!s.was_escaped() && !s.was_truncated());
        }
    }

    #[test]
    fn combining_floods_are_escaped_after_four() {
        let zalgo = format!("a{}", "\u{0301}".repeat(6));
        let s = sanitize(&zalgo, TextKind::Value);
        assert_eq!(s.text, format!("a{}⟨U+0301⟩⟨U+0301⟩", "\u{0301}".repeat(4)));
        assert_eq!(s.escaped, 2);
    }

    #[test]
    fn long_text_is_cut_with_a_marker() {
        let s = sanitize(&"x".repeat(100), TextKind::Name);
        assert_eq!(s.text, format!("{}…⟨36 more characters⟩", "x".repeat(64)));
        assert_eq!(s.cut, 36);
        // An escape never straddles the cut.
        let s = sanitize(&format!("{}\u{202e}yz", "x".repeat(60)), TextKind::Name);
        assert_eq!(s.text, format!("{}…⟨3 more characters⟩", "x".repeat(60)));
    }

    proptest! {
        #[test]
        fn output_is_bounded_and_free_of_what_it_escapes(s in "\\PC*|[\\u{0}-\\u{3000}]{0,300}", k in 0usize..5) {
            let kind = [TextKind::Name, TextKind::UserRef, TextKind::Label, TextKind::Value, TextKind::Message][k];
            let out = sanitize(&s, kind);
            if out.cut == 0 {
                prop_assert!(out.text.chars().count() <= kind.max_chars());
            }
            let mut prev = None;
            for c in out.text.chars() {
                prop_assert!(!must_escape(c, kind) || is_emoji_presentation(c, prev), "{:?}", c);
                prev = Some(c);
            }
            if out.escaped == 0 && out.cut == 0 {
                prop_assert_eq!(&out.text, &s);
            }
        }
    }
}
