//! The embedded SQLite backend: one writer thread with group commit, pooled readers.
//!
//! - The file is opened in WAL mode with `synchronous=NORMAL`: a commit survives the
//!   process being killed (not a power cut), and readers never block the writer.
//! - Schema migrations are numbered by `PRAGMA user_version` and applied at start.
//! - A checkpointer thread with its own connection copies the WAL back into the file
//!   every 50 ms (a passive checkpoint), so commits never wait behind a checkpoint; when
//!   the WAL has grown, it has the writer copy the last frames between two batches so
//!   that the WAL starts over (see `run_checkpointer`).
//! - Writes (`join`, `append`, `erase_room`) are sent over a bounded channel to one
//!   writer thread that owns the only write connection. It drains what is queued (up to
//!   [`MAX_BATCH`] operations), applies it all in one transaction, commits, then answers
//!   every caller through a oneshot: a message is answered only once it is on disk
//!   (`append_then`'s completions go back to the queuing runtime thread a batch at a
//!   time, see [`handoff`](super::handoff)). If
//!   the transaction fails (I/O error, disk full), every caller of that batch gets
//!   [`StoreError::Unavailable`] and the writer goes on with the next batch.
//! - Reads run on tokio's blocking threads, each borrowing a read-only connection from
//!   a small pool (WAL allows concurrent readers).
//! - Messages are stored numbered in arrival order (`msg_no`, so a batch appends to the
//!   table's last pages instead of dirtying one page per room it touches), each batch's
//!   messages grouped by room. They are found through `message_index`, one entry per
//!   run (a room's messages of one batch: consecutive numbers and seqs), which the writer
//!   fills [`INDEX_LAG`] messages at a time; the newer ones are found by scanning the
//!   table's tail (see [`RoomScan`]). A room is referred to by an integer `room_no`
//!   (never reused: `AUTOINCREMENT`), and a message's author (token hash, name, avatar)
//!   by an `author_no` in `authors`: a message row holds its own text and little else.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags, OptionalExtension, Row, params};
use tokio::sync::{mpsc, oneshot};

use super::handoff::{Handoff, Inbox};
use super::{
    AppendDone, Cursor, Joining, MessageId, NewMessage, Page, Participant, RoomInfo, RoomSummary,
    StoreError, StoredMessage, page_bounds, page_from_scan,
};

/// The maps looked up per packet use a fast hasher, randomly seeded per process.
type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

/// The most write operations applied in one transaction.
pub const MAX_BATCH: usize = 4096;
/// How long a small batch waits for more writes while writes keep coming; bounds the
/// latency group commit adds to a message.
const GATHER_WINDOW: Duration = Duration::from_micros(500);
/// A batch at least this large commits without waiting.
const GATHER_ENOUGH: usize = 64;
/// Writes are "coming" when the previous batch committed less than this long ago.
const BUSY_GAP: Duration = Duration::from_millis(5);
/// How many write operations may wait for the writer before callers wait to enqueue.
const WRITE_QUEUE: usize = 16 * 1024;
/// How many idle read connections are kept open.
const READ_POOL: usize = 4;
/// The writer's page cache, in KiB (SQLite's negative `cache_size`). Kept small: every
/// commit walks the whole page cache (`pcache1TruncateUnsafe` from
/// `pager_end_transaction`), which at 64 MiB cost more per commit than re-reading pages
/// from the OS cache saves.
const WRITER_CACHE_KIB: i64 = -2 * 1024;
/// How often the checkpointer thread copies the WAL back into the database file. Short:
/// the checkpoint's `fsync` of the WAL flushes everything written since the last one,
/// and the writer's own writes to that file stall while it does (at 46,000 msg/s, every
/// 200 ms: single commits of 20–30 ms; every 50 ms: at most ~10 ms, bench/README.md).
const CHECKPOINT_EVERY: Duration = Duration::from_millis(50);
/// WAL frames after which the checkpointer has the writer close the WAL: the writer
/// checkpoints what is left between two batches, so that its next commit starts the WAL
/// over (no commit can start it over while frames are not copied back yet).
const RESTART_FRAMES: i64 = 8 * 1024;
/// WAL pages written before the writer's own automatic checkpoint (SQLite's default is
/// 1000): a backstop only, should the checkpointer fall behind or fail.
const CHECKPOINT_PAGES: i64 = 64 * 1024;
/// The size the WAL file is truncated back to after a checkpoint, in bytes.
const JOURNAL_SIZE_LIMIT: i64 = 64 * 1024 * 1024;
/// How many messages may wait to be entered in `message_index`. Once this many wait, the
/// writer enters runs, [`ENTER_STEP`] at a time in a transaction of their own after a
/// batch (a step every [`STEP_GAP`] at most while fewer than twice this many wait),
/// until half as many wait: each room's page of that index is written a few times per
/// this many messages rather than at every commit. A read finds the messages not entered
/// yet by scanning the table's tail, which this bounds (see [`RoomScan`]).
const INDEX_LAG: u64 = 8 * 1024;
/// The most runs one step enters. At steady load a run holds one or two messages
/// (small batches), and entering all of 8,192 messages' runs at once stalled a batch for
/// milliseconds: steady's p99 at 27,000 msg/s 4.2 / 4.7 → 3.6 / 3.1 ms with steps.
const ENTER_STEP: usize = 1024;
/// How many parts a step is entered in: its runs, sorted by room, are cut into this many
/// parts of as many rooms each, and a part goes in after each batch (each in a
/// transaction of its own), so that no batch waits for all of a step's index pages: a
/// whole step wrote one leaf page per room it held (~50 in the benchmark's steady load,
/// ~3 ms of the writer; ~1,000 with a thousand rooms). A fixed count of parts, rather
/// than of rooms per part, keeps entering ahead of the runs arriving however many rooms
/// are busy: a step of 1,024 runs takes eight batches.
const STEP_PARTS: usize = 8;
/// The most entries one part enters, should a few rooms hold most of a step's runs.
const PART_ENTRIES: usize = 256;
/// The least time between two steps while fewer than twice [`INDEX_LAG`] messages wait.
/// A step takes ~3 ms of the writer (twelfth session) and every write queued meanwhile
/// waits for it: steps one after another, a batch between each, made a stretch in
/// which every message was late; spaced, the writer catches up between them. At steady
/// load (runs of one or two messages) 1,024 runs every 25 ms is ~40,000 runs a second.
const STEP_GAP: Duration = Duration::from_millis(25);
/// The page size of a new database file, in bytes (a file made earlier keeps its own:
/// SQLite cannot change it in WAL mode). Twice SQLite's default: every WAL frame costs the
/// writer two `pwrite`s (its header, its page) and the checkpointer a read and a write,
/// and a batch's rows fill half as many pages. Flood, 50 rooms, nine interleaved pairs:
/// 4 KiB → 8 KiB pages won seven, ~5 % more messages a second (bench/README.md); logins
/// and steady's latency within this machine's spread.
const PAGE_SIZE: i64 = 8 * 1024;
/// How long a connection waits on a lock held by another process before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The schema, one migration per `user_version` step. Never edit a published step: add one.
const MIGRATIONS: &[&str] = &[
    // 1: rooms, participants, messages.
    "CREATE TABLE rooms (
        room_no INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        created_at INTEGER NOT NULL,
        last_message_at INTEGER,
        message_count INTEGER NOT NULL DEFAULT 0,
        next_seq INTEGER NOT NULL DEFAULT 1
    );
    CREATE INDEX rooms_by_activity ON rooms (last_message_at);
    CREATE TABLE users (
        room TEXT NOT NULL,
        token_hash TEXT NOT NULL,
        name TEXT NOT NULL,
        email_hash TEXT NOT NULL,
        avatar TEXT NOT NULL,
        first_seq INTEGER NOT NULL,
        joined_at INTEGER NOT NULL,
        last_seen_at INTEGER NOT NULL,
        PRIMARY KEY (room, token_hash)
    ) WITHOUT ROWID;
    CREATE INDEX users_by_name ON users (room, name);
    CREATE INDEX users_by_token ON users (token_hash);
    CREATE TABLE messages (
        room_no INTEGER NOT NULL,
        seq INTEGER NOT NULL,
        user TEXT NOT NULL,
        avatar TEXT NOT NULL,
        text TEXT NOT NULL,
        ts INTEGER NOT NULL,
        client_id TEXT,
        token_hash TEXT NOT NULL
    );
    CREATE UNIQUE INDEX messages_by_seq ON messages (room_no, seq);
    CREATE UNIQUE INDEX messages_by_client_id ON messages (room_no, client_id)
        WHERE client_id IS NOT NULL;",
    // 2: a message refers to its author (room, token, name, avatar: about 150 bytes,
    // the same in every message of theirs) by number. Every row already stored is
    // copied, in its order, with its author.
    "CREATE TABLE authors (
        author_no INTEGER PRIMARY KEY AUTOINCREMENT,
        room_no INTEGER NOT NULL,
        token_hash TEXT NOT NULL,
        user TEXT NOT NULL,
        avatar TEXT NOT NULL,
        UNIQUE (room_no, token_hash, user, avatar)
    );
    INSERT INTO authors (room_no, token_hash, user, avatar)
        SELECT DISTINCT room_no, token_hash, user, avatar FROM messages ORDER BY rowid;
    CREATE TABLE messages_v2 (
        room_no INTEGER NOT NULL,
        seq INTEGER NOT NULL,
        author_no INTEGER NOT NULL,
        text TEXT NOT NULL,
        ts INTEGER NOT NULL,
        client_id TEXT
    );
    INSERT INTO messages_v2 (room_no, seq, author_no, text, ts, client_id)
        SELECT m.room_no, m.seq, a.author_no, m.text, m.ts, m.client_id
        FROM messages m JOIN authors a
            ON a.room_no = m.room_no AND a.token_hash = m.token_hash
            AND a.user = m.user AND a.avatar = m.avatar
        ORDER BY m.rowid;
    DROP TABLE messages;
    ALTER TABLE messages_v2 RENAME TO messages;
    CREATE UNIQUE INDEX messages_by_seq ON messages (room_no, seq);
    CREATE UNIQUE INDEX messages_by_client_id ON messages (room_no, client_id)
        WHERE client_id IS NOT NULL;",
    // 3: two indexes no query uses. Nothing looks a participant up by name (a room
    // holds two people: its primary key's `room` prefix finds them), and rooms are
    // never listed by activity in SQL (a token's few rooms are sorted in Rust); they
    // cost a random page per join and two entries moved per room and batch.
    "DROP INDEX users_by_name;
    DROP INDEX rooms_by_activity;",
    // 4: a participant refers to its room by number, as messages do. Keyed by the room's
    // text id, every join wrote into a random page of the table; rooms are numbered in
    // the order they are created, so joins now land where the newest rooms are. A
    // participant whose room row is missing (no tete wrote one) gets that room back
    // rather than being dropped.
    "INSERT INTO rooms (id, created_at)
        SELECT room, min(joined_at) FROM users
        WHERE room NOT IN (SELECT id FROM rooms) GROUP BY room ORDER BY min(joined_at);
    CREATE TABLE users_v2 (
        room_no INTEGER NOT NULL,
        token_hash TEXT NOT NULL,
        name TEXT NOT NULL,
        email_hash TEXT NOT NULL,
        avatar TEXT NOT NULL,
        first_seq INTEGER NOT NULL,
        joined_at INTEGER NOT NULL,
        last_seen_at INTEGER NOT NULL,
        PRIMARY KEY (room_no, token_hash)
    ) WITHOUT ROWID;
    INSERT INTO users_v2 (room_no, token_hash, name, email_hash, avatar, first_seq,
                          joined_at, last_seen_at)
        SELECT r.room_no, u.token_hash, u.name, u.email_hash, u.avatar, u.first_seq,
               u.joined_at, u.last_seen_at
        FROM users u JOIN rooms r ON r.id = u.room;
    DROP TABLE users;
    ALTER TABLE users_v2 RENAME TO users;
    CREATE INDEX users_by_token ON users (token_hash);",
    // 5: a room's messages are found through `message_index`, which the writer fills a
    // few thousand messages at a time instead of at every commit (see [`INDEX_LAG`]);
    // SQLite's own index on (room_no, seq) dirtied a page per active room and commit. A
    // message's number becomes an `INTEGER PRIMARY KEY` (`VACUUM` keeps it, while it may
    // renumber a plain rowid). Every row already stored is copied and indexed.
    "CREATE TABLE messages_v5 (
        msg_no INTEGER PRIMARY KEY,
        room_no INTEGER NOT NULL,
        seq INTEGER NOT NULL,
        author_no INTEGER NOT NULL,
        text TEXT NOT NULL,
        ts INTEGER NOT NULL,
        client_id TEXT
    );
    INSERT INTO messages_v5 (msg_no, room_no, seq, author_no, text, ts, client_id)
        SELECT rowid, room_no, seq, author_no, text, ts, client_id FROM messages ORDER BY rowid;
    DROP TABLE messages;
    ALTER TABLE messages_v5 RENAME TO messages;
    CREATE UNIQUE INDEX messages_by_client_id ON messages (room_no, client_id)
        WHERE client_id IS NOT NULL;
    CREATE TABLE message_index (
        room_no INTEGER NOT NULL,
        seq INTEGER NOT NULL,
        msg_no INTEGER NOT NULL,
        PRIMARY KEY (room_no, seq)
    ) WITHOUT ROWID;
    INSERT INTO message_index (room_no, seq, msg_no)
        SELECT room_no, seq, msg_no FROM messages ORDER BY room_no, seq;
    CREATE TABLE message_index_state (indexed_upto INTEGER NOT NULL);
    INSERT INTO message_index_state (indexed_upto)
        SELECT coalesce(max(msg_no), 0) FROM messages;",
];

/// Messages with their authors, for [`MESSAGE_COLUMNS`].
const MESSAGES: &str = "messages m JOIN authors a ON a.author_no = m.author_no";
const MESSAGE_COLUMNS: &str = "m.seq, m.text, a.user, a.avatar, m.ts";
/// The `room_no` of the room whose id is `?1`.
const ROOM_NO: &str = "(SELECT room_no FROM rooms WHERE id = ?1)";
/// Participants with their rooms' ids, for [`USER_COLUMNS`].
const USERS: &str = "users u JOIN rooms r ON r.room_no = u.room_no";
/// A participant's columns, in the order [`participant_from_row`] reads them.
const USER_COLUMNS: &str = "r.id, u.token_hash, u.name, u.email_hash, u.avatar, \
                            u.first_seq, u.joined_at, u.last_seen_at";
/// How many columns [`USER_COLUMNS`] names.
const USER_COLUMN_COUNT: usize = 8;
const ROOM_COLUMNS: &str = "id, created_at, last_message_at, message_count, next_seq";

/// The SQLite store: a cheap-to-clone handle on the writer thread and the read pool.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    writes: mpsc::Sender<WriteOp>,
    /// Dropped with the store: its checkpointer thread then ends.
    _stop_checkpointer: std::sync::mpsc::Sender<()>,
    readers: ReadPool,
}

impl SqliteStore {
    /// Opens (creating if needed) the database file at `path` and its parent directory,
    /// applies the migrations and starts the writer thread.
    pub async fn open(path: impl AsRef<Path>) -> Result<SqliteStore, StoreError> {
        let path = path.as_ref().to_path_buf();
        let opening = path.clone();
        let writer = tokio::task::spawn_blocking(move || open_writer(&opening))
            .await
            .map_err(|e| connect_error(&path, e))?
            .map_err(|e| connect_error(&path, e))?;
        let (writes, queue) = mpsc::channel(WRITE_QUEUE);
        let close_wal = Arc::new(AtomicBool::new(false));
        let writer_closes = Arc::clone(&close_wal);
        thread::Builder::new()
            .name("tete-sqlite-writer".to_owned())
            .spawn(move || run_writer(writer, queue, &writer_closes))
            .map_err(|e| connect_error(&path, e))?;
        let checkpointer = open_checkpointer(&path).map_err(|e| connect_error(&path, e))?;
        let (stop_checkpointer, stopped) = std::sync::mpsc::channel();
        thread::Builder::new()
            .name("tete-sqlite-checkpoint".to_owned())
            .spawn(move || run_checkpointer(checkpointer, stopped, &close_wal))
            .map_err(|e| connect_error(&path, e))?;
        let store = SqliteStore {
            shared: Arc::new(Shared {
                writes,
                _stop_checkpointer: stop_checkpointer,
                readers: ReadPool {
                    path: path.clone(),
                    idle: Mutex::new(Vec::new()),
                },
            }),
        };
        store.health().await.map_err(|e| connect_error(&path, e))?;
        Ok(store)
    }

    pub async fn join(
        &self,
        room: &str,
        joining: Joining,
        now_ms: i64,
    ) -> Result<Participant, StoreError> {
        let (reply, answer) = oneshot::channel();
        let room = room.to_owned();
        self.write(
            Request::Join {
                room,
                joining,
                now_ms,
            },
            Reply::Join(reply),
        )
        .await?;
        answered(answer).await
    }

    pub async fn token_known(&self, token_hash: &str) -> Result<bool, StoreError> {
        let token_hash = token_hash.to_owned();
        self.read(move |conn| {
            conn.prepare_cached(
                "SELECT 1 FROM users JOIN rooms ON rooms.room_no = users.room_no
                 WHERE users.token_hash = ?1 LIMIT 1",
            )?
            .exists([&token_hash])
        })
        .await
    }

    pub async fn participant(
        &self,
        room: &str,
        token_hash: &str,
    ) -> Result<Option<Participant>, StoreError> {
        let (room, token_hash) = (room.to_owned(), token_hash.to_owned());
        self.read(move |conn| find_participant(conn, &room, &token_hash))
            .await
    }

    pub async fn append(&self, msg: NewMessage, now_ms: i64) -> Result<StoredMessage, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.write(Request::Append { msg, now_ms }, Reply::Append(reply))
            .await?;
        answered(answer).await
    }

    /// Queues the append; after the batch's commit, `done` runs on this thread when it
    /// drives a current-thread runtime (handed back with the rest of the batch: see
    /// [`handoff`](super::handoff)), otherwise on the writer thread.
    pub async fn append_then(&self, msg: NewMessage, now_ms: i64, done: AppendDone) {
        let op = WriteOp::append_then(msg, now_ms, done);
        if let Err(mpsc::error::SendError(op)) = self.shared.writes.send(op).await {
            op.reply.fail_unsent();
        }
    }

    /// [`append_then`](Self::append_then) without waiting: queued now if the writer's
    /// queue has room (`None`), otherwise the message, its time and its completion come
    /// back to be queued by `append_then`.
    pub fn try_append_then(
        &self,
        msg: NewMessage,
        now_ms: i64,
        done: AppendDone,
    ) -> Option<(NewMessage, i64, AppendDone)> {
        match self.shared.writes.try_reserve() {
            Ok(permit) => permit.send(WriteOp::append_then(msg, now_ms, done)),
            Err(mpsc::error::TrySendError::Full(())) => return Some((msg, now_ms, done)),
            Err(mpsc::error::TrySendError::Closed(())) => {
                WriteOp::append_then(msg, now_ms, done).reply.fail_unsent()
            }
        }
        None
    }

    pub async fn page(
        &self,
        room: &str,
        visible_from: i64,
        cursor: Cursor,
        limit: u32,
    ) -> Result<Page, StoreError> {
        let room: Arc<str> = room.into();
        self.read(move |conn| {
            let (low, high) = page_bounds(visible_from, cursor);
            let fetch = limit as usize + 1;
            let newest_first = !matches!(cursor, Cursor::After(_));
            // One snapshot for the room, the index and the table's tail.
            let tx = CachedTx::deferred(conn)?;
            let rows = match RoomScan::find(&tx, &room)? {
                Some(scan) => scan.messages(&tx, low, high, fetch, newest_first)?,
                None => Vec::new(),
            };
            tx.commit()?;
            Ok(page_from_scan(rows, cursor, limit))
        })
        .await
    }

    pub async fn room(&self, room: &str) -> Result<Option<RoomInfo>, StoreError> {
        let room = room.to_owned();
        self.read(move |conn| {
            conn.prepare_cached(&format!("SELECT {ROOM_COLUMNS} FROM rooms WHERE id = ?1"))?
                .query_row([room], room_from_row)
                .optional()
        })
        .await
    }

    pub async fn rooms_of(&self, token_hash: &str) -> Result<Vec<RoomSummary>, StoreError> {
        let token_hash = token_hash.to_owned();
        self.read(move |conn| {
            let tx = CachedTx::deferred(conn)?;
            // One row per room of theirs: the participant, the room's number, the room.
            let rooms = tx
                .prepare_cached(&format!(
                    "SELECT {USER_COLUMNS}, r.room_no, {ROOM_COLUMNS} FROM {USERS}
                     WHERE u.token_hash = ?1"
                ))?
                .query_map([&token_hash], |row| {
                    Ok((
                        participant_from_row(row)?,
                        row.get::<_, i64>(USER_COLUMN_COUNT)?,
                        room_from_row_at(row, USER_COLUMN_COUNT + 1)?,
                    ))
                })?
                .collect::<Result<Vec<_>, _>>()?;
            let mut summaries = Vec::with_capacity(rooms.len());
            for (participant, room_no, room) in rooms {
                let room_id: Arc<str> = participant.room.as_str().into();
                let scan = RoomScan {
                    room: &room_id,
                    room_no,
                    next_seq: room.next_seq,
                };
                let last_message = scan
                    .messages(&tx, participant.first_seq, i64::MAX, 1, true)?
                    .pop();
                summaries.push(RoomSummary {
                    room,
                    participant,
                    last_message,
                });
            }
            tx.commit()?;
            super::newest_activity_first(&mut summaries);
            Ok(summaries)
        })
        .await
    }

    pub async fn erase_room(&self, room: &str) -> Result<bool, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.write(
            Request::Erase {
                room: room.to_owned(),
            },
            Reply::Erase(reply),
        )
        .await?;
        answered(answer).await
    }

    pub async fn health(&self) -> Result<(), StoreError> {
        if self.shared.writes.is_closed() {
            return Err(StoreError::Unavailable(
                "the SQLite writer thread has stopped".to_owned(),
            ));
        }
        self.read(|conn| conn.query_row("SELECT count(*) FROM rooms", [], |_| Ok(())))
            .await
    }

    async fn write(&self, request: Request, reply: Reply) -> Result<(), StoreError> {
        self.shared
            .writes
            .send(WriteOp { request, reply })
            .await
            .map_err(|_| writer_gone())
    }

    async fn read<T, F>(&self, query: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let shared = Arc::clone(&self.shared);
        tokio::task::spawn_blocking(move || shared.readers.with(query))
            .await
            .map_err(|e| StoreError::Unavailable(format!("SQLite read task failed: {e}")))?
    }
}

/// Idle read-only connections, reused so that a read costs no `open`.
#[derive(Debug)]
struct ReadPool {
    path: PathBuf,
    /// A std mutex: held only to push or pop, never across a query or an `.await`.
    idle: Mutex<Vec<Connection>>,
}

impl ReadPool {
    fn with<T>(
        &self,
        query: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, StoreError> {
        let pooled = self.idle.lock().ok().and_then(|mut idle| idle.pop());
        let conn = match pooled {
            Some(conn) => conn,
            None => open_reader(&self.path).map_err(unavailable)?,
        };
        let result = query(&conn).map_err(unavailable);
        // A connection that just failed may be broken: let it go rather than pool it.
        if result.is_ok()
            && let Ok(mut idle) = self.idle.lock()
            && idle.len() < READ_POOL
        {
            idle.push(conn);
        }
        result
    }
}

fn open_checkpointer(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    Ok(conn)
}

/// Copies committed WAL frames back into the database file every [`CHECKPOINT_EVERY`],
/// on its own thread and connection: a passive checkpoint runs alongside the writer, so
/// commits never wait behind the page copies and the `fsync`s.
///
/// Under steady writes such a checkpoint never reaches the WAL's end (a batch commits
/// meanwhile), and the WAL can only start over once one does. When it holds
/// [`RESTART_FRAMES`], a second pass catches up with what was committed during the
/// first and `close_wal` asks the writer for the rest: a checkpoint between two of its
/// batches, with only the last few milliseconds' frames left to copy. (The writer's own
/// automatic checkpoint, which did that at 16,384 frames with up to 50 ms of frames to
/// copy, stalled it 6–11 ms three times a second at 95,000 msg/s.)
fn run_checkpointer(conn: Connection, stop: std::sync::mpsc::Receiver<()>, close_wal: &AtomicBool) {
    let passive = |conn: &Connection| {
        passive_checkpoint(conn).inspect_err(|e| {
            tracing::warn!(error = %e, "SQLite checkpoint failed; the writer's own will take over");
        })
    };
    while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = stop.recv_timeout(CHECKPOINT_EVERY)
    {
        let Ok(frames) = passive(&conn) else { continue };
        if frames < RESTART_FRAMES || close_wal.load(Ordering::Acquire) {
            continue;
        }
        // What the writer's checkpoint would flush is flushed here first, alongside its
        // commits: the pages copied so far, then the WAL with the second pass.
        if let Err(e) = sync_database_file(&conn) {
            tracing::warn!(error = %e, "syncing the SQLite database file failed");
        }
        if passive(&conn).is_ok() {
            close_wal.store(true, Ordering::Release);
        }
    }
}

/// `fsync`s the database file through SQLite's own handle on it (a descriptor of our
/// own would, once closed, release every POSIX lock SQLite holds on the file).
fn sync_database_file(conn: &Connection) -> rusqlite::Result<()> {
    use rusqlite::ffi;
    let failed = |rc| rusqlite::Error::SqliteFailure(ffi::Error::new(rc), None);
    let mut file: *mut ffi::sqlite3_file = std::ptr::null_mut();
    // SAFETY: `conn`'s handle is valid while `conn` is borrowed, and only this thread
    // uses it; FILE_POINTER writes the main database's file object into `file`.
    let rc = unsafe {
        ffi::sqlite3_file_control(
            conn.handle(),
            c"main".as_ptr(),
            ffi::SQLITE_FCNTL_FILE_POINTER,
            (&raw mut file).cast(),
        )
    };
    if rc != ffi::SQLITE_OK {
        return Err(failed(rc));
    }
    // SAFETY: `file`, when set, is the open file object of `conn` (open as long as the
    // connection is); its methods are the VFS's, `xSync` among them.
    let rc = unsafe {
        match file
            .as_ref()
            .and_then(|f| f.pMethods.as_ref())
            .and_then(|m| m.xSync)
        {
            Some(sync) => sync(file, ffi::SQLITE_SYNC_NORMAL),
            None => ffi::SQLITE_OK,
        }
    };
    match rc {
        ffi::SQLITE_OK => Ok(()),
        rc => Err(failed(rc)),
    }
}

/// The writer's part of starting the WAL over: a checkpoint while it writes nothing, so
/// it reaches the WAL's end (unless a reader still uses older frames: then the next
/// request tries again).
fn close_wal(conn: &Connection) {
    if let Err(e) = passive_checkpoint(conn) {
        tracing::warn!(error = %e, "SQLite checkpoint on the writer failed");
    }
}

/// A passive checkpoint on `conn`: copies back what it can without waiting for anyone;
/// returns how many frames the WAL holds.
fn passive_checkpoint(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| row.get(1))
}

fn open_reader(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.set_prepared_statement_cache_capacity(32);
    Ok(conn)
}

#[derive(Debug, thiserror::Error)]
enum OpenError {
    #[error("cannot create the directory {0}: {1}")]
    Directory(PathBuf, std::io::Error),
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    #[error(
        "the database has schema version {found}, newer than this tete knows ({known}): upgrade tete"
    )]
    TooNew { found: i64, known: i64 },
}

fn open_writer(path: &Path) -> Result<Connection, OpenError> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| OpenError::Directory(parent.into(), e))?;
    }
    let conn = Connection::open(path)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // Before anything writes the file's header: a no-op on an existing file.
    conn.pragma_update(None, "page_size", PAGE_SIZE)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    // Group commit writes each dirty page once per batch; a large WAL between
    // checkpoints keeps a batch spread over many rooms from re-copying the same pages.
    conn.pragma_update(None, "cache_size", WRITER_CACHE_KIB)?;
    conn.pragma_update(None, "wal_autocheckpoint", CHECKPOINT_PAGES)?;
    conn.pragma_update(None, "journal_size_limit", JOURNAL_SIZE_LIMIT)?;
    conn.set_prepared_statement_cache_capacity(64);
    migrate(&conn)?;
    Ok(conn)
}

fn migrate(conn: &Connection) -> Result<(), OpenError> {
    let tx = CachedTx::immediate(conn)?;
    let found: i64 = tx.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    let known = MIGRATIONS.len() as i64;
    if found > known {
        return Err(OpenError::TooNew { found, known });
    }
    for (step, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", step as i64 + 1)?;
    }
    tx.commit()?;
    Ok(())
}

/// A transaction whose `BEGIN` and `COMMIT` are the connection's cached statements.
///
/// rusqlite's `Transaction` runs both through `execute_batch`, which has SQLite parse
/// them anew every time: 2.35 % of all instructions at 400 msg/s, where a batch holds a
/// few messages (callgrind, twelfth session). Like `Transaction`, it rolls back when dropped
/// uncommitted, or when its `COMMIT` failed.
struct CachedTx<'c> {
    conn: &'c Connection,
}

impl<'c> CachedTx<'c> {
    /// The writer's: `BEGIN IMMEDIATE` takes the write lock at once.
    fn immediate(conn: &'c Connection) -> rusqlite::Result<Self> {
        Self::begin(conn, "BEGIN IMMEDIATE")
    }

    /// A reader's: one snapshot for several statements.
    fn deferred(conn: &'c Connection) -> rusqlite::Result<Self> {
        Self::begin(conn, "BEGIN")
    }

    fn begin(conn: &'c Connection, sql: &str) -> rusqlite::Result<Self> {
        conn.prepare_cached(sql)?.execute([])?;
        Ok(CachedTx { conn })
    }

    fn commit(self) -> rusqlite::Result<()> {
        self.conn.prepare_cached("COMMIT")?.execute([])?;
        Ok(())
    }
}

impl std::ops::Deref for CachedTx<'_> {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        self.conn
    }
}

impl Drop for CachedTx<'_> {
    fn drop(&mut self) {
        if self.conn.is_autocommit() {
            return;
        }
        if let Err(e) = self
            .conn
            .prepare_cached("ROLLBACK")
            .and_then(|mut rollback| rollback.execute([]))
        {
            tracing::warn!(error = %e, "SQLite rollback failed");
        }
    }
}

/// A write, with where to send its answer.
struct WriteOp {
    request: Request,
    reply: Reply,
}

impl WriteOp {
    /// Appends `msg`, then runs `done` through this thread's inbox.
    fn append_then(msg: NewMessage, now_ms: i64, done: AppendDone) -> WriteOp {
        WriteOp {
            request: Request::Append { msg, now_ms },
            reply: Reply::AppendThen(done, Inbox::current()),
        }
    }
}

enum Request {
    Join {
        room: String,
        joining: Joining,
        now_ms: i64,
    },
    Append {
        msg: NewMessage,
        now_ms: i64,
    },
    Erase {
        room: String,
    },
}

enum Reply {
    Join(oneshot::Sender<Result<Participant, StoreError>>),
    Append(oneshot::Sender<Result<StoredMessage, StoreError>>),
    AppendThen(AppendDone, Option<Arc<Inbox>>),
    Erase(oneshot::Sender<Result<bool, StoreError>>),
}

/// What a write produced inside a transaction, kept until the commit says whether it holds.
enum Outcome {
    Joined(Participant),
    Appended(Result<StoredMessage, StoreError>),
    Erased(bool),
}

impl Reply {
    /// Answers the caller (who may have given up waiting: then nobody listens); a
    /// completion goes into `handoff`.
    fn answer(self, outcome: Outcome, handoff: &mut Handoff) {
        match (self, outcome) {
            (Reply::Join(reply), Outcome::Joined(participant)) => drop(reply.send(Ok(participant))),
            (Reply::Append(reply), Outcome::Appended(result)) => drop(reply.send(result)),
            (Reply::AppendThen(done, inbox), Outcome::Appended(result)) => {
                handoff.push(inbox, done, result)
            }
            (Reply::Erase(reply), Outcome::Erased(existed)) => drop(reply.send(Ok(existed))),
            (reply, _) => reply.fail(
                StoreError::Unavailable("SQLite writer answered the wrong request".to_owned()),
                handoff,
            ),
        }
    }

    fn fail(self, error: StoreError, handoff: &mut Handoff) {
        match self {
            Reply::Join(reply) => drop(reply.send(Err(error))),
            Reply::Append(reply) => drop(reply.send(Err(error))),
            Reply::AppendThen(done, inbox) => handoff.push(inbox, done, Err(error)),
            Reply::Erase(reply) => drop(reply.send(Err(error))),
        }
    }

    /// Answers a write the writer never took (it is gone): at once, a completion through
    /// its inbox still, after this thread's earlier completions.
    fn fail_unsent(self) {
        let mut handoff = Handoff::default();
        self.fail(writer_gone(), &mut handoff);
        handoff.deliver();
    }
}

/// The writer thread: runs until every [`SqliteStore`] handle is dropped.
///
/// While writes keep coming (the previous batch committed less than [`BUSY_GAP`] ago), a
/// batch that is still small waits up to [`GATHER_WINDOW`] for more before it commits:
/// at a few thousand messages a second, each from a different connection, that turns
/// one commit and one wake-up of this thread per message into one per window. A write
/// after a quiet spell commits at once.
fn run_writer(
    mut conn: Connection,
    mut queue: mpsc::Receiver<WriteOp>,
    close_wal_due: &AtomicBool,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut memory = WriterMemory::default();
    // The tail left by the last run is entered before the first write.
    enter_step(&conn, &mut memory, Instant::now());
    let mut last_commit: Option<Instant> = None;
    while let Some(first) = queue.blocking_recv() {
        batch.push(first);
        drain_into(&mut queue, &mut batch);
        let busy = last_commit.is_some_and(|at| at.elapsed() < BUSY_GAP);
        if busy && batch.len() < GATHER_ENOUGH {
            thread::sleep(GATHER_WINDOW);
            drain_into(&mut queue, &mut batch);
        }
        apply_batch(&mut conn, &mut memory, &mut batch);
        last_commit = Some(Instant::now());
        if close_wal_due.swap(false, Ordering::AcqRel) {
            close_wal(&conn);
        }
    }
}

/// Moves what is already queued into `batch`, up to [`MAX_BATCH`] operations.
fn drain_into(queue: &mut mpsc::Receiver<WriteOp>, batch: &mut Vec<WriteOp>) {
    while batch.len() < MAX_BATCH {
        match queue.try_recv() {
            Ok(op) => batch.push(op),
            Err(_) => break,
        }
    }
}

/// Applies `batch` (emptying it) in one transaction, then answers every caller; then,
/// if a step of entering runs in `message_index` is due, takes it in a transaction of
/// its own, so that the batch's callers do not wait for it.
fn apply_batch(conn: &mut Connection, memory: &mut WriterMemory, batch: &mut Vec<WriteOp>) {
    let mut handoff = Handoff::expecting(batch.len());
    answer_batch(conn, memory, batch, &mut handoff);
    handoff.deliver();
    let now = Instant::now();
    if memory.unindexed.due(now) {
        enter_step(conn, memory, now);
    }
}

/// Enters a step of runs in `message_index` in a transaction of its own. A failure
/// leaves the messages stored and unindexed (a read finds them in the table's tail);
/// the writer forgets the tail and the next step reads it again.
fn enter_step(conn: &Connection, memory: &mut WriterMemory, now: Instant) {
    let entered = CachedTx::immediate(conn).and_then(|tx| {
        memory.check(&tx)?;
        memory.unindexed.enter_if_due(&tx, now)?;
        tx.commit()
    });
    if let Err(e) = entered {
        memory.unindexed.forget();
        tracing::warn!(error = %e, "entering messages in the index failed; the next step tries again");
    }
}

/// Applies `batch` (emptying it) in one transaction; completions go into `handoff`.
fn answer_batch(
    conn: &mut Connection,
    memory: &mut WriterMemory,
    batch: &mut Vec<WriteOp>,
    handoff: &mut Handoff,
) {
    let tx = match CachedTx::immediate(conn).and_then(|tx| memory.check(&tx).map(|()| tx)) {
        Ok(tx) => tx,
        Err(e) => {
            let error = unavailable(e);
            batch
                .drain(..)
                .for_each(|op| op.reply.fail(error.clone(), handoff));
            return;
        }
    };
    let WriterMemory {
        rooms,
        authors,
        unindexed,
        ..
    } = memory;
    let mut held = Held {
        tail: unindexed.tail.take(),
        ..Held::default()
    };
    held.pending.reserve(batch.len());
    let mut done: Vec<(Reply, Option<Outcome>)> = Vec::with_capacity(batch.len());
    let mut failure = None;
    for WriteOp { request, reply } in batch.drain(..) {
        let slot = done.len();
        done.push((reply, None));
        if failure.is_none() {
            failure = apply(&tx, rooms, authors, &mut held, &mut done, slot, request).err();
        }
    }
    if failure.is_none() {
        failure = held.flush(&tx, rooms, &mut done).err();
    }
    unindexed.tail = held.tail.take();
    // The held statements borrow the transaction, which the commit consumes.
    drop(held);
    let committed = match failure {
        Some(error) => Err(error),
        None => rooms.flush(&tx).and_then(|()| tx.commit()),
    };
    match committed {
        Ok(()) => {
            for (reply, outcome) in done {
                match outcome {
                    Some(outcome) => reply.answer(outcome, handoff),
                    None => reply.fail(writer_gone(), handoff),
                }
            }
        }
        Err(e) => {
            // Authors numbered and room counters moved in the rolled-back transaction
            // are gone with it.
            authors.clear();
            rooms.clear();
            unindexed.forget();
            tracing::warn!(error = %e, "SQLite write batch failed; its callers get store_unavailable");
            let error = unavailable(e);
            done.into_iter()
                .for_each(|(reply, _)| reply.fail(error.clone(), handoff));
        }
    }
}

/// Applies one write inside the batch's transaction, its outcome into `done[slot]`. A
/// message is only numbered here; its row goes in at the next [`Held::flush`], which
/// runs before anything else that reads or changes the store.
fn apply<'tx>(
    tx: &'tx CachedTx<'_>,
    rooms: &mut RoomCache,
    authors: &mut AuthorCache,
    held: &mut Held<'tx>,
    done: &mut [(Reply, Option<Outcome>)],
    slot: usize,
    request: Request,
) -> rusqlite::Result<()> {
    let outcome = match request {
        Request::Append { msg, now_ms } => match pend(tx, rooms, authors, held, slot, msg, now_ms)?
        {
            None => return Ok(()),
            Some(refused) => Outcome::Appended(Err(refused)),
        },
        Request::Join {
            room,
            joining,
            now_ms,
        } => {
            held.flush(tx, rooms, done)?;
            Outcome::Joined(join(tx, rooms, &room, &joining, now_ms)?)
        }
        Request::Erase { room } => {
            held.flush(tx, rooms, done)?;
            authors.clear();
            // The tail is read again from the table, without the erased rows.
            held.tail = None;
            Outcome::Erased(erase(tx, rooms, &room)?)
        }
    };
    done[slot].1 = Some(outcome);
    Ok(())
}

/// How many rows one multi-row `INSERT` takes: a flush uses the largest that fits what
/// is left, so any number of messages is at most a few statements beyond `n / 64`.
const INSERT_ROWS: [usize; 7] = [64, 32, 16, 8, 4, 2, 1];

/// The largest of [`INSERT_ROWS`] that fits `left` rows (1 for none).
fn insert_size(left: usize) -> usize {
    INSERT_ROWS
        .iter()
        .position(|&rows| rows <= left)
        .unwrap_or(INSERT_ROWS.len() - 1)
}

/// The SQL of a multi-row statement for each size of [`INSERT_ROWS`], written once: the
/// statements are looked up in the connection's cache by their text at every batch, and
/// writing the texts anew each time was ~0.6 % of the instructions at flood (callgrind).
type MultiRowSql = LazyLock<[String; INSERT_ROWS.len()]>;

/// `INSERT OR IGNORE` of messages. `OR IGNORE` (not `ON CONFLICT DO NOTHING`, which leaves
/// `NOT NULL` to abort) means nothing in it can abort, so SQLite keeps no statement
/// journal for it.
static INSERT_MESSAGES: MultiRowSql = LazyLock::new(|| {
    multi_row_sql(
        "INSERT OR IGNORE INTO messages (room_no, seq, author_no, text, ts, client_id)",
        6,
    )
});

/// Runs (room_no, seq, msg_no) entered in `message_index`.
static ENTER_RUNS: MultiRowSql = LazyLock::new(|| {
    multi_row_sql(
        "INSERT OR IGNORE INTO message_index (room_no, seq, msg_no)",
        3,
    )
});

/// `head` followed by the `VALUES` of each size of [`INSERT_ROWS`].
fn multi_row_sql(head: &str, columns: usize) -> [String; INSERT_ROWS.len()] {
    INSERT_ROWS.map(|rows| format!("{head} {}", values_sql(columns, rows)))
}

/// `VALUES` and `rows` rows of `columns` parameters each.
fn values_sql(columns: usize, rows: usize) -> String {
    let mut sql = String::with_capacity(8 + rows * (2 * columns + 2));
    sql.push_str("VALUES ");
    for row in 0..rows {
        if row > 0 {
            sql.push(',');
        }
        sql.push('(');
        for column in 0..columns {
            if column > 0 {
                sql.push(',');
            }
            sql.push('?');
        }
        sql.push(')');
    }
    sql
}

/// A message numbered in this batch whose row is not inserted yet.
struct Pending {
    /// Its place in the batch's answers.
    slot: usize,
    room_no: i64,
    seq: i64,
    author_no: i64,
    now_ms: i64,
    /// The room's `last_message_at` before this message moved it.
    last_before: Option<i64>,
    msg: NewMessage,
}

impl Pending {
    fn into_stored(self) -> StoredMessage {
        StoredMessage {
            id: MessageId::new(self.msg.room.clone(), self.seq),
            seq: self.seq,
            msg: self.msg.text,
            user: self.msg.user,
            img: self.msg.avatar,
            ts: self.now_ms,
        }
    }
}

/// What a batch holds between its writes: statements prepared once per batch
/// (`prepare_cached` costs a hash of the SQL text and an `Arc<str>` of it per use, ~2 %
/// of a message's instructions when it ran once per message) and the messages numbered
/// but not yet inserted.
///
/// Messages go in by up to 64 rows per `INSERT`: each statement costs SQLite its
/// set-up, cursors and halt once, not once per message (about 2.5k instructions per row
/// in a batch of 64; bench/README.md).
#[derive(Default)]
struct Held<'tx> {
    insert_message: Option<rusqlite::CachedStatement<'tx>>,
    insert_rows: [Option<rusqlite::CachedStatement<'tx>>; INSERT_ROWS.len()],
    pending: Vec<Pending>,
    /// The writer's knowledge of the unindexed messages, taken for the batch: each row
    /// inserted is noted in it (`None`: unknown, nothing to note).
    tail: Option<Tail>,
}

impl<'tx> Held<'tx> {
    /// Inserts the pending messages and puts their outcomes into `done`.
    ///
    /// A row left out by a statement (a retried client id, or a seq somehow taken) means
    /// the numbers after it are off by one. Then what that statement inserted is deleted
    /// again (its rows are the table's last rowids: a new rowid is the largest plus
    /// one), the rooms' counters go back to before the messages still pending, and those
    /// are stored one at a time, as a lone message is, each duplicate answered with the
    /// stored message.
    fn flush(
        &mut self,
        tx: &'tx CachedTx<'_>,
        rooms: &mut RoomCache,
        done: &mut [(Reply, Option<Outcome>)],
    ) -> rusqlite::Result<()> {
        let order = self.room_order();
        let mut stored = 0;
        let mut short = None;
        while stored < order.len() {
            let left = order.len() - stored;
            let size = insert_size(left);
            let rows = INSERT_ROWS[size];
            let inserted = self.insert_chunk(tx, size, &order[stored..stored + rows])?;
            if inserted != rows {
                short = Some(inserted);
                break;
            }
            stored += rows;
        }
        let mut pending = std::mem::take(&mut self.pending);
        // Which rows went in: all of them, or those the statements before the short one
        // held (in room order).
        let mut went_in = Vec::new();
        if let Some(inserted) = short {
            if inserted > 0 {
                let before = tx.last_insert_rowid() - inserted as i64;
                let deleted = tx
                    .prepare_cached("DELETE FROM messages WHERE rowid > ?1")?
                    .execute([before])?;
                if deleted != inserted {
                    return Err(rusqlite::Error::SqliteFailure(
                        rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CORRUPT),
                        Some(format!(
                            "{inserted} messages inserted, {deleted} found after them"
                        )),
                    ));
                }
            }
            for &at in order[stored..].iter().rev() {
                let row = &pending[at];
                if let Some(room) = rooms.rooms.get_mut(&row.msg.room) {
                    room.retreat(row.last_before);
                }
            }
            went_in = vec![false; pending.len()];
            for &at in &order[..stored] {
                went_in[at] = true;
            }
        }
        // The rows left are stored one at a time in arrival order, which is each room's
        // own order (their seqs were given in it).
        for (at, row) in pending.drain(..).enumerate() {
            let slot = row.slot;
            let outcome = match went_in.get(at) {
                Some(false) => self.store_one(tx, rooms, row)?,
                _ => Ok(row.into_stored()),
            };
            done[slot].1 = Some(Outcome::Appended(outcome));
        }
        // Keeps the allocation for the next flush.
        self.pending = pending;
        Ok(())
    }

    /// The pending messages' places, each room's side by side in their order: a room's
    /// messages of a batch then get consecutive numbers, one run in `message_index`. The
    /// rows are bound in this order and stay where they are: moving the messages
    /// themselves into it (twice, through a vector of options) was ~0.8 % of the CPU at
    /// flood, on top of the sort of their keys.
    fn room_order(&self) -> Vec<usize> {
        let mut keys: Vec<(i64, usize)> = self
            .pending
            .iter()
            .enumerate()
            .map(|(at, row)| (row.room_no, at))
            .collect();
        if !keys.is_sorted() {
            keys.sort_unstable();
        }
        keys.into_iter().map(|(_, at)| at).collect()
    }

    /// Binds the pending messages at `rows` (places in `pending`) to the `size`-th
    /// multi-row statement and runs it; returns how many rows it inserted.
    fn insert_chunk(
        &mut self,
        tx: &'tx CachedTx<'_>,
        size: usize,
        rows: &[usize],
    ) -> rusqlite::Result<usize> {
        let statement = match &mut self.insert_rows[size] {
            Some(statement) => statement,
            None => self.insert_rows[size].insert(tx.prepare_cached(&INSERT_MESSAGES[size])?),
        };
        for (i, row) in rows.iter().map(|&at| &self.pending[at]).enumerate() {
            let at = i * 6;
            statement.raw_bind_parameter(at + 1, row.room_no)?;
            statement.raw_bind_parameter(at + 2, row.seq)?;
            statement.raw_bind_parameter(at + 3, row.author_no)?;
            statement.raw_bind_parameter(at + 4, &*row.msg.text)?;
            statement.raw_bind_parameter(at + 5, row.now_ms)?;
            statement.raw_bind_parameter(at + 6, row.msg.client_id.as_deref())?;
        }
        let inserted = statement.raw_execute()?;
        if inserted == rows.len()
            && let Some(tail) = &mut self.tail
        {
            // A statement's rows are numbered one after another, after the largest.
            let first = tx.last_insert_rowid() - rows.len() as i64 + 1;
            for (i, row) in rows.iter().map(|&at| &self.pending[at]).enumerate() {
                tail.note(row.room_no, row.seq, first + i as i64);
            }
        }
        Ok(inserted)
    }

    /// Stores one message with its own statement: a retried client id hits the unique
    /// index and inserts nothing, and only then is the stored message looked up.
    fn store_one(
        &mut self,
        tx: &'tx CachedTx<'_>,
        rooms: &mut RoomCache,
        mut row: Pending,
    ) -> rusqlite::Result<Result<StoredMessage, StoreError>> {
        let msg = &row.msg;
        let Some(room) = rooms.get(tx, &msg.room)? else {
            return Ok(Err(StoreError::RoomNotFound(msg.room.to_string())));
        };
        row.seq = room.next_seq;
        let room_no = room.room_no;
        let insert = match &mut self.insert_message {
            Some(insert) => insert,
            None => self.insert_message.insert(tx.prepare_cached(
                "INSERT INTO messages (room_no, seq, author_no, text, ts, client_id)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT DO NOTHING",
            )?),
        };
        let inserted = insert.execute(params![
            room.room_no,
            row.seq,
            row.author_no,
            &*msg.text,
            row.now_ms,
            msg.client_id,
        ])?;
        if inserted == 0 {
            let stored = tx
                .prepare_cached(&format!(
                    "SELECT {MESSAGE_COLUMNS} FROM {MESSAGES}
                     WHERE m.room_no = ?1 AND m.client_id = ?2"
                ))?
                .query_row(params![room.room_no, msg.client_id], |found| {
                    message_from_row(&msg.room, found)
                })
                .optional()?;
            return Ok(stored.ok_or_else(|| {
                StoreError::Corrupt(format!(
                    "message {} of room {} already exists",
                    row.seq, msg.room
                ))
            }));
        }
        room.advance(row.now_ms);
        if !std::mem::replace(&mut room.dirty, true) {
            rooms.dirty.push(Arc::clone(&msg.room));
        }
        if let Some(tail) = &mut self.tail {
            tail.note(room_no, row.seq, tx.last_insert_rowid());
        }
        Ok(Ok(row.into_stored()))
    }
}

/// Numbers a message and moves its room's counters; its row is inserted at the next
/// flush. `Some` refusal when the room does not exist.
fn pend<'tx>(
    tx: &'tx CachedTx<'_>,
    rooms: &mut RoomCache,
    authors: &mut AuthorCache,
    held: &mut Held<'tx>,
    slot: usize,
    msg: NewMessage,
    now_ms: i64,
) -> rusqlite::Result<Option<StoreError>> {
    let Some(room) = rooms.get(tx, &msg.room)? else {
        return Ok(Some(StoreError::RoomNotFound(msg.room.to_string())));
    };
    let room_no = room.room_no;
    let author_no = authors.number(tx, room_no, &msg)?;
    let (seq, last_before) = room.advance(now_ms);
    if !std::mem::replace(&mut room.dirty, true) {
        rooms.dirty.push(Arc::clone(&msg.room));
    }
    held.pending.push(Pending {
        slot,
        room_no,
        seq,
        author_no,
        now_ms,
        last_before,
        msg,
    });
    Ok(None)
}

/// What the writer remembers between batches, and the database version it is right for.
#[derive(Default)]
struct WriterMemory {
    rooms: RoomCache,
    authors: AuthorCache,
    /// `PRAGMA data_version` when the last batch began: it moves only when another
    /// connection (another process on the same file) commits.
    data_version: Option<i64>,
    unindexed: Unindexed,
}

impl WriterMemory {
    /// At the start of a batch, inside its transaction: forgets the rooms' counters if
    /// another connection has written since the last batch (they may have moved).
    fn check(&mut self, tx: &CachedTx<'_>) -> rusqlite::Result<()> {
        let version: i64 = tx
            .prepare_cached("PRAGMA data_version")?
            .query_row([], |row| row.get(0))?;
        if self.data_version != Some(version) {
            self.rooms.clear();
            self.unindexed.forget();
            self.data_version = Some(version);
        }
        if self.rooms.rooms.len() > RoomCache::MAX_ROOMS {
            self.rooms.clear();
        }
        Ok(())
    }
}

/// The messages stored but not entered in `message_index` yet (numbered above
/// `message_index_state.indexed_upto`), as far as the writer knows them.
#[derive(Default)]
struct Unindexed {
    /// `None` when unknown (at start, after a failed batch or an erase, after another
    /// connection wrote): the next batch enters the table's tail as it reads it.
    tail: Option<Tail>,
}

/// The unindexed messages this writer stored itself: how many, and where their runs
/// start (a run: messages of one room with consecutive numbers and consecutive seqs).
#[derive(Default)]
struct Tail {
    /// How many messages are numbered above `indexed_upto` (while this writer knows the
    /// tail, the messages' numbers follow one another).
    count: u64,
    /// (room_no, seq, msg_no) of each run's first message not taken into a step yet, in
    /// order.
    starts: std::collections::VecDeque<[i64; 3]>,
    /// The last message noted, which the next may continue.
    last: Option<[i64; 3]>,
    /// Entering runs, a step at a time, until half of [`INDEX_LAG`] wait.
    entering: bool,
    /// When the last step began.
    last_step: Option<Instant>,
    /// The step being entered, a part after each batch.
    step: Option<Step>,
}

impl Tail {
    fn note(&mut self, room_no: i64, seq: i64, msg_no: i64) {
        self.count += 1;
        let continues = self
            .last
            .is_some_and(|[r, s, m]| r == room_no && s + 1 == seq && m + 1 == msg_no);
        if !continues {
            self.starts.push_back([room_no, seq, msg_no]);
        }
        self.last = Some([room_no, seq, msg_no]);
    }
}

/// A step of runs being entered in `message_index` a part at a time: its runs sorted by
/// (room_no, seq), how many of them are in, and the number `indexed_upto` moves to once
/// all are. Until then readers meet entries above `indexed_upto` (see [`RoomScan`]).
struct Step {
    runs: Vec<[i64; 3]>,
    entered: usize,
    upto: i64,
    /// How many rooms' runs a part holds: a [`STEP_PARTS`]th of the step's rooms.
    rooms_per_part: usize,
}

impl Step {
    /// A step of `runs`, sorted by (room_no, seq), that moves `indexed_upto` to `upto`.
    fn new(runs: Vec<[i64; 3]>, upto: i64) -> Step {
        let rooms = 1 + runs.windows(2).filter(|w| w[0][0] != w[1][0]).count();
        Step {
            runs,
            entered: 0,
            upto,
            rooms_per_part: rooms.div_ceil(STEP_PARTS),
        }
    }

    /// The runs of the next part: those of the next `rooms_per_part` rooms, at most
    /// [`PART_ENTRIES`] of them; every run left when `all`.
    fn next_part(&self, all: bool) -> &[[i64; 3]] {
        let rest = &self.runs[self.entered..];
        if all {
            return rest;
        }
        let mut rooms = 0;
        let mut room = None;
        let end = rest
            .iter()
            .take(PART_ENTRIES)
            .position(|&[room_no, _, _]| {
                if room != Some(room_no) {
                    rooms += 1;
                    room = Some(room_no);
                }
                rooms > self.rooms_per_part
            })
            .unwrap_or(rest.len().min(PART_ENTRIES));
        &rest[..end]
    }
}

impl Unindexed {
    fn forget(&mut self) {
        self.tail = None;
    }

    /// Whether a step's part is due after a batch: always while the tail is unknown or
    /// a step is under way; once [`INDEX_LAG`] messages wait, a new step every
    /// [`STEP_GAP`] (as soon as the last ends if twice as many wait) until half as many
    /// wait.
    fn due(&self, now: Instant) -> bool {
        let Some(tail) = &self.tail else {
            return true;
        };
        tail.step.is_some()
            || (tail.entering || tail.count >= INDEX_LAG)
                && (tail.count >= 2 * INDEX_LAG
                    || tail
                        .last_step
                        .is_none_or(|at| now.duration_since(at) >= STEP_GAP))
    }

    /// In a transaction of its own, after a batch: once [`INDEX_LAG`] messages wait,
    /// takes the oldest [`ENTER_STEP`] runs as a step (the next ones at the next steps,
    /// until half as many wait) and enters its next part in `message_index`, moving
    /// `indexed_upto` with the last part (every part at once while twice [`INDEX_LAG`]
    /// wait). When the writer does not know the tail, enters all of it as it reads it.
    /// What it changes in memory holds once the transaction commits: a failure forgets
    /// the tail, and the step with it.
    fn enter_if_due(&mut self, tx: &CachedTx<'_>, now: Instant) -> rusqlite::Result<()> {
        let Some(tail) = &mut self.tail else {
            let last = enter_tail(tx)?;
            self.tail = Some(Tail {
                last,
                ..Tail::default()
            });
            return Ok(());
        };
        let last = tail.last.map_or(0, |[_, _, msg_no]| msg_no);
        if tail.step.is_none() {
            tail.entering = tail.entering || tail.count >= INDEX_LAG;
            if !tail.entering {
                return Ok(());
            }
            let taken = tail.starts.len().min(ENTER_STEP);
            // Entered at the step's end: every message before the first run still waiting.
            let upto = tail
                .starts
                .get(taken)
                .map_or(last, |[_, _, msg_no]| msg_no - 1);
            let mut runs: Vec<[i64; 3]> = tail.starts.drain(..taken).collect();
            runs.sort_unstable();
            tail.step = Some(Step::new(runs, upto));
            tail.last_step = Some(now);
        }
        let Some(step) = &mut tail.step else {
            return Ok(());
        };
        let part = step.next_part(tail.count >= 2 * INDEX_LAG);
        enter_runs(tx, part)?;
        step.entered += part.len();
        if step.entered == step.runs.len() {
            set_indexed_upto(tx, step.upto)?;
            tail.count = u64::try_from(last - step.upto).unwrap_or(0);
            tail.entering = tail.count >= INDEX_LAG / 2;
            tail.step = None;
        }
        Ok(())
    }
}

/// Enters the messages above `indexed_upto` in `message_index`: one entry where a run
/// starts, a run being messages of one room with consecutive numbers and consecutive
/// seqs (a room's messages of one batch). The table's tail is read in order, starting at
/// the last message entered before, which may be continued.
///
/// An entry too many only splits a run, so a message whose predecessor is gone (erased)
/// starts one, and the entries of a step that was under way (above `indexed_upto`) may
/// stay. `OR IGNORE`: such an entry is entered again; and a seq is never given twice
/// (the writer numbers from the room's own counter), but should a row ever repeat one,
/// history keeps the first rather than every later batch failing.
fn enter_tail(tx: &CachedTx<'_>) -> rusqlite::Result<Option<[i64; 3]>> {
    let upto = indexed_upto(tx)?;
    let mut scan = tx.prepare_cached(
        "SELECT msg_no, room_no, seq FROM messages WHERE msg_no >= ?1 ORDER BY msg_no",
    )?;
    let mut rows = scan.query([upto])?;
    let mut tail = Tail::default();
    while let Some(row) = rows.next()? {
        let (msg_no, room_no, seq) = (row.get(0)?, row.get(1)?, row.get(2)?);
        if msg_no > upto {
            tail.note(room_no, seq, msg_no);
        } else {
            tail.last = Some([room_no, seq, msg_no]);
        }
    }
    let mut runs: Vec<[i64; 3]> = tail.starts.into();
    runs.sort_unstable();
    enter_runs(tx, &runs)?;
    set_indexed_upto(tx, tail.last.map_or(upto, |[_, _, msg_no]| msg_no))?;
    Ok(tail.last)
}

/// Enters `runs` (room_no, seq, msg_no of each run's first message, sorted) in
/// `message_index`.
fn enter_runs(tx: &CachedTx<'_>, runs: &[[i64; 3]]) -> rusqlite::Result<()> {
    // In key order, so that a room's entries go into its leaf pages one after the other,
    // by up to 64 rows per statement (SQLite's set-up per statement costs more than
    // inserting such a small row).
    let mut rest = runs;
    while !rest.is_empty() {
        let size = insert_size(rest.len());
        let (chunk, after) = rest.split_at(INSERT_ROWS[size]);
        let mut enter = tx.prepare_cached(&ENTER_RUNS[size])?;
        for (at, value) in chunk.iter().flatten().enumerate() {
            enter.raw_bind_parameter(at + 1, *value)?;
        }
        enter.raw_execute()?;
        rest = after;
    }
    Ok(())
}

/// Records `upto` as the number of the last message entered in `message_index`.
fn set_indexed_upto(tx: &CachedTx<'_>, upto: i64) -> rusqlite::Result<()> {
    tx.prepare_cached("UPDATE message_index_state SET indexed_upto = ?1")?
        .execute([upto])?;
    Ok(())
}

/// The rooms' counters (`next_seq`, `message_count`, `last_message_at`), kept across
/// batches: read once per room (not once per room and batch), moved by each message,
/// and written once per room at the end of each batch that moved them. Only this
/// writer changes them while `data_version` stands still; a failed batch forgets them.
#[derive(Default)]
struct RoomCache {
    rooms: HashMap<Arc<str>, CachedRoom>,
    /// The rooms whose counters this batch moved.
    dirty: Vec<Arc<str>>,
}

struct CachedRoom {
    room_no: i64,
    next_seq: i64,
    message_count: i64,
    last_message_at: Option<i64>,
    dirty: bool,
}

impl CachedRoom {
    /// Takes the next seq for a message stored at `now_ms`; returns it and the room's
    /// `last_message_at` before.
    fn advance(&mut self, now_ms: i64) -> (i64, Option<i64>) {
        let seq = self.next_seq;
        let before = self.last_message_at;
        self.next_seq += 1;
        self.message_count += 1;
        self.last_message_at = Some(before.map_or(now_ms, |at| at.max(now_ms)));
        (seq, before)
    }

    /// Undoes the last [`advance`](Self::advance), given what it returned.
    fn retreat(&mut self, last_before: Option<i64>) {
        self.next_seq -= 1;
        self.message_count -= 1;
        self.last_message_at = last_before;
    }
}

impl RoomCache {
    /// Beyond this many rooms the memory starts again from nothing.
    const MAX_ROOMS: usize = 64 * 1024;

    fn clear(&mut self) {
        self.rooms.clear();
        self.dirty.clear();
    }

    fn get<'a>(
        &'a mut self,
        tx: &CachedTx<'_>,
        room: &str,
    ) -> rusqlite::Result<Option<&'a mut CachedRoom>> {
        if !self.rooms.contains_key(room) {
            let loaded = tx
                .prepare_cached(
                    "SELECT room_no, next_seq, message_count, last_message_at
                     FROM rooms WHERE id = ?1",
                )?
                .query_row([room], |row| {
                    Ok(CachedRoom {
                        room_no: row.get(0)?,
                        next_seq: row.get(1)?,
                        message_count: row.get(2)?,
                        last_message_at: row.get(3)?,
                        dirty: false,
                    })
                })
                .optional()?;
            match loaded {
                Some(cached) => self.rooms.insert(room.into(), cached),
                None => return Ok(None),
            };
        }
        Ok(self.rooms.get_mut(room))
    }

    /// Remembers a room this batch has just created.
    fn insert_new(&mut self, room: &str, room_no: i64) {
        self.rooms.insert(
            room.into(),
            CachedRoom {
                room_no,
                next_seq: 1,
                message_count: 0,
                last_message_at: None,
                dirty: false,
            },
        );
    }

    /// Writes the counters this batch moved (a room erased since has none to write).
    fn flush(&mut self, tx: &CachedTx<'_>) -> rusqlite::Result<()> {
        if self.dirty.is_empty() {
            return Ok(());
        }
        // One statement per room: an `UPDATE … FROM (VALUES …)` of many rooms had SQLite
        // build an ephemeral table for the join, which cost more than it saved (callgrind).
        let mut update = tx.prepare_cached(
            "UPDATE rooms SET next_seq = ?2, message_count = ?3, last_message_at = ?4
             WHERE room_no = ?1",
        )?;
        for id in self.dirty.drain(..) {
            let Some(room) = self.rooms.get_mut(&id) else {
                continue;
            };
            update.raw_bind_parameter(1, room.room_no)?;
            update.raw_bind_parameter(2, room.next_seq)?;
            update.raw_bind_parameter(3, room.message_count)?;
            update.raw_bind_parameter(4, room.last_message_at)?;
            update.raw_execute()?;
            room.dirty = false;
        }
        Ok(())
    }
}

/// The writer's memory of author numbers, kept across batches: one per room and token
/// recently written, with the name and avatar that number stands for.
///
/// An author row is never changed, and removed only with its room, whose `room_no` is
/// never reused; so a number remembered here stays right for as long as the room
/// exists, whichever process writes. It is forgotten when a batch fails (the row may
/// have been rolled back) and on an erase, and the whole memory is dropped when it
/// holds [`AuthorCache::MAX_ROOMS`] rooms.
#[derive(Default)]
struct AuthorCache {
    rooms: HashMap<i64, Vec<CachedAuthor>>,
}

struct CachedAuthor {
    token_hash: Arc<str>,
    user: Arc<str>,
    avatar: Arc<str>,
    author_no: i64,
}

impl AuthorCache {
    const MAX_ROOMS: usize = 64 * 1024;

    fn clear(&mut self) {
        self.rooms.clear();
    }

    /// The number of the author of `msg` in room `room_no`, numbering them if new.
    fn number(
        &mut self,
        tx: &CachedTx<'_>,
        room_no: i64,
        msg: &NewMessage,
    ) -> rusqlite::Result<i64> {
        let same = |a: &Arc<str>, b: &Arc<str>| Arc::ptr_eq(a, b) || a == b;
        if let Some(known) = self.rooms.get(&room_no).and_then(|authors| {
            authors.iter().find(|a| {
                same(&a.token_hash, &msg.token_hash)
                    && same(&a.user, &msg.user)
                    && same(&a.avatar, &msg.avatar)
            })
        }) {
            return Ok(known.author_no);
        }
        let params = params![room_no, msg.token_hash, msg.user, msg.avatar];
        let found = tx
            .prepare_cached(
                "SELECT author_no FROM authors
                 WHERE room_no = ?1 AND token_hash = ?2 AND user = ?3 AND avatar = ?4",
            )?
            .query_row(params, |row| row.get(0))
            .optional()?;
        let author_no = match found {
            Some(author_no) => author_no,
            None => {
                tx.prepare_cached(
                    "INSERT INTO authors (room_no, token_hash, user, avatar) VALUES (?1, ?2, ?3, ?4)",
                )?
                .execute(params)?;
                tx.last_insert_rowid()
            }
        };
        if self.rooms.len() >= Self::MAX_ROOMS && !self.rooms.contains_key(&room_no) {
            self.rooms.clear();
        }
        let authors = self.rooms.entry(room_no).or_default();
        // A token has one name and avatar per room: a new pair replaces the old.
        authors.retain(|a| a.token_hash != msg.token_hash);
        authors.push(CachedAuthor {
            token_hash: Arc::clone(&msg.token_hash),
            user: Arc::clone(&msg.user),
            avatar: Arc::clone(&msg.avatar),
            author_no,
        });
        Ok(author_no)
    }
}

/// Seats a person. Someone new is one `INSERT` (the common case: no `UPDATE` that
/// cannot match first); someone returning keeps the name, avatar and `first_seq` they
/// joined with, and only `last_seen_at` moves. The room is created on its first join.
/// (Upserts with `RETURNING` cost SQLite about three plain statements each.)
fn join(
    tx: &CachedTx<'_>,
    rooms: &mut RoomCache,
    room: &str,
    joining: &Joining,
    now_ms: i64,
) -> rusqlite::Result<Participant> {
    let (room_no, first_seq) = match rooms.get(tx, room)? {
        Some(cached) => (cached.room_no, cached.next_seq),
        None => {
            tx.prepare_cached(
                "INSERT INTO rooms (id, created_at, message_count, next_seq) VALUES (?1, ?2, 0, 1)",
            )?
            .execute(params![room, now_ms])?;
            // `room_no` is the rowid.
            let room_no = tx.last_insert_rowid();
            rooms.insert_new(room, room_no);
            (room_no, 1)
        }
    };
    let inserted = tx
        .prepare_cached(
            "INSERT INTO users (room_no, token_hash, name, email_hash, avatar, first_seq,
                                joined_at, last_seen_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7) ON CONFLICT (room_no, token_hash) DO NOTHING",
        )?
        .execute(params![
            room_no,
            joining.token_hash,
            joining.name,
            joining.email_hash,
            joining.avatar,
            first_seq,
            now_ms,
        ])?;
    if inserted == 0 {
        tx.prepare_cached(
            "UPDATE users SET last_seen_at = ?3 WHERE room_no = ?1 AND token_hash = ?2",
        )?
        .execute(params![room_no, joining.token_hash, now_ms])?;
        if let Some(participant) = find_participant(tx, room, &joining.token_hash)? {
            return Ok(participant);
        }
    }
    Ok(Participant {
        room: room.to_owned(),
        token_hash: joining.token_hash.clone(),
        name: joining.name.clone(),
        email_hash: joining.email_hash.clone(),
        avatar: joining.avatar.clone(),
        first_seq,
        joined_at: now_ms,
        last_seen_at: now_ms,
    })
}

fn erase(tx: &CachedTx<'_>, rooms: &mut RoomCache, room: &str) -> rusqlite::Result<bool> {
    rooms.rooms.remove(room);
    if let Some(scan) = RoomScan::find(tx, &room.into())? {
        scan.delete(tx)?;
    }
    tx.prepare_cached(&format!("DELETE FROM authors WHERE room_no = {ROOM_NO}"))?
        .execute([room])?;
    tx.prepare_cached(&format!("DELETE FROM users WHERE room_no = {ROOM_NO}"))?
        .execute([room])?;
    let erased = tx
        .prepare_cached("DELETE FROM rooms WHERE id = ?1")?
        .execute([room])?;
    Ok(erased > 0)
}

/// Where a room's messages are: the runs `message_index` gives, then the table's tail
/// above `indexed_upto`.
///
/// A run starts at an entry (seq S, number M) and holds the room's messages S, S + 1, …
/// at numbers M, M + 1, … up to the next entry's seq or the last one entered; so a run's
/// rows are one range of `msg_no`, each checked to be the room's with `seq - msg_no =
/// S - M`. A room's messages are numbered in the order of their seqs (the writer numbers
/// both as it stores them), so its tail is newer than anything entered.
///
/// Entries above `indexed_upto` exist while the writer enters a step in parts (see
/// [`Step`]): their runs' messages are still read from the tail, as a run's numbers stop
/// at `indexed_upto`; such an entry only ends the run before it.
struct RoomScan<'a> {
    room: &'a Arc<str>,
    room_no: i64,
    /// The room's next seq: no message of it has this seq or a larger one.
    next_seq: i64,
}

/// A `message_index` entry's (seq, msg_no), from a row that selects them in that order.
fn seq_and_number(row: &rusqlite::Row<'_>) -> rusqlite::Result<(i64, i64)> {
    Ok((row.get(0)?, row.get(1)?))
}

impl<'a> RoomScan<'a> {
    /// The room called `room`, or `None` when there is none.
    fn find(conn: &Connection, room: &'a Arc<str>) -> rusqlite::Result<Option<Self>> {
        conn.prepare_cached("SELECT room_no, next_seq FROM rooms WHERE id = ?1")?
            .query_row([&**room], |row| {
                Ok(RoomScan {
                    room,
                    room_no: row.get(0)?,
                    next_seq: row.get(1)?,
                })
            })
            .optional()
    }

    /// The room's messages with seq in `[low, high)`: the `fetch` newest, newest first,
    /// or the `fetch` oldest, oldest first.
    fn messages(
        &self,
        conn: &Connection,
        low: i64,
        high: i64,
        fetch: usize,
        newest_first: bool,
    ) -> rusqlite::Result<Vec<StoredMessage>> {
        let high = high.min(self.next_seq);
        if low >= high || fetch == 0 {
            return Ok(Vec::new());
        }
        let upto = indexed_upto(conn)?;
        let order = if newest_first { "DESC" } else { "ASC" };
        // The table's tail: newest first, its messages come before any entered; oldest
        // first, after them.
        let tail = |wanted: usize| {
            conn.prepare_cached(&format!(
                "SELECT {MESSAGE_COLUMNS} FROM {MESSAGES}
                 WHERE m.msg_no > ?1 AND m.room_no = ?2 AND m.seq >= ?3 AND m.seq < ?4
                 ORDER BY m.seq {order} LIMIT ?5"
            ))?
            .query_map(
                params![upto, self.room_no, low, high, wanted as i64],
                |row| message_from_row(self.room, row),
            )?
            .collect::<rusqlite::Result<Vec<_>>>()
        };
        // The room's messages in the tail come after its newest entry's seq: a range that
        // ends at or before it (an older page) needs no scan of the tail. While a step
        // is entered in parts, that entry may lie above `upto`: its run's messages are
        // in the tail, which is then scanned whatever the range.
        let newest_entry: Option<(i64, i64)> = conn
            .prepare_cached(
                "SELECT seq, msg_no FROM message_index WHERE room_no = ?1
                 ORDER BY seq DESC LIMIT 1",
            )?
            .query_row([self.room_no], seq_and_number)
            .optional()?;
        let tail_in_range =
            newest_entry.is_none_or(|(seq, msg_no)| msg_no > upto || high > seq.saturating_add(1));
        let mut found = if newest_first && tail_in_range {
            tail(fetch)?
        } else {
            Vec::new()
        };
        let mut wanted = fetch - found.len();
        let mut run_rows = conn.prepare_cached(&format!(
            "SELECT {MESSAGE_COLUMNS} FROM {MESSAGES}
             WHERE m.msg_no >= ?1 AND m.msg_no <= ?2 AND m.room_no = ?3
             AND m.seq - m.msg_no = ?4
             ORDER BY m.msg_no {order} LIMIT ?5"
        ))?;
        let mut take_run = |found: &mut Vec<StoredMessage>,
                            run: Run,
                            wanted: &mut usize|
         -> rusqlite::Result<()> {
            let Some((first, last)) = run.numbers(low, upto) else {
                return Ok(());
            };
            let before = found.len();
            for row in run_rows.query_map(
                params![first, last, self.room_no, run.offset(), *wanted as i64],
                |row| message_from_row(self.room, row),
            )? {
                found.push(row?);
            }
            *wanted = wanted.saturating_sub(found.len() - before);
            Ok(())
        };
        if newest_first {
            let mut entries = conn.prepare_cached(
                "SELECT seq, msg_no FROM message_index WHERE room_no = ?1 AND seq < ?2
                 ORDER BY seq DESC",
            )?;
            let mut entries = entries.query(params![self.room_no, high])?;
            let mut end = high;
            while wanted > 0 {
                let Some(entry) = entries.next()? else { break };
                let run = Run {
                    seq: entry.get(0)?,
                    msg_no: entry.get(1)?,
                    end,
                };
                take_run(&mut found, run, &mut wanted)?;
                if run.seq <= low {
                    break;
                }
                end = run.seq;
            }
        } else {
            // The run holding `low`, then those after it.
            let mut next: Option<(i64, i64)> = conn
                .prepare_cached(
                    "SELECT seq, msg_no FROM message_index WHERE room_no = ?1 AND seq <= ?2
                     ORDER BY seq DESC LIMIT 1",
                )?
                .query_row(params![self.room_no, low], seq_and_number)
                .optional()?;
            let mut entries = conn.prepare_cached(
                "SELECT seq, msg_no FROM message_index WHERE room_no = ?1 AND seq > ?2
                 AND seq < ?3 ORDER BY seq",
            )?;
            let mut entries = entries.query(params![self.room_no, low, high])?;
            if next.is_none() {
                next = entries.next()?.map(seq_and_number).transpose()?;
            }
            while wanted > 0 {
                let Some((seq, msg_no)) = next else { break };
                next = entries.next()?.map(seq_and_number).transpose()?;
                let end = next.map_or(high, |(seq, _)| seq);
                take_run(&mut found, Run { seq, msg_no, end }, &mut wanted)?;
            }
            if wanted > 0 && tail_in_range {
                found.extend(tail(wanted)?);
            }
        }
        Ok(found)
    }

    /// Deletes the room's messages and its entries in `message_index`.
    fn delete(&self, tx: &CachedTx<'_>) -> rusqlite::Result<()> {
        let upto = indexed_upto(tx)?;
        let entries = tx
            .prepare_cached(
                "SELECT seq, msg_no FROM message_index WHERE room_no = ?1 ORDER BY seq",
            )?
            .query_map([self.room_no], seq_and_number)?
            .collect::<Result<Vec<_>, _>>()?;
        let mut delete = tx.prepare_cached(
            "DELETE FROM messages WHERE msg_no >= ?1 AND msg_no <= ?2 AND room_no = ?3
             AND seq - msg_no = ?4",
        )?;
        for (i, &(seq, msg_no)) in entries.iter().enumerate() {
            let end = entries.get(i + 1).map_or(self.next_seq, |&(next, _)| next);
            let run = Run { seq, msg_no, end };
            if let Some((first, last)) = run.numbers(seq, upto) {
                delete.execute(params![first, last, self.room_no, run.offset()])?;
            }
        }
        tx.prepare_cached("DELETE FROM messages WHERE msg_no > ?1 AND room_no = ?2")?
            .execute(params![upto, self.room_no])?;
        tx.prepare_cached("DELETE FROM message_index WHERE room_no = ?1")?
            .execute([self.room_no])?;
        // Numbers freed at the table's end are given again: they must count as not
        // entered yet.
        tx.prepare_cached(
            "UPDATE message_index_state SET indexed_upto =
                 min(indexed_upto, (SELECT coalesce(max(msg_no), 0) FROM messages))",
        )?
        .execute([])?;
        Ok(())
    }
}

/// A run of one room's messages (see [`RoomScan`]): its first seq and number, and the
/// seq it ends before (the next run's first, or the room's next seq).
#[derive(Clone, Copy)]
struct Run {
    seq: i64,
    msg_no: i64,
    end: i64,
}

impl Run {
    /// `seq - msg_no` of every message in the run.
    fn offset(self) -> i64 {
        self.seq - self.msg_no
    }

    /// The numbers of its messages with seq at least `low`, none above `upto` (the last
    /// number entered); `None` when there are none.
    fn numbers(self, low: i64, upto: i64) -> Option<(i64, i64)> {
        let from = self.seq.max(low);
        if from >= self.end {
            return None;
        }
        let first = self.msg_no.saturating_add(from - self.seq);
        let last = self
            .msg_no
            .saturating_add(self.end.saturating_sub(1).saturating_sub(self.seq))
            .min(upto);
        (first <= last).then_some((first, last))
    }
}

/// The number of the last message entered in `message_index`.
fn indexed_upto(conn: &Connection) -> rusqlite::Result<i64> {
    conn.prepare_cached("SELECT indexed_upto FROM message_index_state")?
        .query_row([], |row| row.get(0))
}

fn find_participant(
    conn: &Connection,
    room: &str,
    token_hash: &str,
) -> rusqlite::Result<Option<Participant>> {
    conn.prepare_cached(&format!(
        "SELECT {USER_COLUMNS} FROM {USERS} WHERE r.id = ?1 AND u.token_hash = ?2"
    ))?
    .query_row([room, token_hash], participant_from_row)
    .optional()
}

/// A message of `room` from a row of [`MESSAGE_COLUMNS`].
fn message_from_row(room: &Arc<str>, row: &Row<'_>) -> rusqlite::Result<StoredMessage> {
    let seq = row.get(0)?;
    Ok(StoredMessage {
        id: MessageId::new(room.clone(), seq),
        seq,
        msg: row.get::<_, String>(1)?.into(),
        user: row.get::<_, String>(2)?.into(),
        img: row.get::<_, String>(3)?.into(),
        ts: row.get(4)?,
    })
}

fn participant_from_row(row: &Row<'_>) -> rusqlite::Result<Participant> {
    Ok(Participant {
        room: row.get(0)?,
        token_hash: row.get(1)?,
        name: row.get(2)?,
        email_hash: row.get(3)?,
        avatar: row.get(4)?,
        first_seq: row.get(5)?,
        joined_at: row.get(6)?,
        last_seen_at: row.get(7)?,
    })
}

fn room_from_row(row: &Row<'_>) -> rusqlite::Result<RoomInfo> {
    room_from_row_at(row, 0)
}

/// A room from the [`ROOM_COLUMNS`] that start at column `first`.
fn room_from_row_at(row: &Row<'_>, first: usize) -> rusqlite::Result<RoomInfo> {
    Ok(RoomInfo {
        id: row.get(first)?,
        created_at: row.get(first + 1)?,
        last_message_at: row.get(first + 2)?,
        message_count: row.get(first + 3)?,
        next_seq: row.get(first + 4)?,
    })
}

async fn answered<T>(answer: oneshot::Receiver<Result<T, StoreError>>) -> Result<T, StoreError> {
    answer.await.map_err(|_| writer_gone())?
}

fn writer_gone() -> StoreError {
    StoreError::Unavailable("the SQLite writer thread has stopped".to_owned())
}

fn unavailable(error: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(format!("SQLite: {error}"))
}

fn connect_error(path: &Path, reason: impl std::fmt::Display) -> StoreError {
    StoreError::Connect {
        url: format!("sqlite:{}", path.display()),
        reason: reason.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::{PART_ENTRIES, STEP_PARTS, Step};

    /// A step of `per_room[i]` runs in room `i + 1`, sorted as the writer sorts them.
    fn step(per_room: &[usize]) -> Step {
        let mut runs = Vec::new();
        let mut msg_no = 0;
        for (room, &count) in per_room.iter().enumerate() {
            for seq in 0..count as i64 {
                msg_no += 1;
                runs.push([room as i64 + 1, seq * 2 + 1, msg_no]);
            }
        }
        Step::new(runs, msg_no)
    }

    /// The parts a step is entered in, as the rooms each holds.
    fn parts(mut step: Step, all: bool) -> Vec<Vec<i64>> {
        let mut parts = Vec::new();
        while step.entered < step.runs.len() {
            let part = step.next_part(all);
            assert!(!part.is_empty(), "every part enters something");
            let mut rooms: Vec<i64> = part.iter().map(|[room, _, _]| *room).collect();
            rooms.dedup();
            step.entered += part.len();
            parts.push(rooms);
        }
        parts
    }

    #[test]
    fn a_step_is_cut_into_eight_parts_of_as_many_rooms() {
        assert_eq!(STEP_PARTS, 8);
        // 20 rooms: three to a part, seven parts.
        let parts = parts(
            step(&[3, 1, 20, 2, 5, 7, 1, 1, 9, 4, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2]),
            false,
        );
        assert_eq!(parts.len(), 7);
        assert_eq!(parts[0], vec![1, 2, 3]);
        assert_eq!(parts[6], vec![19, 20]);
        // 1,000 rooms of one run each: 125 to a part.
        let parts = parts_of(&[1; 1000]);
        assert_eq!(parts.len(), 8);
        assert!(parts.iter().all(|rooms| rooms.len() == 125));
        // Fewer rooms than parts: a room to a part.
        assert_eq!(parts_of(&[4, 4, 4]), vec![vec![1], vec![2], vec![3]]);
    }

    fn parts_of(per_room: &[usize]) -> Vec<Vec<i64>> {
        parts(step(per_room), false)
    }

    #[test]
    fn a_part_holds_at_most_part_entries_runs_and_a_room_may_span_parts() {
        // Two rooms, one to a part; the second's runs fill two parts.
        let parts = parts_of(&[2, PART_ENTRIES + 10]);
        assert_eq!(parts, vec![vec![1], vec![2], vec![2]]);
    }

    #[test]
    fn every_run_left_is_one_part_when_all_are_due() {
        assert_eq!(
            parts(step(&[5; 30]), true),
            vec![(1..=30).collect::<Vec<_>>()]
        );
        assert!(parts(step(&[]), false).is_empty());
    }
}
