//! Scheduling of the server's own threads: accepting a connection yields to serving the
//! connections already there.
//!
//! actix-server accepts connections on a thread of its own and hands each one to the
//! worker. At full priority that thread woke, preempted the worker and went back to
//! sleep once per connection: at ~10,000 logins a second on one core, two context
//! switches per login. At nice 19 it runs in the worker's pauses and accepts whatever
//! has queued meanwhile, several connections at a time, while still getting a share of
//! a saturated core (it is not an idle-only thread): CPU per login 79.5 / 80.0 / 80.0 /
//! 78.9 → 74.2 / 74.7 / 73.7 / 70.5 µs, logins per second +8–14 %; a request arriving
//! during a flood waits ~2–3 ms longer to be accepted (bench/README.md, tenth session).

use std::time::Duration;

/// The acceptor thread's name as the kernel keeps it (the first 15 bytes of
/// "actix-server acceptor").
const ACCEPTOR_NAME: &str = "actix-server ac";

/// Its nice value: the lowest priority of the normal scheduling class.
pub const ACCEPTOR_NICE: i32 = 19;

/// How long [`lower_acceptor_priority_soon`] looks for a new acceptor thread (a thread
/// names itself once it runs, a moment after it is spawned).
const LOOK_FOR: Duration = Duration::from_millis(500);

/// Lowers, in the background, the priority of the acceptor threads of this process that
/// do not have it yet, once one has appeared.
pub fn lower_acceptor_priority_soon() {
    tokio::spawn(async {
        let started = tokio::time::Instant::now();
        while lower_acceptor_priority() == 0 && started.elapsed() < LOOK_FOR {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    });
}

/// Lowers the priority of this process's acceptor threads that do not have it yet;
/// returns how many it lowered.
#[cfg(target_os = "linux")]
pub fn lower_acceptor_priority() -> usize {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    let mut lowered = 0;
    for task in tasks.flatten() {
        let Some(tid) = task
            .file_name()
            .to_str()
            .and_then(|id| id.parse::<libc::id_t>().ok())
        else {
            continue;
        };
        let name = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if name.trim_end() != ACCEPTOR_NAME || nice_of(tid) == Some(ACCEPTOR_NICE) {
            continue;
        }
        // SAFETY: setpriority takes plain integers and touches no memory of ours; on
        // Linux, PRIO_PROCESS with a thread id sets that thread's nice value.
        if unsafe { libc::setpriority(libc::PRIO_PROCESS, tid, ACCEPTOR_NICE) } == 0 {
            lowered += 1;
        } else {
            tracing::warn!(
                error = %std::io::Error::last_os_error(),
                "cannot lower the priority of the acceptor thread"
            );
        }
    }
    lowered
}

/// Lowers the priority of this process's acceptor threads (nowhere but Linux).
#[cfg(not(target_os = "linux"))]
pub fn lower_acceptor_priority() -> usize {
    0
}

/// A thread's nice value, from `/proc/self/task/<tid>/stat` (field 19).
pub fn nice_of(tid: libc::id_t) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).ok()?;
    // The name (field 2) is in parentheses and may hold spaces: count after it.
    let after_name = &stat[stat.rfind(')')? + 1..];
    after_name.split_whitespace().nth(16)?.parse().ok()
}
