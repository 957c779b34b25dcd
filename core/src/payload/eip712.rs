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
    pub const MAX_STRUCT_VALUES: usize = 256;
    /// Most hashing work: struct values × ([`HASH_WORK_PER_VALUE`] + the primary type's
    /// dependencies' definition bytes + dependencies² × their longest name), roughly the
    /// bytes alloy handles to recompute type hashes (see `check_hash_work`). A Seaport order
    /// with 10 items needs about 60,000, a Permit2 batch of 100 tokens about 430,000.
    pub const MAX_HASH_WORK: usize = 1_000_000;
    /// The fixed part of the work per struct value (allocations, linearising, hashing).
    pub const HASH_WORK_PER_VALUE: usize = 4_000;
}

use limits::*;

fn too_complex(what: &'static str, limit: usize) -> PayloadError {
    PayloadError::TooComplex { what, limit }
}

/// Longest error text kept from a codec's message (it may quote the payload).
const MAX_ERROR_TEXT: usize = 160;

/// A `BadTypedData` with the codec's message cut short and sanitised: it may quote the
/// payload, and error texts reach logs, rejections and screens.
pub(crate) fn bad(e: impl std::fmt::Display) -> PayloadError {
    let text = e.to_string();
    let short = match text.char_indices().nth(MAX_ERROR_TEXT) {
        Some((i, _)) => format!("{}…", text.get(..i).unwrap_or_default()),
        None => text,
    };
    PayloadError::BadTypedData(crate::display::clean(&short, crate::display::TextKind::Value))
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
    /// Bytes of its definition (what it adds to an `encodeType` string).
    text: usize,
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
    if let Some(domain) = top.get("domain") {
        check_values(domain, false)?;
    }
    let struct_values = match top.get("message") {
        Some(message) => check_values(message, true)?,
        None => 0,
    };
    check_hash_work(&graph, primary, struct_values)
}

/// alloy hashes every struct value with its type hash, which it recomputes each time:
/// it linearises the type's dependencies (comparing type definitions pairwise) and builds
/// and hashes the `encodeType` string. The primary type's dependencies include every other
/// struct's, so a struct value costs at most `text + deps² × longest name` of the primary
/// type (bytes handled, roughly); the message's objects times that stays within
/// [`MAX_HASH_WORK`].
fn check_hash_work(
    graph: &BTreeMap<&str, TypeNode<'_>>,
    primary: &str,
    struct_values: usize,
) -> Result<(), PayloadError> {
    let root = primary.split('[').next().unwrap_or(primary);
    let mut seen: BTreeMap<&str, ()> = BTreeMap::new();
    let mut stack = vec![root];
    let (mut text, mut longest) = (0usize, 0usize);
    while let Some(name) = stack.pop() {
        let Some((key, node)) = graph.get_key_value(name) else {
            continue;
        };
        if seen.insert(key, ()).is_some() {
            continue;
        }
        text += node.text;
        longest = longest.max(key.len());
        stack.extend(node.fields.iter().map(|f| f.root));
    }
    let deps = seen.len();
    let per_value = HASH_WORK_PER_VALUE
        .saturating_add(text)
        .saturating_add(deps.saturating_mul(deps).saturating_mul(longest.max(1)));
    if struct_values.saturating_mul(per_value) > MAX_HASH_WORK {
        return Err(too_complex("hash_work", MAX_HASH_WORK));
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
        // alloy parses every key as a type (tuples recurse in its parser): names only.
        if !is_type_name(name) {
            return Err(bad(format!("type name {name:?} is not an EIP-712 type name")));
        }
        let Value::Array(fields) = fields else {
            return Err(bad(format!("the fields of type {name:?} must be an array")));
        };
        if fields.len() > MAX_FIELDS {
            return Err(too_complex("fields", MAX_FIELDS));
        }
        let mut node = TypeNode { fields: Vec::with_capacity(fields.len()), text: name.len() + 2 };
        for f in fields {
            let (Some(Value::String(fname)), Some(Value::String(ftype))) = (f.get("name"), f.get("type")) else {
                return Err(bad(format!("a field of type {name:?} has no string name and type")));
            };
            if fname.len() > MAX_NAME_LEN || ftype.len() > MAX_NAME_LEN + 8 * MAX_TYPE_DEPTH {
                return Err(too_complex("name_length", MAX_NAME_LEN));
            }
            node.text += fname.len() + ftype.len() + 2;
            node.fields.push(field_type(ftype)?);
        }
        text += node.text;
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
fn check_expansion(graph: &BTreeMap<&str, TypeNode<'_>>, primary: &str) -> Result<Option<Expansion>, PayloadError> {
    let root = primary.split('[').next().unwrap_or(primary);
    if !graph.contains_key(root) {
        // alloy reports the missing type.
        return Ok(None);
    }
    let mut done: BTreeMap<&str, Expansion> = BTreeMap::new();
    let mut on_path: BTreeMap<&str, ()> = BTreeMap::new();
    // (type, whether its dependencies were pushed already)
    let mut stack: Vec<(&str, bool)> = vec![(root, false)];
    while let Some((name, expanded)) = stack.pop() {
        let Some(node) = graph.get(name) else {
            continue;
        };
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
    Ok(done.get(root).copied())
}

/// Counts values, array and string lengths and (in the message) objects, iteratively;
/// returns the number of objects.
fn check_values(v: &Value, message: bool) -> Result<usize, PayloadError> {
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
    Ok(objects)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_dyn_abi::DynSolType;
    use proptest::prelude::*;
    use serde_json::json;

    /// Nodes and depth of a resolved type, counted as `check_expansion` counts them.
    fn measure(t: &DynSolType) -> (usize, usize) {
        match t {
            DynSolType::CustomStruct { tuple, .. } => {
                tuple.iter().map(measure).fold((1, 1), |(n, d), (cn, cd)| (n + cn, d.max(1 + cd)))
            }
            DynSolType::Array(inner) | DynSolType::FixedArray(inner, _) => {
                let (n, d) = measure(inner);
                (n + 1, d + 1)
            }
            _ => (1, 0),
        }
    }

    /// Random type graphs: `edges[i]` lists type i's fields as (target, dims); a target
    /// of `n` or more is `uint256`.
    fn graph_doc(n: usize, edges: &[Vec<(usize, usize)>]) -> Value {
        let mut types = serde_json::Map::new();
        for (i, fields) in edges.iter().enumerate().take(n) {
            let f: Vec<Value> = fields
                .iter()
                .enumerate()
                .map(|(j, (t, dims))| {
                    let root = if *t < n { format!("T{t}") } else { "uint256".into() };
                    json!({"name": format!("f{j}"), "type": format!("{root}{}", "[]".repeat(*dims))})
                })
                .collect();
            types.insert(format!("T{i}"), Value::Array(f));
        }
        types.insert("EIP712Domain".into(), json!([]));
        json!({"types": types, "primaryType": "T0", "domain": {}, "message": {}})
    }

    proptest! {
        /// The count over the graph equals the size of the tree alloy builds; a graph is
        /// refused as recursive exactly when alloy finds a cycle (self-references too).
        #[test]
        fn counted_expansion_matches_alloys_tree(
            n in 1usize..7,
            edges in proptest::collection::vec(proptest::collection::vec((0usize..9, 0usize..3), 0..4), 7),
        ) {
            let doc = graph_doc(n, &edges);
            let Value::Object(top) = &doc else { unreachable!() };
            let Some(Value::Object(types)) = top.get("types") else { unreachable!() };
            let graph = type_graph(types).unwrap();
            let td = TypedData::deserialize(&doc).unwrap();
            let resolved = td.resolver.resolve("T0");
            match check_expansion(&graph, "T0") {
                Err(PayloadError::RecursiveType(_)) => {
                    prop_assert!(resolved.is_err(), "alloy resolved a graph refused as recursive");
                }
                Err(e) => {
                    // Too big: alloy's tree is bigger than the limit (or as deep).
                    let (nodes, depth) = measure(&resolved.unwrap());
                    prop_assert!(nodes > MAX_EXPANDED_TYPES || depth > MAX_TYPE_DEPTH, "{e}: {nodes} {depth}");
                }
                Ok(Some(e)) => {
                    let (nodes, _) = measure(&resolved.unwrap());
                    prop_assert_eq!(e.nodes, nodes);
                }
                Ok(None) => prop_assert!(false, "T0 is declared"),
            }
        }

        /// Arbitrary JSON text never panics the bounded parser.
        #[test]
        fn any_text_is_parsed_or_refused(s in "[\\[\\]{}\",:a-zA-Z0-9 ]{0,200}") {
            let _ = parse(s.as_bytes());
        }
    }

    #[test]
    fn json_depth_ignores_brackets_in_strings() {
        let deep = format!("{{\"types\":{{}},\"primaryType\":\"{}\"}}", "[".repeat(100));
        assert!(!matches!(check_json_depth(deep.as_bytes()), Err(PayloadError::TooComplex { .. })));
        let escaped = format!("\"\\\"{}\"", "[".repeat(100));
        assert!(check_json_depth(escaped.as_bytes()).is_ok());
        assert!(check_json_depth("[".repeat(MAX_JSON_DEPTH).as_bytes()).is_ok());
        assert!(check_json_depth("[".repeat(MAX_JSON_DEPTH + 1).as_bytes()).is_err());
    }

    #[test]
    fn field_types_are_names_with_array_suffixes() {
        for ok in ["uint256", "Person", "Person[]", "Person[2][]", "ns:Type", "a.b"] {
            assert!(field_type(ok).is_ok(), "{ok}");
        }
        for bad in ["(uint256)", "uint256 ", "T[0]", "T[", "T]", "T[a]", "1T", "", "T[][x]", "Tè"] {
            assert!(field_type(bad).is_err(), "{bad}");
        }
        assert!(matches!(field_type("T[1025]"), Err(PayloadError::TooComplex { what: "array_length", .. })));
        assert!(matches!(field_type("T[99999999999999999999999]"), Err(PayloadError::TooComplex { .. })));
    }
}
