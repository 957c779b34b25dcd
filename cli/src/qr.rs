//! QR codes drawn in the terminal (two rows of modules per character cell).

use qrcode::render::unicode::Dense1x2;
use qrcode::QrCode;

/// The QR code of `text` as lines of Unicode half-blocks, or a note when it cannot be drawn.
pub fn render(text: &str) -> String {
    match QrCode::new(text.as_bytes()) {
        Ok(code) => code.render::<Dense1x2>().quiet_zone(true).build(),
        Err(e) => format!("(no QR code: {e})"),
    }
}
