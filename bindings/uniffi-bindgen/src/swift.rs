//! The Swift counterpart of [`crate::kotlin`]: uniffi 0.32 gives an error enum that exports
//! `Display` a `description` but neither declares `CustomStringConvertible` nor uses it for
//! `LocalizedError.errorDescription` (that is `String(reflecting: self)`, the case and its
//! fields). Here both say the Rust sentence, so `error.localizedDescription` is what a
//! screen can show. Checked like the Kotlin rewrite; running it twice changes nothing.

use std::path::Path;

/// Rewrites every `.swift` file under `dir`.
pub fn polish_dir(dir: &Path) -> Result<(), String> {
    crate::rewrite_files(dir, "swift", polish)
}

const DISPLAY_COMMENT: &str = "// The local Rust `Display` implementation.";
const LOCALIZED: &str = ", Foundation.LocalizedError {";
const REFLECTING: &str = "String(reflecting: self)";
/// How top-level declarations after an error enum begin.
const TOP_LEVEL: [&str; 6] = ["extension ", "#if ", "public struct ", "public func ", "enum ", "public protocol "];

/// The rewrite of one generated Swift file.
pub fn polish(text: &str) -> Result<String, String> {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let mut i = 0;
    while i < lines.len() {
        let name = lines.get(i).and_then(|l| error_enum(l));
        if let Some(name) = name {
            // The enum runs to the next top-level declaration (its `Sendable` extension).
            let end = (i + 1..lines.len())
                .find(|&j| lines.get(j).is_some_and(|l| TOP_LEVEL.iter().any(|t| l.starts_with(t))))
                .unwrap_or(lines.len());
            let body = lines.get(i + 1..end).unwrap_or_default();
            let polished = body.iter().any(|l| l.trim() == "description");
            if !polished && body.iter().any(|l| l.trim() == DISPLAY_COMMENT) {
                let reflecting = body.iter().position(|l| l.trim() == REFLECTING).map(|p| p + i + 1);
                let Some(reflecting) = reflecting else {
                    return Err(format!(
                        "enum {name}: no `errorDescription` returning `{REFLECTING}`; uniffi's Swift \
                         error template changed (update bindings/uniffi-bindgen/src/swift.rs)"
                    ));
                };
                if let Some(line) = lines.get_mut(reflecting) {
                    *line = line.replace(REFLECTING, "description");
                }
                if let Some(decl) = lines.get_mut(i) {
                    if !decl.contains("CustomStringConvertible") {
                        *decl = decl.replace(LOCALIZED, ", CustomStringConvertible, Foundation.LocalizedError {");
                    }
                }
            }
            i = end;
        }
        i += 1;
    }
    let mut out = lines.join("\n");
    if text.ends_with('\n') {
        out.push('\n');
    }
    Ok(out)
}

/// `enum NameError: Swift.Error, …, Foundation.LocalizedError {`
fn error_enum(line: &str) -> Option<String> {
    let rest = line.strip_prefix("enum ")?;
    let (name, conformances) = rest.split_once(':')?;
    (conformances.trim_start().starts_with("Swift.Error") && line.ends_with(LOCALIZED)).then(|| name.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What uniffi 0.32.2 writes for an error enum with `#[uniffi::export(Display)]`.
    const ERROR: &str = "public \nenum SunstormError: Swift.Error, Equatable, Hashable, Foundation.LocalizedError {\n    case NotBonded\n\n// The local Rust `Display` implementation.\npublic var description: String {\n    return try!  FfiConverterString.lift(x)\n}\n\n    \n    public var errorDescription: String? {\n        String(reflecting: self)\n    }\n    \n}\n\npublic \nenum HttpMethod: Swift.Error, Foundation.LocalizedError {\n    case Get\n    public var errorDescription: String? {\n        String(reflecting: self)\n    }\n}\n";

    #[test]
    fn an_error_with_display_describes_itself_with_the_sentence() {
        let out = polish(ERROR).unwrap();
        assert!(out.contains(
            "enum SunstormError: Swift.Error, Equatable, Hashable, CustomStringConvertible, Foundation.LocalizedError {"
        ));
        assert!(out.contains("    public var errorDescription: String? {\n        description\n    }"), "{out}");
        // Without Display, nothing changes.
        assert!(out.contains("enum HttpMethod: Swift.Error, Foundation.LocalizedError {\n    case Get\n    public var errorDescription: String? {\n        String(reflecting: self)"));
        assert_eq!(polish(&out).unwrap(), out);
    }

    #[test]
    fn an_unexpected_template_fails_loudly() {
        let changed = ERROR.replacen("        String(reflecting: self)\n", "        \"?\"\n", 1);
        assert!(polish(&changed).unwrap_err().contains("template changed"));
    }
}
