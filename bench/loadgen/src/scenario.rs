//! The scenarios: get rooms with `GET /create`, seat two clients in each, then either
//! drive traffic (a steady rate per client, or a fixed window of messages in flight per
//! sender) and measure delivery to the partner, or hold the connections idle and
//! measure the server's memory. Server CPU and memory come from `/proc/<pid>`.

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde::Serialize;
use tokio::sync::{mpsc, Notify, Semaphore};
use tokio::time::{sleep_until, Instant};

use crate::protocol::{self, Packet, PONG};
use crate::session::{self, Client};
use crate::stats::{self, Histogram, LatencySummary, ProcSample};
use crate::transport::{Endpoint, Http, Rx, Transport, Tx};

/// Most messages a rate-driven client sends in one burst when it falls behind.
const MAX_BATCH: u64 = 256;
/// Heartbeat answers a reader may queue for its writer.
const PONG_QUEUE: usize = 4;
/// How often a draining reader checks whether everything it waits for has arrived.
const DRAIN_CHECK: Duration = Duration::from_millis(20);
/// Parallel keep-alive connections used to fetch room ids.
const CREATE_CONNECTIONS: usize = 4;
/// Above this share of one core a process counts as saturated.
const SATURATED: f64 = 0.90;
/// Above this share of the wall time spent waiting for a CPU, a process's core is
/// contended by something else and its figures are not trustworthy.
const CONTENDED: f64 = 0.05;
/// Time between the end of the setup and the first message.
const SETTLE: Duration = Duration::from_millis(200);

/// What each client does once seated.
#[derive(Clone, Copy, Debug)]
pub enum Load {
    /// Messages per second per client, open loop.
    Rate(f64),
    /// Messages in flight per sender (sent, not yet received by the partner).
    Window(u64),
    /// Nothing: connections held for the memory measurement.
    Idle,
}

/// One scenario run.
#[derive(Clone, Debug)]
pub struct Config {
    pub scenario: String,
    pub addr: SocketAddr,
    pub sources: Vec<IpAddr>,
    pub transport: Transport,
    pub load: Load,
    pub rooms: usize,
    pub msg_len: usize,
    pub acks: bool,
    pub warmup: Duration,
    pub duration: Duration,
    pub drain: Duration,
    pub hold: Duration,
    pub setup_concurrency: usize,
    pub step_timeout: Duration,
    pub server_pid: Option<u32>,
}

impl Config {
    fn endpoint(&self, client: usize) -> Endpoint {
        Endpoint {
            addr: self.addr,
            source: (!self.sources.is_empty()).then(|| self.sources[client % self.sources.len()]),
        }
    }
}

/// The JSON the load generator prints.
#[derive(Debug, Serialize)]
pub struct Report {
    pub scenario: String,
    pub transport: Transport,
    pub rooms: usize,
    pub clients: usize,
    pub rate_per_client: Option<f64>,
    pub window: Option<u64>,
    pub msg_len: usize,
    pub acks: bool,
    pub setup: SetupReport,
    pub traffic: Option<TrafficReport>,
    pub idle: Option<IdleReport>,
    pub server: Option<ServerReport>,
    /// The load generator's own use of its core while measuring.
    #[serde(flatten)]
    pub loadgen: LoadgenUse,
    /// Which side was saturated while measuring: `server`, `loadgen`,
    /// `server-core-contended`, `loadgen-core-contended` or `none`.
    pub bottleneck: String,
    pub warnings: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct SetupReport {
    pub seconds: f64,
    pub logins_per_sec: f64,
    pub failures: usize,
    pub first_failure: Option<String>,
    /// How long a room took to set up, from its first connect to both `startChat`s
    /// (rooms that failed included): a slow tail here stretches `seconds` while the
    /// server waits.
    pub room_setup: LatencySummary,
}

#[derive(Debug, Serialize)]
pub struct TrafficReport {
    pub window_seconds: f64,
    pub offered_msgs_per_sec: Option<f64>,
    pub sent_msgs_per_sec: f64,
    pub delivered_msgs_per_sec: f64,
    /// Delivery latency of the messages sent while measuring.
    pub latency: LatencySummary,
    /// The slowest delivery of the messages sent in each [`SLOWEST_BUCKET`] of the
    /// measured window, in microseconds, in order: where a tail comes from (a stall
    /// shows as a few slow buckets, load as many).
    pub slowest_per_50ms_us: Vec<u64>,
    pub sent_total: u64,
    pub received_total: u64,
    /// Sent but not received by the end of the drain.
    pub lost: u64,
    pub duplicates_or_reordered: u64,
    pub gaps: u64,
    pub malformed: u64,
    pub acks_ok: u64,
    pub acks_failed: u64,
    pub first_ack_failure: Option<String>,
    pub error_events: u64,
    pub first_error_event: Option<String>,
    pub connection_failures: u64,
    pub first_connection_failure: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct IdleReport {
    pub connections: usize,
    /// The server as started, before the room ids were fetched.
    pub rss_fresh_kib: u64,
    /// After `GET /create` for every room, before the first connection.
    pub rss_baseline_kib: u64,
    pub rss_kib: u64,
    pub hwm_kib: u64,
    /// (RSS with every client idle − RSS as started) / clients.
    pub kib_per_connection: f64,
    /// The same from the baseline after `GET /create`.
    pub kib_per_connection_after_create: f64,
    pub cpu_us_per_login: f64,
}

#[derive(Debug, Serialize)]
pub struct ServerReport {
    pub pid: u32,
    pub cpu_share: f64,
    /// Share of the time the server's threads waited for a CPU.
    pub wait_share: f64,
    /// Share of the time other processes used the server's core (when pinned).
    pub core_foreign_share: f64,
    pub cpu_us_per_msg: Option<f64>,
    pub rss_kib_start: u64,
    pub rss_kib_end: u64,
    pub hwm_kib: u64,
}

/// One direction of a room: what a sender sent and its partner received.
#[derive(Default)]
struct Flow {
    sent: AtomicU64,
    received: AtomicU64,
    acked: AtomicU64,
    finished: AtomicBool,
    /// Wakes the sender (window mode) when its partner received something.
    sender_wake: Notify,
}

impl Flow {
    fn drained(&self) -> bool {
        self.finished.load(Ordering::Acquire)
            && self.received.load(Ordering::Relaxed) >= self.sent.load(Ordering::Relaxed)
    }

    fn acks_drained(&self) -> bool {
        self.finished.load(Ordering::Acquire)
            && self.acked.load(Ordering::Relaxed) >= self.sent.load(Ordering::Relaxed)
    }
}

/// The run's clock and phases, shared by every task.
struct Timeline {
    base: Instant,
    load_start: Instant,
    measure_start: Instant,
    measure_end: Instant,
    deadline: Instant,
    /// Messages received by anybody so far.
    delivered: AtomicU64,
}

impl Timeline {
    fn micros(&self, at: Instant) -> u64 {
        at.duration_since(self.base).as_micros() as u64
    }
}

/// The width of a bucket of [`TrafficReport::slowest_per_50ms_us`], in microseconds.
const SLOWEST_BUCKET: u64 = 50_000;

#[derive(Default)]
struct ReaderStats {
    received: u64,
    latency: Histogram,
    /// The slowest delivery per [`SLOWEST_BUCKET`] of sending time.
    slowest: Vec<u64>,
    duplicates_or_reordered: u64,
    gaps: u64,
    malformed: u64,
    acks_ok: u64,
    acks_failed: u64,
    first_ack_failure: Option<String>,
    error_events: u64,
    first_error_event: Option<String>,
    failure: Option<String>,
}

#[derive(Default)]
struct WriterStats {
    sent: u64,
    sent_in_window: u64,
    failure: Option<String>,
}

/// Runs the scenario described by `config`.
pub async fn run(config: Config) -> Result<Report> {
    let started = Instant::now();
    let server_fresh = server_sample(&config)?;
    let rooms = create_rooms(&config).await?;
    eprintln!(
        "loadgen: {} room ids from GET /create in {:.1}s",
        rooms.len(),
        started.elapsed().as_secs_f64()
    );
    let baseline = server_sample(&config)?;
    let self_before_setup = stats::sample(None)?;
    let setup_start = Instant::now();
    let Seated {
        pairs,
        failures,
        first_failure,
        room_setup,
    } = seat_everybody(&config, rooms).await;
    let setup_seconds = setup_start.elapsed().as_secs_f64();
    let after_setup = server_sample(&config)?;
    let self_after_setup = stats::sample(None)?;
    if pairs.is_empty() {
        bail!(
            "no room could be set up: {}",
            first_failure.unwrap_or_default()
        );
    }
    let clients = pairs.len() * 2;
    let setup = SetupReport {
        seconds: setup_seconds,
        logins_per_sec: clients as f64 / setup_seconds.max(1e-9),
        failures,
        first_failure,
        room_setup: room_setup.summary(),
    };
    eprintln!(
        "loadgen: {clients} clients logged in {:.2}s ({:.0} logins/s), {failures} rooms failed; \
         a room took p50 {:.1} ms, p99 {:.1} ms, at most {:.1} ms",
        setup.seconds,
        setup.logins_per_sec,
        setup.room_setup.p50_us as f64 / 1e3,
        setup.room_setup.p99_us as f64 / 1e3,
        setup.room_setup.max_us as f64 / 1e3,
    );
    match config.load {
        Load::Idle => {
            let setup_load = SetupLoad {
                server_fresh,
                server_before: baseline,
                server_after: after_setup,
                loadgen: LoadgenUse::between(&self_before_setup, &self_after_setup),
            };
            run_idle(&config, pairs, setup, setup_load).await
        }
        Load::Rate(_) | Load::Window(_) => run_traffic(&config, pairs, setup).await,
    }
}

async fn create_rooms(config: &Config) -> Result<Vec<String>> {
    let endpoint = Endpoint {
        addr: config.addr,
        source: None,
    };
    let per_connection = config.rooms.div_ceil(CREATE_CONNECTIONS);
    let mut tasks = Vec::new();
    let mut remaining = config.rooms;
    while remaining > 0 {
        let count = per_connection.min(remaining);
        remaining -= count;
        tasks.push(tokio::spawn(async move {
            let mut http = Http::connect(&endpoint).await?;
            let mut ids = Vec::with_capacity(count);
            for _ in 0..count {
                ids.push(http.create_room().await?);
            }
            anyhow::Ok(ids)
        }));
    }
    let mut rooms = Vec::with_capacity(config.rooms);
    for task in tasks {
        rooms.extend(task.await.context("room creation task")??);
    }
    Ok(rooms)
}

/// What [`seat_everybody`] gives back.
struct Seated {
    pairs: Vec<(Client, Client)>,
    failures: usize,
    first_failure: Option<String>,
    /// Microseconds per room, from its first connect to its last `startChat`.
    room_setup: Histogram,
}

async fn seat_everybody(config: &Config, rooms: Vec<String>) -> Seated {
    let permits = Arc::new(Semaphore::new(config.setup_concurrency.max(1)));
    let mut tasks = Vec::with_capacity(rooms.len());
    for (index, room) in rooms.into_iter().enumerate() {
        let permits = Arc::clone(&permits);
        let endpoints = [config.endpoint(2 * index), config.endpoint(2 * index + 1)];
        let transport = config.transport;
        let step_timeout = config.step_timeout;
        tasks.push(tokio::spawn(async move {
            let _permit = permits.acquire_owned().await?;
            let started = Instant::now();
            let pair =
                session::join_pair(endpoints, transport, &room, 2 * index + 1, step_timeout).await;
            anyhow::Ok((pair, started.elapsed()))
        }));
    }
    let mut seated = Seated {
        pairs: Vec::with_capacity(tasks.len()),
        failures: 0,
        first_failure: None,
        room_setup: Histogram::default(),
    };
    for task in tasks {
        let outcome = match task.await {
            Ok(Ok((pair, took))) => {
                seated.room_setup.record(took.as_micros() as u64);
                pair
            }
            Ok(Err(error)) => Err(error),
            Err(error) => Err(anyhow::anyhow!("setup task: {error}")),
        };
        match outcome {
            Ok(pair) => seated.pairs.push(pair),
            Err(error) => {
                seated.failures += 1;
                seated
                    .first_failure
                    .get_or_insert_with(|| format!("{error:#}"));
            }
        }
    }
    seated
}

fn server_sample(config: &Config) -> Result<Option<ProcSample>> {
    config
        .server_pid
        .map(|pid| stats::sample(Some(pid)))
        .transpose()
}

/// Per-client plan for the writer.
#[derive(Clone, Copy)]
enum Plan {
    Rate { per_second: f64, phase: Duration },
    Window(u64),
    Idle,
}

struct Spawned {
    readers: Vec<tokio::task::JoinHandle<ReaderStats>>,
    writers: Vec<tokio::task::JoinHandle<WriterStats>>,
    flows: Vec<Arc<Flow>>,
}

fn spawn_clients(
    config: &Config,
    pairs: Vec<(Client, Client)>,
    timeline: &Arc<Timeline>,
) -> Spawned {
    let mut spawned = Spawned {
        readers: Vec::with_capacity(pairs.len() * 2),
        writers: Vec::with_capacity(pairs.len() * 2),
        flows: Vec::with_capacity(pairs.len() * 2),
    };
    for (room, (first, second)) in pairs.into_iter().enumerate() {
        let first_to_second = Arc::new(Flow::default());
        let second_to_first = Arc::new(Flow::default());
        for (side, client) in [first, second].into_iter().enumerate() {
            let (outgoing, incoming) = if side == 0 {
                (&first_to_second, &second_to_first)
            } else {
                (&second_to_first, &first_to_second)
            };
            let plan = match config.load {
                Load::Rate(per_second) => {
                    // Spread the clients' send instants evenly over one period.
                    let slot = (2 * room + side) as f64 / (2 * config.rooms.max(1)) as f64;
                    Plan::Rate {
                        per_second,
                        phase: Duration::from_secs_f64(slot / per_second),
                    }
                }
                Load::Window(window) => Plan::Window(window),
                Load::Idle => Plan::Idle,
            };
            let (pong_tx, pong_rx) = mpsc::channel(PONG_QUEUE);
            let Client {
                rx,
                tx,
                inbox,
                user,
                ..
            } = client;
            spawned.readers.push(tokio::spawn(read_loop(
                rx,
                inbox,
                pong_tx,
                Arc::clone(incoming),
                Arc::clone(outgoing),
                Arc::clone(timeline),
                ReaderMode::of(config),
            )));
            spawned.writers.push(tokio::spawn(write_loop(
                tx,
                pong_rx,
                Arc::clone(outgoing),
                plan,
                Arc::clone(timeline),
                Sender {
                    user,
                    msg_len: config.msg_len,
                    acks: config.acks,
                },
            )));
        }
        spawned.flows.push(first_to_second);
        spawned.flows.push(second_to_first);
    }
    spawned
}

#[derive(Clone, Copy)]
struct ReaderMode {
    traffic: bool,
    window: bool,
    acks: bool,
}

impl ReaderMode {
    fn of(config: &Config) -> ReaderMode {
        ReaderMode {
            traffic: !matches!(config.load, Load::Idle),
            window: matches!(config.load, Load::Window(_)),
            acks: config.acks,
        }
    }
}

async fn read_loop(
    mut rx: Rx,
    mut inbox: VecDeque<String>,
    pong: mpsc::Sender<()>,
    incoming: Arc<Flow>,
    outgoing: Arc<Flow>,
    timeline: Arc<Timeline>,
    mode: ReaderMode,
) -> ReaderStats {
    let mut stats = ReaderStats::default();
    let measured = timeline.micros(timeline.measure_start)..timeline.micros(timeline.measure_end);
    let mut next_seq = 0u64;
    let deadline = sleep_until(timeline.deadline);
    tokio::pin!(deadline);
    let mut drain_check = tokio::time::interval_at(timeline.measure_end, DRAIN_CHECK);
    let mut closed = false;
    loop {
        while let Some(frame) = inbox.pop_front() {
            match protocol::parse(&frame) {
                Packet::Ping => {
                    // A full queue means pongs are already on their way.
                    let _ = pong.try_send(());
                }
                Packet::Event {
                    name: "receive",
                    payload,
                    ..
                } => {
                    let now = timeline.micros(Instant::now());
                    let Some((seq, sent_us)) = protocol::json_str_field(payload, "msg")
                        .and_then(protocol::parse_message_text)
                    else {
                        stats.malformed += 1;
                        continue;
                    };
                    stats.received += 1;
                    incoming.received.fetch_add(1, Ordering::Relaxed);
                    timeline.delivered.fetch_add(1, Ordering::Relaxed);
                    if mode.window {
                        incoming.sender_wake.notify_one();
                    }
                    if measured.contains(&sent_us) {
                        let took = now.saturating_sub(sent_us);
                        stats.latency.record(took);
                        let bucket = ((sent_us - measured.start) / SLOWEST_BUCKET) as usize;
                        if stats.slowest.len() <= bucket {
                            stats.slowest.resize(bucket + 1, 0);
                        }
                        stats.slowest[bucket] = stats.slowest[bucket].max(took);
                    }
                    match seq.cmp(&next_seq) {
                        std::cmp::Ordering::Equal => next_seq += 1,
                        std::cmp::Ordering::Greater => {
                            stats.gaps += seq - next_seq;
                            next_seq = seq + 1;
                        }
                        std::cmp::Ordering::Less => stats.duplicates_or_reordered += 1,
                    }
                }
                Packet::Ack { payload, .. } => {
                    outgoing.acked.fetch_add(1, Ordering::Relaxed);
                    if payload.contains("\"ok\":true") {
                        stats.acks_ok += 1;
                    } else {
                        stats.acks_failed += 1;
                        stats
                            .first_ack_failure
                            .get_or_insert_with(|| payload.to_owned());
                    }
                }
                Packet::Event {
                    name: "error",
                    payload,
                    ..
                } => {
                    stats.error_events += 1;
                    stats
                        .first_error_event
                        .get_or_insert_with(|| payload.to_owned());
                }
                Packet::Close | Packet::Disconnect => closed = true,
                _ => {}
            }
        }
        if closed {
            stats.failure = Some("the server closed the session".to_owned());
            break;
        }
        if mode.traffic && incoming.drained() && (!mode.acks || outgoing.acks_drained()) {
            break;
        }
        tokio::select! {
            biased;
            received = rx.recv(&mut inbox) => {
                if let Err(error) = received {
                    stats.failure = Some(format!("{error:#}"));
                    break;
                }
            }
            _ = drain_check.tick(), if mode.traffic => {}
            () = &mut deadline => break,
        }
    }
    stats
}

/// What a writer needs to build its messages.
struct Sender {
    user: String,
    msg_len: usize,
    acks: bool,
}

impl Sender {
    fn packets(&self, first_seq: u64, count: u64, sent_us: u64) -> Vec<String> {
        (first_seq..first_seq + count)
            .map(|seq| {
                let ack = self.acks.then_some(seq + 1);
                protocol::msg_packet(seq, sent_us, self.msg_len, &self.user, ack)
            })
            .collect()
    }
}

async fn write_loop(
    mut tx: Tx,
    mut pong: mpsc::Receiver<()>,
    outgoing: Arc<Flow>,
    plan: Plan,
    timeline: Arc<Timeline>,
    sender: Sender,
) -> WriterStats {
    let mut stats = WriterStats::default();
    let mut sending = !matches!(plan, Plan::Idle);
    let stop = sleep_until(timeline.measure_end);
    tokio::pin!(stop);
    let mut next_due = match plan {
        Plan::Rate { phase, .. } => timeline.load_start + phase,
        _ => timeline.load_start,
    };
    loop {
        if sending {
            let now = Instant::now();
            if now >= timeline.measure_end {
                sending = false;
                outgoing.finished.store(true, Ordering::Release);
            } else if now >= timeline.load_start {
                let count = match plan {
                    Plan::Rate { per_second, phase } if now >= next_due => {
                        let elapsed = now.duration_since(timeline.load_start + phase);
                        let due = (elapsed.as_secs_f64() * per_second).floor() as u64 + 1;
                        due.saturating_sub(stats.sent).min(MAX_BATCH)
                    }
                    Plan::Window(window) => {
                        let in_flight = stats
                            .sent
                            .saturating_sub(outgoing.received.load(Ordering::Relaxed));
                        window.saturating_sub(in_flight)
                    }
                    _ => 0,
                };
                if count > 0 {
                    let sent_us = timeline.micros(now);
                    let packets = sender.packets(stats.sent, count, sent_us);
                    stats.sent += count;
                    outgoing.sent.fetch_add(count, Ordering::Relaxed);
                    if now >= timeline.measure_start {
                        stats.sent_in_window += count;
                    }
                    if let Err(error) = tx.send(packets).await {
                        stats.failure = Some(format!("{error:#}"));
                        break;
                    }
                    if let Plan::Rate { per_second, phase } = plan {
                        next_due = timeline.load_start
                            + phase
                            + Duration::from_secs_f64(stats.sent as f64 / per_second);
                    }
                    continue;
                }
            }
        }
        // A running window waits for receipts (or the end), not for a clock.
        let timed = !(matches!(plan, Plan::Window(_)) && Instant::now() >= timeline.load_start);
        let wake_at = next_due.max(timeline.load_start);
        tokio::select! {
            biased;
            request = pong.recv() => match request {
                Some(()) => {
                    if let Err(error) = tx.send(vec![PONG.to_owned()]).await {
                        stats.failure = Some(format!("{error:#}"));
                        break;
                    }
                }
                None => break,
            },
            () = outgoing.sender_wake.notified(), if sending => {}
            () = sleep_until(wake_at), if sending && timed => {}
            () = &mut stop, if sending => {}
        }
    }
    outgoing.finished.store(true, Ordering::Release);
    stats
}

async fn run_traffic(
    config: &Config,
    pairs: Vec<(Client, Client)>,
    setup: SetupReport,
) -> Result<Report> {
    let clients = pairs.len() * 2;
    let base = Instant::now();
    let load_start = base + SETTLE;
    let measure_start = load_start + config.warmup;
    let measure_end = measure_start + config.duration;
    let timeline = Arc::new(Timeline {
        base,
        load_start,
        measure_start,
        measure_end,
        deadline: measure_end + config.drain,
        delivered: AtomicU64::new(0),
    });
    let spawned = spawn_clients(config, pairs, &timeline);

    sleep_until(measure_start).await;
    let server_start = server_sample(config)?;
    let self_start = stats::sample(None)?;
    let delivered_start = timeline.delivered.load(Ordering::Relaxed);
    sleep_until(measure_end).await;
    let server_end = server_sample(config)?;
    let self_end = stats::sample(None)?;
    let delivered_end = timeline.delivered.load(Ordering::Relaxed);
    let window = self_end.at.duration_since(self_start.at).as_secs_f64();
    eprintln!("loadgen: measured {window:.1}s, draining");

    let mut latency = Histogram::default();
    let mut traffic = TrafficReport {
        window_seconds: window,
        offered_msgs_per_sec: match config.load {
            Load::Rate(rate) => Some(rate * clients as f64),
            _ => None,
        },
        sent_msgs_per_sec: 0.0,
        delivered_msgs_per_sec: (delivered_end - delivered_start) as f64 / window.max(1e-9),
        latency: Histogram::default().summary(),
        slowest_per_50ms_us: Vec::new(),
        sent_total: 0,
        received_total: 0,
        lost: 0,
        duplicates_or_reordered: 0,
        gaps: 0,
        malformed: 0,
        acks_ok: 0,
        acks_failed: 0,
        first_ack_failure: None,
        error_events: 0,
        first_error_event: None,
        connection_failures: 0,
        first_connection_failure: None,
    };
    let mut sent_in_window = 0;
    for reader in spawned.readers {
        let stats = reader.await.context("reader task")?;
        latency.merge(&stats.latency);
        let slowest = &mut traffic.slowest_per_50ms_us;
        if slowest.len() < stats.slowest.len() {
            slowest.resize(stats.slowest.len(), 0);
        }
        for (all, one) in slowest.iter_mut().zip(&stats.slowest) {
            *all = (*all).max(*one);
        }
        traffic.received_total += stats.received;
        traffic.duplicates_or_reordered += stats.duplicates_or_reordered;
        traffic.gaps += stats.gaps;
        traffic.malformed += stats.malformed;
        traffic.acks_ok += stats.acks_ok;
        traffic.acks_failed += stats.acks_failed;
        if traffic.first_ack_failure.is_none() {
            traffic.first_ack_failure = stats.first_ack_failure;
        }
        traffic.error_events += stats.error_events;
        if traffic.first_error_event.is_none() {
            traffic.first_error_event = stats.first_error_event;
        }
        if let Some(failure) = stats.failure {
            traffic.connection_failures += 1;
            traffic.first_connection_failure.get_or_insert(failure);
        }
    }
    for writer in spawned.writers {
        let stats = writer.await.context("writer task")?;
        traffic.sent_total += stats.sent;
        sent_in_window += stats.sent_in_window;
        if let Some(failure) = stats.failure {
            traffic.connection_failures += 1;
            traffic.first_connection_failure.get_or_insert(failure);
        }
    }
    let flows_sent: u64 = spawned
        .flows
        .iter()
        .map(|flow| flow.sent.load(Ordering::Relaxed))
        .sum();
    debug_assert_eq!(flows_sent, traffic.sent_total);
    traffic.lost = traffic.sent_total.saturating_sub(traffic.received_total);
    traffic.sent_msgs_per_sec = sent_in_window as f64 / config.duration.as_secs_f64();
    traffic.latency = latency.summary();

    let loadgen = LoadgenUse::between(&self_start, &self_end);
    let server = match (config.server_pid, server_start, server_end) {
        (Some(pid), Some(start), Some(end)) => {
            let delivered = delivered_end - delivered_start;
            Some(ServerReport {
                pid,
                cpu_share: stats::cpu_share(&start, &end),
                wait_share: stats::wait_share(&start, &end),
                core_foreign_share: stats::foreign_share(&start, &end),
                cpu_us_per_msg: (delivered > 0)
                    .then(|| (end.cpu_seconds - start.cpu_seconds) * 1e6 / delivered as f64),
                rss_kib_start: start.rss_kib,
                rss_kib_end: end.rss_kib,
                hwm_kib: end.hwm_kib,
            })
        }
        _ => None,
    };
    let mut warnings = Vec::new();
    if let Some(offered) = traffic.offered_msgs_per_sec {
        if traffic.sent_msgs_per_sec < 0.95 * offered {
            warnings.push(format!(
                "offered load not reached: sent {:.0}/s of {offered:.0}/s",
                traffic.sent_msgs_per_sec
            ));
        }
    }
    if traffic.lost > 0 {
        warnings.push(format!(
            "{} messages had not arrived by the end of the drain ({:.0} s)",
            traffic.lost,
            config.drain.as_secs_f64()
        ));
    }
    if traffic.connection_failures > 0 {
        warnings.push(format!(
            "{} connections failed: {}",
            traffic.connection_failures,
            traffic.first_connection_failure.as_deref().unwrap_or("")
        ));
    }
    if traffic.acks_failed > 0 || traffic.error_events > 0 {
        warnings.push(format!(
            "{} failed acks, {} error events (first: {})",
            traffic.acks_failed,
            traffic.error_events,
            traffic
                .first_ack_failure
                .as_deref()
                .or(traffic.first_error_event.as_deref())
                .unwrap_or("")
        ));
    }
    let bottleneck = bottleneck(
        server.as_ref().map(|s| CoreUse {
            own: s.cpu_share,
            foreign: s.core_foreign_share,
        }),
        loadgen.core(),
    );
    if bottleneck == "loadgen" {
        warnings.push(format!(
            "the load generator is the bottleneck ({:.0}% of its core)",
            loadgen.cpu_share * 100.0
        ));
    }
    contention_warnings(
        &mut warnings,
        server.as_ref().map(|s| s.core_foreign_share),
        loadgen.core_foreign_share,
    );
    Ok(Report {
        rate_per_client: match config.load {
            Load::Rate(rate) => Some(rate),
            _ => None,
        },
        window: match config.load {
            Load::Window(window) => Some(window),
            _ => None,
        },
        traffic: Some(traffic),
        ..Report::new(
            config, clients, setup, server, loadgen, bottleneck, warnings,
        )
    })
}

/// The load generator's use of its own core between two samples of itself.
#[derive(Debug, Serialize, Clone, Copy)]
pub struct LoadgenUse {
    /// Share of one core the load generator used.
    #[serde(rename = "loadgen_cpu_share")]
    pub cpu_share: f64,
    /// Share of the time the load generator's threads waited for a CPU.
    #[serde(rename = "loadgen_wait_share")]
    pub wait_share: f64,
    /// Share of the time other processes used the load generator's core (when pinned).
    #[serde(rename = "loadgen_core_foreign_share")]
    pub core_foreign_share: f64,
}

impl LoadgenUse {
    fn between(start: &ProcSample, end: &ProcSample) -> LoadgenUse {
        LoadgenUse {
            cpu_share: stats::cpu_share(start, end),
            wait_share: stats::wait_share(start, end),
            core_foreign_share: stats::foreign_share(start, end),
        }
    }

    fn core(&self) -> CoreUse {
        CoreUse {
            own: self.cpu_share,
            foreign: self.core_foreign_share,
        }
    }
}

impl Report {
    /// The fields every scenario reports; the scenario adds its traffic or idle figures
    /// and its load.
    fn new(
        config: &Config,
        clients: usize,
        setup: SetupReport,
        server: Option<ServerReport>,
        loadgen: LoadgenUse,
        bottleneck: &'static str,
        warnings: Vec<String>,
    ) -> Report {
        Report {
            scenario: config.scenario.clone(),
            transport: config.transport,
            rooms: clients / 2,
            clients,
            rate_per_client: None,
            window: None,
            msg_len: config.msg_len,
            acks: config.acks,
            setup,
            traffic: None,
            idle: None,
            server,
            loadgen,
            bottleneck: bottleneck.to_owned(),
            warnings,
        }
    }
}

/// How busy one pinned core was while measuring: by the process, and by others.
#[derive(Clone, Copy)]
struct CoreUse {
    own: f64,
    foreign: f64,
}

/// Which side was saturated: `server` or `loadgen` when that process kept its core
/// busy by itself; `server-core-contended` or `loadgen-core-contended` when the core was
/// full only because other processes used it too; `none` otherwise.
fn bottleneck(server: Option<CoreUse>, loadgen: CoreUse) -> &'static str {
    let full = |core: CoreUse| core.own + core.foreign >= SATURATED;
    match server {
        Some(core) if core.own >= SATURATED => "server",
        _ if loadgen.own >= SATURATED => "loadgen",
        Some(core) if full(core) => "server-core-contended",
        _ if full(loadgen) => "loadgen-core-contended",
        _ => "none",
    }
}

fn contention_warnings(
    warnings: &mut Vec<String>,
    server_foreign: Option<f64>,
    loadgen_foreign: f64,
) {
    if let Some(foreign) = server_foreign.filter(|share| *share >= CONTENDED) {
        warnings.push(format!(
            "other processes used the server's core {:.0}% of the time: figures are not clean",
            foreign * 100.0
        ));
    }
    if loadgen_foreign >= CONTENDED {
        warnings.push(format!(
            "other processes used the load generator's core {:.0}% of the time",
            loadgen_foreign * 100.0
        ));
    }
}

/// Server samples around the setup, and the load generator's share of its core then.
struct SetupLoad {
    /// Before anything, even `GET /create`: the baseline of the memory per connection.
    server_fresh: Option<ProcSample>,
    /// After the room ids were fetched, just before the first connection.
    server_before: Option<ProcSample>,
    server_after: Option<ProcSample>,
    loadgen: LoadgenUse,
}

async fn run_idle(
    config: &Config,
    pairs: Vec<(Client, Client)>,
    setup: SetupReport,
    setup_load: SetupLoad,
) -> Result<Report> {
    let SetupLoad {
        server_fresh,
        server_before: baseline,
        server_after: after_setup,
        loadgen,
    } = setup_load;
    let clients = pairs.len() * 2;
    let now = Instant::now();
    let timeline = Arc::new(Timeline {
        base: now,
        load_start: now,
        measure_start: now,
        measure_end: now + config.hold,
        deadline: now + config.hold,
        delivered: AtomicU64::new(0),
    });
    let spawned = spawn_clients(config, pairs, &timeline);
    // Measure just before the deadline, while every connection is still open.
    sleep_until(timeline.deadline - config.hold.min(Duration::from_millis(500)) / 2).await;
    let held = server_sample(config)?;
    let mut failures = 0;
    let mut first_failure = None;
    for reader in spawned.readers {
        let stats = reader.await.context("reader task")?;
        if let Some(failure) = stats.failure {
            failures += 1;
            first_failure.get_or_insert(failure);
        }
    }
    for writer in spawned.writers {
        writer.await.context("writer task")?;
    }
    let mut warnings = Vec::new();
    if failures > 0 {
        warnings.push(format!(
            "{failures} connections failed while idle: {}",
            first_failure.unwrap_or_default()
        ));
    }
    let setup_server_foreign = match (baseline, after_setup) {
        (Some(before), Some(after)) => Some(stats::foreign_share(&before, &after)),
        _ => None,
    };
    let setup_server_use = match (baseline, after_setup) {
        (Some(before), Some(after)) => Some(CoreUse {
            own: stats::cpu_share(&before, &after),
            foreign: stats::foreign_share(&before, &after),
        }),
        _ => None,
    };
    let bottleneck = bottleneck(setup_server_use, loadgen.core());
    contention_warnings(
        &mut warnings,
        setup_server_foreign,
        loadgen.core_foreign_share,
    );
    if bottleneck == "loadgen" {
        warnings.push(format!(
            "the load generator limited the connect rate ({:.0}% of its core)",
            loadgen.cpu_share * 100.0
        ));
    }
    let (idle, server) = match (config.server_pid, server_fresh, baseline, after_setup, held) {
        (Some(pid), Some(fresh), Some(baseline), Some(after_setup), Some(held)) => (
            Some(IdleReport {
                connections: clients,
                rss_fresh_kib: fresh.rss_kib,
                rss_baseline_kib: baseline.rss_kib,
                rss_kib: held.rss_kib,
                hwm_kib: held.hwm_kib,
                kib_per_connection: held.rss_kib.saturating_sub(fresh.rss_kib) as f64
                    / clients as f64,
                kib_per_connection_after_create: held.rss_kib.saturating_sub(baseline.rss_kib)
                    as f64
                    / clients as f64,
                cpu_us_per_login: (after_setup.cpu_seconds - baseline.cpu_seconds) * 1e6
                    / clients as f64,
            }),
            Some(ServerReport {
                pid,
                cpu_share: stats::cpu_share(&baseline, &after_setup),
                wait_share: stats::wait_share(&baseline, &after_setup),
                core_foreign_share: stats::foreign_share(&baseline, &after_setup),
                cpu_us_per_msg: None,
                rss_kib_start: baseline.rss_kib,
                rss_kib_end: held.rss_kib,
                hwm_kib: held.hwm_kib,
            }),
        ),
        _ => (None, None),
    };
    Ok(Report {
        idle,
        ..Report::new(
            config, clients, setup, server, loadgen, bottleneck, warnings,
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn core(own: f64, foreign: f64) -> CoreUse {
        CoreUse { own, foreign }
    }

    #[test]
    fn names_the_saturated_side() {
        assert_eq!(bottleneck(Some(core(0.97, 0.0)), core(0.3, 0.0)), "server");
        assert_eq!(bottleneck(Some(core(0.5, 0.0)), core(0.95, 0.0)), "loadgen");
        assert_eq!(
            bottleneck(Some(core(0.6, 0.35)), core(0.3, 0.0)),
            "server-core-contended"
        );
        assert_eq!(
            bottleneck(Some(core(0.2, 0.0)), core(0.2, 0.75)),
            "loadgen-core-contended"
        );
        assert_eq!(bottleneck(None, core(0.2, 0.1)), "none");
    }
}
