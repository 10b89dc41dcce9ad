//! Flood control: a token bucket per connection.

use std::time::Instant;

/// Refills `rate` tokens per second up to `burst`; every message takes one.
#[derive(Debug)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    pub fn new(rate: u32, burst: u32) -> Self {
        TokenBucket {
            rate: f64::from(rate),
            burst: f64::from(burst),
            tokens: f64::from(burst),
            last: Instant::now(),
        }
    }

    /// Takes a token at `now`; false when the bucket is empty.
    pub fn take_at(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    pub fn take(&mut self) -> bool {
        self.take_at(Instant::now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_burst_passes_then_the_rate_holds() {
        let start = Instant::now();
        let mut b = TokenBucket::new(10, 20);
        for _ in 0..20 {
            assert!(b.take_at(start));
        }
        assert!(!b.take_at(start));
        // 100 ms later, one more token.
        assert!(b.take_at(start + Duration::from_millis(100)));
        assert!(!b.take_at(start + Duration::from_millis(100)));
        // Long idle refills only up to the burst.
        let later = start + Duration::from_secs(60);
        for _ in 0..20 {
            assert!(b.take_at(later));
        }
        assert!(!b.take_at(later));
    }
}
