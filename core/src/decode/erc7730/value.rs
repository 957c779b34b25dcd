//! Decoded values as a named tree, ERC-7730 paths, and path selection over the tree.

use alloy_dyn_abi::DynSolValue;
use alloy_primitives::{Address, I256, U256};

use super::ClearError;

/// Deepest nesting of tuples and arrays in a signature (and therefore in decoded values).
pub const MAX_TYPE_DEPTH: usize = 12;
/// Most values (leaves, array elements, struct members) decoded from one call.
pub const MAX_VALUES: usize = 4096;

/// A decoded value: calldata arguments, an EIP-712 message, a container value or a literal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Val {
    /// A struct (or the argument list) with named members, in declaration order.
    Struct(Vec<(String, Val)>),
    /// An array.
    Array(Vec<Val>),
    /// An address.
    Address(Address),
    /// An unsigned integer.
    Uint(U256),
    /// A signed integer.
    Int(I256),
    /// A boolean.
    Bool(bool),
    /// Bytes (dynamic or fixed).
    Bytes(Vec<u8>),
    /// A string.
    Str(String),
}

impl Val {
    /// Converts a leaf (non-composite) alloy value.
    pub fn from_leaf(v: DynSolValue) -> Option<Val> {
        Some(match v {
            DynSolValue::Address(a) => Val::Address(a),
            DynSolValue::Uint(u, _) => Val::Uint(u),
            DynSolValue::Int(i, _) => Val::Int(i),
            DynSolValue::Bool(b) => Val::Bool(b),
            DynSolValue::Bytes(b) => Val::Bytes(b),
            DynSolValue::FixedBytes(w, n) => Val::Bytes(w.get(..n).unwrap_or(&[]).to_vec()),
            DynSolValue::String(s) => Val::Str(s),
            DynSolValue::Function(f) => Val::Bytes(f.as_slice().to_vec()),
            _ => return None,
        })
    }

    /// Converts a coerced EIP-712 message (structs with property names), within the caps.
    pub fn from_typed(v: DynSolValue) -> Result<Val, ClearError> {
        let mut budget = MAX_VALUES;
        from_typed_inner(v, &mut budget, 0)
    }

    /// The address this value denotes (an address, or a string or 32-byte word holding one).
    pub fn as_address(&self) -> Option<Address> {
        match self {
            Val::Address(a) => Some(*a),
            Val::Str(s) => s.trim().parse::<Address>().ok(),
            Val::Bytes(b) if b.len() == 20 => Some(Address::from_slice(b)),
            Val::Bytes(b) if b.len() == 32 && b.iter().take(12).all(|x| *x == 0) => {
                Some(Address::from_slice(b.get(12..).unwrap_or(&[0; 20])))
            }
            Val::Uint(u) if u.bit_len() <= 160 => {
                let bytes = u.to_be_bytes::<32>();
                Some(Address::from_slice(bytes.get(12..).unwrap_or(&[0; 20])))
            }
            _ => None,
        }
    }

    /// The unsigned integer this value denotes (ints ≥ 0, decimal or 0x strings, bytes ≤ 32
    /// read big-endian, addresses, booleans).
    pub fn as_uint(&self) -> Option<U256> {
        match self {
            Val::Uint(u) => Some(*u),
            Val::Int(i) if !i.is_negative() => Some(i.into_raw()),
            Val::Bool(b) => Some(U256::from(u8::from(*b))),
            Val::Address(a) => Some(U256::from_be_slice(a.as_slice())),
            Val::Bytes(b) if b.len() <= 32 => Some(U256::from_be_slice(b)),
            Val::Str(s) => parse_uint(s),
            _ => None,
        }
    }

    /// The raw bytes of this value (bytes, strings, words of integers and addresses).
    pub fn as_bytes(&self) -> Option<Vec<u8>> {
        match self {
            Val::Bytes(b) => Some(b.clone()),
            Val::Str(s) => Some(s.as_bytes().to_vec()),
            Val::Uint(u) => Some(u.to_be_bytes::<32>().to_vec()),
            Val::Int(i) => Some(i.to_be_bytes::<32>().to_vec()),
            Val::Address(a) => Some(a.as_slice().to_vec()),
            _ => None,
        }
    }

    /// The key used to look this value up in an enum or compare it with a rule
    /// (decimal for numbers, lowercase hex for bytes and addresses).
    pub fn key_string(&self) -> String {
        match self {
            Val::Uint(u) => u.to_string(),
            Val::Int(i) => i.to_string(),
            Val::Bool(b) => b.to_string(),
            Val::Address(a) => format!("{a:#x}"),
            Val::Bytes(b) => format!("0x{}", hex::encode(b)),
            Val::Str(s) => s.clone(),
            Val::Struct(_) | Val::Array(_) => String::new(),
        }
    }

    /// A literal from the descriptor (`value`, constants) as a value.
    pub fn from_json(v: &serde_json::Value) -> Option<Val> {
        match v {
            serde_json::Value::Bool(b) => Some(Val::Bool(*b)),
            serde_json::Value::Number(n) => {
                if let Some(u) = n.as_u64() {
                    Some(Val::Uint(U256::from(u)))
                } else {
                    n.as_i64().map(|i| Val::Int(I256::try_from(i).unwrap_or_default()))
                }
            }
            serde_json::Value::String(s) => Some(Val::Str(s.clone())),
            _ => None,
        }
    }
}

/// Parses a decimal or `0x` hexadecimal unsigned integer.
pub fn parse_uint(s: &str) -> Option<U256> {
    let s = s.trim();
    if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        if h.is_empty() || h.len() > 64 {
            return None;
        }
        U256::from_str_radix(h, 16).ok()
    } else {
        if s.is_empty() || s.len() > 78 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        U256::from_str_radix(s, 10).ok()
    }
}

fn from_typed_inner(v: DynSolValue, budget: &mut usize, depth: usize) -> Result<Val, ClearError> {
    if depth > MAX_TYPE_DEPTH {
        return Err(ClearError::TooComplex("typed data nested too deeply".into()));
    }
    *budget = budget.checked_sub(1).ok_or_else(|| ClearError::TooComplex(format!("more than {MAX_VALUES} values")))?;
    match v {
        DynSolValue::CustomStruct { prop_names, tuple, .. } => {
            let mut members = Vec::with_capacity(tuple.len());
            for (k, child) in prop_names.into_iter().zip(tuple) {
                members.push((k, from_typed_inner(child, budget, depth + 1)?));
            }
            Ok(Val::Struct(members))
        }
        DynSolValue::Tuple(items) => {
            let mut members = Vec::with_capacity(items.len());
            for (i, child) in items.into_iter().enumerate() {
                members.push((i.to_string(), from_typed_inner(child, budget, depth + 1)?));
            }
            Ok(Val::Struct(members))
        }
        DynSolValue::Array(items) | DynSolValue::FixedArray(items) => {
            if items.len() > *budget {
                return Err(ClearError::TooComplex(format!("more than {MAX_VALUES} values")));
            }
            let mut out = Vec::with_capacity(items.len());
            for child in items {
                out.push(from_typed_inner(child, budget, depth + 1)?);
            }
            Ok(Val::Array(out))
        }
        leaf => Val::from_leaf(leaf).ok_or_else(|| ClearError::CalldataMismatch("unsupported typed data value".into())),
    }
}

/// Where a path starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Root {
    /// The structured data (calldata arguments or message), `#.` or no root.
    Data,
    /// The container (transaction or message envelope), `@.`.
    Container,
    /// The descriptor itself, `$.`.
    Descriptor,
}

/// One step of a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg {
    /// A member by name.
    Name(String),
    /// One element (negative counts from the end).
    Index(i64),
    /// Elements (or bytes) `[start:end)`; negative counts from the end.
    Slice(Option<i64>, Option<i64>),
    /// Every element, `[]`.
    All,
}

/// A parsed ERC-7730 path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Path {
    /// Its root.
    pub root: Root,
    /// True when the root was written (`#.`): the path is not relative to a group.
    pub absolute: bool,
    /// Its steps.
    pub segs: Vec<Seg>,
}

/// Most steps in one path.
const MAX_SEGS: usize = 32;

impl Path {
    /// Parses `#.a.b.[0].[1:3].[]`, `@.to`, `$.metadata.enums.x`, `a[0]`, …
    pub fn parse(s: &str) -> Result<Path, ClearError> {
        let bad = |why: &str| ClearError::BadDescriptor(format!("bad path {s:?}: {why}"));
        let s = s.trim();
        let (root, absolute, rest) = if let Some(r) = s.strip_prefix("#.") {
            (Root::Data, true, r)
        } else if s == "#" {
            (Root::Data, true, "")
        } else if let Some(r) = s.strip_prefix("@.") {
            (Root::Container, true, r)
        } else if let Some(r) = s.strip_prefix("$.") {
            (Root::Descriptor, true, r)
        } else {
            (Root::Data, false, s)
        };
        let mut segs = Vec::new();
        for piece in rest.split('.') {
            if piece.is_empty() {
                if rest.is_empty() {
                    break;
                }
                return Err(bad("empty step"));
            }
            let (name, brackets) = match piece.find('[') {
                Some(i) => (piece.get(..i).unwrap_or(""), piece.get(i..).unwrap_or("")),
                None => (piece, ""),
            };
            if !name.is_empty() {
                segs.push(Seg::Name(name.to_string()));
            }
            let mut b = brackets;
            while !b.is_empty() {
                let inner_end = b.find(']').ok_or_else(|| bad("unclosed '['"))?;
                let inner = b.get(1..inner_end).ok_or_else(|| bad("bad brackets"))?;
                segs.push(parse_bracket(inner).ok_or_else(|| bad("bad index or slice"))?);
                b = b.get(inner_end + 1..).unwrap_or("");
                if !b.is_empty() && !b.starts_with('[') {
                    return Err(bad("text after ']'"));
                }
            }
            if segs.len() > MAX_SEGS {
                return Err(bad("too many steps"));
            }
        }
        Ok(Path { root, absolute, segs })
    }

    /// The path written back (for row keys): `a.b.[]`.
    pub fn display(&self) -> String {
        let mut out = match self.root {
            Root::Data => String::new(),
            Root::Container => "@".to_string(),
            Root::Descriptor => "$".to_string(),
        };
        for seg in &self.segs {
            if !out.is_empty() {
                out.push('.');
            }
            match seg {
                Seg::Name(n) => out.push_str(n),
                Seg::Index(i) => out.push_str(&format!("[{i}]")),
                Seg::Slice(a, b) => out.push_str(&format!(
                    "[{}:{}]",
                    a.map(|x| x.to_string()).unwrap_or_default(),
                    b.map(|x| x.to_string()).unwrap_or_default()
                )),
                Seg::All => out.push_str("[]"),
            }
        }
        out
    }
}

fn parse_bracket(inner: &str) -> Option<Seg> {
    let inner = inner.trim();
    if inner.is_empty() {
        return Some(Seg::All);
    }
    let num = |t: &str| -> Option<Option<i64>> {
        let t = t.trim();
        if t.is_empty() {
            Some(None)
        } else {
            t.parse::<i64>().ok().filter(|v| v.unsigned_abs() <= 1 << 32).map(Some)
        }
    };
    match inner.split_once(':') {
        Some((a, b)) => Some(Seg::Slice(num(a)?, num(b)?)),
        None => Some(Seg::Index(num(inner)??)),
    }
}

/// A step of a concrete location in the data (indices resolved).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CSeg {
    /// A member.
    Name(String),
    /// An element.
    Index(usize),
    /// A byte range of a leaf.
    Bytes(usize, usize),
}

/// Writes a concrete location as a stable key: `details.1.amount`.
pub fn concrete_key(path: &[CSeg]) -> String {
    let parts: Vec<String> = path
        .iter()
        .map(|c| match c {
            CSeg::Name(n) => n.clone(),
            CSeg::Index(i) => i.to_string(),
            CSeg::Bytes(a, b) => format!("{a}-{b}"),
        })
        .collect();
    parts.join(".")
}

/// One value found by a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    /// Where it is.
    pub at: Vec<CSeg>,
    /// The value.
    pub val: Val,
}

fn norm_index(i: i64, len: usize) -> Option<usize> {
    let len_i = i64::try_from(len).ok()?;
    let j = if i < 0 { len_i + i } else { i };
    (0..len_i).contains(&j).then(|| usize::try_from(j).ok()).flatten()
}

fn norm_range(a: Option<i64>, b: Option<i64>, len: usize) -> (usize, usize) {
    let len_i = i64::try_from(len).unwrap_or(i64::MAX);
    let fix = |x: i64| -> usize {
        let y = if x < 0 { len_i + x } else { x };
        usize::try_from(y.clamp(0, len_i)).unwrap_or(0)
    };
    let s = a.map(fix).unwrap_or(0);
    let e = b.map(fix).unwrap_or(len);
    (s, e.max(s))
}

/// Selects every value `segs` reaches from `root` (whose location is `base`). `align`, when
/// given, is a concrete location whose indices replace `[]` steps at the same position while
/// the walked prefix agrees with it (so `details.[].token` pairs with `details.[].amount`).
pub fn select(root: &Val, base: &[CSeg], segs: &[Seg], align: Option<&[CSeg]>) -> Result<Vec<Hit>, ClearError> {
    let mut frontier: Vec<(Vec<CSeg>, &Val)> = vec![(base.to_vec(), root)];
    let mut owned: Vec<Hit> = Vec::new();
    let last = segs.len().saturating_sub(1);
    for (si, seg) in segs.iter().enumerate() {
        let mut next: Vec<(Vec<CSeg>, &Val)> = Vec::new();
        for (at, v) in frontier {
            let aligned_index = align.and_then(|al| {
                (al.len() > at.len() && al.get(..at.len()) == Some(at.as_slice()))
                    .then(|| al.get(at.len()))
                    .flatten()
                    .and_then(|c| if let CSeg::Index(i) = c { Some(*i) } else { None })
            });
            match (seg, v) {
                (Seg::Name(n), Val::Struct(members)) => {
                    if let Some((_, child)) = members.iter().find(|(k, _)| k == n) {
                        let mut p = at.clone();
                        p.push(CSeg::Name(n.clone()));
                        next.push((p, child));
                    }
                }
                (Seg::Index(i), Val::Array(items)) => {
                    if let Some(j) = norm_index(*i, items.len()) {
                        if let Some(child) = items.get(j) {
                            let mut p = at.clone();
                            p.push(CSeg::Index(j));
                            next.push((p, child));
                        }
                    }
                }
                (Seg::All, Val::Array(items)) | (Seg::Slice(..), Val::Array(items)) => {
                    let (s, e) = match seg {
                        Seg::Slice(a, b) => norm_range(*a, *b, items.len()),
                        _ => (0, items.len()),
                    };
                    match aligned_index {
                        Some(j) if (s..e).contains(&j) => {
                            if let Some(child) = items.get(j) {
                                let mut p = at.clone();
                                p.push(CSeg::Index(j));
                                next.push((p, child));
                            }
                        }
                        _ => {
                            for (j, child) in items.iter().enumerate().take(e).skip(s) {
                                let mut p = at.clone();
                                p.push(CSeg::Index(j));
                                next.push((p, child));
                            }
                        }
                    }
                }
                (Seg::Slice(a, b), leaf) if si == last && leaf_bytes_ok(leaf) => {
                    let bytes = leaf.as_bytes().unwrap_or_default();
                    let (s, e) = norm_range(*a, *b, bytes.len());
                    let mut p = at.clone();
                    p.push(CSeg::Bytes(s, e));
                    let slice = bytes.get(s..e).unwrap_or(&[]).to_vec();
                    let val = match leaf {
                        Val::Str(_) => Val::Str(String::from_utf8_lossy(&slice).into_owned()),
                        _ => Val::Bytes(slice),
                    };
                    owned.push(Hit { at: p, val });
                }
                _ => {}
            }
            if next.len() + owned.len() > MAX_VALUES {
                return Err(ClearError::TooComplex("a path selects too many values".into()));
            }
        }
        frontier = next;
    }
    let mut hits: Vec<Hit> = frontier.into_iter().map(|(at, v)| Hit { at, val: v.clone() }).collect();
    hits.extend(owned);
    Ok(hits)
}

fn leaf_bytes_ok(v: &Val) -> bool {
    matches!(v, Val::Bytes(_) | Val::Str(_) | Val::Uint(_) | Val::Int(_) | Val::Address(_))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Val {
        Val::Struct(vec![
            ("spender".into(), Val::Address(Address::repeat_byte(1))),
            (
                "details".into(),
                Val::Array(vec![
                    Val::Struct(vec![
                        ("token".into(), Val::Address(Address::repeat_byte(2))),
                        ("amount".into(), Val::Uint(U256::from(5))),
                    ]),
                    Val::Struct(vec![
                        ("token".into(), Val::Address(Address::repeat_byte(3))),
                        ("amount".into(), Val::Uint(U256::from(6))),
                    ]),
                ]),
            ),
            ("path".into(), Val::Bytes((0u8..43).collect())),
        ])
    }

    #[test]
    fn parses_paths() {
        let p = Path::parse("#.params.path.[0:20]").unwrap();
        assert!(p.absolute);
        assert_eq!(p.segs, vec![Seg::Name("params".into()), Seg::Name("path".into()), Seg::Slice(Some(0), Some(20))]);
        assert_eq!(Path::parse("details.[]").unwrap().segs.last(), Some(&Seg::All));
        assert_eq!(Path::parse("pools[-1]").unwrap().segs.last(), Some(&Seg::Index(-1)));
        assert_eq!(Path::parse("@.to").unwrap().root, Root::Container);
        assert!(Path::parse("a..b").is_err());
        assert!(Path::parse("a.[x]").is_err());
        assert!(Path::parse("a.[1").is_err());
    }

    #[test]
    fn selects_arrays_slices_and_aligned_indices() {
        let v = sample();
        let amounts = select(&v, &[], &Path::parse("details.[].amount").unwrap().segs, None).unwrap();
        assert_eq!(amounts.len(), 2);
        let tok = select(&v, &[], &Path::parse("details.[].token").unwrap().segs, Some(&amounts[1].at)).unwrap();
        assert_eq!(tok.len(), 1);
        assert_eq!(tok[0].val, Val::Address(Address::repeat_byte(3)));
        let last = select(&v, &[], &Path::parse("path.[-20:]").unwrap().segs, None).unwrap();
        assert_eq!(last[0].val, Val::Bytes((23u8..43).collect()));
        let neg = select(&v, &[], &Path::parse("details.[-1].amount").unwrap().segs, None).unwrap();
        assert_eq!(neg[0].val, Val::Uint(U256::from(6)));
        assert!(select(&v, &[], &Path::parse("nope").unwrap().segs, None).unwrap().is_empty());
    }
}
