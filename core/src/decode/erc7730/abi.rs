//! Function signatures with parameter names (the format keys of ERC-7730 v2 and the ABI of
//! v1), and bounded decoding of calldata into a named [`Val`] tree.
//!
//! The parser is iterative over the signature text with an explicit depth cap; decoding is
//! alloy's (which checks lengths against the remaining data and limits recursion), followed
//! by our own caps on depth and element count before anything is rendered.

use alloy_dyn_abi::{DynSolType, DynSolValue};
use alloy_primitives::keccak256;

use super::value::Val;
use super::value::{MAX_TYPE_DEPTH, MAX_VALUES};
use super::ClearError;

/// Most parameters of one function or members of one tuple.
const MAX_PARAMS: usize = 64;

/// A parameter: its name (may be empty) and type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    /// The parameter's name, as written in the signature or ABI.
    pub name: String,
    /// Its type.
    pub ty: ParamType,
}

/// A parameter type with names kept for tuple members.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParamType {
    /// A type without members (`uint256`, `address`, `bytes`, `string`, …).
    Elementary(DynSolType),
    /// A tuple (struct) with named members.
    Tuple(Vec<Param>),
    /// A dynamic array `T[]`.
    Array(Box<ParamType>),
    /// A fixed array `T[n]`.
    FixedArray(Box<ParamType>, usize),
}

impl ParamType {
    /// The alloy type used to decode.
    pub fn sol_type(&self) -> DynSolType {
        match self {
            ParamType::Elementary(t) => t.clone(),
            ParamType::Tuple(ps) => DynSolType::Tuple(ps.iter().map(|p| p.ty.sol_type()).collect()),
            ParamType::Array(t) => DynSolType::Array(Box::new(t.sol_type())),
            ParamType::FixedArray(t, n) => DynSolType::FixedArray(Box::new(t.sol_type()), *n),
        }
    }

    /// The canonical type string used in selectors (`(uint256,address)[]`).
    pub fn canonical(&self) -> String {
        match self {
            ParamType::Elementary(t) => t.sol_type_name().into_owned(),
            ParamType::Tuple(ps) => {
                let inner: Vec<String> = ps.iter().map(|p| p.ty.canonical()).collect();
                format!("({})", inner.join(","))
            }
            ParamType::Array(t) => format!("{}[]", t.canonical()),
            ParamType::FixedArray(t, n) => format!("{}[{n}]", t.canonical()),
        }
    }
}

/// A function: its name and named parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Function {
    /// The function's name.
    pub name: String,
    /// Its parameters, in order.
    pub params: Vec<Param>,
}

impl Function {
    /// `name(type1,type2)`, the text hashed into the selector.
    pub fn canonical(&self) -> String {
        let ps: Vec<String> = self.params.iter().map(|p| p.ty.canonical()).collect();
        format!("{}({})", self.name, ps.join(","))
    }

    /// The 4-byte selector.
    pub fn selector(&self) -> [u8; 4] {
        let h = keccak256(self.canonical().as_bytes());
        let mut s = [0u8; 4];
        s.copy_from_slice(h.get(..4).unwrap_or(&[0; 4]));
        s
    }

    /// True when every parameter (recursively) has a name, so paths can address it.
    pub fn fully_named(&self) -> bool {
        fn named(ps: &[Param]) -> bool {
            ps.iter().all(|p| !p.name.is_empty() && ty_named(&p.ty))
        }
        fn ty_named(t: &ParamType) -> bool {
            match t {
                ParamType::Elementary(_) => true,
                ParamType::Tuple(ps) => named(ps),
                ParamType::Array(t) | ParamType::FixedArray(t, _) => ty_named(t),
            }
        }
        named(&self.params)
    }
}

fn sig_err(s: &str, why: &str) -> ClearError {
    ClearError::BadDescriptor(format!("bad function signature {s:?}: {why}"))
}

/// Parses `name(type name, (type a, type b) name, …)` (names optional, `tuple(...)`,
/// `memory`/`calldata`/`storage` and spaces tolerated).
pub fn parse_signature(sig: &str) -> Result<Function, ClearError> {
    let sig = sig.trim();
    let open = sig.find('(').ok_or_else(|| sig_err(sig, "no parameter list"))?;
    let name = sig.get(..open).unwrap_or("").trim().to_string();
    let valid_name = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$');
    if !valid_name {
        return Err(sig_err(sig, "bad function name"));
    }
    let rest = sig.get(open..).unwrap_or("");
    let mut p = Parser { s: rest.as_bytes(), i: 0, src: sig };
    let params = p.tuple_body(0)?;
    p.skip_ws();
    // Anything after the list (e.g. `returns (...)`, or a following EIP-712 type) is refused.
    if p.i != p.s.len() {
        return Err(sig_err(sig, "trailing characters"));
    }
    Ok(Function { name, params })
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
    src: &'a str,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }
    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }
    fn eat(&mut self, c: u8) -> bool {
        self.skip_ws();
        if self.peek() == Some(c) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    fn word(&mut self) -> String {
        self.skip_ws();
        let start = self.i;
        while matches!(self.peek(), Some(c) if c.is_ascii_alphanumeric() || c == b'_' || c == b'$') {
            self.i += 1;
        }
        String::from_utf8_lossy(self.s.get(start..self.i).unwrap_or(&[])).into_owned()
    }
    fn err(&self, why: &str) -> ClearError {
        sig_err(self.src, why)
    }

    /// `( param, param, … )` — the opening parenthesis is at the cursor.
    fn tuple_body(&mut self, depth: usize) -> Result<Vec<Param>, ClearError> {
        if depth > MAX_TYPE_DEPTH {
            return Err(self.err("nested too deeply"));
        }
        if !self.eat(b'(') {
            return Err(self.err("expected '('"));
        }
        let mut params = Vec::new();
        if self.eat(b')') {
            return Ok(params);
        }
        loop {
            if params.len() >= MAX_PARAMS {
                return Err(self.err("too many parameters"));
            }
            let ty = self.param_type(depth)?;
            let mut name = self.word();
            if matches!(name.as_str(), "memory" | "calldata" | "storage" | "indexed") {
                name = self.word();
            }
            params.push(Param { name, ty });
            if self.eat(b',') {
                continue;
            }
            if self.eat(b')') {
                return Ok(params);
            }
            return Err(self.err("expected ',' or ')'"));
        }
    }

    fn param_type(&mut self, depth: usize) -> Result<ParamType, ClearError> {
        self.skip_ws();
        let mut ty = if self.peek() == Some(b'(') {
            ParamType::Tuple(self.tuple_body(depth + 1)?)
        } else {
            let w = self.word();
            if w == "tuple" {
                ParamType::Tuple(self.tuple_body(depth + 1)?)
            } else if w.is_empty() {
                return Err(self.err("expected a type"));
            } else {
                let t = DynSolType::parse(&w).map_err(|e| self.err(&e.to_string()))?;
                if matches!(t, DynSolType::Tuple(_) | DynSolType::Array(_)) {
                    return Err(self.err("unexpected composite type"));
                }
                ParamType::Elementary(t)
            }
        };
        let mut dims = 0usize;
        loop {
            self.skip_ws();
            if self.peek() != Some(b'[') {
                break;
            }
            self.i += 1;
            dims += 1;
            if depth + dims > MAX_TYPE_DEPTH {
                return Err(self.err("nested too deeply"));
            }
            let n = self.word();
            if !self.eat(b']') {
                return Err(self.err("expected ']'"));
            }
            ty = if n.is_empty() {
                ParamType::Array(Box::new(ty))
            } else {
                let len: usize = n.parse().map_err(|_| self.err("bad array length"))?;
                if len == 0 || len > MAX_VALUES {
                    return Err(self.err("array length out of range"));
                }
                ParamType::FixedArray(Box::new(ty), len)
            };
        }
        Ok(ty)
    }
}

/// Builds a [`Function`] from a v1 JSON ABI entry (`{"name", "inputs": [{name, type,
/// components}]}`).
pub fn function_from_abi(entry: &serde_json::Value) -> Result<Function, ClearError> {
    let name = entry.get("name").and_then(|v| v.as_str()).unwrap_or("").to_string();
    let inputs = entry.get("inputs").and_then(|v| v.as_array()).cloned().unwrap_or_default();
    let params = abi_params(&inputs, 0)?;
    if name.is_empty() {
        return Err(ClearError::BadDescriptor("ABI function without a name".into()));
    }
    Ok(Function { name, params })
}

fn abi_params(inputs: &[serde_json::Value], depth: usize) -> Result<Vec<Param>, ClearError> {
    if depth > MAX_TYPE_DEPTH || inputs.len() > MAX_PARAMS {
        return Err(ClearError::BadDescriptor("ABI nested too deeply or too wide".into()));
    }
    let mut out = Vec::with_capacity(inputs.len());
    for inp in inputs {
        let name = inp.get("name").and_then(|v| v.as_str()).unwrap_or("").to_string();
        let ty = inp.get("type").and_then(|v| v.as_str()).unwrap_or("");
        let (base, dims) = match ty.find('[') {
            Some(i) => (ty.get(..i).unwrap_or(""), ty.get(i..).unwrap_or("")),
            None => (ty, ""),
        };
        let mut t = if base == "tuple" {
            let comps = inp.get("components").and_then(|v| v.as_array()).cloned().unwrap_or_default();
            ParamType::Tuple(abi_params(&comps, depth + 1)?)
        } else {
            let t = DynSolType::parse(base).map_err(|e| ClearError::BadDescriptor(format!("ABI type {ty:?}: {e}")))?;
            ParamType::Elementary(t)
        };
        for d in dims.split('[').skip(1) {
            let n = d.trim_end_matches(']');
            t = if n.is_empty() {
                ParamType::Array(Box::new(t))
            } else {
                let len: usize = n
                    .parse()
                    .ok()
                    .filter(|l| (1..=MAX_VALUES).contains(l))
                    .ok_or_else(|| ClearError::BadDescriptor(format!("ABI type {ty:?}")))?;
                ParamType::FixedArray(Box::new(t), len)
            };
        }
        out.push(Param { name, ty: t });
    }
    Ok(out)
}

/// What decoding calldata against a function found.
#[derive(Debug, Clone)]
pub struct DecodedCall {
    /// The arguments as a named struct.
    pub args: Val,
    /// Bytes after the canonical encoding of the arguments (not shown; warned about).
    pub trailing: usize,
}

/// Decodes `data` (selector included) against `f`: the selector must match, the arguments
/// must decode, and their canonical re-encoding must be exactly the bytes that follow the
/// selector, or a prefix of them (extra bytes are reported in `trailing`).
pub fn decode_call(f: &Function, data: &[u8]) -> Result<DecodedCall, ClearError> {
    let (sel, args) =
        data.split_at_checked(4).ok_or(ClearError::CalldataMismatch("calldata shorter than a selector".into()))?;
    if sel != f.selector() {
        return Err(ClearError::CalldataMismatch("selector does not match".into()));
    }
    let ty = DynSolType::Tuple(f.params.iter().map(|p| p.ty.sol_type()).collect());
    let decoded = ty
        .abi_decode_sequence(args)
        .map_err(|e| ClearError::CalldataMismatch(format!("arguments do not decode: {e}")))?;
    let again = decoded.abi_encode_params();
    let trailing = if again.as_slice() == args {
        0
    } else if args.starts_with(&again) {
        args.len() - again.len()
    } else {
        return Err(ClearError::CalldataMismatch("arguments are not in canonical ABI encoding".into()));
    };
    let DynSolValue::Tuple(items) = decoded else {
        return Err(ClearError::CalldataMismatch("arguments are not a tuple".into()));
    };
    let mut budget = MAX_VALUES;
    let args = named_struct(&f.params, items, &mut budget, 0)?;
    Ok(DecodedCall { args, trailing })
}

fn named_struct(
    params: &[Param],
    items: Vec<DynSolValue>,
    budget: &mut usize,
    depth: usize,
) -> Result<Val, ClearError> {
    let mut members = Vec::with_capacity(params.len());
    for (i, (p, v)) in params.iter().zip(items).enumerate() {
        let name = if p.name.is_empty() { i.to_string() } else { p.name.clone() };
        members.push((name, to_val(&p.ty, v, budget, depth + 1)?));
    }
    Ok(Val::Struct(members))
}

fn to_val(ty: &ParamType, v: DynSolValue, budget: &mut usize, depth: usize) -> Result<Val, ClearError> {
    if depth > MAX_TYPE_DEPTH {
        return Err(ClearError::TooComplex("values nested too deeply".into()));
    }
    *budget = budget.checked_sub(1).ok_or_else(|| ClearError::TooComplex(format!("more than {MAX_VALUES} values")))?;
    match (ty, v) {
        (ParamType::Tuple(ps), DynSolValue::Tuple(items)) => named_struct(ps, items, budget, depth),
        (ParamType::Array(t), DynSolValue::Array(items))
        | (ParamType::FixedArray(t, _), DynSolValue::FixedArray(items)) => {
            if items.len() > *budget {
                return Err(ClearError::TooComplex(format!("more than {MAX_VALUES} values")));
            }
            let mut out = Vec::with_capacity(items.len());
            for it in items {
                out.push(to_val(t, it, budget, depth + 1)?);
            }
            Ok(Val::Array(out))
        }
        (_, v) => Val::from_leaf(v)
            .ok_or_else(|| ClearError::CalldataMismatch("decoded value does not match its type".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_named_signatures_and_computes_selectors() {
        let f = parse_signature("transfer(address _to, uint256 _value)").unwrap();
        assert_eq!(f.canonical(), "transfer(address,uint256)");
        assert_eq!(f.selector(), [0xa9, 0x05, 0x9c, 0xbb]);
        assert_eq!(f.params[0].name, "_to");
        let g =
            parse_signature("swap((uint256 fromToken, address toToken) base, bytes32[] pools, tuple(uint8 a)[2] x)")
                .unwrap();
        assert_eq!(g.canonical(), "swap((uint256,address),bytes32[],(uint8)[2])");
        assert!(g.fully_named());
        let h = parse_signature("approve(address,uint256)").unwrap();
        assert!(!h.fully_named());
        assert_eq!(parse_signature("f()").unwrap().canonical(), "f()");
        assert_eq!(parse_signature("f(uint)").unwrap().canonical(), "f(uint256)");
    }

    #[test]
    fn hostile_signatures_are_refused_without_panicking() {
        for s in ["", "(", "f(", "f(uint256", "f(uint256 a,)", "f(foo x)", "f()g", "f(uint8[0] a)"] {
            assert!(parse_signature(s).is_err(), "{s}");
        }
        let deep = format!("f({}uint8{})", "(".repeat(100), ")".repeat(100));
        assert!(parse_signature(&deep).is_err());
        let wide = format!("f(uint8{})", "[]".repeat(100));
        assert!(parse_signature(&wide).is_err());
    }

    #[test]
    fn decode_requires_selector_and_canonical_encoding() {
        let f = parse_signature("transfer(address to, uint256 amount)").unwrap();
        let mut data = f.selector().to_vec();
        data.extend_from_slice(&[0u8; 12]);
        data.extend_from_slice(&[0x11; 20]);
        data.extend_from_slice(&[0u8; 31]);
        data.push(7);
        let d = decode_call(&f, &data).unwrap();
        assert_eq!(d.trailing, 0);
        data.extend_from_slice(&[1, 2, 3]);
        assert_eq!(decode_call(&f, &data).unwrap().trailing, 3);
        assert!(decode_call(&f, &data[..30]).is_err());
        let mut wrong = data.clone();
        wrong[0] ^= 1;
        assert!(matches!(decode_call(&f, &wrong), Err(ClearError::CalldataMismatch(_))));
    }

    #[test]
    fn huge_array_lengths_are_refused_before_allocating() {
        let f = parse_signature("f(uint256[] xs)").unwrap();
        let mut data = f.selector().to_vec();
        let mut off = [0u8; 32];
        off[31] = 0x20;
        data.extend_from_slice(&off);
        data.extend_from_slice(&[0xff; 32]);
        assert!(decode_call(&f, &data).is_err());
    }
}
