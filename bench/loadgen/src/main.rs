//! `loadgen`: the load generator of tete's side-by-side benchmark. It speaks Socket.IO
//! (Engine.IO v4 / Socket.IO v5, namespace `/socket`) to any server with the seed's chat
//! events — the Node.js reference or tete — and prints one JSON report on stdout.
//!
//! Layout: `protocol` (packet codec) → `transport` (WebSocket / long-polling halves,
//! HTTP) → `session` (connect, load, login) → `scenario` (traffic, idle, measurement);
//! `stats` holds the histogram and the `/proc` sampling.

mod protocol;
mod scenario;
mod session;
mod stats;
mod transport;

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Parser, ValueEnum};

use scenario::{Config, Load};
use transport::Transport;

/// Most rooms a scenario may open (two connections each).
const MAX_ROOMS: usize = 20_000;
/// Longest a measured phase, a warm-up, a drain or an idle hold may last.
const MAX_PHASE_SECONDS: f64 = 900.0;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Scenario {
    /// N rooms × 2 WebSocket clients, each sending at a steady rate; delivery latency.
    Pairs,
    /// Each WebSocket sender keeps a window of messages in flight; saturation throughput.
    Flood,
    /// N connections logged into N/2 rooms, held idle; connect rate and memory per client.
    Idle,
    /// Like pairs (or flood with --window) over HTTP long-polling only.
    Polling,
}

/// Socket.IO load generator for tete and the Node.js reference chat.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Which scenario to run.
    #[arg(value_enum)]
    scenario: Scenario,
    /// The server's address.
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    /// Rooms (pairs, flood, polling), two clients in each.
    #[arg(long, default_value_t = 50)]
    rooms: usize,
    /// Connections for the idle scenario (rounded down to an even number).
    #[arg(long, default_value_t = 1000)]
    connections: usize,
    /// Messages per second per client (pairs, polling).
    #[arg(long, default_value_t = 8.0)]
    rate: f64,
    /// Messages in flight per sender (flood; polling too when given).
    #[arg(long)]
    window: Option<u64>,
    /// Length of each message text in bytes (the chat allows up to 2000).
    #[arg(long, default_value_t = 64)]
    msg_len: usize,
    /// Ask for an ack with every `msg` (tete answers `{ok,id,seq,ts}`; the reference
    /// answers none, so leave it off there).
    #[arg(long)]
    acks: bool,
    /// Seconds of traffic before measuring.
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// Seconds measured.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Longest wait, after the last send, for messages still on their way.
    #[arg(long, default_value_t = 5.0)]
    drain: f64,
    /// Seconds the idle connections are held before the memory is read.
    #[arg(long, default_value_t = 3.0)]
    hold: f64,
    /// Rooms being set up at the same time.
    #[arg(long, default_value_t = 64)]
    setup_concurrency: usize,
    /// Timeout of each setup step (connect, login…), in seconds.
    #[arg(long, default_value_t = 30.0)]
    step_timeout: f64,
    /// Loopback source addresses to spread connections over (e.g. 127.0.0.2,127.0.0.3)
    /// when one address runs out of ephemeral ports.
    #[arg(long, value_delimiter = ',')]
    sources: Vec<IpAddr>,
    /// The server's process id, for its CPU time and memory from /proc.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Worker threads; 1 runs everything on the current thread (pin it with taskset).
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// The whole run is aborted after this many seconds.
    #[arg(long, default_value_t = 300.0)]
    max_seconds: f64,
}

fn seconds(value: f64, what: &str) -> Result<Duration> {
    if !(0.0..=MAX_PHASE_SECONDS).contains(&value) {
        bail!("--{what} must be between 0 and {MAX_PHASE_SECONDS} seconds");
    }
    Ok(Duration::from_secs_f64(value))
}

fn config(args: &Args) -> Result<Config> {
    let (transport, load, rooms) = match args.scenario {
        Scenario::Pairs => (Transport::Websocket, Load::Rate(args.rate), args.rooms),
        Scenario::Flood => (
            Transport::Websocket,
            Load::Window(args.window.unwrap_or(32)),
            args.rooms,
        ),
        Scenario::Polling => (
            Transport::Polling,
            args.window.map_or(Load::Rate(args.rate), Load::Window),
            args.rooms,
        ),
        Scenario::Idle => (Transport::Websocket, Load::Idle, args.connections / 2),
    };
    if rooms == 0 || rooms > MAX_ROOMS {
        bail!(
            "between 1 and {MAX_ROOMS} rooms (2 to {} connections)",
            2 * MAX_ROOMS
        );
    }
    if let Load::Rate(rate) = load {
        if !(rate > 0.0 && rate <= 100_000.0) {
            bail!("--rate must be in (0, 100000] messages per second");
        }
    }
    if let Load::Window(window) = load {
        if !(1..=4096).contains(&window) {
            bail!("--window must be between 1 and 4096");
        }
    }
    if !(1..=2000).contains(&args.msg_len) {
        bail!("--msg-len must be between 1 and 2000");
    }
    if args.duration <= 0.0 {
        bail!("--duration must be positive");
    }
    Ok(Config {
        scenario: format!("{:?}", args.scenario).to_lowercase(),
        addr: args.addr,
        sources: args.sources.clone(),
        transport,
        load,
        rooms,
        msg_len: args.msg_len,
        acks: args.acks,
        warmup: seconds(args.warmup, "warmup")?,
        duration: seconds(args.duration, "duration")?,
        drain: seconds(args.drain, "drain")?,
        hold: seconds(args.hold, "hold")?,
        setup_concurrency: args.setup_concurrency.clamp(1, 4096),
        step_timeout: seconds(args.step_timeout, "step-timeout")?,
        server_pid: args.server_pid,
    })
}

/// Lifts the soft open-files limit to the hard one: the idle scenario needs ~19,000.
fn raise_open_files_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain libc calls on a properly initialised struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max
        {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

fn main() -> Result<()> {
    let args = Args::parse();
    let config = config(&args)?;
    raise_open_files_limit();
    let runtime = if args.threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(args.threads.min(64))
            .enable_all()
            .build()
    }
    .context("starting the tokio runtime")?;
    let limit = seconds(args.max_seconds, "max-seconds")?;
    let report = runtime.block_on(async {
        tokio::time::timeout(limit, scenario::run(config))
            .await
            .map_err(|_| anyhow::anyhow!("the run took longer than --max-seconds"))?
    })?;
    for warning in &report.warnings {
        eprintln!("loadgen: warning: {warning}");
    }
    println!(
        "{}",
        serde_json::to_string_pretty(&report).context("encoding the report")?
    );
    // Tasks still blocked on sockets are dropped with the runtime, not awaited.
    runtime.shutdown_timeout(Duration::from_millis(100));
    Ok(())
}
