//! The `Adapter` seam: every room membership change and every broadcast of a namespace
//! goes through it. [`MemoryAdapter`] serves one tete instance; an adapter backed by a
//! shared bus (e.g. Redis pub/sub) can implement the same trait for several instances,
//! without any change to the handlers.

use std::sync::{Arc, Mutex};

use smallvec::SmallVec;

use crate::engineio::{Message, Sid};

/// Looked up on every broadcast: a fast hasher, randomly seeded per process.
type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
type HashSet<T> = std::collections::HashSet<T, foldhash::fast::RandomState>;

/// A room name, shared: a broadcast addresses a room without copying its name.
pub type Room = Arc<str>;

/// Who a broadcast goes to: members of any of `rooms` (everybody in the namespace
/// when empty), except the sockets in `except`. One room and one exception, the
/// usual case, are kept inline.
#[derive(Debug, Clone, Default)]
pub struct BroadcastOptions {
    pub rooms: SmallVec<[Room; 1]>,
    pub except: SmallVec<[Sid; 1]>,
}

/// The recipients of one broadcast; a chat room's fit inline.
type Targets = SmallVec<[Sid; 8]>;

/// An encoded packet ready to be written to each recipient.
#[derive(Debug, Clone)]
pub struct OutgoingPacket {
    pub text: String,
    pub attachments: Vec<bytes::Bytes>,
}

impl OutgoingPacket {
    /// The Engine.IO messages that carry this packet: its text, then its attachments.
    pub fn into_messages(self) -> impl Iterator<Item = Message> {
        std::iter::once(Message::Text(self.text.into()))
            .chain(self.attachments.into_iter().map(Message::Binary))
    }
}

/// The sockets of this instance, as the adapter reaches them.
pub trait LocalSockets {
    /// Writes the packet to one local socket; unknown or gone sockets are skipped.
    fn deliver(&self, sid: Sid, packet: OutgoingPacket);
}

/// Room membership and broadcast for one namespace.
pub trait Adapter: Send + Sync + 'static {
    fn join(&self, sid: Sid, room: &str);
    fn leave(&self, sid: Sid, room: &str);
    /// Removes the socket from every room (it disconnected).
    fn leave_all(&self, sid: Sid);
    fn rooms_of(&self, sid: Sid) -> Vec<Room>;
    /// The local sockets in any of `rooms`.
    fn sockets_in(&self, rooms: &[Room]) -> Vec<Sid>;
    /// Delivers the packet to every matching socket (locally through `local`; a
    /// multi-instance adapter also forwards it to the other instances). The last
    /// recipient gets the packet itself, the others a copy.
    fn broadcast(&self, packet: OutgoingPacket, opts: &BroadcastOptions, local: &dyn LocalSockets);
    /// All local sockets known to the adapter (for a namespace-wide broadcast).
    fn all_sockets(&self) -> Vec<Sid>;
}

#[derive(Default)]
struct Rooms {
    members: HashMap<Room, HashSet<Sid>>,
    of_socket: HashMap<Sid, Vec<Room>>,
}

impl Rooms {
    /// Adds the members of any of `rooms` to `out`, each once.
    fn members_of(&self, rooms: &[Room], out: &mut Targets) {
        for room in rooms {
            if let Some(set) = self.members.get(room) {
                for sid in set {
                    if rooms.len() == 1 || !out.contains(sid) {
                        out.push(*sid);
                    }
                }
            }
        }
    }
}

/// Membership kept in this process's memory.
#[derive(Default)]
pub struct MemoryAdapter {
    // A std mutex: map updates only, never held across an await or a delivery.
    rooms: Mutex<Rooms>,
}

impl MemoryAdapter {
    fn rooms(&self) -> std::sync::MutexGuard<'_, Rooms> {
        self.rooms.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Adapter for MemoryAdapter {
    fn join(&self, sid: Sid, room: &str) {
        let mut r = self.rooms();
        let key = match r.members.get_key_value(room) {
            Some((key, _)) => key.clone(),
            None => Room::from(room),
        };
        if r.members.entry(key.clone()).or_default().insert(sid) {
            r.of_socket.entry(sid).or_default().push(key);
        }
    }

    fn leave(&self, sid: Sid, room: &str) {
        let mut r = self.rooms();
        if let Some(set) = r.members.get_mut(room) {
            set.remove(&sid);
            if set.is_empty() {
                r.members.remove(room);
            }
        }
        if let Some(list) = r.of_socket.get_mut(&sid) {
            list.retain(|x| &**x != room);
            if list.is_empty() {
                r.of_socket.remove(&sid);
            }
        }
    }

    fn leave_all(&self, sid: Sid) {
        let mut r = self.rooms();
        let Some(list) = r.of_socket.remove(&sid) else {
            return;
        };
        for room in list {
            if let Some(set) = r.members.get_mut(&room) {
                set.remove(&sid);
                if set.is_empty() {
                    r.members.remove(&room);
                }
            }
        }
    }

    fn rooms_of(&self, sid: Sid) -> Vec<Room> {
        self.rooms()
            .of_socket
            .get(&sid)
            .cloned()
            .unwrap_or_default()
    }

    fn sockets_in(&self, rooms: &[Room]) -> Vec<Sid> {
        let mut out = Targets::new();
        self.rooms().members_of(rooms, &mut out);
        out.into_vec()
    }

    fn broadcast(&self, packet: OutgoingPacket, opts: &BroadcastOptions, local: &dyn LocalSockets) {
        let mut targets = Targets::new();
        {
            let r = self.rooms();
            if opts.rooms.is_empty() {
                targets.extend(r.of_socket.keys().copied());
            } else {
                r.members_of(&opts.rooms, &mut targets);
            }
        }
        targets.retain(|sid| !opts.except.contains(sid));
        let Some(last) = targets.pop() else {
            return;
        };
        for sid in targets {
            local.deliver(sid, packet.clone());
        }
        local.deliver(last, packet);
    }

    fn all_sockets(&self) -> Vec<Sid> {
        self.rooms().of_socket.keys().copied().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    struct Recorder(RefCell<Vec<Sid>>);
    impl LocalSockets for Recorder {
        fn deliver(&self, sid: Sid, _: OutgoingPacket) {
            self.0.borrow_mut().push(sid);
        }
    }

    #[test]
    fn broadcast_reaches_room_members_except_the_excluded() {
        let a = MemoryAdapter::default();
        let (s1, s2, s3) = (Sid::random(), Sid::random(), Sid::random());
        a.join(s1, "r");
        a.join(s2, "r");
        a.join(s3, "other");
        let rec = Recorder(RefCell::new(vec![]));
        let packet = OutgoingPacket {
            text: "2[\"x\"]".into(),
            attachments: vec![],
        };
        a.broadcast(
            packet,
            &BroadcastOptions {
                rooms: smallvec::smallvec!["r".into()],
                except: smallvec::smallvec![s1],
            },
            &rec,
        );
        assert_eq!(*rec.0.borrow(), vec![s2]);
    }

    #[test]
    fn leaving_removes_membership_and_empty_rooms() {
        let a = MemoryAdapter::default();
        let s = Sid::random();
        a.join(s, "r1");
        a.join(s, "r2");
        a.join(s, "r2");
        assert_eq!(a.rooms_of(s), vec![Room::from("r1"), Room::from("r2")]);
        a.leave(s, "r1");
        assert_eq!(a.rooms_of(s), vec![Room::from("r2")]);
        a.leave_all(s);
        assert!(a.rooms_of(s).is_empty());
        assert!(a.sockets_in(&["r2".into()]).is_empty());
    }
}
