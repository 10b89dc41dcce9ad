//! The listening socket: its accept queue holds a burst of connections.

use std::net::TcpStream;
use std::time::Duration;

use crate::helpers::spawn_app;
use tete::startup::{LISTEN_BACKLOG, listen};

#[test]
fn the_listener_queues_a_burst_of_connections_before_any_is_accepted() {
    let listener = listen("127.0.0.1:0").expect("listens");
    let address = listener.local_addr().expect("address");
    // Nobody accepts: every connection below waits in the kernel's accept queue. With
    // std's backlog of 128 the kernel drops the 130th SYN, and its connect times out.
    let burst = 600;
    assert!(burst < LISTEN_BACKLOG as usize);
    let mut held = Vec::with_capacity(burst);
    for n in 0..burst {
        let stream = TcpStream::connect_timeout(&address, Duration::from_millis(500))
            .unwrap_or_else(|e| panic!("connection {n} was not queued: {e}"));
        held.push(stream);
    }
    assert_eq!(held.len(), burst);
}

#[test]
fn an_address_that_cannot_be_resolved_is_an_error_not_a_panic() {
    assert!(listen("no-such-host.invalid:80").is_err());
    assert!(listen("127.0.0.1:notaport").is_err());
}

/// Accepting connections yields to serving them: the acceptor thread runs at nice 19
/// (`tete::threads`).
#[tokio::test]
async fn the_thread_that_accepts_connections_runs_at_the_lowest_priority() {
    let _app = spawn_app().await;
    let acceptors = || {
        std::fs::read_dir("/proc/self/task")
            .expect("tasks")
            .flatten()
            .filter(|task| {
                std::fs::read_to_string(task.path().join("comm"))
                    .is_ok_and(|name| name.trim_end() == "actix-server ac")
            })
            .map(|task| {
                let tid = task.file_name().to_string_lossy().parse().expect("a tid");
                tete::threads::nice_of(tid)
            })
            .collect::<Vec<_>>()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    // Other tests' servers share this process (their acceptors are lowered too).
    while !acceptors().contains(&Some(tete::threads::ACCEPTOR_NICE))
        && std::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let found = acceptors();
    assert!(
        found.contains(&Some(tete::threads::ACCEPTOR_NICE)),
        "acceptor threads' nice values: {found:?}"
    );
}
