//! Measurements: a latency histogram with ~1.6 % resolution, and CPU time and memory
//! of a process read from `/proc/<pid>/stat` and `/proc/<pid>/status`.

use std::time::Instant;

use anyhow::{Context, Result};
use serde::Serialize;

/// Values below this are counted exactly.
const LINEAR: u64 = 128;
/// Sub-buckets per power of two above [`LINEAR`] (2^6 = 64: ≤ 1/64 relative error).
const SUB_BITS: u32 = 6;

/// A log-linear histogram of microseconds. Its buckets grow on demand up to the largest
/// value recorded: thousands of them exist at once, one per connection.
#[derive(Clone, Default)]
pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
    sum: u128,
    max: u64,
}

fn bucket_of(value: u64) -> usize {
    if value < LINEAR {
        return value as usize;
    }
    let exponent = 63 - value.leading_zeros(); // ≥ 7
    let mantissa = (value >> (exponent - SUB_BITS)) & ((1 << SUB_BITS) - 1);
    LINEAR as usize + (exponent as usize - 7) * (1 << SUB_BITS) + mantissa as usize
}

/// The upper end of a bucket, so percentiles never under-report.
fn bucket_high(bucket: usize) -> u64 {
    if bucket < LINEAR as usize {
        return bucket as u64;
    }
    let offset = bucket - LINEAR as usize;
    let exponent = (offset >> SUB_BITS) as u32 + 7;
    let mantissa = (offset & ((1 << SUB_BITS) - 1)) as u64;
    let low = (1u64 << exponent) | (mantissa << (exponent - SUB_BITS));
    low + (1u64 << (exponent - SUB_BITS)) - 1
}

impl Histogram {
    pub fn record(&mut self, value: u64) {
        let bucket = bucket_of(value);
        if bucket >= self.counts.len() {
            self.counts.resize(bucket + 1, 0);
        }
        self.counts[bucket] += 1;
        self.total += 1;
        self.sum += u128::from(value);
        self.max = self.max.max(value);
    }

    pub fn merge(&mut self, other: &Histogram) {
        if other.counts.len() > self.counts.len() {
            self.counts.resize(other.counts.len(), 0);
        }
        for (mine, theirs) in self.counts.iter_mut().zip(&other.counts) {
            *mine += theirs;
        }
        self.total += other.total;
        self.sum += other.sum;
        self.max = self.max.max(other.max);
    }

    /// The smallest recorded bucket bound below which `quantile` of the values lie.
    pub fn quantile(&self, quantile: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let rank = ((quantile * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0;
        for (bucket, count) in self.counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return bucket_high(bucket).min(self.max);
            }
        }
        self.max
    }

    pub fn summary(&self) -> LatencySummary {
        LatencySummary {
            count: self.total,
            mean_us: if self.total == 0 {
                0.0
            } else {
                self.sum as f64 / self.total as f64
            },
            p50_us: self.quantile(0.50),
            p90_us: self.quantile(0.90),
            p99_us: self.quantile(0.99),
            p999_us: self.quantile(0.999),
            max_us: self.max,
        }
    }
}

/// Latency percentiles in microseconds.
#[derive(Debug, Serialize)]
pub struct LatencySummary {
    pub count: u64,
    pub mean_us: f64,
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    pub max_us: u64,
}

/// CPU time and memory of a process at one instant.
#[derive(Clone, Copy, Debug)]
pub struct ProcSample {
    pub at: Instant,
    /// utime + stime, in seconds.
    pub cpu_seconds: f64,
    pub rss_kib: u64,
    pub hwm_kib: u64,
    /// Time its threads were runnable but waiting for a CPU (from `schedstat`), in
    /// seconds: its own threads competing for one core count too.
    pub wait_seconds: f64,
    /// When the process is pinned to one core: that core's busy time (from
    /// `/proc/stat`), in seconds, whoever used it.
    pub core_busy_seconds: Option<f64>,
}

fn clock_ticks_per_second() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 {
        ticks as f64
    } else {
        100.0
    }
}

/// Samples `/proc/<pid>` (`None`: this process).
pub fn sample(pid: Option<u32>) -> Result<ProcSample> {
    let dir = pid.map_or_else(|| "/proc/self".to_owned(), |pid| format!("/proc/{pid}"));
    let at = Instant::now();
    let stat = std::fs::read_to_string(format!("{dir}/stat"))
        .with_context(|| format!("reading {dir}/stat (is the server running?)"))?;
    // Fields after the command name in parentheses: state is field 3, utime 14, stime 15.
    let after_name = stat
        .rsplit_once(')')
        .with_context(|| format!("malformed {dir}/stat"))?
        .1;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = |index: usize| -> Result<u64> {
        fields
            .get(index)
            .and_then(|field| field.parse().ok())
            .with_context(|| format!("no field {} in {dir}/stat", index + 3))
    };
    let cpu_ticks = ticks(11)? + ticks(12)?;
    let status = std::fs::read_to_string(format!("{dir}/status"))
        .with_context(|| format!("reading {dir}/status"))?;
    let kib = |key: &str| -> u64 {
        status
            .lines()
            .find_map(|line| line.strip_prefix(key))
            .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    };
    Ok(ProcSample {
        at,
        cpu_seconds: cpu_ticks as f64 / clock_ticks_per_second(),
        rss_kib: kib("VmRSS:"),
        hwm_kib: kib("VmHWM:"),
        wait_seconds: run_queue_wait_ns(&dir) as f64 / 1e9,
        core_busy_seconds: single_core(&status).and_then(core_busy_seconds),
    })
}

/// The one core a process may run on, from `Cpus_allowed_list` in its status.
fn single_core(status: &str) -> Option<usize> {
    status
        .lines()
        .find_map(|line| line.strip_prefix("Cpus_allowed_list:"))?
        .trim()
        .parse()
        .ok()
}

/// Busy time of one core since boot: user, nice, system, irq, softirq and steal.
fn core_busy_seconds(core: usize) -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let prefix = format!("cpu{core} ");
    let line = stat.lines().find(|line| line.starts_with(&prefix))?;
    let fields: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|field| field.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal …
    let busy: u64 = [0, 1, 2, 5, 6, 7]
        .iter()
        .filter_map(|&index| fields.get(index))
        .sum();
    Some(busy as f64 / clock_ticks_per_second())
}

/// The share of the wall time *other* processes used the core this process is pinned
/// to (0 when it is not pinned to one core).
pub fn foreign_share(start: &ProcSample, end: &ProcSample) -> f64 {
    let wall = end.at.duration_since(start.at).as_secs_f64();
    match (start.core_busy_seconds, end.core_busy_seconds) {
        (Some(busy_start), Some(busy_end)) if wall > 0.0 => {
            let others = (busy_end - busy_start) - (end.cpu_seconds - start.cpu_seconds);
            (others / wall).max(0.0)
        }
        _ => 0.0,
    }
}

/// The sum over the process's threads of the second `schedstat` field (run-queue wait,
/// ns); 0 where the kernel does not keep it.
fn run_queue_wait_ns(dir: &str) -> u64 {
    let Ok(tasks) = std::fs::read_dir(format!("{dir}/task")) else {
        return 0;
    };
    tasks
        .filter_map(|task| {
            let text = std::fs::read_to_string(task.ok()?.path().join("schedstat")).ok()?;
            text.split_whitespace().nth(1)?.parse::<u64>().ok()
        })
        .sum()
}

/// The share of the wall time a process's threads waited for a CPU between two samples.
pub fn wait_share(start: &ProcSample, end: &ProcSample) -> f64 {
    let wall = end.at.duration_since(start.at).as_secs_f64();
    if wall <= 0.0 {
        return 0.0;
    }
    (end.wait_seconds - start.wait_seconds).max(0.0) / wall
}

/// The share of one core a process used between two samples.
pub fn cpu_share(start: &ProcSample, end: &ProcSample) -> f64 {
    let wall = end.at.duration_since(start.at).as_secs_f64();
    if wall <= 0.0 {
        return 0.0;
    }
    (end.cpu_seconds - start.cpu_seconds) / wall
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_monotonic_and_tight() {
        let mut previous = 0;
        for value in (0..200_000u64).chain([1 << 40, u64::MAX / 2]) {
            let bucket = bucket_of(value);
            assert!(bucket >= previous);
            previous = bucket;
            let high = bucket_high(bucket);
            assert!(high >= value, "{value} above its bucket {high}");
            assert!(
                high - value <= value / 64,
                "{value} in a bucket up to {high}"
            );
        }
        // Enough buckets for any u64.
        assert!(bucket_of(u64::MAX) < LINEAR as usize + (64 - 7) * (1 << SUB_BITS));
    }

    #[test]
    fn quantiles_of_a_uniform_range() {
        let mut histogram = Histogram::default();
        for value in 1..=10_000 {
            histogram.record(value);
        }
        let p50 = histogram.quantile(0.5);
        assert!((5_000..=5_080).contains(&p50), "{p50}");
        let p99 = histogram.quantile(0.99);
        assert!((9_900..=10_000).contains(&p99), "{p99}");
        assert_eq!(histogram.quantile(1.0), 10_000);
        let mut other = Histogram::default();
        other.record(20_000);
        histogram.merge(&other);
        assert_eq!(histogram.summary().max_us, 20_000);
        assert_eq!(histogram.summary().count, 10_001);
    }

    #[test]
    fn reads_the_allowed_core() {
        assert_eq!(single_core("Name:\tx\nCpus_allowed_list:\t1\n"), Some(1));
        assert_eq!(single_core("Cpus_allowed_list:\t0-1\n"), None);
    }

    #[test]
    fn samples_this_process() -> Result<()> {
        let sample = sample(None)?;
        assert!(sample.rss_kib > 0);
        assert!(sample.hwm_kib >= sample.rss_kib);
        Ok(())
    }
}
