//! The renderer: walks a matched format's fields over the decoded data and formats each
//! value by the descriptor's rules.

use alloy_consensus::Transaction as _;
use alloy_dyn_abi::TypedData;
use alloy_primitives::{Address, TxKind, U256};
use serde_json::{Map, Value};

use super::abi::decode_call;
use super::format::{chain_name, decimal_amount, duration_words, native_amount, native_symbol, unit_value, utc_date};
use super::model::{
    Context, Descriptor, FieldFormat, FieldSpec, Format, Iteration, Node, Target, Visible, MAX_GROUP_DEPTH,
};
use super::value::{concrete_key, parse_uint, select, CSeg, Hit, Path, Root, Seg, Val};
use super::{
    AddressBook, CallInput, ClearError, ClearWarning, DescriptorSet, Lookup, Row, Screen, MAX_NESTED_CALLS, MAX_ROWS,
};
use crate::payload::EvmTx;

/// Most bytes of a raw byte string shown before it is cut.
const MAX_BYTES_SHOWN: usize = 512;
/// Most characters of a string shown before it is cut.
const MAX_CHARS_SHOWN: usize = 1024;
/// Most `{…}` placeholders filled in one interpolated intent.
const MAX_PLACEHOLDERS: usize = 16;

#[derive(Debug, Clone, Copy)]
struct Container {
    to: Option<Address>,
    from: Option<Address>,
    value: U256,
    chain_id: u64,
}

struct Renderer<'a> {
    set: &'a DescriptorSet,
    book: &'a dyn AddressBook,
    desc: &'a Descriptor,
    container: Container,
    data: Val,
    rows: Vec<Row>,
    warnings: Vec<ClearWarning>,
    prefix: String,
    nesting: usize,
    excluded: Vec<Path>,
}

fn checksum(a: &Address) -> String {
    a.to_checksum(None)
}

pub(super) fn render_call(
    set: &DescriptorSet,
    call: &CallInput<'_>,
    book: &dyn AddressBook,
    nesting: usize,
    prefix: &str,
) -> Result<Option<Screen>, ClearError> {
    let Some(selector) = call.data.get(..4) else { return Ok(None) };
    let Some((desc, fmt)) = set.find_call(call.chain_id, &call.to, selector) else {
        return Ok(None);
    };
    let Target::Call(func) = &fmt.target else { return Ok(None) };
    let span = tracing::debug_span!("erc7730_call", descriptor = %desc.source, function = %func.name);
    let _g = span.enter();
    let decoded = decode_call(func, call.data)?;
    let mut r = Renderer {
        set,
        book,
        desc,
        container: Container { to: Some(call.to), from: call.from, value: call.value, chain_id: call.chain_id },
        data: decoded.args,
        rows: Vec::new(),
        warnings: Vec::new(),
        prefix: prefix.to_string(),
        nesting,
        excluded: Vec::new(),
    };
    if nesting == 0 {
        r.contract_row(call.to);
    }
    if decoded.trailing > 0 {
        r.warn(ClearWarning::TrailingCalldata { bytes: decoded.trailing });
    }
    r.render_format(fmt)?;
    Ok(Some(r.finish(fmt, &func.name)))
}

pub(super) fn render_typed_data(
    set: &DescriptorSet,
    td: &TypedData,
    request_chain: Option<u64>,
    from: Option<Address>,
    book: &dyn AddressBook,
) -> Result<Option<Screen>, ClearError> {
    let chain_id = match td.domain.chain_id {
        Some(c) => Some(
            u64::try_from(c)
                .map_err(|_| ClearError::CalldataMismatch("the domain's chainId does not fit 64 bits".into()))?,
        ),
        None => request_chain,
    };
    let contract = td.domain.verifying_contract;
    let mut candidates: Vec<usize> = Vec::new();
    if let (Some(c), Some(a)) = (chain_id, contract) {
        if set.answers(Lookup::Message(c, a)) {
            if let Some(ids) = set.messages.get(&(c, a)) {
                candidates.extend(ids);
            }
        }
    }
    if set.answers(Lookup::UnboundMessages) {
        candidates.extend(&set.unbound_messages);
    }
    if candidates.is_empty() {
        return Ok(None);
    }
    let encode_type: String = td
        .encode_type()
        .map_err(|e| ClearError::CalldataMismatch(format!("typed data types: {e}")))?
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    let found = candidates.iter().filter_map(|i| set.descriptors.get(*i)).find_map(|d| {
        if !domain_matches(d, td, chain_id) {
            return None;
        }
        d.formats.iter().find(|f| message_matches(d, f, td, &encode_type)).map(|f| (d, f))
    });
    let Some((desc, fmt)) = found else { return Ok(None) };
    let span = tracing::debug_span!("erc7730_typed_data", descriptor = %desc.source);
    let _g = span.enter();
    let value =
        td.coerce().map_err(|e| ClearError::CalldataMismatch(format!("message does not fit its types: {e}")))?;
    let data = Val::from_typed(value)?;
    let mut r = Renderer {
        set,
        book,
        desc,
        container: Container { to: contract, from, value: U256::ZERO, chain_id: chain_id.unwrap_or(0) },
        data,
        rows: Vec::new(),
        warnings: Vec::new(),
        prefix: String::new(),
        nesting: 0,
        excluded: Vec::new(),
    };
    if let Some(c) = contract {
        r.contract_row(c);
    }
    r.render_format(fmt)?;
    // The chain the signature is valid on, as for transactions.
    if let Some(c) = chain_id {
        r.push_row("network".into(), "Network".into(), chain_name(c));
    }
    Ok(Some(r.finish(fmt, &td.primary_type)))
}

/// Whether `d`'s EIP-712 context binds this message: a deployment on `chain` (the domain's
/// chain, else the request's) at the domain's `verifyingContract`, every value of the
/// domain constraint equal to the message's (the specification's "MUST match"), and the
/// domain separator when one is given.
fn domain_matches(d: &Descriptor, td: &TypedData, chain: Option<u64>) -> bool {
    let Context::Eip712 { deployments, domain, domain_separator, .. } = &d.context else {
        return false;
    };
    let dom = &td.domain;
    if !deployments.is_empty() {
        let (Some(c), Some(a)) = (chain, dom.verifying_contract) else { return false };
        if !deployments.iter().any(|dep| dep.chain_id == c && dep.address == a) {
            return false;
        }
    }
    for (k, v) in domain {
        let ok = match k.as_str() {
            "name" => dom.name.as_deref() == v.as_str(),
            "version" => dom.version.as_deref() == v.as_str(),
            "chainId" => {
                let want = v.as_u64().map(U256::from).or_else(|| v.as_str().and_then(parse_uint));
                want.is_some() && dom.chain_id == want
            }
            "verifyingContract" => {
                let want = v.as_str().and_then(|s| s.parse::<Address>().ok());
                want.is_some() && dom.verifying_contract == want
            }
            _ => false,
        };
        if !ok {
            return false;
        }
    }
    if let Some(sep) = domain_separator {
        if dom.separator().0 != *sep {
            return false;
        }
    }
    true
}

fn message_matches(d: &Descriptor, f: &Format, td: &TypedData, encode_type: &str) -> bool {
    let Target::Message { primary, encode_type: key_type } = &f.target else { return false };
    if let Some(k) = key_type {
        return k == encode_type;
    }
    if *primary != td.primary_type {
        return false;
    }
    match &d.context {
        Context::Eip712 { schemas, .. } if !schemas.is_empty() => {
            schemas.iter().any(|(p, enc)| p == primary && enc == encode_type)
        }
        _ => true,
    }
}

pub(super) fn render_transaction(
    set: &DescriptorSet,
    tx: &EvmTx,
    from: Option<Address>,
    book: &dyn AddressBook,
) -> Result<Option<Screen>, ClearError> {
    let (kind, value, input, gas_limit, max_fee) = match tx {
        EvmTx::Legacy(t) => (t.to, t.value, &t.input, t.gas_limit, t.gas_price),
        EvmTx::Eip2930(t) => (t.to, t.value, &t.input, t.gas_limit, t.gas_price),
        EvmTx::Eip1559(t) => (t.to, t.value, &t.input, t.gas_limit, t.max_fee_per_gas()),
    };
    let TxKind::Call(to) = kind else { return Ok(None) };
    let chain_id = tx.chain_id();
    let call = CallInput { chain_id, to, data: input, value, from };
    let Some(mut screen) = render_call(set, &call, book, 0, "")? else { return Ok(None) };
    if !value.is_zero() && !screen.rows.iter().any(|r| r.key == "@.value") {
        screen.rows.push(Row {
            key: "native_value".into(),
            label: "Value sent".into(),
            value: native_amount(chain_id, value),
        });
    }
    screen.rows.push(Row { key: "network".into(), label: "Network".into(), value: chain_name(chain_id) });
    let fee = U256::from(gas_limit).saturating_mul(U256::from(max_fee));
    screen.rows.push(Row { key: "max_fee".into(), label: "Max fees".into(), value: native_amount(chain_id, fee) });
    Ok(Some(screen))
}

fn lookup<'v>(root: &'v Val, at: &[CSeg]) -> Option<&'v Val> {
    let mut v = root;
    for c in at {
        v = match (c, v) {
            (CSeg::Name(n), Val::Struct(members)) => &members.iter().find(|(k, _)| k == n)?.1,
            (CSeg::Index(i), Val::Array(items)) => items.get(*i)?,
            _ => return None,
        };
    }
    Some(v)
}

fn rule_matches(v: &Val, list: &[String]) -> bool {
    let key = v.key_string();
    list.iter().any(|s| {
        s.eq_ignore_ascii_case(&key)
            || matches!((v.as_uint(), parse_uint(s)), (Some(a), Some(b)) if a == b)
            || matches!((v.as_address(), s.parse::<Address>().ok()), (Some(a), Some(b)) if a == b)
    })
}

/// A value in its natural form: checksummed address, decimal number, hex bytes.
fn raw(v: &Val) -> String {
    match v {
        Val::Address(a) => checksum(a),
        Val::Uint(u) => u.to_string(),
        Val::Int(i) => i.to_string(),
        Val::Bool(b) => b.to_string(),
        Val::Bytes(b) => match b.get(..MAX_BYTES_SHOWN) {
            Some(head) if b.len() > MAX_BYTES_SHOWN => {
                format!("0x{}… ({} bytes)", hex::encode(head), b.len())
            }
            _ => format!("0x{}", hex::encode(b)),
        },
        Val::Str(s) => {
            if s.chars().count() > MAX_CHARS_SHOWN {
                let head: String = s.chars().take(MAX_CHARS_SHOWN).collect();
                format!("{head}…")
            } else {
                s.clone()
            }
        }
        Val::Array(items) => items.iter().map(raw).collect::<Vec<_>>().join(", "),
        Val::Struct(members) => members.iter().map(|(k, v)| format!("{k}: {}", raw(v))).collect::<Vec<_>>().join(", "),
    }
}

fn selector_bytes(v: &Val) -> Option<Vec<u8>> {
    match v {
        Val::Str(s) => hex::decode(s.trim().trim_start_matches("0x")).ok(),
        Val::Bytes(b) => Some(b.clone()),
        Val::Uint(u) => Some(u.to_be_bytes::<32>().get(28..)?.to_vec()),
        _ => None,
    }
    .filter(|b| b.len() == 4)
}

impl Renderer<'_> {
    fn warn(&mut self, w: ClearWarning) {
        if !self.warnings.contains(&w) {
            self.warnings.push(w);
        }
    }

    fn push_row(&mut self, key: String, label: String, value: String) {
        if self.rows.len() >= MAX_ROWS {
            self.warn(ClearWarning::TooManyRows);
            return;
        }
        self.rows.push(Row { key, label, value });
    }

    fn contract_row(&mut self, to: Address) {
        let chain = self.container.chain_id;
        let name = self
            .desc
            .display_owner()
            .map(str::to_string)
            .or_else(|| self.set.name(chain, &to).map(str::to_string))
            .unwrap_or_else(|| checksum(&to));
        self.push_row("contract".into(), "Interaction with".into(), name);
    }

    fn finish(mut self, fmt: &Format, fallback: &str) -> Screen {
        let plain = fmt.intent.as_ref().map(|i| i.text()).unwrap_or_else(|| fallback.to_string());
        let intent = match &fmt.interpolated_intent {
            Some(t) => self.interpolate(fmt, t).unwrap_or(plain),
            None => plain,
        };
        Screen { intent, rows: self.rows, warnings: self.warnings, descriptor: self.desc.source.clone() }
    }

    fn render_format(&mut self, fmt: &Format) -> Result<(), ClearError> {
        self.excluded = fmt.excluded.clone();
        self.nodes(&fmt.fields, &[], 0)
    }

    fn nodes(&mut self, nodes: &[Node], base: &[CSeg], depth: usize) -> Result<(), ClearError> {
        if depth > MAX_GROUP_DEPTH {
            return Err(ClearError::TooComplex("field groups nested too deeply".into()));
        }
        let mut i = 0;
        while let Some(node) = nodes.get(i) {
            // Sibling fields over the same array (`creators.[].account`, `creators.[].value`)
            // are shown element by element, so each pair stays together.
            let prefix = array_prefix(node);
            let run = match &prefix {
                Some(p) => {
                    nodes.get(i..).unwrap_or(&[]).iter().take_while(|n| array_prefix(n).as_ref() == Some(p)).count()
                }
                None => 0,
            };
            if run > 1 {
                self.bundled(nodes.get(i..i + run).unwrap_or(&[]), base, depth)?;
                i += run;
                continue;
            }
            i += 1;
            match node {
                Node::Field(spec) => self.field(spec, base)?,
                Node::Group { path, iteration, fields, label } => {
                    let bases: Vec<Vec<CSeg>> = match path {
                        Some(p) => self.hits(p, base, None)?.into_iter().map(|h| h.at).collect(),
                        None => vec![base.to_vec()],
                    };
                    for b in bases {
                        // The group's label is "displayed to the user in front of the
                        // formatted field values": a heading row before each instance.
                        if let Some(l) = label.as_deref().map(str::trim).filter(|l| !l.is_empty()) {
                            let at = if b.is_empty() { "group".into() } else { concrete_key(&b) };
                            self.push_row(format!("{}{at}", self.prefix), l.to_string(), String::new());
                        }
                        match iteration {
                            Iteration::Sequential => self.nodes(fields, &b, depth + 1)?,
                            Iteration::Bundled => self.bundled(fields, &b, depth + 1)?,
                        }
                    }
                }
            }
        }
        Ok(())
    }

    fn bundled(&mut self, nodes: &[Node], base: &[CSeg], depth: usize) -> Result<(), ClearError> {
        let mut lists: Vec<(&FieldSpec, Vec<Hit>)> = Vec::new();
        for node in nodes {
            if let Node::Field(spec) = node {
                if !matches!(spec.visible, Visible::Never | Visible::MustBe(_)) {
                    let hits = self.field_hits(spec, base)?;
                    lists.push((spec, hits));
                    continue;
                }
                self.field(spec, base)?;
            }
        }
        let longest = lists.iter().map(|(_, h)| h.len()).max().unwrap_or(0);
        for i in 0..longest {
            for (spec, hits) in &lists {
                if let Some(h) = hits.get(i) {
                    if let Visible::IfNotIn(list) = &spec.visible {
                        if rule_matches(&h.val, list) {
                            continue;
                        }
                    }
                    self.show(spec, h.clone(), base)?;
                }
            }
        }
        let groups: Vec<Node> = nodes.iter().filter(|n| matches!(n, Node::Group { .. })).cloned().collect();
        self.nodes(&groups, base, depth)
    }

    fn field_hits(&mut self, spec: &FieldSpec, base: &[CSeg]) -> Result<Vec<Hit>, ClearError> {
        if let Some(v) = &spec.value {
            let val = match v {
                Value::String(s) if s.starts_with("$.") => self.descriptor_value(&Path::parse(s)?),
                other => Val::from_json(other),
            };
            return Ok(val
                .map(|val| vec![Hit { at: vec![CSeg::Name(format!("value:{}", spec.label))], val }])
                .unwrap_or_default());
        }
        match &spec.path {
            Some(p) => self.hits(p, base, None),
            None => Ok(Vec::new()),
        }
    }

    fn field(&mut self, spec: &FieldSpec, base: &[CSeg]) -> Result<(), ClearError> {
        if let Some(p) = &spec.path {
            if base.is_empty() && self.excluded.contains(p) {
                return Ok(());
            }
        }
        if spec.visible == Visible::Never {
            return Ok(());
        }
        let hits = self.field_hits(spec, base)?;
        match &spec.visible {
            Visible::Never => {}
            Visible::MustBe(list) => {
                if let Some(h) = hits.iter().find(|h| !rule_matches(&h.val, list)) {
                    return Err(ClearError::ConstraintViolated(format!("{} is {}", concrete_key(&h.at), raw(&h.val))));
                }
            }
            Visible::IfNotIn(list) => {
                for h in hits {
                    if !rule_matches(&h.val, list) {
                        self.show(spec, h, base)?;
                    }
                }
            }
            Visible::Optional => {
                for h in hits {
                    self.show(spec, h, base)?;
                }
            }
            Visible::Always => {
                let multi =
                    spec.path.as_ref().is_some_and(|p| p.segs.iter().any(|s| matches!(s, Seg::All | Seg::Slice(..))));
                let from_missing =
                    spec.path.as_ref().is_some_and(|p| {
                        p.root == Root::Container && p.segs.first() == Some(&Seg::Name("from".into()))
                    }) && self.container.from.is_none();
                if hits.is_empty() && from_missing {
                    self.warn(ClearWarning::SenderUnknown);
                } else if hits.is_empty() && !multi {
                    self.warn(ClearWarning::UnresolvedField { label: spec.label.clone() });
                }
                for h in hits {
                    self.show(spec, h, base)?;
                }
            }
        }
        Ok(())
    }

    /// Values a path reaches. Relative data paths start at `base` (the group element).
    fn hits(&mut self, p: &Path, base: &[CSeg], align: Option<&[CSeg]>) -> Result<Vec<Hit>, ClearError> {
        match p.root {
            Root::Data => {
                if p.absolute || base.is_empty() {
                    select(&self.data, &[], &p.segs, align)
                } else {
                    match lookup(&self.data, base) {
                        Some(start) => select(start, base, &p.segs, align),
                        None => Ok(Vec::new()),
                    }
                }
            }
            Root::Container => {
                let Some(Seg::Name(name)) = p.segs.first() else { return Ok(Vec::new()) };
                let c = self.container;
                let val = match name.as_str() {
                    "to" => c.to.map(Val::Address),
                    "from" => c.from.map(Val::Address),
                    "value" => Some(Val::Uint(c.value)),
                    "chainId" => Some(Val::Uint(U256::from(c.chain_id))),
                    _ => None,
                };
                Ok(val.map(|val| vec![Hit { at: vec![CSeg::Name(format!("@.{name}"))], val }]).unwrap_or_default())
            }
            Root::Descriptor => Ok(self
                .descriptor_value(p)
                .map(|val| vec![Hit { at: vec![CSeg::Name(p.display())], val }])
                .unwrap_or_default()),
        }
    }

    /// `$.metadata.constants.X`, `$.metadata.token.*`, `$.metadata.owner`.
    fn descriptor_value(&self, p: &Path) -> Option<Val> {
        let names: Vec<&str> = p.segs.iter().map(|s| if let Seg::Name(n) = s { n.as_str() } else { "" }).collect();
        let m = &self.desc.metadata;
        match names.as_slice() {
            ["metadata", "constants", k] => m.constants.get(*k).and_then(Val::from_json),
            ["metadata", "owner"] => m.owner.clone().map(Val::Str),
            ["metadata", "contractName"] => m.contract_name.clone().map(Val::Str),
            ["metadata", "token", "ticker"] => m.token.as_ref().map(|t| Val::Str(t.ticker.clone())),
            ["metadata", "token", "name"] => m.token.as_ref().map(|t| Val::Str(t.name.clone())),
            ["metadata", "token", "decimals"] => m.token.as_ref().map(|t| Val::Uint(U256::from(t.decimals))),
            _ => None,
        }
    }

    /// A constant parameter: a literal, a `$.` reference, or a map reference.
    fn const_val(&mut self, v: &Value, base: &[CSeg], at: &[CSeg]) -> Result<Option<Val>, ClearError> {
        match v {
            Value::String(s) if s.starts_with("$.") => Ok(self.descriptor_value(&Path::parse(s)?)),
            Value::Object(o) => {
                let (Some(map), Some(key_path)) =
                    (o.get("map").and_then(|m| m.as_str()), o.get("keyPath").and_then(|k| k.as_str()))
                else {
                    return Ok(None);
                };
                let name = map.trim_start_matches("$.metadata.maps.");
                let key = self.path_val(key_path, base, at)?.map(|k| k.key_string());
                let found = key.and_then(|k| self.desc.metadata.maps.get(name).and_then(|m| m.get(&k)).cloned());
                Ok(found.as_ref().and_then(Val::from_json))
            }
            other => Ok(Val::from_json(other)),
        }
    }

    /// The first value of a parameter path, relative to the group element, else to the root;
    /// `[]` steps follow the field's own indices.
    fn path_val(&mut self, s: &str, base: &[CSeg], at: &[CSeg]) -> Result<Option<Val>, ClearError> {
        let p = Path::parse(s)?;
        let mut hits = self.hits(&p, base, Some(at))?;
        if hits.is_empty() && !p.absolute && !base.is_empty() && p.root == Root::Data {
            hits = self.hits(&p, &[], Some(at))?;
        }
        Ok(hits.into_iter().next().map(|h| h.val))
    }

    /// Parameter `key` given as `<key>Path` (a path) or `<key>` (a constant).
    fn param(
        &mut self,
        params: &Map<String, Value>,
        key: &str,
        base: &[CSeg],
        at: &[CSeg],
    ) -> Result<Option<Val>, ClearError> {
        if let Some(s) = params.get(&format!("{key}Path")).and_then(|v| v.as_str()) {
            return self.path_val(s, base, at);
        }
        match params.get(key) {
            Some(v) => self.const_val(v, base, at),
            None => Ok(None),
        }
    }

    /// A parameter holding one address or a list of them.
    fn param_addresses(
        &mut self,
        params: &Map<String, Value>,
        key: &str,
        base: &[CSeg],
        at: &[CSeg],
    ) -> Result<Vec<Address>, ClearError> {
        let items: Vec<Value> = match params.get(key) {
            Some(Value::Array(a)) => a.clone(),
            Some(v) => vec![v.clone()],
            None => Vec::new(),
        };
        let mut out = Vec::new();
        for it in items {
            if let Some(a) = self.const_val(&it, base, at)?.and_then(|v| v.as_address()) {
                out.push(a);
            }
        }
        Ok(out)
    }

    /// A string parameter, following a `$.` reference to a constant.
    fn param_str(&self, params: &Map<String, Value>, key: &str) -> Option<String> {
        let s = params.get(key)?.as_str()?;
        if s.starts_with("$.") {
            return match self.descriptor_value(&Path::parse(s).ok()?)? {
                Val::Str(t) => Some(t),
                other => Some(raw(&other)),
            };
        }
        Some(s.to_string())
    }

    fn chain_param(&mut self, params: &Map<String, Value>, base: &[CSeg], at: &[CSeg]) -> Result<u64, ClearError> {
        Ok(self
            .param(params, "chainId", base, at)?
            .and_then(|v| v.as_uint())
            .and_then(|u| u64::try_from(u).ok())
            .unwrap_or(self.container.chain_id))
    }

    fn address_display(&self, chain: u64, a: &Address, local: bool) -> String {
        self.address_display_from(chain, a, local, true)
    }

    /// The user's label (when `local`), else the bundle's contract or token name (when
    /// `bundle`), else the checksummed address.
    fn address_display_from(&self, chain: u64, a: &Address, local: bool, bundle: bool) -> String {
        if local {
            if let Some(l) = self.book.label(chain, a) {
                return l;
            }
        }
        if bundle {
            if let Some(n) = self.set.name(chain, a) {
                return n.to_string();
            }
            if let Some(t) = self.set.token(chain, a) {
                return if t.name.is_empty() { t.symbol.clone() } else { t.name.clone() };
            }
        }
        checksum(a)
    }

    fn show(&mut self, spec: &FieldSpec, hit: Hit, base: &[CSeg]) -> Result<(), ClearError> {
        let label = if spec.label.is_empty() {
            spec.path.as_ref().map(|p| p.display()).unwrap_or_default()
        } else {
            spec.label.clone()
        };
        let key = format!("{}{}", self.prefix, concrete_key(&hit.at));
        if let Some(placeholder) = &spec.encrypted {
            self.warn(ClearWarning::EncryptedValue { label: label.clone() });
            self.push_row(key, label, placeholder.clone());
            return Ok(());
        }
        if spec.format == Some(FieldFormat::Calldata) {
            return self.nested(spec, &hit, base, key, label);
        }
        let value = self.format_value(spec, &hit, base, &label)?;
        self.push_row(key, label, value);
        Ok(())
    }

    fn format_value(&mut self, spec: &FieldSpec, hit: &Hit, base: &[CSeg], label: &str) -> Result<String, ClearError> {
        let v = &hit.val;
        let params = &spec.params;
        let at = hit.at.as_slice();
        Ok(match spec.format.unwrap_or(FieldFormat::Raw) {
            FieldFormat::Raw | FieldFormat::Calldata => raw(v),
            FieldFormat::AddressName => match v.as_address() {
                Some(a) => self.address_name(a, params, base, at)?,
                None => raw(v),
            },
            FieldFormat::TokenTicker => match v.as_address() {
                Some(a) => {
                    let chain = self.chain_param(params, base, at)?;
                    self.set.token(chain, &a).map(|t| t.symbol.clone()).unwrap_or_else(|| checksum(&a))
                }
                None => raw(v),
            },
            FieldFormat::Amount => match v.as_uint() {
                Some(u) => native_amount(self.container.chain_id, u),
                None => raw(v),
            },
            FieldFormat::TokenAmount => self.token_amount(spec, hit, base, label)?,
            FieldFormat::NftName => {
                let collection = self.param(params, "collection", base, at)?.and_then(|c| c.as_address());
                let chain = self.container.chain_id;
                match collection {
                    Some(c) => format!("{} #{}", self.address_display(chain, &c, true), raw(v)),
                    None => format!("#{}", raw(v)),
                }
            }
            FieldFormat::Date => match v.as_uint() {
                Some(u) => self.date(u, params, label),
                None => raw(v),
            },
            FieldFormat::Duration => match v.as_uint() {
                Some(u) => duration_words(u),
                None => raw(v),
            },
            FieldFormat::Unit => match v.as_uint() {
                Some(u) => {
                    let base_sym = self.param_str(params, "base").unwrap_or_default();
                    let base_sym = base_sym.trim();
                    let decimals = params
                        .get("decimals")
                        .and_then(|d| d.as_u64().or_else(|| d.as_str().and_then(|s| s.parse().ok())))
                        .and_then(|d| u8::try_from(d).ok())
                        .unwrap_or(0);
                    let prefix = params.get("prefix").and_then(|p| p.as_bool()).unwrap_or(false);
                    unit_value(u, decimals, base_sym, prefix)
                }
                None => raw(v),
            },
            FieldFormat::Enum => {
                let name = params
                    .get("$ref")
                    .or_else(|| params.get("enumPath"))
                    .and_then(|r| r.as_str())
                    .map(|r| r.trim_start_matches("$.metadata.enums.").to_string())
                    .unwrap_or_default();
                let keys = [v.key_string(), v.as_uint().map(|u| u.to_string()).unwrap_or_default()];
                let table = self.desc.metadata.enums.get(&name);
                let found = keys.iter().find_map(|k| table.and_then(|e| e.get(k)));
                match found {
                    Some(s) => s.clone(),
                    None => {
                        self.warn(ClearWarning::UnknownEnumValue { label: label.to_string() });
                        raw(v)
                    }
                }
            }
            FieldFormat::ChainId => match v.as_uint().and_then(|u| u64::try_from(u).ok()) {
                Some(id) => chain_name(id),
                None => raw(v),
            },
            FieldFormat::InteroperableAddressName => self.interoperable(v),
        })
    }

    fn address_name(
        &mut self,
        a: Address,
        params: &Map<String, Value>,
        base: &[CSeg],
        at: &[CSeg],
    ) -> Result<String, ClearError> {
        let senders = self.param_addresses(params, "senderAddress", base, at)?;
        let chain = self.container.chain_id;
        if senders.contains(&a) {
            return Ok(match self.container.from {
                Some(f) => self.address_display(chain, &f, true),
                None => {
                    self.warn(ClearWarning::SenderUnknown);
                    "the sender".into()
                }
            });
        }
        // `sources`: "when specified a wallet MUST only use specified sources". Our names
        // are all local ("a local name trusted by user"): the user's address book and the
        // verified bundle on the phone; ENS is not resolved. `types`: the bundle names
        // only contracts and tokens, so it names no address typed only `eoa`/`wallet`.
        let strings = |k: &str| -> Option<Vec<String>> {
            params
                .get(k)
                .and_then(|s| s.as_array())
                .map(|l| l.iter().filter_map(|s| s.as_str()).map(str::to_string).collect::<Vec<_>>())
        };
        let local = match strings("sources") {
            Some(list) if !list.is_empty() => list.iter().any(|s| s == "local"),
            _ => true,
        };
        let contract_type = match strings("types") {
            Some(list) if !list.is_empty() => {
                list.iter().any(|t| matches!(t.as_str(), "contract" | "token" | "collection"))
            }
            _ => true,
        };
        Ok(self.address_display_from(chain, &a, local, local && contract_type))
    }

    fn date(&mut self, u: U256, params: &Map<String, Value>, label: &str) -> String {
        let encoding = params.get("encoding").and_then(|e| e.as_str()).unwrap_or("timestamp");
        if encoding == "blockheight" {
            // Ethereum since the merge: one slot per 12 s from a known block.
            const REF_BLOCK: u64 = 19_332_140;
            const REF_TIME: u64 = 1_709_197_235;
            let approx = (self.container.chain_id == 1)
                .then(|| u64::try_from(u).ok())
                .flatten()
                .filter(|b| *b >= 15_537_394)
                .and_then(|b| {
                    let t = i128::from(REF_TIME) + (i128::from(b) - i128::from(REF_BLOCK)) * 12;
                    u64::try_from(t).ok()
                })
                .and_then(|t| utc_date(U256::from(t)));
            return match approx {
                Some(d) => format!("Block {} (about {d})", decimal_amount(u, 0)),
                None => format!("Block {}", decimal_amount(u, 0)),
            };
        }
        match utc_date(u) {
            Some(d) => d,
            None => {
                self.warn(ClearWarning::InvalidDate { label: label.to_string() });
                u.to_string()
            }
        }
    }

    fn token_amount(&mut self, spec: &FieldSpec, hit: &Hit, base: &[CSeg], label: &str) -> Result<String, ClearError> {
        let params = &spec.params;
        let at = hit.at.as_slice();
        let Some(amount) = hit.val.as_uint() else { return Ok(raw(&hit.val)) };
        let token = self.param(params, "token", base, at)?.and_then(|t| t.as_address());
        let chain = self.chain_param(params, base, at)?;
        let natives = self.param_addresses(params, "nativeCurrencyAddress", base, at)?;
        let info: Option<(String, u8)> = match token {
            Some(t) if natives.contains(&t) => Some((native_symbol(chain).to_string(), 18)),
            Some(t) => self.set.token(chain, &t).map(|i| (i.symbol.clone(), i.decimals)),
            None => None,
        };
        let threshold = match params.get("threshold") {
            Some(v) => self.const_val(v, base, at)?.and_then(|t| t.as_uint()),
            None => None,
        };
        let message = self.param_str(params, "message").unwrap_or_else(|| "Unlimited".into());
        let message = message.as_str();
        let unlimited = threshold.is_some_and(|t| amount >= t) || amount == U256::MAX;
        let Some((symbol, decimals)) = info else {
            self.warn(ClearWarning::UnknownToken {
                token: token.map(|t| checksum(&t)).unwrap_or_else(|| "unknown".into()),
            });
            if unlimited {
                self.warn(ClearWarning::UnlimitedAmount { label: label.to_string() });
                return Ok(message.to_string());
            }
            return Ok(format!("{amount} base units"));
        };
        if unlimited {
            self.warn(ClearWarning::UnlimitedAmount { label: label.to_string() });
            return Ok(format!("{message} {symbol}"));
        }
        Ok(format!("{} {symbol}", decimal_amount(amount, decimals)))
    }

    /// EIP-7930: version(2) chainType(2) chainRefLen(1) chainRef addrLen(1) address.
    fn interoperable(&self, v: &Val) -> String {
        let Some(b) = v.as_bytes() else { return raw(v) };
        let parsed = (|| {
            let chain_type = b.get(2..4)?;
            let ref_len = usize::from(*b.get(4)?);
            let chain_ref = b.get(5..5 + ref_len)?;
            let addr_len = usize::from(*b.get(5 + ref_len)?);
            let addr = b.get(6 + ref_len..6 + ref_len + addr_len)?;
            if chain_type != [0, 0] || addr.len() != 20 || chain_ref.len() > 8 {
                return None;
            }
            let chain = chain_ref.iter().fold(0u64, |acc, x| (acc << 8) | u64::from(*x));
            Some((chain, Address::from_slice(addr)))
        })();
        match parsed {
            Some((chain, a)) => {
                format!("{} on {}", self.address_display(chain, &a, true), chain_name(chain))
            }
            None => raw(v),
        }
    }

    fn nested(
        &mut self,
        spec: &FieldSpec,
        hit: &Hit,
        base: &[CSeg],
        key: String,
        label: String,
    ) -> Result<(), ClearError> {
        let params = &spec.params;
        let at = hit.at.as_slice();
        let bytes = hit.val.as_bytes().unwrap_or_default();
        let callee = self.param(params, "callee", base, at)?.and_then(|c| c.as_address());
        let selector = self.param(params, "selector", base, at)?.and_then(|s| selector_bytes(&s));
        let chain = self.chain_param(params, base, at)?;
        let amount = self.param(params, "amount", base, at)?.and_then(|a| a.as_uint());
        let spender = self.param(params, "spender", base, at)?.and_then(|s| s.as_address());
        let data: Vec<u8> = match &selector {
            Some(sel) => sel.iter().chain(bytes.iter()).copied().collect(),
            None => bytes.clone(),
        };
        if let Some(to) = callee {
            if self.nesting < MAX_NESTED_CALLS {
                let input = CallInput {
                    chain_id: chain,
                    to,
                    data: &data,
                    value: amount.unwrap_or(U256::ZERO),
                    from: spender.or(self.container.to),
                };
                let inner = render_call(self.set, &input, self.book, self.nesting + 1, &format!("{key}."));
                match inner {
                    Ok(Some(screen)) => {
                        self.push_row(key, label, screen.intent);
                        for r in screen.rows {
                            self.push_row(r.key, r.label, r.value);
                        }
                        for w in screen.warnings {
                            self.warn(w);
                        }
                        return Ok(());
                    }
                    Ok(None) => {}
                    Err(e) => {
                        tracing::debug!(error = %e, "embedded call does not fit its descriptor")
                    }
                }
            }
        }
        let who = callee.map(|c| self.address_display(chain, &c, true)).unwrap_or_else(|| "an unknown contract".into());
        let sel = data.get(..4).map(hex::encode).unwrap_or_default();
        self.warn(ClearWarning::NestedCallNotClear {
            callee: callee.map(|c| checksum(&c)).unwrap_or_else(|| "unknown".into()),
        });
        self.push_row(key, label, format!("Call to {who} (selector 0x{sel}, {} bytes)", data.len()));
        Ok(())
    }

    fn interpolate(&mut self, fmt: &Format, template: &str) -> Option<String> {
        let mut out = String::with_capacity(template.len());
        let mut rest = template;
        let mut n = 0usize;
        while let Some(open) = rest.find('{') {
            n += 1;
            if n > MAX_PLACEHOLDERS {
                return None;
            }
            out.push_str(rest.get(..open)?);
            let after = rest.get(open + 1..)?;
            let close = after.find('}')?;
            let path_text = after.get(..close)?.trim();
            let path = Path::parse(path_text).ok()?;
            let spec = find_spec(&fmt.fields, &path).cloned().unwrap_or(FieldSpec {
                path: Some(path.clone()),
                value: None,
                label: path_text.to_string(),
                format: None,
                params: Map::new(),
                visible: Visible::Always,
                encrypted: None,
            });
            let hit = self.hits(&path, &[], None).ok()?.into_iter().next()?;
            let formatted = if spec.format == Some(FieldFormat::Calldata) {
                raw(&hit.val)
            } else {
                self.format_value(&spec, &hit, &[], &spec.label.clone()).ok()?
            };
            out.push_str(&formatted);
            rest = after.get(close + 1..)?;
        }
        out.push_str(rest);
        Some(out)
    }
}

/// The path up to its first `[]` of a shown data field, e.g. `creators.[]`.
fn array_prefix(n: &Node) -> Option<Vec<Seg>> {
    let Node::Field(spec) = n else { return None };
    if matches!(spec.visible, Visible::Never | Visible::MustBe(_)) {
        return None;
    }
    let p = spec.path.as_ref().filter(|p| p.root == Root::Data)?;
    let at = p.segs.iter().position(|s| *s == Seg::All)?;
    Some(p.segs.get(..=at)?.to_vec())
}

fn find_spec<'f>(nodes: &'f [Node], path: &Path) -> Option<&'f FieldSpec> {
    nodes.iter().find_map(|n| match n {
        Node::Field(s) if s.path.as_ref().map(|p| &p.segs) == Some(&path.segs) => Some(s),
        _ => None,
    })
}
