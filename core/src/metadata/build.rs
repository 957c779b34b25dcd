//! Building a bundle from a registry checkout and token lists (used by the bundle tool and
//! by the test that rebuilds the committed bundle).

use std::collections::BTreeMap;

use alloy_primitives::Address;
use ed25519_dalek::SigningKey;

use super::{name_key, token_key, BundleBody, MetadataError, SignedBundle, Source, BUNDLE_FORMAT};
use crate::cbor;
use crate::decode::erc7730::model::{load_merged, Context, Descriptor};
use crate::decode::erc7730::{declared_tickers, declared_tokens_and_names, TokenInfo};
use crate::envelope::{sign_bytes, Domain};

/// Longest token symbol kept from a token list.
const MAX_SYMBOL_CHARS: usize = 32;
/// Longest token name kept from a token list.
const MAX_NAME_CHARS: usize = 64;

/// A token list in the Uniswap token-list format (`{"tokens": [{chainId, address, symbol,
/// name, decimals}]}`), with its provenance.
#[derive(Debug, Clone)]
pub struct TokenListSource {
    /// Provenance (package name, version, licence).
    pub source: Source,
    /// The list's JSON.
    pub json: Vec<u8>,
    /// The list writes every ticker in capitals (Ledger's public list does): a ticker a
    /// descriptor spells with the same letters restores its case.
    pub capitalised_tickers: bool,
}

/// Everything a bundle is built from.
#[derive(Debug, Clone)]
pub struct BuildInput {
    /// Content version of the bundle.
    pub version: u64,
    /// Provenance of the registry (repository, commit, licence).
    pub registry: Source,
    /// Registry files by path relative to the registry root (`registry/…`, `ercs/…`).
    /// Test files and anything else are ignored.
    pub registry_files: BTreeMap<String, Vec<u8>>,
    /// Token lists, earlier lists winning on the same token.
    pub token_lists: Vec<TokenListSource>,
}

fn build_err(e: impl std::fmt::Display) -> MetadataError {
    MetadataError::Build(e.to_string())
}

/// Removes insignificant whitespace from JSON text, keeping everything else (key order,
/// number spelling, string escapes) exactly as written. The text must be valid JSON.
pub fn minify_json(text: &str) -> Result<String, MetadataError> {
    serde_json::from_str::<serde::de::IgnoredAny>(text).map_err(build_err)?;
    let mut out = String::with_capacity(text.len());
    let mut in_string = false;
    let mut escaped = false;
    for c in text.chars() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if c == '"' {
            in_string = true;
            out.push(c);
        } else if !c.is_whitespace() {
            out.push(c);
        }
    }
    Ok(out)
}

fn is_registry_file(path: &str) -> bool {
    path.ends_with(".json") && !path.contains("/tests/") && (path.starts_with("registry/") || path.starts_with("ercs/"))
}

fn binds(d: &Descriptor) -> bool {
    if d.formats.is_empty() {
        return false;
    }
    match &d.context {
        Context::Contract { deployments, .. } => !deployments.is_empty(),
        Context::Eip712 { deployments, domain, domain_separator, .. } => {
            !deployments.is_empty() || !domain.is_empty() || domain_separator.is_some()
        }
    }
}

/// The zero address and `0xEeee…EEeE` stand for the native currency in some lists; they are
/// no ERC-20 contract, and a token entry for them would name every zero address "Ether".
fn is_native_placeholder(a: &Address) -> bool {
    *a == Address::ZERO || a.0 .0 == [0xee; 20]
}

fn clean(s: &str, max: usize) -> Option<String> {
    let t = s.trim();
    let ok = !t.is_empty() && t.chars().count() <= max && !t.chars().any(char::is_control);
    ok.then(|| t.to_string())
}

/// A built body and the registry files left out of its descriptors, with the reason.
#[derive(Debug, Clone)]
pub struct Built {
    /// The body to seal.
    pub body: BundleBody,
    /// Files that are not descriptors of their own: `(path, reason)`.
    pub skipped: Vec<(String, String)>,
}

/// Builds the bundle body: the registry's descriptor and include files (minified), the
/// descriptors that bind to a deployment or domain, the tokens the descriptors declare
/// plus those of the token lists (earlier sources win), and the contract names the
/// descriptors declare.
pub fn build_body(input: &BuildInput) -> Result<Built, MetadataError> {
    let mut files = BTreeMap::new();
    for (path, bytes) in &input.registry_files {
        if !is_registry_file(path) {
            continue;
        }
        let text = std::str::from_utf8(bytes).map_err(|e| build_err(format!("{path}: {e}")))?;
        files.insert(path.clone(), minify_json(text).map_err(|e| build_err(format!("{path}: {e}")))?);
    }
    let mut descriptors = Vec::new();
    let mut entry_points = Vec::new();
    let mut skipped = Vec::new();
    for path in files.keys() {
        let parsed = load_merged(&files, path).and_then(|m| Descriptor::from_json(path, &m));
        match parsed {
            Ok(d) if binds(&d) => {
                entry_points.push(path.clone());
                descriptors.push(d);
            }
            Ok(_) => skipped.push((path.clone(), "binds to no deployment (include only)".into())),
            Err(e) => skipped.push((path.clone(), e.to_string())),
        }
    }
    // Token metadata: the descriptors' own `metadata.token` first (the protocol's word on
    // its contract), then the token lists in the manifest's order; the first source that
    // has a token gives all its fields.
    let (declared_tokens, declared_names) = declared_tokens_and_names(&descriptors);
    let mut tokens: BTreeMap<String, TokenInfo> = BTreeMap::new();
    for ((chain, addr), t) in declared_tokens {
        tokens.entry(token_key(chain, &addr)).or_insert(t);
    }
    let mut capitalised: std::collections::BTreeSet<String> = Default::default();
    let mut sources = vec![input.registry.clone()];
    for list in &input.token_lists {
        sources.push(list.source.clone());
        let v: serde_json::Value = serde_json::from_slice(&list.json).map_err(build_err)?;
        let entries = v.get("tokens").and_then(|t| t.as_array()).cloned().unwrap_or_default();
        for t in entries {
            let chain = t.get("chainId").and_then(|c| c.as_u64());
            let addr = t.get("address").and_then(|a| a.as_str()).and_then(|a| a.parse::<Address>().ok());
            let decimals = t.get("decimals").and_then(|d| d.as_u64()).and_then(|d| u8::try_from(d).ok());
            let symbol = t.get("symbol").and_then(|s| s.as_str()).and_then(|s| clean(s, MAX_SYMBOL_CHARS));
            let name = t.get("name").and_then(|s| s.as_str()).and_then(|s| clean(s, MAX_NAME_CHARS));
            let (Some(chain), Some(addr), Some(decimals), Some(symbol), Some(name)) =
                (chain, addr, decimals, symbol, name)
            else {
                continue;
            };
            if decimals > 77 || is_native_placeholder(&addr) {
                continue;
            }
            let key = token_key(chain, &addr);
            if let std::collections::btree_map::Entry::Vacant(slot) = tokens.entry(key) {
                // A capitalised list's names are no guide to its tickers' case ("EIGEN" is
                // named "Eigen", "RSWETH" "rswETH"): only descriptors restore case, below.
                if list.capitalised_tickers {
                    capitalised.insert(slot.key().clone());
                }
                slot.insert(TokenInfo { symbol, decimals, name });
            }
        }
    }
    // Tickers the descriptors spell (ERC-4626 vault constants) restore the case of a
    // ticker taken from a list that writes capitals ("GTUSDC" → "gtUSDC"); they never add
    // a token (a ticker without decimals cannot render an amount) nor change its letters.
    for ((chain, addr), ticker) in declared_tickers(&descriptors) {
        let key = token_key(chain, &addr);
        if !capitalised.contains(&key) {
            continue;
        }
        if let Some(t) = tokens.get_mut(&key) {
            if t.symbol.eq_ignore_ascii_case(&ticker) {
                t.symbol = ticker;
            }
        }
    }
    let names = declared_names.into_iter().map(|((c, a), n)| (name_key(c, &a), n)).collect();
    let body = BundleBody {
        format: BUNDLE_FORMAT,
        version: input.version,
        sources,
        files,
        descriptors: entry_points,
        tokens,
        names,
    };
    Ok(Built { body, skipped })
}

/// Encodes `body` and signs it with the metadata key: the bundle file.
pub fn seal(body: &BundleBody, key: &SigningKey) -> Result<Vec<u8>, MetadataError> {
    let body_bytes = cbor::to_vec(body).map_err(build_err)?;
    let sig = sign_bytes(Domain::MetadataBundle, key, &body_bytes).to_vec();
    cbor::to_vec(&SignedBundle { body: body_bytes, sig }).map_err(build_err)
}

/// The build manifest `metadata/bundle.json`: content version and sources.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    /// Content version of the bundle.
    pub version: u64,
    /// The registry checkout.
    pub registry: ManifestRegistry,
    /// Token lists, in priority order.
    pub token_lists: Vec<ManifestTokenList>,
    /// The bundle file, relative to the manifest.
    pub output: String,
}

/// The registry entry of a [`Manifest`].
#[derive(Debug, Clone, serde::Deserialize)]
pub struct ManifestRegistry {
    /// Repository.
    pub name: String,
    /// Commit.
    pub version: String,
    /// SPDX licence.
    pub licence: String,
    /// Directory, relative to the manifest.
    pub dir: String,
}

/// A token list entry of a [`Manifest`].
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManifestTokenList {
    /// Package name.
    pub name: String,
    /// Package version.
    pub version: String,
    /// SPDX licence.
    pub licence: String,
    /// File, relative to the manifest.
    pub file: String,
    /// SHA-256 of the file, lowercase hex (checked).
    pub sha256: String,
    /// Where the file was derived from (published artefact and its checksum); for the
    /// record only, not part of the bundle.
    #[serde(default)]
    pub origin: Option<String>,
    /// The list writes every ticker in capitals (see [`TokenListSource`]).
    #[serde(default)]
    pub capitalised_tickers: bool,
}

/// Most files read from a registry checkout.
const MAX_REGISTRY_FILES: usize = 10_000;

fn read_tree(
    root: &std::path::Path,
    dir: &std::path::Path,
    out: &mut BTreeMap<String, Vec<u8>>,
    depth: usize,
) -> Result<(), MetadataError> {
    if depth > 8 {
        return Err(build_err("registry directories nested too deeply"));
    }
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| build_err(format!("{}: {e}", dir.display())))?
        .filter_map(Result::ok)
        .collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let p = e.path();
        let ft = e.file_type().map_err(build_err)?;
        if ft.is_dir() {
            read_tree(root, &p, out, depth + 1)?;
        } else if ft.is_file() {
            let rel = p.strip_prefix(root).map_err(build_err)?;
            let rel: Vec<String> = rel.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect();
            let rel = rel.join("/");
            if is_registry_file(&rel) {
                if out.len() >= MAX_REGISTRY_FILES {
                    return Err(build_err("too many registry files"));
                }
                out.insert(rel, std::fs::read(&p).map_err(build_err)?);
            }
        }
    }
    Ok(())
}

/// Reads the manifest at `manifest_path` and everything it names: the build input, and the
/// path of the bundle file it produces.
pub fn read_manifest(manifest_path: &std::path::Path) -> Result<(BuildInput, std::path::PathBuf), MetadataError> {
    use sha2::Digest;
    let base = manifest_path.parent().unwrap_or(std::path::Path::new("."));
    let m: Manifest = serde_json::from_slice(&std::fs::read(manifest_path).map_err(build_err)?).map_err(build_err)?;
    let mut registry_files = BTreeMap::new();
    let reg_root = base.join(&m.registry.dir);
    read_tree(&reg_root, &reg_root, &mut registry_files, 0)?;
    let mut token_lists = Vec::new();
    for t in &m.token_lists {
        let json = std::fs::read(base.join(&t.file)).map_err(build_err)?;
        let digest = hex::encode(sha2::Sha256::digest(&json));
        if digest != t.sha256 {
            return Err(build_err(format!("{}: sha256 {digest} is not the manifest's", t.file)));
        }
        token_lists.push(TokenListSource {
            source: Source { name: t.name.clone(), version: t.version.clone(), licence: t.licence.clone() },
            json,
            capitalised_tickers: t.capitalised_tickers,
        });
    }
    let input = BuildInput {
        version: m.version,
        registry: Source {
            name: m.registry.name.clone(),
            version: m.registry.version.clone(),
            licence: m.registry.licence.clone(),
        },
        registry_files,
        token_lists,
    };
    Ok((input, base.join(&m.output)))
}

/// Reads a 32-byte Ed25519 seed written as hex (surrounding whitespace ignored).
pub fn read_seed_hex(text: &str) -> Result<SigningKey, MetadataError> {
    let bytes = zeroize::Zeroizing::new(hex::decode(text.trim()).map_err(build_err)?);
    let seed: [u8; 32] = bytes.as_slice().try_into().map_err(|_| build_err("seed is not 32 bytes"))?;
    Ok(SigningKey::from_bytes(&seed))
}
