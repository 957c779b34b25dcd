//! ERC-7730 descriptors (schema v1 and v2): include merging, `$ref` definitions, and the
//! typed model the renderer walks.

use std::collections::BTreeMap;

use alloy_dyn_abi::eip712::Resolver;
use alloy_primitives::Address;
use serde_json::{Map, Value};

use super::abi::{function_from_abi, parse_signature, Function};
use super::value::Path;
use super::ClearError;

/// Deepest chain of `includes`.
pub const MAX_INCLUDE_DEPTH: usize = 4;
/// Deepest nesting of field groups in a format.
pub const MAX_GROUP_DEPTH: usize = 8;
/// Most field entries (all groups together) in one format.
pub const MAX_FIELDS_PER_FORMAT: usize = 256;
/// Deepest JSON nesting the merge walks.
const MAX_JSON_DEPTH: usize = 64;

/// A chain and address a descriptor is bound to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Deployment {
    /// EIP-155 chain id.
    pub chain_id: u64,
    /// Contract address.
    pub address: Address,
}

/// What structured data a descriptor applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Context {
    /// Contract calls to one of `deployments`.
    Contract {
        /// Where the contract is deployed. Empty: the descriptor binds to nothing on its own.
        deployments: Vec<Deployment>,
        /// True when only a factory constraint was given (not checkable on a phone).
        factory_only: bool,
    },
    /// EIP-712 messages.
    Eip712 {
        /// `(chainId, verifyingContract)` options; empty: no deployment constraint.
        deployments: Vec<Deployment>,
        /// Domain values the message must carry (`name`, `version`, `chainId`,
        /// `verifyingContract`).
        domain: Map<String, Value>,
        /// The domain separator the message's domain must hash to.
        domain_separator: Option<[u8; 32]>,
        /// v1 schemas: primary type → its `encodeType` string.
        schemas: Vec<(String, String)>,
    },
}

/// Token metadata of the described contract itself.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TokenMeta {
    /// Ticker.
    pub ticker: String,
    /// Decimals.
    pub decimals: u8,
    /// Name.
    pub name: String,
}

/// The `metadata` section.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Metadata {
    /// Display name of the owner ("Uniswap Labs").
    pub owner: Option<String>,
    /// The contract's name (v2 `contractName`, or v1 `context.$id`).
    pub contract_name: Option<String>,
    /// ERC-20 metadata of the contract itself.
    pub token: Option<TokenMeta>,
    /// `$.metadata.constants.*`.
    pub constants: Map<String, Value>,
    /// `$.metadata.enums.*`: value → display string.
    pub enums: BTreeMap<String, BTreeMap<String, String>>,
    /// `$.metadata.maps.*`: key → constant.
    pub maps: BTreeMap<String, Map<String, Value>>,
}

/// An intent: a sentence, or labelled parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Intent {
    /// "Send".
    Simple(String),
    /// `{"Native Staking": "Withdraw", "Rewards": "Consensus & Exec"}`.
    Complex(Vec<(String, String)>),
}

impl Intent {
    /// One line for the screen title.
    pub fn text(&self) -> String {
        match self {
            Intent::Simple(s) => s.clone(),
            Intent::Complex(parts) => parts.iter().map(|(k, v)| format!("{k}: {v}")).collect::<Vec<_>>().join(", "),
        }
    }
}

/// When a field is shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Visible {
    /// Always (the default; v1 `required`).
    Always,
    /// Never (v1 `excluded`).
    Never,
    /// When the wallet can.
    Optional,
    /// Unless the value is one of these.
    IfNotIn(Vec<String>),
    /// Never shown, but the value must be one of these (else the descriptor does not apply).
    MustBe(Vec<String>),
}

/// A field format name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldFormat {
    /// Natural representation.
    Raw,
    /// Address replaced by a trusted name.
    AddressName,
    /// Token ticker of an address.
    TokenTicker,
    /// Embedded call.
    Calldata,
    /// Native currency amount.
    Amount,
    /// Token amount.
    TokenAmount,
    /// NFT in a collection.
    NftName,
    /// Date.
    Date,
    /// Duration.
    Duration,
    /// Number with a unit.
    Unit,
    /// Enumeration.
    Enum,
    /// Chain name.
    ChainId,
    /// EIP-7930 interoperable address.
    InteroperableAddressName,
}

impl FieldFormat {
    fn parse(s: &str) -> Option<FieldFormat> {
        Some(match s {
            "raw" => FieldFormat::Raw,
            "addressName" | "addressOrName" => FieldFormat::AddressName,
            "tokenTicker" => FieldFormat::TokenTicker,
            "calldata" => FieldFormat::Calldata,
            "amount" => FieldFormat::Amount,
            "tokenAmount" => FieldFormat::TokenAmount,
            "nftName" => FieldFormat::NftName,
            "date" => FieldFormat::Date,
            "duration" => FieldFormat::Duration,
            "unit" => FieldFormat::Unit,
            "enum" => FieldFormat::Enum,
            "chainId" => FieldFormat::ChainId,
            "interoperableAddressName" => FieldFormat::InteroperableAddressName,
            _ => return None,
        })
    }
}

/// One field formatter.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldSpec {
    /// Where the value is (or `None` with a literal `value`).
    pub path: Option<Path>,
    /// A literal shown instead of a value from the data.
    pub value: Option<Value>,
    /// The label.
    pub label: String,
    /// The format (`None`: raw).
    pub format: Option<FieldFormat>,
    /// Format parameters.
    pub params: Map<String, Value>,
    /// Visibility.
    pub visible: Visible,
    /// Set when the value is encrypted (shown as a placeholder).
    pub encrypted: Option<String>,
}

/// Iteration over arrays inside a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Iteration {
    /// All of one array, then all of the next.
    Sequential,
    /// Element i of every array, then element i + 1.
    Bundled,
}

/// A field or a group of fields.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    /// A single formatter.
    Field(FieldSpec),
    /// Fields under a common path.
    Group {
        /// The group's path (its elements are the base of the members' relative paths).
        path: Option<Path>,
        /// Group label (not shown as a row).
        label: Option<String>,
        /// How member arrays are interleaved.
        iteration: Iteration,
        /// Members.
        fields: Vec<Node>,
    },
}

/// What a format entry applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A function (calldata).
    Call(Function),
    /// An EIP-712 primary type, with its `encodeType` when the key gave it (v2).
    Message {
        /// Primary type name.
        primary: String,
        /// `encodeType` with whitespace removed, when known.
        encode_type: Option<String>,
    },
}

/// One entry of `display.formats`.
#[derive(Debug, Clone, PartialEq)]
pub struct Format {
    /// The key as written.
    pub key: String,
    /// What it applies to.
    pub target: Target,
    /// The intent.
    pub intent: Option<Intent>,
    /// `interpolatedIntent` template.
    pub interpolated_intent: Option<String>,
    /// Fields, in display order.
    pub fields: Vec<Node>,
    /// v1 `required` paths.
    pub required: Vec<Path>,
    /// v1 `excluded` paths.
    pub excluded: Vec<Path>,
}

/// A parsed descriptor (includes merged).
#[derive(Debug, Clone, PartialEq)]
pub struct Descriptor {
    /// Where it came from (registry path).
    pub source: String,
    /// Binding context.
    pub context: Context,
    /// Metadata.
    pub metadata: Metadata,
    /// Formats.
    pub formats: Vec<Format>,
}

fn bad(source: &str, why: impl std::fmt::Display) -> ClearError {
    ClearError::BadDescriptor(format!("{source}: {why}"))
}

/// Joins an `includes` reference to the including file's directory (`a/b.json` +
/// `../c.json` → `c.json`).
pub fn join_include(from: &str, include: &str) -> String {
    let mut parts: Vec<&str> = from.split('/').collect();
    parts.pop();
    for seg in include.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            s => parts.push(s),
        }
    }
    parts.join("/")
}

/// Reads `path` from `files`, merging its `includes` chain (the including file wins; `fields`
/// arrays are merged by `path`).
pub fn load_merged(files: &BTreeMap<String, String>, path: &str) -> Result<Value, ClearError> {
    let mut chain = include_chain(files, path)?;
    let mut merged = Value::Object(Map::new());
    while let Some((_, v)) = chain.pop() {
        merged = merge(merged, v, 0)?;
    }
    if let Value::Object(m) = &mut merged {
        m.remove("includes");
    }
    Ok(merged)
}

/// The paths of the files [`load_merged`] reads for `path`: itself, then what it includes,
/// in order.
pub fn include_paths(files: &BTreeMap<String, String>, path: &str) -> Result<Vec<String>, ClearError> {
    Ok(include_chain(files, path)?.into_iter().map(|(p, _)| p).collect())
}

/// `path` and its `includes` chain, each file parsed.
fn include_chain(files: &BTreeMap<String, String>, path: &str) -> Result<Vec<(String, Value)>, ClearError> {
    let mut chain: Vec<(String, Value)> = Vec::new();
    let mut current = path.to_string();
    loop {
        if chain.len() > MAX_INCLUDE_DEPTH {
            return Err(bad(path, "includes nested too deeply"));
        }
        if chain.iter().any(|(p, _)| *p == current) {
            return Err(bad(path, "includes form a cycle"));
        }
        let text = files.get(&current).ok_or_else(|| bad(path, format!("missing {current}")))?;
        let v: Value = serde_json::from_str(text).map_err(|e| bad(&current, e))?;
        let v = with_ordered_intents(text, v);
        let next = v.get("includes").and_then(|i| i.as_str()).map(|i| join_include(&current, i));
        chain.push((current.clone(), v));
        match next {
            Some(n) => current = n,
            None => break,
        }
    }
    Ok(chain)
}

/// Most parts of one complex intent kept.
const MAX_INTENT_PARTS: usize = 32;

/// Complex intents (`{"Native Staking": "Withdraw", "Rewards": "…"}`) in the order the file
/// writes them: `serde_json::Value` keeps object keys sorted, so each file's
/// `display.formats.*.intent` objects are read again, in order, and stored as
/// `[[label, value], …]` before merging (an including file's intent then replaces the
/// included one whole). A file the probe cannot read keeps its parsed value.
fn with_ordered_intents(text: &str, mut v: Value) -> Value {
    let Ok(probe) = serde_json::from_str::<IntentProbe>(text) else { return v };
    let Some(formats) = v.get_mut("display").and_then(|d| d.get_mut("formats")).and_then(|f| f.as_object_mut()) else {
        return v;
    };
    for (key, format) in probe.display.formats {
        let (Some(pairs), Some(f)) = (format.intent.0, formats.get_mut(&key).and_then(|f| f.as_object_mut())) else {
            continue;
        };
        let ordered = pairs.into_iter().map(|(k, val)| Value::Array(vec![Value::String(k), val])).collect();
        f.insert("intent".into(), Value::Array(ordered));
    }
    v
}

#[derive(serde::Deserialize, Default)]
struct IntentProbe {
    #[serde(default)]
    display: ProbeDisplay,
}

#[derive(serde::Deserialize, Default)]
struct ProbeDisplay {
    #[serde(default)]
    formats: BTreeMap<String, ProbeFormat>,
}

#[derive(serde::Deserialize, Default)]
struct ProbeFormat {
    #[serde(default)]
    intent: OrderedPairs,
}

/// An object's entries in document order; `None` for any other JSON value.
#[derive(Default)]
struct OrderedPairs(Option<Vec<(String, Value)>>);

impl<'de> serde::Deserialize<'de> for OrderedPairs {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::{IgnoredAny, MapAccess, SeqAccess, Visitor};
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = OrderedPairs;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an intent")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<OrderedPairs, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = m.next_entry::<String, Value>()? {
                    if out.len() < MAX_INTENT_PARTS {
                        out.push((k, v));
                    }
                }
                Ok(OrderedPairs(Some(out)))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<OrderedPairs, A::Error> {
                while s.next_element::<IgnoredAny>()?.is_some() {}
                Ok(OrderedPairs(None))
            }
            fn visit_str<E>(self, _: &str) -> Result<OrderedPairs, E> {
                Ok(OrderedPairs(None))
            }
            fn visit_bool<E>(self, _: bool) -> Result<OrderedPairs, E> {
                Ok(OrderedPairs(None))
            }
            fn visit_i64<E>(self, _: i64) -> Result<OrderedPairs, E> {
                Ok(OrderedPairs(None))
            }
            fn visit_u64<E>(self, _: u64) -> Result<OrderedPairs, E> {
                Ok(OrderedPairs(None))
            }
            fn visit_f64<E>(self, _: f64) -> Result<OrderedPairs, E> {
                Ok(OrderedPairs(None))
            }
            fn visit_unit<E>(self) -> Result<OrderedPairs, E> {
                Ok(OrderedPairs(None))
            }
        }
        d.deserialize_any(V)
    }
}

/// Merges `over` onto `base`: objects key by key, `fields` arrays by `path`, else `over`.
fn merge(base: Value, over: Value, depth: usize) -> Result<Value, ClearError> {
    if depth > MAX_JSON_DEPTH {
        return Err(ClearError::BadDescriptor("descriptor nested too deeply".into()));
    }
    match (base, over) {
        (Value::Object(mut b), Value::Object(o)) => {
            for (k, ov) in o {
                let nv = match (k.as_str(), b.remove(&k)) {
                    ("fields", Some(Value::Array(bf))) => match ov {
                        Value::Array(of) => Value::Array(merge_fields(bf, of, depth + 1)?),
                        other => other,
                    },
                    (_, Some(bv)) => merge(bv, ov, depth + 1)?,
                    (_, None) => ov,
                };
                b.insert(k, nv);
            }
            Ok(Value::Object(b))
        }
        (_, o) => Ok(o),
    }
}

fn merge_fields(base: Vec<Value>, over: Vec<Value>, depth: usize) -> Result<Vec<Value>, ClearError> {
    let mut out = base;
    for o in over {
        let path = o.get("path").and_then(|p| p.as_str()).map(str::to_string);
        let pos = path
            .as_ref()
            .and_then(|p| out.iter().position(|b| b.get("path").and_then(|x| x.as_str()) == Some(p.as_str())));
        match pos {
            Some(i) => {
                let b = std::mem::take(
                    out.get_mut(i).ok_or_else(|| ClearError::BadDescriptor("field index out of range".into()))?,
                );
                let m = merge(b, o, depth + 1)?;
                if let Some(slot) = out.get_mut(i) {
                    *slot = m;
                }
            }
            None => out.push(o),
        }
    }
    Ok(out)
}

fn parse_address(source: &str, v: &Value) -> Result<Address, ClearError> {
    v.as_str().and_then(|s| s.trim().parse::<Address>().ok()).ok_or_else(|| bad(source, format!("bad address {v}")))
}

fn parse_deployments(source: &str, v: Option<&Value>) -> Result<Vec<Deployment>, ClearError> {
    let Some(arr) = v.and_then(|d| d.as_array()) else { return Ok(Vec::new()) };
    let mut out = Vec::with_capacity(arr.len());
    for d in arr {
        let chain_id =
            d.get("chainId").and_then(|c| c.as_u64()).ok_or_else(|| bad(source, "deployment without chainId"))?;
        let address = parse_address(source, d.get("address").unwrap_or(&Value::Null))?;
        out.push(Deployment { chain_id, address });
    }
    Ok(out)
}

fn strip_ws(s: &str) -> String {
    s.chars().filter(|c| !c.is_whitespace()).collect()
}

impl Descriptor {
    /// Parses a merged descriptor (see [`load_merged`]).
    pub fn from_json(source: &str, v: &Value) -> Result<Descriptor, ClearError> {
        let ctx = v.get("context").ok_or_else(|| bad(source, "no context"))?;
        let ctx_id = ctx.get("$id").and_then(|x| x.as_str()).map(str::to_string);
        let mut abi: Vec<Function> = Vec::new();
        let context = if let Some(c) = ctx.get("contract") {
            if let Some(entries) = c.get("abi").and_then(|a| a.as_array()) {
                for e in entries {
                    if e.get("type").and_then(|t| t.as_str()).unwrap_or("function") == "function" {
                        if let Ok(f) = function_from_abi(e) {
                            abi.push(f);
                        }
                    }
                }
            }
            let deployments = parse_deployments(source, c.get("deployments"))?;
            let factory_only = deployments.is_empty() && c.get("factory").is_some();
            Context::Contract { deployments, factory_only }
        } else if let Some(e) = ctx.get("eip712") {
            let deployments = parse_deployments(source, e.get("deployments"))?;
            let domain = e.get("domain").and_then(|d| d.as_object()).cloned().unwrap_or_default();
            let domain_separator = match e.get("domainSeparator").and_then(|d| d.as_str()) {
                Some(h) => {
                    let bytes =
                        hex::decode(h.trim_start_matches("0x")).map_err(|_| bad(source, "bad domainSeparator"))?;
                    Some(bytes.try_into().map_err(|_| bad(source, "bad domainSeparator"))?)
                }
                None => None,
            };
            let mut schemas = Vec::new();
            if let Some(list) = e.get("schemas").and_then(|s| s.as_array()) {
                for s in list {
                    let (Some(types), Some(primary)) = (s.get("types"), s.get("primaryType").and_then(|p| p.as_str()))
                    else {
                        continue;
                    };
                    let resolver: Resolver =
                        serde_json::from_value(types.clone()).map_err(|e| bad(source, format!("bad schema: {e}")))?;
                    let enc = resolver.encode_type(primary).map_err(|e| bad(source, format!("bad schema: {e}")))?;
                    schemas.push((primary.to_string(), strip_ws(&enc)));
                }
            }
            Context::Eip712 { deployments, domain, domain_separator, schemas }
        } else {
            return Err(bad(source, "context is neither contract nor eip712"));
        };

        let metadata = parse_metadata(source, v.get("metadata"), ctx_id)?;
        let display = v.get("display").ok_or_else(|| bad(source, "no display section"))?;
        let definitions = display.get("definitions").and_then(|d| d.as_object());
        let mut formats = Vec::new();
        if let Some(fm) = display.get("formats").and_then(|f| f.as_object()) {
            for (key, spec) in fm {
                let target = match &context {
                    Context::Contract { .. } => Target::Call(resolve_function(source, key, &abi)?),
                    Context::Eip712 { .. } => {
                        let primary = key.split('(').next().unwrap_or("").trim().to_string();
                        let encode_type = key.contains('(').then(|| strip_ws(key));
                        Target::Message { primary, encode_type }
                    }
                };
                formats.push(parse_format(source, key, target, spec, definitions)?);
            }
        }
        Ok(Descriptor { source: source.to_string(), context, metadata, formats })
    }

    /// Owner, else contract name.
    pub fn display_owner(&self) -> Option<&str> {
        self.metadata.owner.as_deref().or(self.metadata.contract_name.as_deref())
    }
}

fn resolve_function(source: &str, key: &str, abi: &[Function]) -> Result<Function, ClearError> {
    let k = key.trim();
    if k.starts_with("0x") && k.len() == 10 {
        let sel = hex::decode(k.trim_start_matches("0x")).map_err(|_| bad(source, "bad selector"))?;
        return abi
            .iter()
            .find(|f| f.selector().as_slice() == sel.as_slice())
            .cloned()
            .ok_or_else(|| bad(source, format!("selector {k} not in the ABI")));
    }
    let f = parse_signature(k)?;
    if f.fully_named() {
        return Ok(f);
    }
    let sel = f.selector();
    Ok(abi.iter().find(|a| a.selector() == sel).cloned().unwrap_or(f))
}

fn parse_metadata(source: &str, v: Option<&Value>, ctx_id: Option<String>) -> Result<Metadata, ClearError> {
    let Some(m) = v else { return Ok(Metadata { contract_name: ctx_id, ..Default::default() }) };
    let s = |k: &str| m.get(k).and_then(|x| x.as_str()).map(str::to_string);
    let token = match m.get("token") {
        Some(t) => {
            let decimals = t.get("decimals").and_then(|d| d.as_u64()).unwrap_or(0);
            Some(TokenMeta {
                ticker: t.get("ticker").and_then(|x| x.as_str()).unwrap_or("").to_string(),
                decimals: u8::try_from(decimals).map_err(|_| bad(source, "token decimals"))?,
                name: t.get("name").and_then(|x| x.as_str()).unwrap_or("").to_string(),
            })
            .filter(|t| !t.ticker.is_empty())
        }
        None => None,
    };
    let mut enums = BTreeMap::new();
    if let Some(es) = m.get("enums").and_then(|e| e.as_object()) {
        for (name, e) in es {
            // URL enums (draft) are not fetched: such an enum resolves nothing.
            let mut map = BTreeMap::new();
            if let Some(o) = e.as_object() {
                for (k, val) in o {
                    if let Some(t) = val.as_str() {
                        map.insert(k.trim().to_string(), t.to_string());
                    }
                }
            }
            enums.insert(name.clone(), map);
        }
    }
    let mut maps = BTreeMap::new();
    if let Some(ms) = m.get("maps").and_then(|e| e.as_object()) {
        for (name, mv) in ms {
            let values = mv.get("values").and_then(|x| x.as_object()).cloned().unwrap_or_default();
            maps.insert(name.clone(), values);
        }
    }
    Ok(Metadata {
        owner: s("owner"),
        contract_name: s("contractName").or(ctx_id),
        token,
        constants: m.get("constants").and_then(|c| c.as_object()).cloned().unwrap_or_default(),
        enums,
        maps,
    })
}

fn parse_format(
    source: &str,
    key: &str,
    target: Target,
    spec: &Value,
    definitions: Option<&Map<String, Value>>,
) -> Result<Format, ClearError> {
    let intent = match spec.get("intent") {
        Some(Value::String(s)) => Some(Intent::Simple(s.clone())),
        Some(Value::Object(o)) => {
            Some(Intent::Complex(o.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string())).collect()))
        }
        // A complex intent in file order (see `with_ordered_intents`).
        Some(Value::Array(pairs)) => Some(Intent::Complex(
            pairs
                .iter()
                .filter_map(|p| match p.as_array().map(Vec::as_slice) {
                    Some([Value::String(k), v]) => Some((k.clone(), v.as_str().unwrap_or("").to_string())),
                    _ => None,
                })
                .collect(),
        )),
        _ => None,
    };
    let interpolated_intent = spec.get("interpolatedIntent").and_then(|s| s.as_str()).map(str::to_string);
    let mut count = 0usize;
    let fields = match spec.get("fields").and_then(|f| f.as_array()) {
        Some(list) => parse_nodes(source, list, definitions, 0, &mut count)?,
        None => Vec::new(),
    };
    let paths = |k: &str| -> Result<Vec<Path>, ClearError> {
        spec.get(k)
            .and_then(|r| r.as_array())
            .map(|a| a.iter().filter_map(|p| p.as_str()).map(Path::parse).collect())
            .unwrap_or_else(|| Ok(Vec::new()))
    };
    Ok(Format {
        key: key.to_string(),
        target,
        intent,
        interpolated_intent,
        fields,
        required: paths("required")?,
        excluded: paths("excluded")?,
    })
}

fn parse_nodes(
    source: &str,
    list: &[Value],
    definitions: Option<&Map<String, Value>>,
    depth: usize,
    count: &mut usize,
) -> Result<Vec<Node>, ClearError> {
    if depth > MAX_GROUP_DEPTH {
        return Err(bad(source, "field groups nested too deeply"));
    }
    let mut out = Vec::with_capacity(list.len());
    for item in list {
        *count += 1;
        if *count > MAX_FIELDS_PER_FORMAT {
            return Err(bad(source, "too many fields in one format"));
        }
        let obj = item.as_object().ok_or_else(|| bad(source, "field is not an object"))?;
        let path = match obj.get("path").and_then(|p| p.as_str()) {
            Some(p) => Some(Path::parse(p)?),
            None => None,
        };
        if let Some(sub) = obj.get("fields").and_then(|f| f.as_array()) {
            let iteration = match obj.get("iteration").and_then(|i| i.as_str()) {
                Some("bundled") => Iteration::Bundled,
                _ => Iteration::Sequential,
            };
            out.push(Node::Group {
                path,
                label: obj.get("label").and_then(|l| l.as_str()).map(str::to_string),
                iteration,
                fields: parse_nodes(source, sub, definitions, depth + 1, count)?,
            });
            continue;
        }
        // A reference: the definition, overridden by the reference's own keys.
        let resolved: Map<String, Value> = match obj.get("$ref").and_then(|r| r.as_str()) {
            Some(r) => {
                let name = r
                    .strip_prefix("$.display.definitions.")
                    .ok_or_else(|| bad(source, format!("unsupported $ref {r}")))?;
                let def = definitions
                    .and_then(|d| d.get(name))
                    .and_then(|d| d.as_object())
                    .ok_or_else(|| bad(source, format!("missing definition {name}")))?;
                let mut m = def.clone();
                for (k, v) in obj {
                    if k == "$ref" {
                        continue;
                    }
                    if k == "params" {
                        let mut p = m.get("params").and_then(|x| x.as_object()).cloned().unwrap_or_default();
                        if let Some(o) = v.as_object() {
                            for (pk, pv) in o {
                                p.insert(pk.clone(), pv.clone());
                            }
                        }
                        m.insert(k.clone(), Value::Object(p));
                    } else {
                        m.insert(k.clone(), v.clone());
                    }
                }
                m
            }
            None => obj.clone(),
        };
        out.push(Node::Field(parse_field(source, &resolved, path)?));
    }
    Ok(out)
}

fn rule_values(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .map(|x| match x {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect()
        })
        .unwrap_or_default()
}

fn parse_field(source: &str, m: &Map<String, Value>, path: Option<Path>) -> Result<FieldSpec, ClearError> {
    let path = match (path, m.get("path").and_then(|p| p.as_str())) {
        (Some(p), _) => Some(p),
        (None, Some(p)) => Some(Path::parse(p)?),
        (None, None) => None,
    };
    let value = m.get("value").cloned();
    if path.is_none() && value.is_none() {
        return Err(bad(source, "field without path or value"));
    }
    let format = match m.get("format").and_then(|f| f.as_str()) {
        Some(f) => Some(FieldFormat::parse(f).ok_or_else(|| bad(source, format!("unknown format {f}")))?),
        None => None,
    };
    let visible = match m.get("visible") {
        None => Visible::Always,
        Some(Value::String(s)) => match s.as_str() {
            "never" => Visible::Never,
            "optional" => Visible::Optional,
            _ => Visible::Always,
        },
        Some(Value::Object(o)) => {
            // The schema's `mustBe`; the specification's text calls it `mustMatch`.
            if let Some(l) = o.get("mustBe").or_else(|| o.get("mustMatch")) {
                Visible::MustBe(rule_values(l))
            } else if let Some(l) = o.get("ifNotIn") {
                Visible::IfNotIn(rule_values(l))
            } else {
                Visible::Always
            }
        }
        Some(_) => Visible::Always,
    };
    let encrypted = m
        .get("encryption")
        .map(|e| e.get("fallbackLabel").and_then(|f| f.as_str()).unwrap_or("[Encrypted]").to_string());
    Ok(FieldSpec {
        path,
        value,
        label: m.get("label").and_then(|l| l.as_str()).unwrap_or("").to_string(),
        format,
        params: m.get("params").and_then(|p| p.as_object()).cloned().unwrap_or_default(),
        visible,
        encrypted,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn include_paths_join_relative_to_the_including_file() {
        assert_eq!(join_include("registry/a/x.json", "common.json"), "registry/a/common.json");
        assert_eq!(join_include("registry/a/x.json", "../../ercs/e.json"), "ercs/e.json");
    }

    #[test]
    fn includes_merge_fields_by_path_and_the_including_file_wins() {
        let mut files = BTreeMap::new();
        files.insert(
            "common.json".to_string(),
            r#"{"metadata":{"owner":"Base","enums":{"e":{"1":"one"}}},"display":{"formats":{"f(uint256 a,uint256 b)":{"intent":"Old","fields":[{"path":"a","label":"A","format":"raw","params":{"x":"1","y":"2"}},{"path":"b","label":"B"}]}}}}"#.to_string(),
        );
        files.insert(
            "top.json".to_string(),
            r#"{"includes":"common.json","context":{"contract":{"deployments":[{"chainId":1,"address":"0x0000000000000000000000000000000000000001"}]}},"metadata":{"owner":"Top"},"display":{"formats":{"f(uint256 a,uint256 b)":{"intent":"New","fields":[{"path":"a","params":{"y":"3"}},{"path":"c","label":"C"}]}}}}"#.to_string(),
        );
        let v = load_merged(&files, "top.json").unwrap();
        let d = Descriptor::from_json("top.json", &v).unwrap();
        assert_eq!(d.metadata.owner.as_deref(), Some("Top"));
        assert_eq!(d.metadata.enums["e"]["1"], "one");
        let f = &d.formats[0];
        assert_eq!(f.intent, Some(Intent::Simple("New".into())));
        assert_eq!(f.fields.len(), 3);
        let Node::Field(a) = &f.fields[0] else { panic!() };
        assert_eq!(a.label, "A");
        assert_eq!(a.params["x"], "1");
        assert_eq!(a.params["y"], "3");
    }

    #[test]
    fn include_cycles_and_missing_files_are_errors() {
        let mut files = BTreeMap::new();
        files.insert("a.json".to_string(), r#"{"includes":"b.json"}"#.to_string());
        files.insert("b.json".to_string(), r#"{"includes":"a.json"}"#.to_string());
        assert!(load_merged(&files, "a.json").is_err());
        assert!(load_merged(&files, "c.json").is_err());
    }
}
