#!/usr/bin/env python3
"""Checks that what the docs quote exists (run by scripts/check-docs.sh).

  check_docs.py ROOT SUNSTORM_BIN

1. CLI: every `sunstorm …` command quoted in the docs (code blocks and inline code) names
   real subcommands (each one's `--help` runs) and only flags that subcommand's help lists.
2. Paths: every repository path in inline code or a link target exists (`...`/`…` stand
   for any directories; git-ignored paths are build products and skipped); `page.md#anchor`
   links point at a heading that exists.
3. Names (embedding pages): constructors and `core.method(` calls in Kotlin/Swift code
   blocks, `Type.Member` in inline code, and inline type names with a platform-interface
   suffix (…Presence, …Store, …Central, …Exception…) exist in the generated bindings or
   the shells' sources. Gradle module paths (`:sunstorm:assembleRelease`) are modules of
   android/settings.gradle.kts, and `./gradlew` needs a checked-in wrapper.
4. Concern tables (a table whose last two header cells are `file` and `symbol`, as in
   docs/architecture.md): each row names exactly one file, which exists, and symbols that
   are in it. A symbol path (`SignEngine::ingest`) must be defined in a Rust file (item,
   enum variant or field; its other segments appear in the file) or appear as a word in
   any other file; any other symbol text (`budget=4194304`) must appear verbatim. A row
   whose file cell starts with "planned" is not checked. docs/architecture.md must answer
   at least MIN_CONCERNS questions this way.

Prints each problem as `file:line: what` and exits 1 if there is any.
"""

import fnmatch
import glob
import os
import re
import subprocess
import sys

ROOT, BIN = sys.argv[1], sys.argv[2]
DOCS = sorted(
    glob.glob(os.path.join(ROOT, "docs", "**", "*.md"), recursive=True)
    + [
        os.path.join(ROOT, p)
        for p in (
            "README.md", "bindings/README.md", "ios/Sources/Sunstorm/README.md", "core/README.md", "sim/README.md",
            "cli/README.md", "ble/README.md", "tests/README.md", "fuzz/README.md",
        )
    ]
)
DOCS = [d for d in DOCS if os.path.exists(d)]
# The pages an app developer follows: their Kotlin/Swift names are checked too.
EMBEDDING = {os.path.join(ROOT, p) for p in ("docs/embedding.md", "docs/android.md", "docs/ios.md", "README.md", "bindings/README.md")}
TOP = ("android/", "ios/", "bindings/", "scripts/", "docs/", "core/", "sim/", "cli/", "ble/", "tests/", "examples/", "fuzz/", ".ci/")
ROOT_FILES = {"uniffi.toml", "Cargo.toml", "Cargo.lock", "README.md", "clippy.toml"}

problems = []


def problem(path, line, what):
    problems.append(f"{os.path.relpath(path, ROOT)}:{line}: {what}")


def line_of(text, offset):
    return text.count("\n", 0, offset) + 1


# ---- markdown pieces -------------------------------------------------------------------

FENCE = re.compile(r"^```([a-zA-Z]*)[^\n]*\n(.*?)^```", re.M | re.S)


def code_blocks(text):
    """(language, body, offset) of each fenced block."""
    return [(m.group(1).lower(), m.group(2), m.start(2)) for m in FENCE.finditer(text)]


def prose(text):
    """The text with fenced blocks blanked (offsets kept)."""
    return FENCE.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)), text)


def inline_code(text):
    """(content, offset) of each inline code span outside fenced blocks (may span lines)."""
    return [(m.group(1), m.start(1)) for m in re.finditer(r"`([^`\n]+(?:\n[^`\n]+)?)`", prose(text))]


# ---- 1. the CLI ------------------------------------------------------------------------

help_cache = {}


def help_of(path):
    """`sunstorm PATH --help` output, or None if PATH is not a command."""
    key = tuple(path)
    if key not in help_cache:
        r = subprocess.run([BIN, *path, "--help"], capture_output=True, text=True, timeout=60)
        help_cache[key] = r.stdout if r.returncode == 0 else None
    return help_cache[key]


def subcommands(path):
    h = help_of(path) or ""
    section = re.search(r"^Commands:\n(.*?)(?:\n\n|\Z)", h, re.M | re.S)
    if not section:
        return set()
    return {m.group(1) for m in re.finditer(r"^  ([a-z][a-z0-9-]*)\s", section.group(1), re.M) if m.group(1) != "help"}


def flags_of(path):
    return set(re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", help_of(path) or ""))


def check_cli(doc, text):
    pieces = [(body, off, True) for lang, body, off in code_blocks(text) if lang in ("", "sh", "bash", "shell", "console")]
    # Inline code may name a command group in prose (`sunstorm sim`): checked more leniently.
    pieces += [(c, off, False) for c, off in inline_code(text) if re.match(r"\s*sunstorm\s", c)]
    for body, off, block in pieces:
        body = re.sub(r"\\\n", " ", body)  # shell line continuations
        for m in re.finditer(r"(?:^|[\s;&|(])sunstorm((?:[ \t]+[^\s#;&|)]+)*)", body, re.M):
            tokens = m.group(1).split()
            if not tokens or not re.fullmatch(r"[a-z][a-z0-9-]*", tokens[0]):
                continue
            path = []
            while tokens and tokens[0] in subcommands(path):
                path.append(tokens.pop(0))
            where = line_of(text, off + m.start())
            if help_of(path) is None or (not path and tokens):
                problem(doc, where, f"`sunstorm {' '.join(path + tokens[:1])}` is not a command")
                continue
            if subcommands(path) and not tokens[:1] == ["--help"]:
                if block:
                    problem(doc, where, f"`sunstorm {' '.join(path)}` needs a subcommand ({', '.join(sorted(subcommands(path)))})")
                continue
            known = flags_of(path) | {"--help", "--version", "--log"}
            for t in tokens:
                flag = t.split("=", 1)[0].rstrip(".,`")
                if flag.startswith("--") and re.fullmatch(r"--[a-z][a-z0-9-]*", flag) and flag not in known:
                    problem(doc, where, f"`sunstorm {' '.join(path)}` has no flag {flag}")


# ---- 2. paths and anchors --------------------------------------------------------------


IN_GIT = subprocess.run(["git", "-C", ROOT, "rev-parse"], capture_output=True).returncode == 0


def ignored(rel):
    """Whether `rel` is git-ignored (a build product); without git, from the .gitignore files."""
    if IN_GIT:
        return subprocess.run(["git", "-C", ROOT, "check-ignore", "-q", "--no-index", rel]).returncode == 0
    for gi in glob.glob(os.path.join(ROOT, "**", ".gitignore"), recursive=True):
        base = os.path.relpath(os.path.dirname(gi), ROOT)
        base = "" if base == "." else base + "/"
        for pat in open(gi, encoding="utf-8").read().split():
            if pat.startswith("#") or not rel.startswith(base):
                continue
            sub = rel[len(base):]
            if pat.startswith("/") and fnmatch.fnmatch(sub, pat[1:] + "*"):
                return True
            if not pat.startswith("/") and any(fnmatch.fnmatch(part, pat.strip("/")) for part in sub.split("/")):
                return True
    return False


def exists(rel, base):
    """`rel` from the repository root, or from `base` (the page's own directory)."""
    for b in (ROOT, base):
        if "..." in rel or "…" in rel:
            pattern = re.sub(r"/(?:\.\.\.|…)/", "/**/", rel)
            if glob.glob(os.path.join(b, pattern), recursive=True):
                return True
        elif os.path.exists(os.path.join(b, rel)):
            return True
    return False


def slug(heading):
    s = heading.strip().lower()
    s = re.sub(r"[^\w\- ]", "", s)
    return s.replace(" ", "-")


def anchors(path):
    text = open(path, encoding="utf-8").read()
    return {slug(re.sub(r"[`*]", "", m.group(1))) for m in re.finditer(r"^#+\s+(.*)$", prose(text), re.M)}


def path_ok(tok, doc):
    if exists(tok, os.path.dirname(doc)):
        return True
    # A build product (git-ignored) is fine if each missing part of its path is ignored
    # too (`ios/build/…`), not inside a directory that does not exist (`android/lib/…`).
    parts = tok.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    return ignored(tok) and all(os.path.exists(os.path.join(ROOT, p)) or ignored(p) for p in prefixes)


def check_paths(doc, text):
    candidates = []
    for content, off in inline_code(text):
        tok = content.strip().split()[0] if content.strip() else ""
        candidates.append((tok, off))
    for lang, body, off in code_blocks(text):
        if lang in ("sh", "bash", "shell"):
            candidates += [(m.group(1), off + m.start()) for m in re.finditer(r"(?:^|\s)([a-z.][\w./-]*/[\w./-]+)", body)]
    for tok, off in candidates:
        tok = re.sub(r"[:#].*$", "", tok).rstrip(".,;)")
        if not (tok.startswith(TOP) or tok in ROOT_FILES) or "<" in tok or "*" in tok or "{" in tok:
            continue
        if not path_ok(tok, doc):
            problem(doc, line_of(text, off), f"no such path: {tok}")
    for m in re.finditer(r"\]\(([^)\s]+)\)", prose(text)):
        target = m.group(1)
        if re.match(r"[a-z]+://|mailto:", target):
            continue
        file, _, anchor = target.partition("#")
        full = os.path.normpath(os.path.join(os.path.dirname(doc), file)) if file else doc
        if not os.path.exists(full):
            problem(doc, line_of(text, m.start()), f"broken link: {target}")
        elif anchor and full.endswith(".md") and anchor not in anchors(full):
            problem(doc, line_of(text, m.start()), f"no heading #{anchor} in {os.path.relpath(full, ROOT)}")


# ---- 3. Kotlin and Swift names ---------------------------------------------------------


def strip_comments(src):
    src = re.sub(r"/\*.*?\*/", " ", src, flags=re.S)
    return re.sub(r"//[^\n]*", " ", src)


def identifiers(paths):
    words = set()
    for p in paths:
        words |= set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", strip_comments(open(p, encoding="utf-8").read())))
    return words


def sources(*patterns):
    out = []
    for pat in patterns:
        out += glob.glob(os.path.join(ROOT, pat), recursive=True)
    return [p for p in out if "/target/" not in p and "/build/" not in p]


KOTLIN = identifiers(sources("bindings/generated/kotlin/**/*.kt", "bindings/jvm/src/**/*.kt", "android/**/*.kt", "examples/**/*.kt"))
SWIFT = identifiers(sources("bindings/generated/swift/*.swift", "ios/**/*.swift"))
GENERATED = identifiers(sources("bindings/generated/kotlin/**/*.kt", "bindings/generated/swift/*.swift"))
PYTHON = identifiers(sources("bindings/python/*.py"))
# Standard library and platform names the snippets use.
PLATFORM = {
    "listOf", "mapOf", "setOf", "println", "require", "check", "Build", "File", "Path", "Paths", "URL",
    "Date", "UIDevice", "Data", "String", "Int", "Long", "Int32", "Int64", "Task", "Activity",
    "FirebaseMessagingService",  # the FCM SDK: not a dependency here (docs/android.md, Push)
}
SUFFIXES = ("Presence", "Central", "Sink", "Store", "Client", "Listener", "Handle", "Exception", "Error", "View", "Config", "Router")
KNOWN_ELSEWHERE = {  # platform types the pages name on purpose
    "BluetoothGatt", "CBCentralManager", "HttpURLConnection", "TransportError", "GattError", "PairLinkError", "OctaneError", "PairError",
    "SignError", "StoreError", "ApplianceError", "SecretError", "InternalError", "URLSessionDataDelegate",
    "UniffiInternalError", "LocalizedError", "HttpConnectTimeoutException", "IOException", "BiometricPrompt",
}


# `sunstorm` commands the embedding pages must show with the flags a working setup needs.
REQUIRED_FLAGS = {("sim", "appliance"): ["--octane-key"]}


def check_setup(doc, text):
    for lang, body, off in code_blocks(text):
        for m in re.finditer(r"sunstorm\s+([a-z-]+)\s+([a-z-]+)([^\n]*)", re.sub(r"\\\n", " ", body)):
            for flag in REQUIRED_FLAGS.get((m.group(1), m.group(2)), []):
                if flag not in m.group(3):
                    problem(doc, line_of(text, off + m.start()), f"`sunstorm {m.group(1)} {m.group(2)}` without {flag} (a working setup needs it)")


def check_names(doc, text):
    check_setup(doc, text)
    for lang, body, off in code_blocks(text):
        if lang not in ("kotlin", "swift"):
            continue
        names = KOTLIN if lang == "kotlin" else SWIFT
        body_nc = strip_comments(body)
        for m in re.finditer(r"(?<![.\w])([A-Z][A-Za-z0-9]*)\s*\(", body_nc):
            if m.group(1) not in names and m.group(1) not in PLATFORM:
                problem(doc, line_of(text, off + m.start()), f"{lang}: no type or function {m.group(1)}")
        for m in re.finditer(r"\bcore\.([a-z][A-Za-z0-9]*)\s*\(", body_nc):
            if m.group(1) not in GENERATED:
                problem(doc, line_of(text, off + m.start()), f"{lang}: SunstormCore has no {m.group(1)}")
    for content, off in inline_code(text):
        for m in re.finditer(r"(?<![\w.])([A-Z][A-Za-z0-9]+)\.([A-Za-z_][A-Za-z0-9_]*)\b", content):
            owner, member = m.groups()
            if owner in GENERATED and member not in KOTLIN and member not in SWIFT:
                problem(doc, line_of(text, off), f"{owner} has no member {member} (in `{content.strip()}`)")
        for m in re.finditer(r"(?<![\w.$])([A-Z][A-Za-z0-9]+)\b", content):
            name = m.group(1)
            upper = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).upper()
            if upper != name and upper in KOTLIN and name not in KOTLIN | SWIFT | PYTHON:
                lower = name[0].lower() + name[1:]
                problem(doc, line_of(text, off), f"enum case {name}: Kotlin spells it {upper}, Swift .{lower}")
            if name.endswith(SUFFIXES) and name not in KOTLIN | SWIFT | PYTHON | KNOWN_ELSEWHERE and not name.isupper():
                problem(doc, line_of(text, off), f"no type {name} in the bindings or the shells")
    modules = set(re.findall(r'":([a-z0-9-]+)"', open(os.path.join(ROOT, "android/settings.gradle.kts")).read()))
    for m in re.finditer(r"\b(?:gradle|gradlew)\s+((?::[a-zA-Z0-9-]+)+)", text):
        module = m.group(1).split(":")[1]
        if module not in modules:
            problem(doc, line_of(text, m.start()), f"no Gradle module :{module} (modules: {', '.join(sorted(modules))})")
    if "./gradlew" in text and not os.path.exists(os.path.join(ROOT, "android/gradlew")):
        problem(doc, line_of(text, text.index("./gradlew")), "./gradlew: no wrapper is checked in (use `gradle`)")


# ---- 4. concern tables ----------------------------------------------------------------

# The "concern → file → symbol" table of docs/architecture.md answers at least this many
# questions, each checked (issue 14: a newcomer finds each answer in one hop).
MIN_CONCERNS = {"docs/architecture.md": 25}
SYMBOL_PATH = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:::[A-Za-z_][A-Za-z0-9_]*)*(?:\(\))?")
RUST_ITEM = r"\b(?:fn|struct|enum|trait|type|const|static|mod|union)\s+{}\b|\bmacro_rules!\s*{}\b"
# An enum variant or a struct field: the name first on its line, then `{`, `(`, `,` or `:`.
RUST_MEMBER = r"^\s*(?:pub(?:\([a-z]+\))?\s+)?{}\s*(?:[{{(,]|:(?!:))"


def cells(line):
    """The cells of a markdown table row (`|` inside inline code does not split)."""
    parts, cur, in_code = [], "", False
    for ch in line.strip().strip("|"):
        if ch == "`":
            in_code = not in_code
        if ch == "|" and not in_code:
            parts.append(cur.strip())
            cur = ""
        else:
            cur += ch
    parts.append(cur.strip())
    return parts


def concern_tables(text):
    """(row cells, offset) of each data row of the tables headed `… | file | symbol |`."""
    rows, header = [], False
    offset = 0
    for line in prose(text).splitlines(keepends=True):
        stripped = line.strip()
        if not stripped.startswith("|"):
            header = False
        elif re.fullmatch(r"\|?\s*:?-+:?\s*(\|\s*:?-+:?\s*)*\|?", stripped):
            pass  # the separator row
        elif header is False:
            c = [x.lower() for x in cells(stripped)]
            header = len(c) >= 3 and c[-2:] == ["file", "symbol"]
            header = header or None  # None: a table, but not a concern table
        elif header:
            rows.append((cells(stripped), offset))
        offset += len(line)
    return rows


def symbol_in(symbol, rel, src):
    """Why `symbol` is not in the file `rel` (text `src`), or None when it is."""
    if not SYMBOL_PATH.fullmatch(symbol):
        return None if symbol in src else "text not found"
    parts = symbol.removesuffix("()").split("::")
    last = parts[-1]
    missing = [p for p in parts[:-1] if not re.search(rf"\b{re.escape(p)}\b", src)]
    if missing:
        return f"no {', '.join(missing)}"
    if rel.endswith(".rs"):
        code = strip_comments(src)
        name = re.escape(last)
        if re.search(RUST_ITEM.format(name, name), code) or re.search(RUST_MEMBER.format(name), code, re.M):
            return None
        return f"{last} is not defined there"
    return None if re.search(rf"(?<![\w-]){re.escape(last)}(?![\w-])", src) else f"no {last}"


def check_concerns(doc, text):
    rel_doc = os.path.relpath(doc, ROOT)
    answered = 0
    for row, off in concern_tables(text):
        where = line_of(text, off)
        if len(row) < 3:
            problem(doc, where, "concern row without a file and a symbol")
            continue
        file_cell, symbol_cell = row[-2], row[-1]
        if file_cell.lower().startswith("planned"):
            continue
        files = re.findall(r"`([^`]+)`", file_cell)
        if len(files) != 1:
            problem(doc, where, f"a concern row names exactly one file (one hop), not {file_cell!r}")
            continue
        path = os.path.join(ROOT, files[0])
        if not os.path.isfile(path):
            problem(doc, where, f"no such file: {files[0]}")
            continue
        symbols = re.findall(r"`([^`]+)`", symbol_cell)
        if not symbols:
            problem(doc, where, f"no symbol named for {files[0]}")
            continue
        src = open(path, encoding="utf-8", errors="replace").read()
        bad = [(s, why) for s in symbols if (why := symbol_in(s, files[0], src))]
        for s, why in bad:
            problem(doc, where, f"`{s}` is not in {files[0]} ({why})")
        answered += not bad
    need = MIN_CONCERNS.get(rel_doc, 0)
    if answered < need:
        problem(doc, 1, f"the concern table answers {answered} questions with a checked file and symbol; at least {need} expected")


for doc in DOCS:
    text = open(doc, encoding="utf-8").read()
    check_cli(doc, text)
    check_paths(doc, text)
    check_concerns(doc, text)
    if doc in EMBEDDING:
        check_names(doc, text)

commands = sorted(" ".join(k) for k in help_cache if help_cache[k] is not None)
print(f"check-docs: {len(DOCS)} pages; ran --help of {len(commands)} commands; {len(problems)} problems")
for p in problems:
    print(p)
sys.exit(1 if problems else 0)
