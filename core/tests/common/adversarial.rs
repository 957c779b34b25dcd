//! Adversarial payloads for the bounded-decoding tests and the decode benchmark: the worst
//! shapes a malicious service provider can send within the 128 KiB payload cap.
//! Shared by `core/tests/bounded_decoding.rs` and `core/benches/decode.rs` (`#[path]`).

#![allow(dead_code)] // each includer uses a different subset

use serde_json::{json, Map, Value};

/// The payload cap (`payload::MAX_PAYLOAD_LEN`), repeated so the builders stay standalone.
pub const CAP: usize = 128 * 1024;

fn domain() -> Value {
    json!({"name": "Attack", "chainId": 1,
           "verifyingContract": "0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC"})
}

fn typed(types: Map<String, Value>, primary: &str, message: Value) -> Vec<u8> {
    let mut types = types;
    types.insert(
        "EIP712Domain".into(),
        json!([{"name": "name", "type": "string"}, {"name": "chainId", "type": "uint256"},
               {"name": "verifyingContract", "type": "address"}]),
    );
    serde_json::to_vec(&json!({
        "types": types, "primaryType": primary, "domain": domain(), "message": message
    }))
    .unwrap_or_default()
}

/// `T0 { T1 a; T1 b; } … T(n-1) { Tn a; Tn b; }`, `Tn { uint256 x; }`: 2^n leaves when the
/// type is expanded (alloy-dyn-abi expands it without memoising: 27 s at n = 22).
pub fn diamond(n: usize) -> Vec<u8> {
    let mut types = Map::new();
    for i in 0..n {
        let next = format!("T{}", i + 1);
        types.insert(format!("T{i}"), json!([{"name": "a", "type": next}, {"name": "b", "type": next}]));
    }
    types.insert(format!("T{n}"), json!([{"name": "x", "type": "uint256"}]));
    typed(types, "T0", json!({}))
}

/// `T0 { T1 a; } … Tn { uint256 x; }` with a message nested as deep (a 1,500-type chain
/// overflowed the stack of the old decoder).
pub fn chain(n: usize) -> Vec<u8> {
    let mut types = Map::new();
    for i in 0..n {
        types.insert(format!("T{i}"), json!([{"name": "a", "type": format!("T{}", i + 1)}]));
    }
    types.insert(format!("T{n}"), json!([{"name": "x", "type": "uint256"}]));
    typed(types, "T0", json!({}))
}

/// The longest chain that fits the payload cap.
pub fn longest_chain() -> Vec<u8> {
    largest_fitting(chain)
}

/// The widest diamond that fits the payload cap (far more than enough to never end).
pub fn widest_diamond() -> Vec<u8> {
    largest_fitting(diamond)
}

fn largest_fitting(build: fn(usize) -> Vec<u8>) -> Vec<u8> {
    let (mut lo, mut hi) = (1usize, 20_000usize);
    while lo < hi {
        let mid = (lo + hi).div_ceil(2);
        if build(mid).len() <= CAP {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    build(lo)
}

/// `Node { uint256 v; Node[] kids; }`: a self-referencing type.
pub fn self_reference() -> Vec<u8> {
    let mut types = Map::new();
    types.insert("Node".into(), json!([{"name": "v", "type": "uint256"}, {"name": "kids", "type": "Node[]"}]));
    typed(types, "Node", json!({"v": 1, "kids": []}))
}

/// `A { B b; }`, `B { A a; }`: a cycle between two types.
pub fn cycle() -> Vec<u8> {
    let mut types = Map::new();
    types.insert("A".into(), json!([{"name": "b", "type": "B"}]));
    types.insert("B".into(), json!([{"name": "a", "type": "A"}]));
    typed(types, "A", json!({}))
}

/// `uint256[][]…[]` nested `dims` times, and a message nested as deep.
pub fn deep_array_type(dims: usize) -> Vec<u8> {
    let mut types = Map::new();
    let ty = format!("uint256{}", "[]".repeat(dims));
    types.insert("Deep".into(), json!([{"name": "v", "type": ty}]));
    let mut v = json!([1]);
    for _ in 1..dims.min(100) {
        v = json!([v]);
    }
    typed(types, "Deep", json!({ "v": v }))
}

/// A message whose JSON nests `depth` arrays (far beyond what any type declares).
pub fn deep_json(depth: usize) -> Vec<u8> {
    let mut types = Map::new();
    types.insert("M".into(), json!([{"name": "v", "type": "uint256[]"}]));
    let mut text = String::from(
        r#"{"types":{"EIP712Domain":[],"M":[{"name":"v","type":"uint256[]"}]},"primaryType":"M","domain":{},"message":{"v":"#,
    );
    text.push_str(&"[".repeat(depth));
    text.push_str(&"]".repeat(depth));
    text.push_str("}}");
    text.into_bytes()
}

/// A dynamic array of as many `uint8` as fit.
pub fn wide_array() -> Vec<u8> {
    let mut types = Map::new();
    types.insert("W".into(), json!([{"name": "v", "type": "uint8[]"}]));
    let base = typed(types.clone(), "W", json!({"v": []})).len();
    let n = (CAP - base) / 2;
    typed(types, "W", json!({ "v": vec![0u8; n] }))
}

/// An array of as many structs as fit, each of a type whose `encodeType` string is as
/// long as the other limits allow (alloy recomputes the type hash for every struct value).
pub fn wide_struct_array(type_names: usize, name_len: usize) -> Vec<u8> {
    let mut types = Map::new();
    // S { Big[] big; } — `big` may be empty in every element, but Big's dependencies (a
    // chain of long-named types) are part of S's encodeType string all the same.
    types.insert("S".into(), json!([{"name": "big", "type": "B0[]"}]));
    let long = |i: usize| format!("B{i}{}", "x".repeat(name_len.saturating_sub(4)));
    for i in 0..type_names {
        let ty = if i + 1 < type_names { long(i + 1) } else { "uint256".into() };
        let name = if i == 0 { "B0".to_string() } else { long(i) };
        types.insert(name, json!([{"name": "f", "type": ty}]));
    }
    types.insert("L".into(), json!([{"name": "items", "type": "S[]"}]));
    let base = typed(types.clone(), "L", json!({"items": []})).len();
    let one = r#"{"big":[]},"#.len();
    let n = (CAP - base) / one;
    let items: Vec<Value> = (0..n).map(|_| json!({"big": []})).collect();
    typed(types, "L", json!({ "items": items }))
}

/// One string value as long as fits.
pub fn huge_string() -> Vec<u8> {
    let mut types = Map::new();
    types.insert("H".into(), json!([{"name": "s", "type": "string"}]));
    let base = typed(types.clone(), "H", json!({"s": ""})).len();
    typed(types, "H", json!({ "s": "A".repeat(CAP - base) }))
}

/// A field name and a type name as long as fit.
pub fn huge_names() -> Vec<u8> {
    let mut types = Map::new();
    let half = CAP / 3 - 200; // the type name appears twice
    let ty = format!("N{}", "n".repeat(half));
    types.insert(ty.clone(), json!([{"name": "f".repeat(half), "type": "uint256"}]));
    typed(types, &ty, json!({}))
}

/// As many distinct types as fit.
pub fn many_types() -> Vec<u8> {
    let mut types = Map::new();
    for i in 0..2_500 {
        types.insert(format!("T{i}"), json!([{"name": "x", "type": "uint8"}]));
    }
    typed(types, "T0", json!({"x": 1}))
}

/// One type with as many fields as fit.
pub fn many_fields() -> Vec<u8> {
    let mut types = Map::new();
    let fields: Vec<Value> = (0..3_000).map(|i| json!({"name": format!("f{i}"), "type": "uint8"})).collect();
    let message: Map<String, Value> = (0..3_000).map(|i| (format!("f{i}"), json!(1))).collect();
    types.insert("F".into(), Value::Array(fields));
    typed(types, "F", Value::Object(message))
}

/// Tuple syntax nested as deep as alloy's type parser allows, as a field type.
pub fn nested_tuple_type(depth: usize) -> Vec<u8> {
    let mut types = Map::new();
    let ty = format!("{}uint256{}", "(".repeat(depth), ")".repeat(depth));
    types.insert("P".into(), json!([{"name": "t", "type": ty}]));
    typed(types, "P", json!({}))
}

/// Tuple syntax nested as deep as fits a type *name* (alloy parses every key of `types`).
pub fn nested_tuple_name() -> Vec<u8> {
    let mut types = Map::new();
    let name = format!("{}uint256{}", "(".repeat(60), ")".repeat(60));
    types.insert(name, json!([{"name": "x", "type": "uint256"}]));
    types.insert("P".into(), json!([{"name": "x", "type": "uint256"}]));
    typed(types, "P", json!({"x": 1}))
}

/// The signed payload is only the domain: `primaryType` is `EIP712Domain`.
pub fn domain_as_primary() -> Vec<u8> {
    typed(Map::new(), "EIP712Domain", json!({"from": "Alice", "amount": "1000 ETH"}))
}

/// Every adversarial EIP-712 payload, named, each within the cap.
pub fn all_eip712() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("diamond_22", diamond(22)),
        ("diamond_widest", widest_diamond()),
        ("chain_1500", chain(1_500)),
        ("chain_longest", longest_chain()),
        ("self_reference", self_reference()),
        ("cycle", cycle()),
        ("deep_array_type", deep_array_type(2_000)),
        ("deep_json", deep_json(60_000)),
        ("wide_array", wide_array()),
        ("wide_struct_array", wide_struct_array(60, 120)),
        ("huge_string", huge_string()),
        ("huge_names", huge_names()),
        ("many_types", many_types()),
        ("many_fields", many_fields()),
        ("nested_tuple_type", nested_tuple_type(79)),
        ("nested_tuple_name", nested_tuple_name()),
        ("domain_as_primary", domain_as_primary()),
    ]
}

// ---- the worst payloads the limits still accept (for the benchmark) ----

/// A star of `n` types (`n` ≤ 60): B0 refers to B1…Bn, each of which has `fields` long-named
/// `uint256` fields; every name is `name_len` bytes long. The longest `encodeType` string the
/// limits allow, at a shallow depth.
fn long_named_star(types: &mut Map<String, Value>, n: usize, name_len: usize, fields: usize) -> String {
    let name = |i: usize| format!("B{i}{}", "x".repeat(name_len.saturating_sub(4)));
    let long = |j: usize| format!("f{j}{}", "y".repeat(name_len.saturating_sub(6)));
    let hub: Vec<Value> = (1..=n).map(|i| json!({"name": long(i), "type": name(i)})).collect();
    types.insert(name(0), Value::Array(hub));
    for i in 1..=n {
        let f: Vec<Value> = (0..fields).map(|j| json!({"name": long(j), "type": "uint256"})).collect();
        types.insert(name(i), Value::Array(f));
    }
    name(0)
}

/// The most struct values (511 list items) of a type whose `encodeType` string is as long as
/// `MAX_TYPES_TEXT` allows: alloy rebuilds and hashes that string once per struct value.
pub fn worst_struct_values(struct_values: usize, types_text: usize) -> Vec<u8> {
    let mut types = Map::new();
    // Fill the types text with long-named types S depends on through an (empty) array.
    let per_type = 2 * (120 + 2) + (120 + 120 + 2) + (120 + 7 + 2);
    let n = (types_text.saturating_sub(400) / per_type).clamp(1, 60);
    let head = long_named_star(&mut types, n, 120, 1);
    types.insert("S".into(), json!([{"name": "big", "type": format!("{head}[]")}]));
    types.insert("L".into(), json!([{"name": "items", "type": "S[]"}]));
    let items: Vec<Value> = (0..struct_values.saturating_sub(1)).map(|_| json!({"big": []})).collect();
    typed(types, "L", json!({ "items": items }))
}

/// The most struct values [`worst_struct_values`] can carry with `types_text` bytes of type
/// definitions while `accepts` (the bounded parser) still takes it: the worst hashing work
/// the limits allow for that much type text.
pub fn worst_hash_work(types_text: usize, accepts: impl Fn(&[u8]) -> bool) -> Vec<u8> {
    let (mut lo, mut hi) = (1usize, 512usize);
    while lo < hi {
        let mid = (lo + hi).div_ceil(2);
        if accepts(&worst_struct_values(mid, types_text)) {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    worst_struct_values(lo, types_text)
}

/// A primary type whose expansion is close to `MAX_EXPANDED_TYPES` nodes at the deepest
/// allowed nesting, with a full message (every leaf present).
pub fn worst_expansion(levels: usize, width: usize) -> Vec<u8> {
    let mut types = Map::new();
    // Level i has `width` fields of level i+1; the last level has `width` uint256 fields.
    for i in 0..levels {
        let child = if i + 1 < levels { format!("E{}", i + 1) } else { "uint256".into() };
        let f: Vec<Value> = (0..width).map(|j| json!({"name": format!("f{j}"), "type": child})).collect();
        types.insert(format!("E{i}"), Value::Array(f));
    }
    let mut v = Value::from(1);
    for _ in 0..levels {
        let m: Map<String, Value> = (0..width).map(|j| (format!("f{j}"), v.clone())).collect();
        v = Value::Object(m);
    }
    typed(types, "E0", v)
}

/// A deep primary type: `MAX_TYPE_DEPTH` levels of single-field structs.
pub fn worst_depth(levels: usize) -> Vec<u8> {
    let mut types = Map::new();
    for i in 0..levels {
        let child = if i + 1 < levels { format!("D{}", i + 1) } else { "uint256".into() };
        types.insert(format!("D{i}"), json!([{"name": "d", "type": child}]));
    }
    let mut v = Value::from(7);
    for _ in 0..levels {
        v = json!({ "d": v });
    }
    typed(types, "D0", v)
}

/// Long strings and bytes up to the string limit, filling the payload.
pub fn worst_strings(string_len: usize) -> Vec<u8> {
    let mut types = Map::new();
    types.insert("H".into(), json!([{"name": "s", "type": "string[]"}, {"name": "b", "type": "bytes"}]));
    let s = "\u{202e}A".repeat(string_len / 4);
    let b = format!("0x{}", "ab".repeat(string_len / 2 - 1));
    typed(types, "H", json!({ "s": [s.clone(), s], "b": b }))
}
