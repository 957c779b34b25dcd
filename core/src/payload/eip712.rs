//! Bounded EIP-712: the shape of typed data is checked before anything expands or hashes it.
//!
//! alloy-dyn-abi resolves a type by expanding its whole tree recursively, without
//! memoising: a "diamond" of 22 types (1.4 KB) takes half a minute, and a chain of 1,500
//! types overflows the stack. [`parse`] therefore reads the JSON with a depth limit, then
//! checks every number that drives the cost of resolving, coercing, hashing and showing
//! the data against [`limits`] — counting the expanded type tree over the type graph
//! (memoised, iteratively, refusing cycles) rather than building it — and only then hands
//! the data to alloy. Every step here is a loop over an explicit stack: no recursion whose
//! depth the payload controls.

use std::collections::BTreeMap;

use alloy_dyn_abi::TypedData;
use serde::Deserialize;
use serde_json::Value;

use super::PayloadError;

/// The limits typed data must stay within. Generous for real use (an ERC-2612 permit
/// expands to 6 nodes and nests 1 deep; a Seaport order to about 30 nodes and 3 levels;
/// Permit2 batches and bulk listings stay far below), and small enough that the worst
/// payload within them is decoded in milliseconds (see the `decode` benchmark and
/// `docs/signing.md`, *Bounded decoding*).
pub mod limits {
    /// Deepest nesting of JSON arrays and objects anywhere in the document.
    pub const MAX_JSON_DEPTH: usize = 24;
    /// Most type definitions in `types` (including `EIP712Domain`).
    pub const MAX_TYPES: usize = 64;
    /// Most fields of one type.
    pub const MAX_FIELDS: usize = 64;
    /// Longest type or field name, in bytes (a field's type may add array suffixes).
    pub const MAX_NAME_LEN: usize = 128;
    /// Most bytes of all type definitions together (names and field types and names),
    /// which bounds every `encodeType` string alloy builds.
    pub const MAX_TYPES_TEXT: usize = 16 * 1024;
    /// Deepest nesting of the primary type: each struct level and each array dimension
    /// counts one.
    pub const MAX_TYPE_DEPTH: usize = 16;
    /// Most nodes of the primary type's tree once every type is expanded (structs,
    /// fields, array dimensions), counted without expanding it.
    pub const MAX_EXPANDED_TYPES: usize = 1024;
    /// Longest JSON array in the domain or message, and largest fixed array size.
    pub const MAX_ARRAY_LEN: usize = 1024;
    /// Longest JSON string in the domain or message, in bytes.
    pub const MAX_STRING_LEN: usize = 32 * 1024;
    /// Most JSON values in the domain and message together.
    pub const MAX_VALUES: usize = 8192;
    /// Most JSON objects (struct values) in the message: alloy rebuilds and hashes the
    /// struct's `encodeType` string once per struct value.
    pub const MAX_STRUCT_VALUES: usize = 512;
}

use limits::*;

fn too_complex(what: &'static str, limit: usize) -> PayloadError {
    PayloadError::TooComplex { what, limit }
}

/// Longest error text kept from a codec's message (it may quote the payload).
const MAX_ERROR_TEXT: usize = 160;

/// A `BadTypedData` with the codec's message cut short: it may quote the payload, and
/// error texts reach logs, rejections and screens.
pub(crate) fn bad(e: impl std::fmt::Display) -> PayloadError {
    let text = e.to_string();
    let short = match text.char_indices().nth(MAX_ERROR_TEXT) {
        Some((i, _)) => format!("{}…", text.get(..i).unwrap_or_default()),
        None => text,
    };
    let clean: String = short.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    PayloadError::BadTypedData(clean)
}

/// Parses typed data after checking its shape against [`limits`]. Does not hash it.
pub fn parse(payload: &[u8]) -> Result<TypedData, PayloadError> {
    check_json_depth(payload)?;
    let doc: Value = serde_json::from_slice(payload).map_err(bad)?;
    check_shape(&doc)?;
    TypedData::deserialize(&doc).map_err(bad)
}

/// Refuses JSON nested deeper than [`MAX_JSON_DEPTH`], before a parser recurses into it.
/// A scan of the bytes (strings skipped); whether the JSON is valid is serde_json's job.
fn check_json_depth(bytes: &[u8]) -> Result<(), PayloadError> {
    let mut depth = 0usize;
    let (mut in_string, mut escaped) = (false, false);
    for &b in bytes {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_JSON_DEPTH {
                    return Err(too_complex("json_depth", MAX_JSON_DEPTH));
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

/// A field's type: the root type name and its array dimensions (`None` = dynamic).
struct FieldType<'a> {
    root: &'a str,
    dims: usize,
}

/// Splits `T[2][]` into `T` and 2 dimensions; refuses anything that is not an EIP-712
/// type name (tuples, spaces, non-ASCII) or a fixed size above [`MAX_ARRAY_LEN`].
fn field_type(ty: &str) -> Result<FieldType<'_>, PayloadError> {
    let not_a_type = || bad(format!("field type {ty:?} is not an EIP-712 type"));
    let (root, mut rest) = ty.split_at(ty.find('[').unwrap_or(ty.len()));
    if !is_type_name(root) {
        return Err(not_a_type());
    }
    let mut dims = 0;
    while !rest.is_empty() {
        let close = rest.find(']').ok_or_else(not_a_type)?;
        let size = rest.get(1..close).ok_or_else(not_a_type)?;
        if !rest.starts_with('[') || !size.bytes().all(|b| b.is_ascii_digit()) {
            return Err(not_a_type());
        }
        if !size.is_empty() {
            let n: usize = size.parse().map_err(|_| too_complex("array_length", MAX_ARRAY_LEN))?;
            if n == 0 {
                return Err(not_a_type());
            }
            if n > MAX_ARRAY_LEN {
                return Err(too_complex("array_length", MAX_ARRAY_LEN));
            }
        }
        dims += 1;
        rest = rest.get(close + 1..).unwrap_or_default();
    }
    Ok(FieldType { root, dims })
}

/// An EIP-712 type name as alloy reads it: an identifier that may contain `:` (and `.`
/// for alloy's enum workaround).
fn is_type_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some('a'..='z' | 'A'..='Z' | '_' | '$'))
        && chars.all(|c| matches!(c, 'a'..='z' | 'A'..='Z' | '0'..='9' | '_' | '$' | ':' | '.'))
}

/// One declared type: its fields as (root type, array dimensions).
struct TypeNode<'a> {
    fields: Vec<FieldType<'a>>,
}

/// Checks everything that drives the cost of resolving, coercing, hashing and showing.
fn check_shape(doc: &Value) -> Result<(), PayloadError> {
    let Value::Object(top) = doc else {
        return Err(bad("typed data must be a JSON object"));
    };
    let primary = match top.get("primaryType") {
        Some(Value::String(p)) => p.as_str(),
        _ => return Err(bad("primaryType must be a string")),
    };
    if primary == "EIP712Domain" {
        return Err(PayloadError::DomainAsPrimaryType);
    }
    let Some(Value::Object(types)) = top.get("types") else {
        return Err(bad("types must be an object"));
    };
    let graph = type_graph(types)?;
    check_expansion(&graph, primary)?;
    for part in ["domain", "message"] {
        if let Some(v) = top.get(part) {
            check_values(v, part == "message")?;
        }
    }
    Ok(())
}

fn type_graph(types: &serde_json::Map<String, Value>) -> Result<BTreeMap<&str, TypeNode<'_>>, PayloadError> {
    if types.len() > MAX_TYPES {
        return Err(too_complex("types", MAX_TYPES));
    }
    let mut text = 0usize;
    let mut graph = BTreeMap::new();
    for (name, fields) in types {
        if name.len() > MAX_NAME_LEN {
            return Err(too_complex("name_length", MAX_NAME_LEN));
        }
        let Value::Array(fields) = fields else {
            return Err(bad(format!("the fields of type {name:?} must be an array")));
        };
        if fields.len() > MAX_FIELDS {
            return Err(too_complex("fields", MAX_FIELDS));
        }
        text += name.len() + 2;
        let mut node = TypeNode { fields: Vec::with_capacity(fields.len()) };
        for f in fields {
            let (Some(Value::String(fname)), Some(Value::String(ftype))) = (f.get("name"), f.get("type"))
            else {
                return Err(bad(format!("a field of type {name:?} has no string name and type")));
            };
            if fname.len() > MAX_NAME_LEN || ftype.len() > MAX_NAME_LEN + 8 * MAX_TYPE_DEPTH {
                return Err(too_complex("name_length", MAX_NAME_LEN));
            }
            text += fname.len() + ftype.len() + 2;
            node.fields.push(field_type(ftype)?);
        }
        if text > MAX_TYPES_TEXT {
            return Err(too_complex("types_text", MAX_TYPES_TEXT));
        }
        graph.insert(name.as_str(), node);
    }
    Ok(graph)
}

/// Size and depth of a type's expanded tree.
#[derive(Clone, Copy)]
struct Expansion {
    nodes: usize,
    depth: usize,
}

/// Counts the primary type's expanded tree over the type graph — memoised, with an
/// explicit stack, refusing any cycle (a recursive type has no finite expansion, and
/// alloy refuses to resolve one).
fn check_expansion(graph: &BTreeMap<&str, TypeNode<'_>>, primary: &str) -> Result<(), PayloadError> {
    let root = primary.split('[').next().unwrap_or(primary);
    if !graph.contains_key(root) {
        // alloy reports the missing type.
        return Ok(());
    }
    let mut done: BTreeMap<&str, Expansion> = BTreeMap::new();
    let mut on_path: BTreeMap<&str, ()> = BTreeMap::new();
    // (type, whether its dependencies were pushed already)
    let mut stack: Vec<(&str, bool)> = vec![(root, false)];
    while let Some((name, expanded)) = stack.pop() {
        let Some(node) = graph.get(name) else { continue };
        if expanded {
            on_path.remove(name);
            let mut e = Expansion { nodes: 1, depth: 1 };
            for f in &node.fields {
                let child = match graph.get(f.root) {
                    Some(_) => done.get(f.root).copied().unwrap_or(Expansion { nodes: 1, depth: 0 }),
                    None => Expansion { nodes: 1, depth: 0 },
                };
                e.nodes = e.nodes.saturating_add(child.nodes).saturating_add(f.dims);
                e.depth = e.depth.max(1 + child.depth + f.dims);
            }
            if e.depth > MAX_TYPE_DEPTH {
                return Err(too_complex("type_depth", MAX_TYPE_DEPTH));
            }
            if e.nodes > MAX_EXPANDED_TYPES {
                return Err(too_complex("expanded_types", MAX_EXPANDED_TYPES));
            }
            done.insert(name, e);
            continue;
        }
        if done.contains_key(name) {
            continue;
        }
        if on_path.insert(name, ()).is_some() {
            return Err(PayloadError::RecursiveType(name.chars().take(MAX_NAME_LEN).collect()));
        }
        stack.push((name, true));
        for f in &node.fields {
            if graph.contains_key(f.root) {
                if on_path.contains_key(f.root) {
                    return Err(PayloadError::RecursiveType(f.root.to_string()));
                }
                if !done.contains_key(f.root) {
                    stack.push((f.root, false));
                }
            }
        }
    }
    Ok(())
}

/// Counts values, array and string lengths and (in the message) objects, iteratively.
fn check_values(v: &Value, message: bool) -> Result<(), PayloadError> {
    let (mut values, mut objects) = (0usize, 0usize);
    let mut stack = vec![v];
    while let Some(v) = stack.pop() {
        values += 1;
        if values > MAX_VALUES {
            return Err(too_complex("values", MAX_VALUES));
        }
        match v {
            Value::String(s) if s.len() > MAX_STRING_LEN => {
                return Err(too_complex("string_length", MAX_STRING_LEN));
            }
            Value::Array(items) => {
                if items.len() > MAX_ARRAY_LEN {
                    return Err(too_complex("array_length", MAX_ARRAY_LEN));
                }
                stack.extend(items);
            }
            Value::Object(map) => {
                objects += 1;
                if message && objects > MAX_STRUCT_VALUES {
                    return Err(too_complex("struct_values", MAX_STRUCT_VALUES));
                }
                for (k, child) in map {
                    if k.len() > MAX_STRING_LEN {
                        return Err(too_complex("string_length", MAX_STRING_LEN));
                    }
                    stack.push(child);
                }
            }
            _ => {}
        }
    }
    Ok(())
}
