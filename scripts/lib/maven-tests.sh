# Sourced by scripts/test-bindings.sh and scripts/test-android.sh: runs one Maven project's
# JUnit tests and judges them the same way for both.
#
#   run_maven_tests LABEL DIR [-Dname=value ...]
#
# Installs Maven through apt if it is missing (the JDK must be there), runs `mvn test`
# quietly (-B -q; -ntp under CI=true; -o with SUNSTORM_MVN_OFFLINE=1), counts Surefire's
# XML reports (its own summary is hidden by -q), prints "LABEL: N passed, F failed, S
# skipped", and fails when Maven failed, when no test ran, or when any test was skipped.

run_maven_tests() {
    local label="$1" dir="$2"
    shift 2
    command -v java >/dev/null || { echo "$label: FAILED: java is not installed (JDK 17+ needed)" >&2; return 1; }
    if ! command -v mvn >/dev/null; then
        echo "$label: installing maven" >&2
        (apt-get update -qq && apt-get install -y -qq maven) >&2 \
            || { echo "$label: FAILED: cannot install maven" >&2; return 1; }
    fi
    local flags=(-B -q)
    [ "${SUNSTORM_MVN_OFFLINE:-0}" = 1 ] && flags+=(-o)
    [ "${CI:-}" = true ] && flags+=(-ntp)
    local reports="$dir/target/surefire-reports"
    rm -rf "$reports"
    local rc=0
    (cd "$dir" && mvn "${flags[@]}" test "$@") || rc=$?
    local tests failed errors skipped
    read -r tests failed errors skipped < <(python3 - "$reports" <<'PY'
import glob, sys, xml.etree.ElementTree as ET
t = f = e = s = 0
for p in glob.glob(sys.argv[1] + "/TEST-*.xml"):
    r = ET.parse(p).getroot()
    t += int(r.get("tests", 0)); f += int(r.get("failures", 0))
    e += int(r.get("errors", 0)); s += int(r.get("skipped", 0))
print(t, f, e, s)
PY
)
    echo "$label: $(( tests - failed - errors - skipped )) passed, $(( failed + errors )) failed, $skipped skipped"
    [ "$rc" -eq 0 ] || { echo "$label: FAILED: mvn exit $rc; reports in $reports" >&2; return 1; }
    [ "$tests" -gt 0 ] || { echo "$label: FAILED: no test ran" >&2; return 1; }
    [ "$skipped" -eq 0 ] || { echo "$label: FAILED: $skipped tests were skipped" >&2; return 1; }
}
