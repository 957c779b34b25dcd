//! Messages over PDUs: segmentation and reassembly at any ATT MTU (23..=517).
//!
//! One implementation, used by the phone (core) and by the appliance simulator. A message
//! of up to [`MAX_MESSAGE_LEN`] bytes is cut into fragments of at most `mtu - 3` bytes (the
//! PDU payload of one write or notification). See `docs/ble-protocol.md` for the diagrams.
//!
//! ```text
//! start fragment:         | 1 | msg id (7 bits) | len: LEB128 varint, 1..=3 bytes | data ... |
//! continuation fragment:  | 0 | seq    (7 bits) | data ...                                   |
//! ```
//!
//! * The start byte has bit 7 set; its low 7 bits are a message id, incremented (mod 128)
//!   by the sender for every message, so a duplicated start is recognised.
//! * The length is the whole message length, unsigned LEB128, minimal encoding, at most 3
//!   bytes; it is checked against the limit *before* any buffer is allocated.
//! * Continuation fragments carry `seq` = 0, 1, 2, ... (mod 128) in their first byte, bit 7
//!   clear. A gap, a repeat or a swap of `seq` fails the message with [`FramingError::LostFragment`],
//!   [`FramingError::DuplicateFragment`] or [`FramingError::OutOfOrder`].
//! * A message is complete when `len` bytes have arrived; a lost tail is caught by the
//!   reassembly timeout or by the next start fragment.
//! * After a failure the remaining continuations of that message are discarded silently
//!   and the next start fragment begins a new message: a failure never poisons the link.
//!
//! Integrity and authenticity are the secure channel's job (AEAD above this layer);
//! framing only guarantees that what it hands up has the announced length and that
//! every loss it can see is reported as a specific error.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use tokio::sync::Mutex;
use tracing::Instrument;

use super::transport::{GattError, GattLink};

/// The clock the [`Reassembler`] is driven with (tokio's, so paused-time tests work).
pub use tokio::time::Instant;

/// Largest message the framing carries: 64 KiB. A start fragment announcing more is
/// refused from its header, before anything is allocated.
pub const MAX_MESSAGE_LEN: usize = 64 * 1024;

/// Bit 7 of the first byte: set on a start fragment, clear on a continuation.
pub const START_FLAG: u8 = 0x80;
/// Mask of the message id (start) or sequence number (continuation) in the first byte.
pub const ID_MASK: u8 = 0x7F;
/// Longest encoding of the length varint (21 bits, enough for [`MAX_MESSAGE_LEN`]).
pub const MAX_LEN_BYTES: usize = 3;
/// Smallest PDU payload the framing accepts for sending (ATT MTU 23 gives 20).
pub const MIN_PDU: usize = 1 + MAX_LEN_BYTES + 1;

/// Default time allowed between a message's start fragment and its last fragment.
pub const DEFAULT_REASSEMBLY_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a gap in the sequence may wait for the missing fragment (a reordering)
/// before the message is failed as [`FramingError::LostFragment`].
pub const GAP_GRACE: Duration = Duration::from_secs(1);
/// Default time allowed for the link to accept one PDU.
pub const DEFAULT_SEND_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a message could not be sent or received. A UI can show each variant.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum FramingError {
    /// The link below failed (disconnect, timeout, ...).
    #[error(transparent)]
    Link(#[from] GattError),
    /// The message (announced or offered) exceeds the maximum message size.
    #[error("message of {len} bytes exceeds the maximum of {max}")]
    TooLarge {
        /// Announced or offered length.
        len: usize,
        /// Largest allowed.
        max: usize,
    },
    /// A fragment of the message never arrived (gap in the sequence, or a missing start).
    #[error("a fragment of the message was lost")]
    LostFragment,
    /// A fragment of the message arrived twice.
    #[error("a fragment of the message arrived twice")]
    DuplicateFragment,
    /// The fragments of the message arrived out of order.
    #[error("the fragments of the message arrived out of order")]
    OutOfOrder,
    /// The message's fragments did not all arrive within the reassembly timeout.
    #[error("the message did not arrive completely in time")]
    ReassemblyTimeout,
    /// A fragment that cannot be parsed (empty, bad length field, overflowing data).
    #[error("malformed fragment: {0}")]
    Malformed(String),
    /// The link's MTU leaves no room for a fragment.
    #[error("ATT MTU {0} is too small for framing")]
    MtuTooSmall(u16),
}

/// Tuning of a [`FramedLink`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FramingConfig {
    /// Largest message accepted (sent or received); at most [`MAX_MESSAGE_LEN`].
    pub max_message_len: usize,
    /// Time from a start fragment until the message must be complete.
    pub reassembly_timeout: Duration,
    /// Time the link may take to accept one PDU.
    pub send_timeout: Duration,
}

impl Default for FramingConfig {
    fn default() -> Self {
        Self {
            max_message_len: MAX_MESSAGE_LEN,
            reassembly_timeout: DEFAULT_REASSEMBLY_TIMEOUT,
            send_timeout: DEFAULT_SEND_TIMEOUT,
        }
    }
}

/// Appends `len` as unsigned LEB128 (minimal).
fn put_varint(out: &mut Vec<u8>, mut len: usize) {
    loop {
        let low = (len & 0x7F) as u8;
        len >>= 7;
        if len == 0 {
            out.push(low);
            return;
        }
        out.push(low | 0x80);
    }
}

/// Number of bytes `put_varint` writes for `len`.
fn varint_len(len: usize) -> usize {
    let mut n = 1;
    let mut v = len >> 7;
    while v != 0 {
        n += 1;
        v >>= 7;
    }
    n
}

/// Reads a minimal LEB128 length of at most [`MAX_LEN_BYTES`]; returns (value, bytes used).
fn get_varint(bytes: &[u8]) -> Result<(usize, usize), FramingError> {
    let mut value = 0usize;
    for i in 0..MAX_LEN_BYTES {
        let b = *bytes.get(i).ok_or_else(|| FramingError::Malformed("truncated length field".into()))?;
        value |= usize::from(b & 0x7F) << (7 * i);
        if b & 0x80 == 0 {
            if b == 0 && i > 0 {
                return Err(FramingError::Malformed("non-minimal length field".into()));
            }
            return Ok((value, i + 1));
        }
    }
    Err(FramingError::Malformed("length field longer than 3 bytes".into()))
}

/// Cuts `msg` into fragments of at most `max_pdu` bytes (the link's `mtu - 3`).
///
/// `msg_id` is the sender's message counter (only its low 7 bits are used).
pub fn segment(msg: &[u8], msg_id: u8, max_pdu: usize) -> Result<Vec<Vec<u8>>, FramingError> {
    if msg.len() > MAX_MESSAGE_LEN {
        return Err(FramingError::TooLarge { len: msg.len(), max: MAX_MESSAGE_LEN });
    }
    if max_pdu < MIN_PDU {
        let mtu = u16::try_from(max_pdu + super::transport::ATT_HEADER).unwrap_or(u16::MAX);
        return Err(FramingError::MtuTooSmall(mtu));
    }
    let mut first = Vec::with_capacity(max_pdu.min(1 + varint_len(msg.len()) + msg.len()));
    first.push(START_FLAG | (msg_id & ID_MASK));
    put_varint(&mut first, msg.len());
    let room = max_pdu - first.len();
    let (head, mut rest) = msg.split_at(room.min(msg.len()));
    first.extend_from_slice(head);
    let mut out = Vec::with_capacity(1 + rest.len().div_ceil(max_pdu - 1));
    out.push(first);
    let mut seq: u8 = 0;
    while !rest.is_empty() {
        let (chunk, tail) = rest.split_at((max_pdu - 1).min(rest.len()));
        let mut pdu = Vec::with_capacity(1 + chunk.len());
        pdu.push(seq & ID_MASK);
        pdu.extend_from_slice(chunk);
        out.push(pdu);
        seq = seq.wrapping_add(1) & ID_MASK;
        rest = tail;
    }
    Ok(out)
}

/// Number of PDUs and total PDU payload bytes (headers included, ATT header excluded)
/// that [`segment`] produces for a message of `len` bytes at `max_pdu`.
pub fn framed_size(len: usize, max_pdu: usize) -> (usize, usize) {
    let header = 1 + varint_len(len);
    let first = max_pdu.saturating_sub(header).min(len);
    let rest = len - first;
    let conts = rest.div_ceil(max_pdu.saturating_sub(1).max(1));
    (1 + conts, len + header + conts)
}

/// What the reassembler is doing.
#[derive(Debug)]
enum State {
    /// Waiting for a start fragment. `last` describes the last completed message, to
    /// recognise its late duplicates.
    Idle { last: Option<Completed> },
    /// Collecting a message.
    Assembling(Partial),
    /// A continuation skipped `missing`; the next fragment tells lost from reordered.
    Gap { id: u8, missing: u8, ahead: u8, started: Instant, gap_at: Instant },
    /// A continuation arrived with no message in progress: its start was lost or is late.
    Orphan { seen: Instant },
    /// A message failed; its remaining continuations are dropped until the next start.
    Discarding { last_id: Option<u8> },
}

#[derive(Debug, Clone)]
struct Completed {
    id: u8,
    /// The message's last fragment: the only one whose duplicate can arrive after the
    /// message completed (a duplicate of an earlier one arrives while assembling).
    last_pdu: Vec<u8>,
}

#[derive(Debug)]
struct Partial {
    id: u8,
    len: usize,
    buf: Vec<u8>,
    next_seq: u8,
    conts: usize,
    started: Instant,
}

/// Sans-IO reassembler: feed it PDUs with [`Reassembler::push`], take finished messages
/// and errors with [`Reassembler::pop`]. Never panics on any input.
#[derive(Debug)]
pub struct Reassembler {
    max_len: usize,
    timeout: Duration,
    state: State,
    out: VecDeque<Result<Vec<u8>, FramingError>>,
    duplicates_dropped: u64,
}

impl Reassembler {
    /// A reassembler accepting messages up to `max_len` (capped at [`MAX_MESSAGE_LEN`])
    /// that must complete within `timeout` of their start fragment.
    pub fn new(max_len: usize, timeout: Duration) -> Self {
        Self {
            max_len: max_len.min(MAX_MESSAGE_LEN),
            timeout,
            state: State::Idle { last: None },
            out: VecDeque::new(),
            duplicates_dropped: 0,
        }
    }

    /// The next finished message or error, oldest first.
    pub fn pop(&mut self) -> Option<Result<Vec<u8>, FramingError>> {
        self.out.pop_front()
    }

    /// True while a message is partly received.
    pub fn in_progress(&self) -> bool {
        matches!(self.state, State::Assembling(_) | State::Gap { .. } | State::Orphan { .. })
    }

    /// Late duplicates of already delivered messages that were dropped silently.
    pub fn duplicates_dropped(&self) -> u64 {
        self.duplicates_dropped
    }

    /// When the message in progress times out, if one is in progress.
    pub fn deadline(&self) -> Option<Instant> {
        match &self.state {
            // checked_add: a huge configured timeout means "never", not a panic.
            State::Assembling(p) => p.started.checked_add(self.timeout),
            State::Gap { started, gap_at, .. } => {
                let grace = gap_at.checked_add(GAP_GRACE);
                match (started.checked_add(self.timeout), grace) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                }
            }
            State::Orphan { seen } => seen.checked_add(GAP_GRACE.min(self.timeout)),
            _ => None,
        }
    }

    /// Fails the message in progress if its deadline has passed by `now`.
    pub fn expire(&mut self, now: Instant) {
        if self.deadline().is_some_and(|d| now >= d) {
            let err = match &self.state {
                State::Gap { .. } | State::Orphan { .. } => FramingError::LostFragment,
                _ => FramingError::ReassemblyTimeout,
            };
            self.fail(err);
        }
    }

    fn fail(&mut self, err: FramingError) {
        let last_id = match &self.state {
            State::Assembling(p) => Some(p.id),
            State::Gap { id, .. } => Some(*id),
            State::Idle { last } => last.as_ref().map(|l| l.id),
            State::Discarding { last_id } => *last_id,
            State::Orphan { .. } => None,
        };
        tracing::debug!(error = %err, "framing: message failed");
        self.out.push_back(Err(err));
        self.state = State::Discarding { last_id };
    }

    /// Feeds one received PDU (the payload of a write or notification) at time `now`.
    pub fn push(&mut self, pdu: &[u8], now: Instant) {
        self.expire(now);
        let Some((&first, body)) = pdu.split_first() else {
            self.fail(FramingError::Malformed("empty fragment".into()));
            return;
        };
        if first & START_FLAG != 0 {
            self.on_start(first & ID_MASK, body, pdu, now);
        } else {
            self.on_cont(first & ID_MASK, body, pdu, now);
        }
    }

    fn on_start(&mut self, id: u8, body: &[u8], pdu: &[u8], now: Instant) {
        // Classify what this start means for the current state first.
        match &self.state {
            State::Assembling(p) if p.id == id => {
                self.fail(FramingError::DuplicateFragment);
                return;
            }
            State::Gap { id: gid, .. } if *gid == id => {
                self.fail(FramingError::DuplicateFragment);
                return;
            }
            State::Assembling(_) | State::Gap { .. } => {
                // A new message started before the old one completed: its tail was lost.
                self.fail(FramingError::LostFragment);
            }
            State::Idle { last: Some(last) } if last.id == id => {
                self.duplicates_dropped += 1;
                tracing::debug!(id, "framing: dropped late duplicate start");
                return;
            }
            State::Discarding { last_id: Some(l) } if *l == id => {
                // Duplicate start of the message that just failed: keep discarding.
                return;
            }
            State::Orphan { .. } => {
                // The start came after one of its continuations: that message is lost to
                // reordering; drop the rest of it.
                tracing::debug!("framing: message failed: start overtaken");
                self.out.push_back(Err(FramingError::OutOfOrder));
                self.state = State::Discarding { last_id: Some(id) };
                return;
            }
            _ => {}
        }
        let (len, used) = match get_varint(body) {
            Ok(v) => v,
            Err(e) => return self.fail(e),
        };
        if len > self.max_len {
            return self.fail(FramingError::TooLarge { len, max: self.max_len });
        }
        let data = body.get(used..).unwrap_or_default();
        if data.len() > len {
            return self.fail(FramingError::Malformed("start fragment longer than its message".into()));
        }
        let mut buf = Vec::with_capacity(len);
        buf.extend_from_slice(data);
        let partial = Partial { id, len, buf, next_seq: 0, conts: 0, started: now };
        self.state = State::Assembling(partial);
        self.finish_if_complete(pdu);
    }

    fn on_cont(&mut self, seq: u8, body: &[u8], pdu: &[u8], now: Instant) {
        match &mut self.state {
            State::Idle { last } => {
                // A continuation with no message in progress: either a late duplicate of
                // the last message's last fragment, or a message whose start was lost or
                // comes late (the next fragment tells).
                let dup = last.as_ref().is_some_and(|l| l.last_pdu == pdu);
                if dup {
                    self.duplicates_dropped += 1;
                } else {
                    self.state = State::Orphan { seen: now };
                }
            }
            State::Orphan { .. } => self.fail(FramingError::LostFragment),
            State::Discarding { .. } => {}
            State::Gap { missing, ahead, .. } => {
                let err = if seq == *missing {
                    FramingError::OutOfOrder
                } else if seq == *ahead {
                    FramingError::DuplicateFragment
                } else {
                    FramingError::LostFragment
                };
                self.fail(err);
            }
            State::Assembling(p) => {
                if seq != p.next_seq {
                    let behind = p.next_seq.wrapping_sub(seq) & ID_MASK;
                    if behind < 64 && usize::from(behind) <= p.conts {
                        // A fragment we already hold came again (reordering shows as a
                        // gap first, so an older seq is a repeat).
                        self.fail(FramingError::DuplicateFragment);
                    } else {
                        // Ahead of what we expect: lost or overtaken; the next fragment tells.
                        let (id, missing, started) = (p.id, p.next_seq, p.started);
                        self.state = State::Gap { id, missing, ahead: seq, started, gap_at: now };
                    }
                    return;
                }
                if body.len() > p.len - p.buf.len() {
                    return self.fail(FramingError::Malformed("continuation overflows the announced length".into()));
                }
                p.buf.extend_from_slice(body);
                p.next_seq = p.next_seq.wrapping_add(1) & ID_MASK;
                p.conts += 1;
                self.finish_if_complete(pdu);
            }
        }
    }

    fn finish_if_complete(&mut self, pdu: &[u8]) {
        if let State::Assembling(p) = &mut self.state {
            if p.buf.len() == p.len {
                let done = Completed { id: p.id, last_pdu: pdu.to_vec() };
                let msg = std::mem::take(&mut p.buf);
                tracing::trace!(len = msg.len(), fragments = p.conts + 1, "framing: message complete");
                self.out.push_back(Ok(msg));
                self.state = State::Idle { last: Some(done) };
            }
        }
    }
}

/// Messages over one [`GattLink`]: segmentation on send, reassembly on receive.
///
/// Sends are serialised (fragments of two messages never interleave); a failed received
/// message is reported once and the next message is received normally.
pub struct FramedLink {
    link: Box<dyn GattLink>,
    cfg: FramingConfig,
    next_id: AtomicU8,
    send_lock: Mutex<()>,
    rx: Mutex<Reassembler>,
}

impl std::fmt::Debug for FramedLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FramedLink").field("mtu", &self.link.mtu()).field("cfg", &self.cfg).finish()
    }
}

impl FramedLink {
    /// Frames messages over `link` with the given limits and timeouts.
    pub fn new(link: Box<dyn GattLink>, cfg: FramingConfig) -> Self {
        let rx = Reassembler::new(cfg.max_message_len, cfg.reassembly_timeout);
        Self { link, cfg, next_id: AtomicU8::new(0), send_lock: Mutex::new(()), rx: Mutex::new(rx) }
    }

    /// The link's negotiated ATT MTU.
    pub fn mtu(&self) -> u16 {
        self.link.mtu()
    }

    /// Sends one message, calling `progress(bytes_sent, total)` after every fragment.
    pub async fn send_message(
        &self,
        msg: &[u8],
        progress: Option<&(dyn Fn(usize, usize) + Send + Sync)>,
    ) -> Result<(), FramingError> {
        let max = self.cfg.max_message_len.min(MAX_MESSAGE_LEN);
        if msg.len() > max {
            return Err(FramingError::TooLarge { len: msg.len(), max });
        }
        let _guard = self.send_lock.lock().await;
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) & ID_MASK;
        let fragments = segment(msg, id, self.link.max_pdu())?;
        let span = tracing::debug_span!("framing.send", len = msg.len(), fragments = fragments.len());
        self.send_fragments(fragments, msg.len(), progress).instrument(span).await
    }

    async fn send_fragments(
        &self,
        fragments: Vec<Vec<u8>>,
        total: usize,
        progress: Option<&(dyn Fn(usize, usize) + Send + Sync)>,
    ) -> Result<(), FramingError> {
        let mut sent = 0usize;
        for (i, pdu) in fragments.into_iter().enumerate() {
            let header = if i == 0 { 1 + varint_len(total) } else { 1 };
            sent += pdu.len().saturating_sub(header);
            match tokio::time::timeout(self.cfg.send_timeout, self.link.send(pdu)).await {
                Ok(r) => r?,
                Err(_) => return Err(FramingError::Link(GattError::Timeout)),
            }
            if let Some(cb) = progress {
                cb(sent, total);
            }
        }
        Ok(())
    }

    /// Receives the next message, waiting at most `timeout` for it.
    ///
    /// On a timeout with a message half received, that message keeps reassembling on the
    /// next call (until its own reassembly timeout). Errors of a failed message are
    /// returned once; the next call receives the next message.
    pub async fn recv_message(&self, timeout: Duration) -> Result<Vec<u8>, FramingError> {
        // A timeout too large to represent waits a day per round instead.
        let until = Instant::now().checked_add(timeout).unwrap_or_else(|| Instant::now() + Duration::from_secs(86_400));
        let mut rx = self.rx.lock().await;
        loop {
            if let Some(item) = rx.pop() {
                return item;
            }
            let now = Instant::now();
            rx.expire(now);
            if let Some(item) = rx.pop() {
                return item;
            }
            if now >= until {
                return Err(FramingError::Link(GattError::Timeout));
            }
            let wait_until = rx.deadline().map_or(until, |d| d.min(until));
            match self.link.recv(wait_until.saturating_duration_since(now)).await {
                Ok(pdu) => rx.push(&pdu, Instant::now()),
                Err(GattError::Timeout) => {
                    // Loop: expire() at the top reports a passed reassembly deadline.
                }
                Err(e) => return Err(FramingError::Link(e)),
            }
        }
    }

    /// Closes the link below.
    pub async fn close(&self) {
        self.link.close().await;
    }
}
