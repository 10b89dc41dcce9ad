//! Store benchmarks (run with `cargo bench --bench store`), printing their figures:
//!
//! 1. messages stored per second on SQLite with group commit, many concurrent senders;
//! 2. latency of a 50-message history page (`Latest` and `Before` a random seq) from a
//!    room holding 1,000,000 messages (or several rooms of that size, filled side by
//!    side), measured through [`Store::page`] as the chat calls it;
//! 3. joins per second and CPU per join: 19,000 people with random tokens joining 9,500
//!    rooms with random ids, two by two, 256 at a time (the benchmark's idle case).
//!
//! Sizes can be changed with `TETE_BENCH_MESSAGES`, `TETE_BENCH_SENDERS`,
//! `TETE_BENCH_ROOMS` (default: 3 scenarios), `TETE_BENCH_ROOM_SIZE`, `TETE_BENCH_PAGES`,
//! `TETE_BENCH_PAGING_ROOMS` (rooms filled side by side for paging, default 1) and
//! `TETE_BENCH_JOINS`; `TETE_BENCH_ONLY=throughput|paging|joins` runs one part. The
//! CPU figure is the whole process's: pin it (`taskset -c 0 cargo bench …`) to compare.

use std::time::{Duration, Instant};

use rand::Rng;
use tete::store::{Cursor, Joining, NewMessage, Store};

fn setting(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn joining(name: &str) -> Joining {
    Joining {
        token_hash: format!("{name:0>64}"),
        name: name.to_owned(),
        email_hash: format!("{name:0>32}"),
        avatar: format!("https://www.gravatar.com/avatar/{name:0>32}?s=140&r=x&d=mm"),
    }
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Sends `total` messages from `senders` concurrent tasks spread over `rooms`; returns
/// the elapsed time.
async fn send_all(
    store: &Store,
    rooms: &[String],
    senders: usize,
    total: usize,
    with_client_id: bool,
) -> Duration {
    let started = Instant::now();
    let tasks: Vec<_> = (0..senders)
        .map(|sender| {
            let store = store.clone();
            let room = rooms[sender % rooms.len()].clone();
            let count = total / senders + usize::from(sender < total % senders);
            tokio::spawn(async move {
                let who = joining(&format!("sender{sender}"));
                let room: std::sync::Arc<str> = room.into();
                let (user, avatar, token_hash): (
                    std::sync::Arc<str>,
                    std::sync::Arc<str>,
                    std::sync::Arc<str>,
                ) = (who.name.into(), who.avatar.into(), who.token_hash.into());
                for i in 0..count {
                    let msg = NewMessage {
                        room: room.clone(),
                        user: user.clone(),
                        avatar: avatar.clone(),
                        text: format!("message {i} from sender {sender}: hello, how are you?")
                            .into(),
                        client_id: with_client_id.then(|| format!("{sender}-{i}")),
                        token_hash: token_hash.clone(),
                    };
                    if let Err(e) = store.append(msg, now_ms()).await {
                        panic!("append failed: {e}");
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        if let Err(e) = task.await {
            panic!("a sender failed: {e}");
        }
    }
    started.elapsed()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index]
}

fn report(label: &str, mut samples: Vec<Duration>) {
    samples.sort();
    println!(
        "{label:<34} p50 {:>7.1} µs   p99 {:>7.1} µs   max {:>8.1} µs   ({} pages)",
        percentile(&samples, 0.50).as_secs_f64() * 1e6,
        percentile(&samples, 0.99).as_secs_f64() * 1e6,
        samples.last().map_or(0.0, |d| d.as_secs_f64() * 1e6),
        samples.len(),
    );
}

async fn open(dir: &tempfile::TempDir) -> Store {
    let url = format!("sqlite:{}", dir.path().join("bench.db").display());
    match Store::connect(&url).await {
        Ok(store) => store,
        Err(e) => panic!("{e}"),
    }
}

async fn open_rooms(store: &Store, count: usize, tag: &str) -> Vec<String> {
    let mut rooms = Vec::with_capacity(count);
    for i in 0..count {
        let room = format!("bench_{tag}_{i:0>16}");
        if let Err(e) = store.join(&room, joining("owner"), now_ms()).await {
            panic!("join failed: {e}");
        }
        rooms.push(room);
    }
    rooms
}

async fn throughput(senders: usize, room_count: usize) {
    let total = setting("TETE_BENCH_MESSAGES", 200_000);
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = open(&dir).await;
    let rooms = open_rooms(&store, room_count, "throughput").await;
    println!(
        "== SQLite group commit: {total} messages, {senders} concurrent senders, {room_count} rooms"
    );
    for with_client_id in [true, false] {
        let elapsed = send_all(&store, &rooms, senders, total, with_client_id).await;
        println!(
            "stored messages per second ({}): {:>9.0}   ({total} in {:.2} s)",
            if with_client_id {
                "with client ids"
            } else {
                "without client id"
            },
            total as f64 / elapsed.as_secs_f64(),
            elapsed.as_secs_f64()
        );
    }
}

async fn paging() {
    let size = setting("TETE_BENCH_ROOM_SIZE", 1_000_000);
    let pages = setting("TETE_BENCH_PAGES", 20_000);
    let room_count = setting("TETE_BENCH_PAGING_ROOMS", 1).max(1);
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = open(&dir).await;
    let rooms = open_rooms(&store, room_count, "paging").await;
    // 256 senders spread over the rooms: with several, the rooms' messages interleave.
    let filling = send_all(&store, &rooms, 256, size * room_count, true).await;
    println!(
        "== History page of 50 from {room_count} room(s) of {size} messages, interleaved \
         (filled in {:.1} s, {:.0}/s)",
        filling.as_secs_f64(),
        (size * room_count) as f64 / filling.as_secs_f64()
    );
    let mut rng = rand::thread_rng();
    let mut latest = Vec::with_capacity(pages);
    let mut before = Vec::with_capacity(pages);
    for _ in 0..pages {
        let room = &rooms[rng.gen_range(0..rooms.len())];
        let started = Instant::now();
        let page = store.page(room, 1, Cursor::Latest, 50).await;
        latest.push(started.elapsed());
        assert!(matches!(page, Ok(p) if p.messages.len() == 50 && p.more));

        let seq = rng.gen_range(51..=size as i64);
        let started = Instant::now();
        let page = store.page(room, 1, Cursor::Before(seq), 50).await;
        before.push(started.elapsed());
        assert!(matches!(page, Ok(p) if p.messages.len() == 50));
    }
    report("page Latest, limit 50", latest);
    report("page Before(random seq), limit 50", before);
}

/// CPU time this process has used (all threads).
fn cpu_time() -> Duration {
    // SAFETY: getrusage writes into the struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: RUSAGE_SELF and a valid pointer.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// A random string of `len` characters from `alphabet`.
fn random_id(len: usize, alphabet: &[u8]) -> String {
    let mut rng = rand::thread_rng();
    (0..len)
        .map(|_| alphabet[rng.gen_range(0..alphabet.len())] as char)
        .collect()
}

async fn joins() {
    const BASE64URL: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const HEX: &[u8] = b"0123456789abcdef";
    let people = setting("TETE_BENCH_JOINS", 19_000) / 2 * 2;
    let concurrency = 256;
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = open(&dir).await;
    // Ids shaped like tete's: 22 base64url characters per room, a 64-hex token hash.
    let rooms: Vec<String> = (0..people / 2).map(|_| random_id(22, BASE64URL)).collect();
    let next = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let rooms = std::sync::Arc::new(rooms);
    let cpu = cpu_time();
    let started = Instant::now();
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            let (store, next, rooms) = (store.clone(), next.clone(), rooms.clone());
            tokio::spawn(async move {
                loop {
                    let index = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(room) = rooms.get(index) else { break };
                    for who in ["first", "second"] {
                        let joining = Joining {
                            token_hash: random_id(64, HEX),
                            ..joining(&format!("{who}{index}"))
                        };
                        if let Err(e) = store.join(room, joining, now_ms()).await {
                            panic!("join failed: {e}");
                        }
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        if let Err(e) = task.await {
            panic!("join task: {e}");
        }
    }
    let elapsed = started.elapsed();
    let cpu = cpu_time() - cpu;
    println!(
        "== Joins: {people} people into {} rooms, {concurrency} at a time",
        people / 2
    );
    println!(
        "joins per second: {:>9.0}   CPU per join: {:.1} µs   ({people} in {:.2} s)",
        people as f64 / elapsed.as_secs_f64(),
        cpu.as_secs_f64() * 1e6 / people as f64,
        elapsed.as_secs_f64()
    );
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let only = std::env::var("TETE_BENCH_ONLY").unwrap_or_default();
    let runs = |part: &str| only.is_empty() || only == part;
    runtime.block_on(async {
        if runs("throughput") {
            let senders = setting("TETE_BENCH_SENDERS", 2048);
            let rooms = setting("TETE_BENCH_ROOMS", 0);
            if rooms > 0 {
                throughput(senders, rooms).await;
            } else {
                // Two people per room (as in tete), then busier rooms.
                for rooms in [senders / 2, senders / 16, 1] {
                    throughput(senders, rooms).await;
                }
            }
        }
        if runs("paging") {
            paging().await;
        }
        if runs("joins") {
            joins().await;
        }
    });
}
