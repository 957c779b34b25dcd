//! A strict reader for serialized Solana messages (legacy and v0), the bytes a Solana
//! signer signs. Lengths use Solana's compact-u16 ("short vec") encoding, decoded by the
//! maintained `solana-short-vec` crate; see `docs/adr/0003-solana-decoding.md` for why the
//! rest is a small reader rather than the `solana-message` crate.
//!
//! The reader refuses trailing bytes, out-of-range indices and header counts that do not
//! fit the key list (the same sanity checks the runtime's `sanitize` applies), so a
//! message that parses here is one whose every instruction can be shown.

use thiserror::Error;

/// The highest message version this reader understands (v0).
pub const MAX_MESSAGE_VERSION: u8 = 0;

/// Largest serialized transaction the network accepts (`PACKET_DATA_SIZE`): the message
/// plus its signatures (a compact-u16 count and 64 bytes each) must fit. A larger message
/// could never be sent, so it is refused before it is read.
pub const MAX_TRANSACTION_SIZE: usize = 1232;

/// Why bytes are not a Solana message this reader accepts.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SolanaMessageError {
    /// The bytes ended in the middle of a field.
    #[error("Solana message truncated while reading {0}")]
    Truncated(&'static str),
    /// A compact-u16 length was malformed or not minimally encoded.
    #[error("bad compact-u16 length for {0}")]
    BadLength(&'static str),
    /// A versioned message with a version other than 0.
    #[error("unsupported Solana message version {0}")]
    UnsupportedVersion(u8),
    /// The header's counts do not fit the account keys.
    #[error("Solana message header does not match its account keys")]
    BadHeader,
    /// An instruction names a program or account that does not exist.
    #[error("Solana instruction refers to account index {0}, out of range")]
    IndexOutOfRange(u8),
    /// Bytes left over after the message.
    #[error("{0} unexpected bytes after the Solana message")]
    TrailingBytes(usize),
    /// The message and its signatures do not fit a transaction ([`MAX_TRANSACTION_SIZE`]).
    #[error(
        "a transaction of this message and its signatures is {len} bytes, more than the {max} the network accepts"
    )]
    TooLarge {
        /// The transaction's size.
        len: usize,
        /// The limit.
        max: usize,
    },
}

/// The message format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageVersion {
    /// The original format (no address lookup tables).
    Legacy,
    /// Version 0 (address lookup tables allowed).
    V0,
}

/// The three counts at the start of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageHeader {
    /// How many of the first keys must sign (the first one pays the fee).
    pub num_required_signatures: u8,
    /// How many of the signing keys are read-only.
    pub num_readonly_signed_accounts: u8,
    /// How many of the non-signing keys (at the end) are read-only.
    pub num_readonly_unsigned_accounts: u8,
}

/// One instruction, with indices into the message's account list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompiledInstruction {
    /// Index of the program's key (always a static key).
    pub program_id_index: u8,
    /// Indices of the accounts passed to the program (static keys first, then lookups).
    pub accounts: Vec<u8>,
    /// The instruction data, program-defined.
    pub data: Vec<u8>,
}

/// A v0 address-lookup-table reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressTableLookup {
    /// The lookup table's account.
    pub account_key: [u8; 32],
    /// Indices of writable addresses taken from the table.
    pub writable_indexes: Vec<u8>,
    /// Indices of read-only addresses taken from the table.
    pub readonly_indexes: Vec<u8>,
}

/// A parsed Solana message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SolanaMessage {
    /// Legacy or v0.
    pub version: MessageVersion,
    /// The header counts.
    pub header: MessageHeader,
    /// The static account keys.
    pub account_keys: Vec<[u8; 32]>,
    /// The recent blockhash (or durable nonce).
    pub recent_blockhash: [u8; 32],
    /// The instructions, in order.
    pub instructions: Vec<CompiledInstruction>,
    /// Address lookup tables (v0 only; empty for legacy).
    pub address_table_lookups: Vec<AddressTableLookup>,
}

/// Where an instruction's account index points.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountRef {
    /// A static key in the message.
    Static([u8; 32]),
    /// An address loaded from a lookup table: not known without the chain's state.
    Lookup {
        /// The lookup table's account.
        table: [u8; 32],
        /// The index inside the table.
        index: u8,
    },
}

impl SolanaMessage {
    /// Parses a whole message; any trailing byte is an error.
    pub fn parse(bytes: &[u8]) -> Result<Self, SolanaMessageError> {
        if bytes.len() > MAX_TRANSACTION_SIZE {
            return Err(SolanaMessageError::TooLarge { len: bytes.len(), max: MAX_TRANSACTION_SIZE });
        }
        let mut r = Reader { buf: bytes };
        let first = r.u8("header")?;
        let (version, num_required_signatures) = if first & 0x80 != 0 {
            let v = first & 0x7f;
            if v > MAX_MESSAGE_VERSION {
                return Err(SolanaMessageError::UnsupportedVersion(v));
            }
            (MessageVersion::V0, r.u8("header")?)
        } else {
            (MessageVersion::Legacy, first)
        };
        let header = MessageHeader {
            num_required_signatures,
            num_readonly_signed_accounts: r.u8("header")?,
            num_readonly_unsigned_accounts: r.u8("header")?,
        };
        let n_keys = r.len("account keys")?;
        let mut account_keys = Vec::with_capacity(n_keys.min(256));
        for _ in 0..n_keys {
            account_keys.push(r.key("account key")?);
        }
        let recent_blockhash = r.key("recent blockhash")?;
        let n_ix = r.len("instructions")?;
        let mut instructions = Vec::with_capacity(n_ix.min(64));
        for _ in 0..n_ix {
            let program_id_index = r.u8("program id index")?;
            let accounts = r.bytes_vec("instruction accounts")?;
            let data = r.bytes_vec("instruction data")?;
            instructions.push(CompiledInstruction { program_id_index, accounts, data });
        }
        let mut address_table_lookups = Vec::new();
        if version == MessageVersion::V0 {
            let n = r.len("address table lookups")?;
            for _ in 0..n {
                let account_key = r.key("lookup table key")?;
                let writable_indexes = r.bytes_vec("lookup writable indexes")?;
                let readonly_indexes = r.bytes_vec("lookup readonly indexes")?;
                address_table_lookups.push(AddressTableLookup { account_key, writable_indexes, readonly_indexes });
            }
        }
        if !r.buf.is_empty() {
            return Err(SolanaMessageError::TrailingBytes(r.buf.len()));
        }
        let msg =
            SolanaMessage { version, header, account_keys, recent_blockhash, instructions, address_table_lookups };
        msg.sanitize()?;
        let sigs = usize::from(msg.header.num_required_signatures);
        let len = bytes.len() + if sigs < 0x80 { 1 } else { 2 } + 64 * sigs;
        if len > MAX_TRANSACTION_SIZE {
            return Err(SolanaMessageError::TooLarge { len, max: MAX_TRANSACTION_SIZE });
        }
        Ok(msg)
    }

    fn sanitize(&self) -> Result<(), SolanaMessageError> {
        let h = &self.header;
        let n_static = self.account_keys.len();
        let signed = usize::from(h.num_required_signatures);
        if signed == 0
            || h.num_readonly_signed_accounts >= h.num_required_signatures
            || signed + usize::from(h.num_readonly_unsigned_accounts) > n_static
            || n_static > 256
        {
            return Err(SolanaMessageError::BadHeader);
        }
        let n_lookup: usize =
            self.address_table_lookups.iter().map(|l| l.writable_indexes.len() + l.readonly_indexes.len()).sum();
        if n_static + n_lookup > 256 {
            return Err(SolanaMessageError::BadHeader);
        }
        for ix in &self.instructions {
            // Programs are static keys and never the fee payer.
            let p = usize::from(ix.program_id_index);
            if p == 0 || p >= n_static {
                return Err(SolanaMessageError::IndexOutOfRange(ix.program_id_index));
            }
            if let Some(bad) = ix.accounts.iter().find(|a| usize::from(**a) >= n_static + n_lookup) {
                return Err(SolanaMessageError::IndexOutOfRange(*bad));
            }
        }
        Ok(())
    }

    /// The fee payer (the first key; the header guarantees one exists).
    pub fn fee_payer(&self) -> Option<&[u8; 32]> {
        self.account_keys.first()
    }

    /// The keys that must sign this message.
    pub fn signers(&self) -> &[[u8; 32]] {
        let n = usize::from(self.header.num_required_signatures).min(self.account_keys.len());
        self.account_keys.get(..n).unwrap_or(&[])
    }

    /// The program an instruction calls.
    pub fn program_id(&self, ix: &CompiledInstruction) -> Option<&[u8; 32]> {
        self.account_keys.get(usize::from(ix.program_id_index))
    }

    /// Resolves an account index: a static key, or a lookup-table entry (writable entries
    /// of every table first, then read-only ones, as the runtime orders them).
    pub fn account(&self, index: u8) -> Option<AccountRef> {
        let i = usize::from(index);
        if let Some(k) = self.account_keys.get(i) {
            return Some(AccountRef::Static(*k));
        }
        let mut rest = i - self.account_keys.len();
        for l in &self.address_table_lookups {
            if let Some(ix) = l.writable_indexes.get(rest) {
                return Some(AccountRef::Lookup { table: l.account_key, index: *ix });
            }
            rest -= l.writable_indexes.len();
        }
        for l in &self.address_table_lookups {
            if let Some(ix) = l.readonly_indexes.get(rest) {
                return Some(AccountRef::Lookup { table: l.account_key, index: *ix });
            }
            rest -= l.readonly_indexes.len();
        }
        None
    }
}

struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], SolanaMessageError> {
        if self.buf.len() < n {
            return Err(SolanaMessageError::Truncated(what));
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    fn u8(&mut self, what: &'static str) -> Result<u8, SolanaMessageError> {
        let b = self.take(1, what)?;
        b.first().copied().ok_or(SolanaMessageError::Truncated(what))
    }

    fn key(&mut self, what: &'static str) -> Result<[u8; 32], SolanaMessageError> {
        self.take(32, what)?.try_into().map_err(|_| SolanaMessageError::Truncated(what))
    }

    fn len(&mut self, what: &'static str) -> Result<usize, SolanaMessageError> {
        let (len, used) =
            solana_short_vec::decode_shortu16_len(self.buf).map_err(|_| SolanaMessageError::BadLength(what))?;
        self.take(used, what)?;
        Ok(len)
    }

    fn bytes_vec(&mut self, what: &'static str) -> Result<Vec<u8>, SolanaMessageError> {
        let n = self.len(what)?;
        Ok(self.take(n, what)?.to_vec())
    }
}

/// Encodes a compact-u16 length (test and builder helper; the reader uses the crate).
pub fn encode_compact_u16(mut n: u16, out: &mut Vec<u8>) {
    loop {
        let mut b = (n & 0x7f) as u8;
        n >>= 7;
        if n != 0 {
            b |= 0x80;
        }
        out.push(b);
        if n == 0 {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_u16_encoder_matches_the_crate() {
        for n in [0u16, 1, 0x7f, 0x80, 0xff, 0x100, 0x3fff, 0x4000, 0xffff] {
            let mut v = Vec::new();
            encode_compact_u16(n, &mut v);
            assert_eq!(solana_short_vec::decode_shortu16_len(&v), Ok((usize::from(n), v.len())));
        }
    }

    #[test]
    fn messages_that_cannot_fit_a_transaction_are_refused() {
        // One signer, two keys, instructions of program #1 with no accounts and no data,
        // as many as fit beside one signature, then one more.
        let build = |n: u8| {
            let mut m = vec![1u8, 0, 0, 2];
            m.extend([1u8; 32]);
            m.extend([2u8; 32]);
            m.extend([9u8; 32]);
            let mut count = Vec::new();
            encode_compact_u16(u16::from(n) * 4, &mut count);
            m.extend(count);
            for _ in 0..u16::from(n) * 4 {
                m.extend([1u8, 0, 0]);
            }
            m
        };
        let fits = build(88);
        assert!(fits.len() + 65 <= MAX_TRANSACTION_SIZE);
        assert!(SolanaMessage::parse(&fits).is_ok());
        assert!(matches!(SolanaMessage::parse(&build(89)), Err(SolanaMessageError::TooLarge { .. })));
        assert!(matches!(
            SolanaMessage::parse(&vec![0u8; 5_000]),
            Err(SolanaMessageError::TooLarge { len: 5_000, .. })
        ));
    }

    #[test]
    fn non_minimal_lengths_are_refused() {
        // 0x80 0x00 is an alias of 0.
        let mut m = vec![1, 0, 1, 0x80, 0x00];
        m.extend([0u8; 32]);
        m.push(0);
        assert_eq!(SolanaMessage::parse(&m), Err(SolanaMessageError::BadLength("account keys")));
    }
}
