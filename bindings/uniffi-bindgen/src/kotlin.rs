//! Makes uniffi 0.32's Kotlin Kotlin-shaped, by rewriting two generated patterns:
//!
//! 1. **Exceptions.** For an error enum with fields, uniffi writes each variant's `message`
//!    as `field=value` and, when the enum exports `Display`, overrides `toString()` on the
//!    sealed class with it. So `e.message` is `attemptsLeft=4` and a stack trace prints the
//!    sentence without the exception's type. Here `message` becomes the `Display` sentence
//!    and `toString()` is Kotlin's own (`…SunstormException$WrongPin: wrong PIN (4 attempts
//!    left)`), the sentence being fetched through the same Rust call (`uniffiDisplay()`).
//!    The sealed class itself declares `message: String` (not `String?`).
//! 2. **Cases without fields** of a sealed class become `data object`s, which print their
//!    name (`ConnectingToAppliance`) instead of `FlowProgress$ConnectingToAppliance@1b6d3586`
//!    (Kotlin 1.9+).
//!
//! The rewrite is checked, not hopeful: an exception class that exports `Display` but does
//! not have exactly one `message` getter per variant fails the generation, so a change in
//! uniffi's templates (the crate is pinned to `=0.32.2`) cannot slip through. Running it
//! twice changes nothing.

use std::path::Path;

/// Rewrites every `.kt` file under `dir` (see the module docs).
pub fn polish_dir(dir: &Path) -> Result<(), String> {
    crate::rewrite_files(dir, "kt", polish)
}

const DISPLAY_COMMENT: &str = "// The local Rust `Display`/`Debug` implementation.";
/// How top-level declarations after an exception class begin.
const TOP_LEVEL: [&str; 6] =
    ["public object ", "sealed class ", "enum class ", "data class ", "interface ", "open class "];
const TO_STRING: &str = "override fun toString(): String {";

/// The rewrite of one generated Kotlin file.
pub fn polish(text: &str) -> Result<String, String> {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let mut i = 0;
    while i < lines.len() {
        let exception = lines.get(i).and_then(|l| exception_class(l));
        if let Some(name) = exception {
            // The class runs to the next top-level declaration (its converter object).
            let end = (i + 1..lines.len())
                .find(|&j| lines.get(j).is_some_and(|l| TOP_LEVEL.iter().any(|t| l.starts_with(t))))
                .unwrap_or(lines.len());
            let class = lines.get_mut(i..end).ok_or_else(|| format!("class {name}: bad range"))?;
            polish_exception(class, &name)?;
            i = end;
        }
        i += 1;
    }
    for line in &mut lines {
        if let Some(object) = bare_object(line) {
            *line = object;
        }
    }
    let mut out = lines.join("\n");
    if text.ends_with('\n') {
        out.push('\n');
    }
    Ok(out)
}

/// `sealed class NameException: kotlin.Exception()…` (an error enum with fields; flat
/// errors take a `message` constructor argument instead and are left alone).
fn exception_class(line: &str) -> Option<String> {
    let rest = line.strip_prefix("sealed class ")?;
    let (name, after) = rest.split_once(':')?;
    after.trim_start().starts_with("kotlin.Exception()").then(|| name.trim().to_string())
}

fn indent_of(line: &str) -> &str {
    line.strip_suffix(line.trim_start()).unwrap_or_default()
}

/// Replaces line `j` by its indentation followed by `text`.
fn set_line(class: &mut [String], j: usize, text: &str) {
    if let Some(line) = class.get_mut(j) {
        *line = format!("{}{text}", indent_of(line));
    }
}

fn polish_exception(class: &mut [String], name: &str) -> Result<(), String> {
    let display = class.iter().position(|l| l.trim() == DISPLAY_COMMENT);
    let Some(display) = display else {
        return Ok(()); // no Display exported (or already polished): nothing to fetch
    };
    let to_string = (display + 1..class.len())
        .find(|&j| class.get(j).is_some_and(|l| !l.trim().is_empty()))
        .filter(|&j| class.get(j).is_some_and(|l| l.trim() == TO_STRING))
        .ok_or_else(|| format!("class {name}: `{TO_STRING}` does not follow the Display comment"))?;
    let variants = class.iter().filter(|l| is_variant(l, name)).count();
    let mut getters = 0;
    for j in 0..class.len() {
        if class.get(j).is_some_and(|l| l.trim() == "override val message") {
            let getter = class.get(j + 1).map(|l| l.trim().to_string()).unwrap_or_default();
            if !getter.starts_with("get() = \"") {
                return Err(format!("class {name}: unexpected message getter `{getter}`"));
            }
            set_line(class, j, "override val message: String");
            set_line(class, j + 1, "get() = uniffiDisplay()");
            getters += 1;
        }
    }
    if getters == 0 || getters != variants {
        return Err(format!(
            "class {name}: {variants} variants but {getters} `message` getters; uniffi's Kotlin error \
             template changed (update bindings/uniffi-bindgen/src/kotlin.rs)"
        ));
    }
    set_line(
        class,
        display,
        "/** A sentence for a person (the Rust `Display`): the `message` of every variant. */\n    \
         override val message: String\n        get() = uniffiDisplay()\n\n    \
         /** The Rust `Display` of this error. */",
    );
    set_line(class, to_string, "internal fun uniffiDisplay(): String {");
    Ok(())
}

/// `    class WrongPin(` … `) : SunstormException() {` opens a variant.
fn is_variant(line: &str, name: &str) -> bool {
    let t = line.trim_start();
    t.starts_with("class ") && line.len() > t.len() && (t.contains('(') || t.contains(&format!(": {name}()")))
}

/// `    object Done : PairOutcomeView()` → `    data object Done : PairOutcomeView()`.
fn bare_object(line: &str) -> Option<String> {
    let indent = indent_of(line);
    if indent.is_empty() {
        return None;
    }
    let rest = line.trim_start().strip_prefix("object ")?;
    let (name, parent) = rest.split_once(" : ")?;
    let parent = parent.trim_end().strip_suffix("()")?;
    let ident = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    (ident(name) && ident(parent)).then(|| format!("{indent}data object {name} : {parent}()"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What uniffi 0.32.2 writes for an error enum with `#[uniffi::export(Display)]`
    /// (trimmed to two variants; the shape of `bindings/generated/kotlin*`).
    const ERROR: &str = r#"
/**
 * Everything that can go wrong.
 */
sealed class SunstormException: kotlin.Exception() {
    
    /**
     * Wrong PIN.
     */
    class WrongPin(
        
        /**
         * Attempts left.
         */
        val `attemptsLeft`: kotlin.Int
        ) : SunstormException() {
        override val message
            get() = "attemptsLeft=${ `attemptsLeft` }"
    }
    
    class Cancelled(
        ) : SunstormException() {
        override val message
            get() = ""
    }
    

    
    // The local Rust `Display`/`Debug` implementation.
    override fun toString(): String {
        return FfiConverterString.lift(
    uniffiRustCall() { _status ->
    UniffiLib.uniffi_sunstorm_ffi_fn_method_sunstormerror_uniffi_trait_display(
    
        FfiConverterTypeSunstormError.lower(this),_status)
}
    )
    }

    companion object ErrorHandler : UniffiRustCallStatusErrorHandler<SunstormException> {
        override fun lift(error_buf: RustBuffer.ByValue): SunstormException = FfiConverterTypeSunstormError.lift(error_buf)
    }

    
}

sealed class FlowProgress {
    
    object ConnectingToAppliance : FlowProgress()
    
    
    data class SendingToAppliance(
        val `sent`: kotlin.Long, 
        val `total`: kotlin.Long) : FlowProgress()
        
    {
        
        companion object
    }
    companion object
}

public object FfiConverterTypeFlowProgress : FfiConverterRustBuffer<FlowProgress>{
}
"#;

    #[test]
    fn exception_messages_become_the_display_sentence_and_to_string_stays_kotlins() {
        let out = polish(ERROR).unwrap();
        // Each variant's getter, and the sealed class's own (so `e.message` is a `String`).
        assert_eq!(out.matches("override val message: String").count(), 3, "{out}");
        assert_eq!(out.matches("get() = uniffiDisplay()").count(), 3, "{out}");
        assert!(out.contains("    override val message: String\n        get() = uniffiDisplay()\n\n    /** The Rust"));
        assert!(!out.contains("attemptsLeft=${"), "{out}");
        assert!(!out.contains("override fun toString()"), "{out}");
        assert!(out.contains("    internal fun uniffiDisplay(): String {\n        return FfiConverterString.lift("));
        // Everything else is untouched.
        assert!(out.contains("companion object ErrorHandler"));
        assert_eq!(out.lines().count(), ERROR.lines().count() + 4);
    }

    #[test]
    fn cases_without_fields_become_data_objects_and_nothing_else_does() {
        let out = polish(ERROR).unwrap();
        assert!(out.contains("    data object ConnectingToAppliance : FlowProgress()\n"), "{out}");
        assert!(out.contains("public object FfiConverterTypeFlowProgress"));
        assert!(out.contains("        companion object\n"));
        assert!(!out.contains("data companion"));
    }

    #[test]
    fn polishing_twice_changes_nothing() {
        let once = polish(ERROR).unwrap();
        assert_eq!(polish(&once).unwrap(), once);
    }

    #[test]
    fn an_unexpected_template_fails_loudly() {
        let changed = ERROR.replace("        override val message\n            get() = \"\"\n", "");
        let e = polish(&changed).unwrap_err();
        assert!(e.contains("SunstormException") && e.contains("template changed"), "{e}");
        let odd = ERROR.replace("get() = \"attemptsLeft=${ `attemptsLeft` }\"", "get() = computeIt()");
        assert!(polish(&odd).unwrap_err().contains("unexpected message getter"));
    }

    #[test]
    fn an_exception_without_display_is_left_alone() {
        let plain = "sealed class PlainException: kotlin.Exception() {\n    class A(\n        ) : PlainException() {\n        override val message\n            get() = \"\"\n    }\n}\n";
        assert_eq!(polish(plain).unwrap(), plain);
    }
}
