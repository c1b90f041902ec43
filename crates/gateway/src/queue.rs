//! The outbound queue of one connection: bounded, multi-producer, single-consumer, and
//! allocated only while it holds something.
//!
//! `tokio::sync::mpsc` allocates its first block of 32 slots when the channel is created,
//! which an idle connection pays for as long as it lives. This queue is a `VecDeque` behind a
//! `std` mutex (held for one push or pop, never across an `.await`) and one waker: its buffer
//! grows on the first push and is released whenever the consumer finds it empty, so an idle
//! connection holds no buffer at all.
//!
//! Semantics follow `tokio::sync::mpsc` bounded channels: [`OutboundTx::try_send`] never
//! waits and fails with [`TrySendError::Full`] at `capacity` items or
//! [`TrySendError::Closed`] once the receiver closed or dropped; [`OutboundRx::recv`] yields
//! `None` once the queue is empty and closed or every sender is gone.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use futures::task::AtomicWaker;

use crate::delivery::Outbound;

/// Why [`OutboundTx::try_send`] did not queue an item (the item is dropped).
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum TrySendError {
    /// The queue holds `capacity` items.
    Full,
    /// The receiver closed the queue or is gone.
    Closed,
}

struct State {
    items: VecDeque<Outbound>,
    closed: bool,
}

struct Inner {
    state: Mutex<State>,
    /// The consumer's waker.
    waker: AtomicWaker,
    /// Live [`OutboundTx`] handles.
    senders: AtomicUsize,
    capacity: usize,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A queue of at most `capacity` items (at least 1): its sending and receiving halves.
pub(crate) fn channel(capacity: usize) -> (OutboundTx, OutboundRx) {
    let inner = Arc::new(Inner {
        state: Mutex::new(State { items: VecDeque::new(), closed: false }),
        waker: AtomicWaker::new(),
        senders: AtomicUsize::new(1),
        capacity: capacity.max(1),
    });
    (OutboundTx { inner: inner.clone() }, OutboundRx { inner })
}

/// A sending half; cheap to clone.
pub(crate) struct OutboundTx {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for OutboundTx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboundTx").field("capacity", &self.inner.capacity).finish_non_exhaustive()
    }
}

impl OutboundTx {
    /// Queues `item` without waiting.
    ///
    /// # Errors
    /// [`TrySendError::Full`] when `capacity` items are queued, [`TrySendError::Closed`] when
    /// the receiver closed the queue or is gone.
    pub fn try_send(&self, item: Outbound) -> Result<(), TrySendError> {
        {
            let mut state = self.inner.lock();
            if state.closed {
                return Err(TrySendError::Closed);
            }
            if state.items.len() >= self.inner.capacity {
                return Err(TrySendError::Full);
            }
            state.items.push_back(item);
        }
        self.inner.waker.wake();
        Ok(())
    }
}

impl Clone for OutboundTx {
    fn clone(&self) -> Self {
        self.inner.senders.fetch_add(1, Ordering::Relaxed);
        OutboundTx { inner: self.inner.clone() }
    }
}

impl Drop for OutboundTx {
    fn drop(&mut self) {
        if self.inner.senders.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.inner.waker.wake();
        }
    }
}

/// The receiving half (one consumer: the connection's writer).
pub(crate) struct OutboundRx {
    inner: Arc<Inner>,
}

impl OutboundRx {
    /// The next item; `None` once the queue is empty and closed, or every sender is gone.
    pub async fn recv(&mut self) -> Option<Outbound> {
        poll_fn(|cx| self.poll_recv(cx)).await
    }

    fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<Outbound>> {
        if let Some(item) = self.try_recv() {
            return Poll::Ready(Some(item));
        }
        self.inner.waker.register(cx.waker());
        // Checked again after registering: a push in between has woken the new waker or is
        // seen here.
        let mut state = self.inner.lock();
        if let Some(item) = state.items.pop_front() {
            return Poll::Ready(Some(item));
        }
        if state.closed || self.inner.senders.load(Ordering::Acquire) == 0 {
            return Poll::Ready(None);
        }
        // Idle: release the buffer (it is allocated again by the next push).
        if state.items.capacity() > 0 {
            state.items = VecDeque::new();
        }
        Poll::Pending
    }

    /// The next item if one is queued.
    pub fn try_recv(&mut self) -> Option<Outbound> {
        self.inner.lock().items.pop_front()
    }

    /// Refuses further items; those already queued can still be received.
    pub fn close(&mut self) {
        self.inner.lock().closed = true;
    }
}

impl Drop for OutboundRx {
    fn drop(&mut self) {
        let items = {
            let mut state = self.inner.lock();
            state.closed = true;
            std::mem::take(&mut state.items)
        };
        // Dropped outside the lock (items may hold the last reference to large bodies).
        drop(items);
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    fn frame(n: u8) -> Outbound {
        Outbound::Frame(Bytes::from(vec![n]))
    }

    fn byte(item: Option<Outbound>) -> Option<u8> {
        match item {
            Some(Outbound::Frame(b)) => Some(b[0]),
            _ => None,
        }
    }

    #[tokio::test]
    async fn bounded_in_order_and_released_when_idle() {
        let (tx, mut rx) = channel(2);
        tx.try_send(frame(1)).unwrap();
        tx.try_send(frame(2)).unwrap();
        assert!(matches!(tx.try_send(frame(3)), Err(TrySendError::Full)));
        assert_eq!(byte(rx.recv().await), Some(1));
        assert_eq!(byte(rx.recv().await), Some(2));
        // Empty: the next poll is pending and releases the buffer.
        let waker = futures::task::noop_waker();
        assert!(rx.poll_recv(&mut Context::from_waker(&waker)).is_pending());
        assert_eq!(rx.inner.lock().items.capacity(), 0);
        tx.try_send(frame(4)).unwrap();
        assert_eq!(byte(rx.recv().await), Some(4));
    }

    #[tokio::test]
    async fn wakes_the_receiver_and_ends_when_senders_are_gone() {
        let (tx, mut rx) = channel(8);
        let tx2 = tx.clone();
        let recv = tokio::spawn(async move {
            let mut got = Vec::new();
            while let Some(item) = rx.recv().await {
                got.push(byte(Some(item)).unwrap());
            }
            got
        });
        tokio::task::yield_now().await;
        tx.try_send(frame(1)).unwrap();
        tx2.try_send(frame(2)).unwrap();
        drop(tx);
        drop(tx2);
        assert_eq!(recv.await.unwrap(), vec![1, 2]);
    }

    #[tokio::test]
    async fn close_refuses_new_items_but_keeps_queued_ones() {
        let (tx, mut rx) = channel(8);
        tx.try_send(frame(1)).unwrap();
        rx.close();
        assert!(matches!(tx.try_send(frame(2)), Err(TrySendError::Closed)));
        assert_eq!(byte(rx.try_recv()), Some(1));
        assert!(rx.recv().await.is_none());
        drop(rx);
        assert!(matches!(tx.try_send(frame(3)), Err(TrySendError::Closed)));
    }
}
