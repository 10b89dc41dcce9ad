//! Hands the writer's append completions back to the runtime threads that queued the
//! appends, a whole batch at once: one cross-thread wake-up per thread and batch instead
//! of one per message.
//!
//! Every current-thread runtime that queues an append (each actix worker is one) gets an
//! [`Inbox`] (kept in a thread local) and a task that runs what lands there, in arrival
//! order. A multi-thread runtime gets none: a task there may queue its appends from
//! different threads, and its completions must still run in order. The
//! writer groups a committed batch's completions by inbox ([`Handoff`]) and delivers each
//! group with one lock and one wake. Completions queued from outside any runtime, or to
//! an inbox whose runtime has shut down, run on the delivering thread instead.
//!
//! The inbox belongs to the thread, not to the runtime: a thread that drove two live
//! current-thread runtimes in turn would see the second's completions run only when
//! the first is driven again. tete's threads each drive one runtime for their life.

use std::cell::RefCell;
use std::future::poll_fn;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Poll;

use futures_util::task::AtomicWaker;
use tokio::runtime::RuntimeFlavor;

use super::{AppendDone, StoreError, StoredMessage};

/// One completion and the outcome it is called with.
type Item = (AppendDone, Result<StoredMessage, StoreError>);

/// The completions waiting for one runtime thread.
pub(crate) struct Inbox {
    state: Mutex<InboxState>,
    waker: AtomicWaker,
}

#[derive(Default)]
struct InboxState {
    items: Vec<Item>,
    /// The task that ran this inbox is gone (its runtime shut down).
    dead: bool,
}

thread_local! {
    static CURRENT: RefCell<Option<Arc<Inbox>>> = const { RefCell::new(None) };
}

impl Inbox {
    /// This thread's inbox, starting its task on the current runtime if needed; `None`
    /// outside a runtime or on a multi-thread one.
    pub(crate) fn current() -> Option<Arc<Inbox>> {
        CURRENT.with(|current| {
            let mut current = current.borrow_mut();
            if let Some(inbox) = current.as_ref().filter(|inbox| !inbox.lock().dead) {
                return Some(inbox.clone());
            }
            let runtime = tokio::runtime::Handle::try_current()
                .ok()
                .filter(|runtime| runtime.runtime_flavor() == RuntimeFlavor::CurrentThread)?;
            let inbox = Arc::new(Inbox {
                state: Mutex::new(InboxState::default()),
                waker: AtomicWaker::new(),
            });
            // The guard is moved into the task at once: a task dropped before its first
            // poll marks the inbox dead too.
            runtime.spawn(run(Guard(inbox.clone())));
            *current = Some(inbox.clone());
            Some(inbox)
        })
    }

    fn lock(&self) -> MutexGuard<'_, InboxState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `items` for the inbox's task, or runs them here if that task is gone.
    fn deliver(&self, mut items: Vec<Item>) {
        let mut state = self.lock();
        if state.dead {
            drop(state);
            run_all(items);
            return;
        }
        if state.items.is_empty() {
            std::mem::swap(&mut state.items, &mut items);
        } else {
            state.items.append(&mut items);
        }
        drop(state);
        self.waker.wake();
    }
}

/// An inbox's task holds this: when the task is dropped, the inbox is marked dead and
/// what it still holds runs at once.
struct Guard(Arc<Inbox>);

impl Drop for Guard {
    fn drop(&mut self) {
        let items = {
            let mut state = self.0.lock();
            state.dead = true;
            std::mem::take(&mut state.items)
        };
        run_all(items);
    }
}

/// The inbox's task: runs its completions as they land, until its runtime drops it.
async fn run(guard: Guard) {
    let mut spare = Vec::new();
    loop {
        let mut items = poll_fn(|cx| {
            guard.0.waker.register(cx.waker());
            let mut state = guard.0.lock();
            if state.items.is_empty() {
                Poll::Pending
            } else {
                // The emptied vector of the previous round takes the queue's place.
                Poll::Ready(std::mem::replace(
                    &mut state.items,
                    std::mem::take(&mut spare),
                ))
            }
        })
        .await;
        for (done, result) in items.drain(..) {
            run_done(done, result);
        }
        spare = items;
    }
}

fn run_all(items: Vec<Item>) {
    for (done, result) in items {
        run_done(done, result);
    }
}

/// Runs a caller's completion; a panic in it must not stop the thread running it (on
/// the writer, every later write would fail).
pub(crate) fn run_done(done: AppendDone, result: Result<StoredMessage, StoreError>) {
    if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| done(result))).is_err() {
        tracing::error!("an append completion panicked");
    }
}

/// Completions gathered by inbox while a batch is answered, delivered together.
#[derive(Default)]
pub(crate) struct Handoff {
    // Nearly always one runtime thread per worker core: a short list beats a map.
    groups: Vec<(Arc<Inbox>, Vec<Item>)>,
    /// How many completions may still come: a new group's list is sized for them (one
    /// allocation for a batch's completions, not one per doubling).
    expected: usize,
}

impl Handoff {
    /// A handoff for up to `expected` completions (more only cost a larger list).
    pub(crate) fn expecting(expected: usize) -> Handoff {
        Handoff {
            groups: Vec::new(),
            expected,
        }
    }

    /// Adds one completion for `inbox` (run at [`Handoff::deliver`] when `None`).
    pub(crate) fn push(
        &mut self,
        inbox: Option<Arc<Inbox>>,
        done: AppendDone,
        result: Result<StoredMessage, StoreError>,
    ) {
        let Some(inbox) = inbox else {
            run_done(done, result);
            return;
        };
        match self.groups.iter_mut().find(|(i, _)| Arc::ptr_eq(i, &inbox)) {
            Some((_, items)) => items.push((done, result)),
            None => {
                let mut items = Vec::with_capacity(self.expected.max(1));
                items.push((done, result));
                self.groups.push((inbox, items));
            }
        }
        self.expected = self.expected.saturating_sub(1);
    }

    /// Hands every group to its inbox.
    pub(crate) fn deliver(self) {
        for (inbox, items) in self.groups {
            inbox.deliver(items);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;

    use super::*;

    fn stored(seq: i64) -> StoredMessage {
        StoredMessage {
            id: crate::store::MessageId::new("r".into(), seq),
            seq,
            msg: "t".into(),
            user: "u".into(),
            img: "a".into(),
            ts: seq,
        }
    }

    /// A completion that reports its seq and the thread it ran on.
    fn reporting(tx: &mpsc::Sender<(i64, std::thread::ThreadId)>) -> AppendDone {
        let tx = tx.clone();
        Box::new(move |result| {
            let seq = result.map(|m| m.seq).unwrap_or(-1);
            let _ = tx.send((seq, std::thread::current().id()));
        })
    }

    #[test]
    fn completions_run_in_order_on_the_thread_that_queued_them() {
        let (tx, rx) = mpsc::channel();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let (inbox, runtime_thread) =
            runtime.block_on(async { (Inbox::current(), std::thread::current().id()) });
        let inbox = inbox.expect("inside a runtime there is an inbox");
        // Delivered from another thread, in two batches.
        let writer = {
            let tx = tx.clone();
            let inbox = inbox.clone();
            std::thread::spawn(move || {
                for batch in [1..4, 4..6] {
                    let mut handoff = Handoff::default();
                    for seq in batch {
                        handoff.push(Some(inbox.clone()), reporting(&tx), Ok(stored(seq)));
                    }
                    handoff.deliver();
                }
            })
        };
        writer.join().expect("writer");
        runtime.block_on(async {
            for _ in 0..10 {
                tokio::task::yield_now().await;
            }
        });
        let ran: Vec<_> = rx.try_iter().collect();
        assert_eq!(ran.iter().map(|r| r.0).collect::<Vec<_>>(), [1, 2, 3, 4, 5]);
        assert!(ran.iter().all(|r| r.1 == runtime_thread));
        // The same thread keeps its inbox while the runtime lives.
        let again = runtime.block_on(async { Inbox::current() }).expect("inbox");
        assert!(Arc::ptr_eq(&inbox, &again));
    }

    #[test]
    fn an_inbox_whose_runtime_is_gone_runs_completions_where_they_are_delivered() {
        let (tx, rx) = mpsc::channel();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        let inbox = runtime.block_on(async { Inbox::current() }).expect("inbox");
        // Queued but not yet run when the runtime shuts down: run by the task's drop.
        let mut handoff = Handoff::default();
        handoff.push(Some(inbox.clone()), reporting(&tx), Ok(stored(1)));
        handoff.deliver();
        drop(runtime);
        assert_eq!(rx.try_iter().map(|r| r.0).collect::<Vec<_>>(), [1]);
        // Delivered afterwards: run at once, on the delivering thread.
        let mut handoff = Handoff::default();
        handoff.push(
            Some(inbox.clone()),
            reporting(&tx),
            Err(StoreError::RoomNotFound("r".to_owned())),
        );
        handoff.deliver();
        let ran: Vec<_> = rx.try_iter().collect();
        assert_eq!(ran.iter().map(|r| r.0).collect::<Vec<_>>(), [-1]);
        assert_eq!(ran[0].1, std::thread::current().id());
        // A new runtime on this thread gets a new inbox.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        let fresh = runtime.block_on(async { Inbox::current() }).expect("inbox");
        assert!(!Arc::ptr_eq(&inbox, &fresh));
    }

    #[test]
    fn outside_a_runtime_completions_run_where_they_are_delivered() {
        assert!(Inbox::current().is_none());
        // Nor on a multi-thread runtime, whose tasks move between threads.
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .expect("runtime");
        assert!(runtime.block_on(async { Inbox::current() }).is_none());
        let (tx, rx) = mpsc::channel();
        let mut handoff = Handoff::default();
        handoff.push(None, reporting(&tx), Ok(stored(7)));
        handoff.deliver();
        assert_eq!(rx.try_iter().map(|r| r.0).collect::<Vec<_>>(), [7]);
    }
}
