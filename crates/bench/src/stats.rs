//! What a run measures: latency histograms (HDR, nanoseconds), throughput counters inside the
//! measurement window, and loss / duplicate / order accounting.
//!
//! Accounting: every sender stream records which of its messages were acknowledged
//! ([`AckedSet`]); every receiving connection records, per stream, which message numbers it
//! got ([`ReceiverTrack`]). A number received twice is a duplicate; a number lower than the
//! highest already received from that stream is an order violation; an acknowledged number
//! that a member never received (after the drain) is a loss. For chat-sys the per-conversation
//! `seq` of each delivery is also checked to be strictly increasing.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Highest latency a histogram holds: 120 s in nanoseconds (larger values are clamped).
pub const MAX_LATENCY_NS: u64 = 120_000_000_000;
const SHARDS: usize = 32;

/// A growable bit set of message numbers.
#[derive(Clone, Debug, Default)]
pub struct BitSet {
    words: Vec<u64>,
    count: u64,
}

impl BitSet {
    /// Sets bit `n`; returns whether it was already set.
    pub fn insert(&mut self, n: u64) -> bool {
        let (w, b) = ((n / 64) as usize, n % 64);
        if w >= self.words.len() {
            self.words.resize(w + 1, 0);
        }
        let was = self.words[w] & (1 << b) != 0;
        if !was {
            self.words[w] |= 1 << b;
            self.count += 1;
        }
        was
    }

    /// Whether bit `n` is set.
    pub fn contains(&self, n: u64) -> bool {
        self.words.get((n / 64) as usize).is_some_and(|w| w & (1 << (n % 64)) != 0)
    }

    /// Number of bits set.
    pub fn len(&self) -> u64 {
        self.count
    }

    /// Whether no bit is set.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The set bits, ascending.
    pub fn iter(&self) -> impl Iterator<Item = u64> + '_ {
        self.words
            .iter()
            .enumerate()
            .flat_map(|(i, w)| (0..64u64).filter(move |b| w & (1 << b) != 0).map(move |b| i as u64 * 64 + b))
    }
}

/// Which messages of one sender stream were acknowledged (RECEIPT, publish reply, echo).
#[derive(Debug, Default)]
pub struct AckedSet(pub Mutex<BitSet>);

/// Per receiving connection: per stream the numbers received, and chat-sys `seq` order.
#[derive(Debug, Default)]
pub struct ReceiverTrack {
    /// Conversations this connection is a member of (it should get all their streams).
    pub conversations: Vec<u32>,
    /// Per stream: numbers received and the highest so far.
    pub streams: HashMap<u32, (BitSet, u64)>,
    /// Per conversation: the last `seq` delivered (chat-sys only).
    pub last_seq: HashMap<u32, i64>,
    /// Numbers received twice.
    pub duplicates: u64,
    /// Numbers received after a higher one of the same stream.
    pub order_violations: u64,
    /// Deliveries whose `seq` was not above the conversation's previous one.
    pub seq_violations: u64,
}

impl ReceiverTrack {
    /// A track for a member of `conversations`.
    pub fn new(conversations: Vec<u32>) -> Self {
        ReceiverTrack { conversations, ..Default::default() }
    }

    /// Records the delivery of message `n` of `stream` (and its `seq` in `conversation` when
    /// the protocol has one).
    pub fn record(&mut self, stream: u32, n: u64, seq: Option<(u32, i64)>) {
        let (bits, max) = self.streams.entry(stream).or_insert_with(|| (BitSet::default(), 0));
        if bits.insert(n) {
            self.duplicates += 1;
        } else if bits.len() > 1 && n < *max {
            self.order_violations += 1;
        }
        *max = (*max).max(n);
        if let Some((conv, s)) = seq {
            let last = self.last_seq.entry(conv).or_insert(i64::MIN);
            if s <= *last {
                self.seq_violations += 1;
            }
            *last = (*last).max(s);
        }
    }
}

/// Loss, duplicates and order, summed over every receiver.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Integrity {
    /// Deliveries owed: acknowledged messages times the members of their conversation.
    pub expected: u64,
    /// Distinct deliveries of acknowledged messages.
    pub received: u64,
    /// Acknowledged messages a member never received.
    pub lost: u64,
    /// Messages a connection received more than once.
    pub duplicates: u64,
    /// Messages received after a later one of the same sender.
    pub order_violations: u64,
    /// chat-sys deliveries whose per-conversation `seq` did not increase.
    pub seq_violations: u64,
}

impl Integrity {
    /// Compares the receivers' records with the acknowledged sets; `stream_conversation[s]`
    /// is the conversation of stream `s`.
    pub fn compute(receivers: &[ReceiverTrack], acked: &[AckedSet], stream_conversation: &[u32]) -> Integrity {
        let acked: Vec<BitSet> = acked.iter().map(|a| a.0.lock().map(|g| g.clone()).unwrap_or_default()).collect();
        let mut by_conv: HashMap<u32, Vec<usize>> = HashMap::new();
        for (s, c) in stream_conversation.iter().enumerate() {
            by_conv.entry(*c).or_default().push(s);
        }
        let mut out = Integrity::default();
        let empty = (BitSet::default(), 0);
        for r in receivers {
            out.duplicates += r.duplicates;
            out.order_violations += r.order_violations;
            out.seq_violations += r.seq_violations;
            for c in &r.conversations {
                for s in by_conv.get(c).into_iter().flatten() {
                    let got = &r.streams.get(&(*s as u32)).unwrap_or(&empty).0;
                    for n in acked[*s].iter() {
                        out.expected += 1;
                        if got.contains(n) {
                            out.received += 1;
                        } else {
                            out.lost += 1;
                        }
                    }
                }
            }
        }
        out
    }

    /// Whether nothing was lost, duplicated or reordered.
    pub fn is_clean(&self) -> bool {
        self.lost == 0 && self.duplicates == 0 && self.order_violations == 0 && self.seq_violations == 0
    }
}

/// Latency percentiles of one histogram, in microseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    /// Values recorded.
    pub count: u64,
    /// Median.
    pub p50_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
    /// 99.9th percentile.
    pub p999_us: f64,
    /// Largest value.
    pub max_us: f64,
}

impl Percentiles {
    /// The percentiles of `h` (nanoseconds).
    pub fn of(h: &Histogram<u64>) -> Percentiles {
        let us = |v: u64| v as f64 / 1000.0;
        Percentiles {
            count: h.len(),
            p50_us: us(h.value_at_quantile(0.5)),
            p99_us: us(h.value_at_quantile(0.99)),
            p999_us: us(h.value_at_quantile(0.999)),
            max_us: us(h.max()),
        }
    }
}

/// `(percentile, latency µs)` points of a histogram for the latency-distribution plot.
pub fn distribution(h: &Histogram<u64>) -> Vec<(f64, f64)> {
    if h.is_empty() {
        return Vec::new();
    }
    [0.0, 0.5, 0.75, 0.9, 0.95, 0.99, 0.995, 0.999, 0.9995, 0.9999, 1.0]
        .iter()
        .map(|q| (q * 100.0, h.value_at_quantile(*q) as f64 / 1000.0))
        .collect()
}

/// The shared recorder of one load run: the clock, the measurement window, histograms and
/// counters. Deliveries and acknowledgements are counted in the window when the message was
/// *scheduled* inside it.
#[derive(Debug)]
pub struct Recorder {
    /// The run's epoch: scheduled times are nanoseconds since it.
    pub epoch: Instant,
    window: (u64, u64),
    deliveries: Vec<Mutex<Histogram<u64>>>,
    acks: Vec<Mutex<Histogram<u64>>>,
    /// Acknowledged sends scheduled inside the window.
    pub acked_in_window: AtomicU64,
    /// Deliveries of messages scheduled inside the window.
    pub delivered_in_window: AtomicU64,
    /// Acknowledgements that arrived inside the window (whenever scheduled): the rate the
    /// server actually sustained, also when it falls behind.
    pub acked_arrived_in_window: AtomicU64,
    /// Deliveries that arrived inside the window (whenever scheduled).
    pub delivered_arrived_in_window: AtomicU64,
    /// Every acknowledged send.
    pub acked_total: AtomicU64,
    /// Every delivery.
    pub delivered_total: AtomicU64,
    /// Sends written to a socket.
    pub sent_total: AtomicU64,
    /// ERROR frames, failed publishes, broken connections.
    pub errors: AtomicU64,
}

fn new_histogram() -> Histogram<u64> {
    // 1 ns .. 120 s with 3 significant digits; the bounds are valid constants.
    Histogram::new_with_bounds(1, MAX_LATENCY_NS, 3).unwrap_or_else(|_| Histogram::new(3).expect("3 sigfigs"))
}

impl Recorder {
    /// A recorder whose window starts after `warmup` and lasts `duration`, from `epoch`.
    pub fn new(epoch: Instant, warmup: Duration, duration: Duration) -> Self {
        let w0 = warmup.as_nanos() as u64;
        Recorder {
            epoch,
            window: (w0, w0 + duration.as_nanos() as u64),
            deliveries: (0..SHARDS).map(|_| Mutex::new(new_histogram())).collect(),
            acks: (0..SHARDS).map(|_| Mutex::new(new_histogram())).collect(),
            acked_in_window: AtomicU64::new(0),
            delivered_in_window: AtomicU64::new(0),
            acked_arrived_in_window: AtomicU64::new(0),
            delivered_arrived_in_window: AtomicU64::new(0),
            acked_total: AtomicU64::new(0),
            delivered_total: AtomicU64::new(0),
            sent_total: AtomicU64::new(0),
            errors: AtomicU64::new(0),
        }
    }

    /// Nanoseconds since the epoch.
    pub fn now_ns(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64
    }

    fn in_window(&self, scheduled_ns: u64) -> bool {
        scheduled_ns >= self.window.0 && scheduled_ns < self.window.1
    }

    /// Records a delivery of a message scheduled at `scheduled_ns`, received by connection `conn`.
    pub fn delivered(&self, conn: usize, scheduled_ns: u64) {
        self.delivered_total.fetch_add(1, Ordering::Relaxed);
        if self.in_window(self.now_ns()) {
            self.delivered_arrived_in_window.fetch_add(1, Ordering::Relaxed);
        }
        if self.in_window(scheduled_ns) {
            self.delivered_in_window.fetch_add(1, Ordering::Relaxed);
            let lat = self.now_ns().saturating_sub(scheduled_ns).clamp(1, MAX_LATENCY_NS);
            if let Ok(mut h) = self.deliveries[conn % SHARDS].lock() {
                h.saturating_record(lat);
            }
        }
    }

    /// Records the acknowledgement of a send scheduled at `scheduled_ns` on connection `conn`.
    pub fn acked(&self, conn: usize, scheduled_ns: u64) {
        self.acked_total.fetch_add(1, Ordering::Relaxed);
        if self.in_window(self.now_ns()) {
            self.acked_arrived_in_window.fetch_add(1, Ordering::Relaxed);
        }
        if self.in_window(scheduled_ns) {
            self.acked_in_window.fetch_add(1, Ordering::Relaxed);
            let lat = self.now_ns().saturating_sub(scheduled_ns).clamp(1, MAX_LATENCY_NS);
            if let Ok(mut h) = self.acks[conn % SHARDS].lock() {
                h.saturating_record(lat);
            }
        }
    }

    /// Counts an error.
    pub fn error(&self) {
        self.errors.fetch_add(1, Ordering::Relaxed);
    }

    /// The merged send→deliver histogram.
    pub fn delivery_histogram(&self) -> Histogram<u64> {
        merge(&self.deliveries)
    }

    /// The merged send→acknowledgement histogram.
    pub fn ack_histogram(&self) -> Histogram<u64> {
        merge(&self.acks)
    }
}

fn merge(shards: &[Mutex<Histogram<u64>>]) -> Histogram<u64> {
    let mut out = new_histogram();
    for s in shards {
        if let Ok(h) = s.lock() {
            let _ = out.add(&*h);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bitset_counts_and_detects_repeats() {
        let mut b = BitSet::default();
        assert!(!b.insert(3));
        assert!(b.insert(3));
        assert!(!b.insert(200));
        assert_eq!(b.len(), 2);
        assert_eq!(b.iter().collect::<Vec<_>>(), vec![3, 200]);
    }

    #[test]
    fn integrity_counts_loss_duplicates_and_order() {
        let acked = vec![AckedSet::default()];
        for n in 0..4 {
            acked[0].0.lock().unwrap().insert(n);
        }
        let mut r = ReceiverTrack::new(vec![0]);
        r.record(0, 0, Some((0, 1)));
        r.record(0, 2, Some((0, 3)));
        r.record(0, 1, Some((0, 2))); // late: order violation and seq violation
        r.record(0, 1, Some((0, 2))); // duplicate
        let i = Integrity::compute(&[r], &acked, &[0]);
        assert_eq!((i.expected, i.received, i.lost), (4, 3, 1));
        assert_eq!((i.duplicates, i.order_violations, i.seq_violations), (1, 1, 2));
        assert!(!i.is_clean());
    }

    #[test]
    fn recorder_counts_only_the_window() {
        let r = Recorder::new(Instant::now(), Duration::from_secs(1), Duration::from_secs(1));
        r.delivered(0, 0);
        r.delivered(1, 1_500_000_000);
        assert_eq!(r.delivered_total.load(Ordering::Relaxed), 2);
        assert_eq!(r.delivered_in_window.load(Ordering::Relaxed), 1);
        assert_eq!(r.delivery_histogram().len(), 1);
    }
}
