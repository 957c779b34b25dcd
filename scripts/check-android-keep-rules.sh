#!/usr/bin/env bash
# Checks android/sunstorm/consumer-rules.pro (the R8/ProGuard keep rules the AAR gives every
# app; docs/android.md, "Release builds (R8)") by shrinking, optimizing and obfuscating a
# small app (scripts/lib/keep-rules/KeepRulesCheck.kt) together with the generated Kotlin
# bindings, JNA 5.14 and kotlinx-coroutines under those rules, with ProGuard 7.6 from Maven
# Central, then running the result against the host library: sync and async calls,
# records and errors lifted from Rust, foreign traits called from Rust threads (log sink,
# BleCentral), a CancelHandle. The app's own classes are renamed; a rule missing from the
# consumer rules makes a step fail (e.g. without -keepattributes JNA cannot lay out
# RustBuffer).
#
#   scripts/check-android-keep-rules.sh                      # builds the bindings if missing
#   SUNSTORM_SKIP_BUILD=1 scripts/check-android-keep-rules.sh   # reuse bindings/generated + library
#   SUNSTORM_KEEP_RULES=other.pro scripts/check-android-keep-rules.sh   # try other rules
#
# Not R8 (Google Maven only) nor Android: the JVM flavour of the bindings (they differ from
# the Android flavour only in the cleaner) on the host JDK. ~2 minutes warm (Kotlin
# compilation of the bindings, then ProGuard); SUNSTORM_MVN_OFFLINE=1 forbids downloads.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
fail() { echo "check-android-keep-rules: FAILED: $*" >&2; exit 1; }

case "$(uname -s)" in Darwin) libname=libsunstorm_ffi.dylib ;; *) libname=libsunstorm_ffi.so ;; esac
gen="$root/bindings/generated/kotlin-jvm"
lib="$CARGO_TARGET_DIR/debug/$libname"
if [ "${SUNSTORM_SKIP_BUILD:-0}" != 1 ]; then
    lib="$(scripts/bindings.sh | tail -n 1)"
fi
[ -f "$lib" ] || fail "no library at $lib"
[ -n "$(find "$gen" -name '*.kt' 2>/dev/null | head -n 1)" ] || fail "no generated Kotlin in $gen"
rules="${SUNSTORM_KEEP_RULES:-$root/android/sunstorm/consumer-rules.pro}"
[ -f "$rules" ] || fail "no rules at $rules"
command -v mvn >/dev/null || fail "mvn is not installed"
jmods="$(dirname "$(dirname "$(readlink -f "$(command -v java)")")")/jmods"
[ -f "$jmods/java.base.jmod" ] || fail "no $jmods/java.base.jmod (ProGuard needs a JDK with jmods)"

project="$root/scripts/lib/keep-rules"
out="$CARGO_TARGET_DIR/keep-rules-check"
mvn_flags=(-B -q -f "$project/pom.xml")
[ "${SUNSTORM_MVN_OFFLINE:-0}" = 1 ] && mvn_flags+=(-o)
[ "${CI:-}" = true ] && mvn_flags+=(-ntp)

echo "check-android-keep-rules: compiling the bindings and the check app"
mvn "${mvn_flags[@]}" package -Dgen.dir="$gen" || fail "compilation"
mvn "${mvn_flags[@]}" dependency:build-classpath -DincludeScope=runtime \
    -Dmdep.outputFile="$out/inputs.txt" >/dev/null || fail "resolving the app's libraries"
mvn "${mvn_flags[@]}" dependency:build-classpath -DincludeScope=compile \
    -Dmdep.outputFile="$out/tool.txt" >/dev/null || fail "resolving ProGuard"

coroutines="$(tr ':' '\n' <"$out/inputs.txt" | grep 'kotlinx-coroutines-core-jvm')"
unzip -p "$coroutines" META-INF/proguard/coroutines.pro >"$out/coroutines.pro"
{
    echo "-injars $out/keep-rules-check-0.1.0.jar"
    tr ':' '\n' <"$out/inputs.txt" | sed 's|^\(.*\)$|-injars \1(!META-INF/**)|'
    echo "-outjars $out/shrunk.jar"
    echo "-libraryjars $jmods/java.base.jmod(!**.jar;!module-info.class)"
    echo "-libraryjars $jmods/java.logging.jmod(!**.jar;!module-info.class)"
    cat <<'EOF'
# What the app itself brings: its entry point and kotlinx-coroutines' embedded rules.
-keep class keeprules.KeepRulesCheckKt { public static void main(java.lang.String[]); }
-include coroutines.pro
# ProGuard's optimizer breaks kotlinx.coroutines (a VerifyError unrelated to JNA): keep the
# Kotlin libraries as they are. The bindings, JNA and the app are shrunk, optimized and
# obfuscated as the consumer rules allow.
-keep class kotlin.** { *; }
-keep class kotlinx.** { *; }
# Classes the JVM libraries reference that Android has no use for either.
-dontwarn org.jetbrains.annotations.**
-dontwarn android.annotation.**
-dontwarn kotlin.**
-dontwarn sun.misc.**
-dontnote **
-printmapping mapping.txt
EOF
    echo "# The rules under test:"
    echo "-include $rules"
} >"$out/proguard.pro"

echo "check-android-keep-rules: ProGuard with $(basename "$rules")"
rm -f "$out/shrunk.jar"
(cd "$out" && java -cp "$(cat tool.txt)" proguard.ProGuard @proguard.pro >proguard.log 2>&1) \
    || { tail -n 30 "$out/proguard.log" >&2; fail "ProGuard (log: $out/proguard.log)"; }

echo "check-android-keep-rules: running the shrunk app ($(du -k "$out/shrunk.jar" | cut -f1) KiB)"
java -Djna.library.path="$(dirname "$lib")" -cp "$out/shrunk.jar" keeprules.KeepRulesCheckKt \
    || fail "the shrunk app (rules: $rules; mapping: $out/mapping.txt)"
