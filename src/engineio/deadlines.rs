//! One timer task for many timeouts of the same length (every session's next ping, its
//! pong timeout, the Socket.IO connect timeout): a queue in deadline order instead of
//! a sleeping task per connection (~0.5 KiB and a spawn each).
//!
//! All entries wait the same time and are added as time goes on, so the queue is
//! always in deadline order: adding is a push at the back, expiring a pop at the front.
//! An entry holds its item weakly: an item dropped before its deadline costs nothing.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

pub struct Deadlines<T> {
    wait: Duration,
    expire: fn(Arc<T>),
    // A std mutex: pushes and pops only, never held across an await.
    queue: Mutex<VecDeque<(Instant, Weak<T>)>>,
    wake: Notify,
    started: AtomicBool,
}

impl<T: Send + Sync + 'static> Deadlines<T> {
    /// Timeouts of `wait`; `expire` is called with each item still alive at its deadline.
    pub fn new(wait: Duration, expire: fn(Arc<T>)) -> Arc<Deadlines<T>> {
        Arc::new(Deadlines {
            wait,
            expire,
            queue: Mutex::new(VecDeque::new()),
            wake: Notify::new(),
            started: AtomicBool::new(false),
        })
    }

    /// Expires `item` once the wait has passed, if it is still alive then. The timer
    /// task starts on the first call (it needs a Tokio runtime).
    pub fn add(self: &Arc<Self>, item: &Arc<T>) {
        let was_empty = {
            let mut queue = self.queue();
            let was_empty = queue.is_empty();
            queue.push_back((Instant::now() + self.wait, Arc::downgrade(item)));
            was_empty
        };
        if !self.started.swap(true, Ordering::AcqRel) {
            tokio::spawn(self.clone().run());
        } else if was_empty {
            self.wake.notify_one();
        }
    }

    fn queue(&self) -> std::sync::MutexGuard<'_, VecDeque<(Instant, Weak<T>)>> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Pops the entries due at `now`; returns them and the next deadline, if any.
    fn due(&self, now: Instant) -> (Vec<Weak<T>>, Option<Instant>) {
        let mut queue = self.queue();
        let mut due = Vec::new();
        while let Some((at, _)) = queue.front() {
            if *at > now {
                break;
            }
            if let Some((_, item)) = queue.pop_front() {
                due.push(item);
            }
        }
        let next = queue.front().map(|(at, _)| *at);
        if queue.capacity() > 64 && queue.len() < queue.capacity() / 4 {
            // After a burst of connections, give the space back.
            let keep = queue.len() * 2;
            queue.shrink_to(keep);
        }
        (due, next)
    }

    async fn run(self: Arc<Self>) {
        loop {
            let woken = self.wake.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            let (due, next) = self.due(Instant::now());
            for item in due.into_iter().filter_map(|item| item.upgrade()) {
                (self.expire)(item);
            }
            match next {
                Some(at) => {
                    tokio::select! {
                        _ = tokio::time::sleep_until(at) => {}
                        _ = &mut woken => {}
                    }
                }
                None => woken.await,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    static EXPIRED: AtomicUsize = AtomicUsize::new(0);

    fn count(item: Arc<AtomicUsize>) {
        item.fetch_add(1, Ordering::SeqCst);
        EXPIRED.fetch_add(1, Ordering::SeqCst);
    }

    #[tokio::test(start_paused = true)]
    async fn items_expire_once_after_the_wait_unless_dropped() {
        let deadlines = Deadlines::new(Duration::from_secs(10), count);
        let first = Arc::new(AtomicUsize::new(0));
        let dropped = Arc::new(AtomicUsize::new(0));
        deadlines.add(&first);
        deadlines.add(&dropped);
        drop(dropped);
        tokio::time::sleep(Duration::from_secs(5)).await;
        let later = Arc::new(AtomicUsize::new(0));
        deadlines.add(&later);
        tokio::time::sleep(Duration::from_millis(4_990)).await;
        assert_eq!(first.load(Ordering::SeqCst), 0, "not before its deadline");
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(first.load(Ordering::SeqCst), 1);
        assert_eq!(later.load(Ordering::SeqCst), 0);
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert_eq!(later.load(Ordering::SeqCst), 1);
        assert_eq!(first.load(Ordering::SeqCst), 1, "expired once");
        // An empty queue waits for the next entry.
        tokio::time::sleep(Duration::from_secs(60)).await;
        let last = Arc::new(AtomicUsize::new(0));
        deadlines.add(&last);
        tokio::time::sleep(Duration::from_millis(10_010)).await;
        assert_eq!(last.load(Ordering::SeqCst), 1);
        assert_eq!(
            EXPIRED.load(Ordering::SeqCst),
            3,
            "the dropped item never expired"
        );
    }
}
