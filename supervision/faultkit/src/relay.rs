//! A controllable TCP relay between two endpoints, for partitions and message loss in tests:
//! a node dials the relay's address instead of its peer's, and the test cuts, heals, delays or
//! drops what flows through it.
//!
//! Two modes:
//! - **bytes** ([`Relay::start`]): any TCP protocol, TLS included. It can [`cut`](Relay::cut)
//!   (close every forwarded connection and refuse new ones until [`heal`](Relay::heal)) and
//!   [`delay`](Relay::set_delay) what it forwards. It cannot drop data: a TCP stream with a hole
//!   in it is garbage to the receiver.
//! - **ractor_cluster frames** ([`Relay::ractor_cluster`]): the relay reads ractor_cluster's
//!   length-prefixed frames ([`crate::frames`]) and forwards or drops each whole frame, so it
//!   can also [`drop messages`](Relay::drop_messages) with a probability from a printed seed.
//!   This needs the plain-TCP link (ractor_cluster without TLS): with TLS the frames are
//!   encrypted, a frame-mode relay sees an absurd length and forwards that connection as bytes
//!   (counted in [`RelayStats::unframed`]), so with TLS only cutting and delaying work.
//!
//! Dropping a frame models a lost message, not a lost packet (TCP would resend a packet): a
//! dropped `cast` is never handled, a dropped `call` or reply leaves the caller to its timeout.
//! By default only actor messages are dropped; dropping the handshake or control frames
//! (pings, process groups) is possible with [`DropRule::kinds`] and breaks or stalls the link in
//! ways ractor_cluster does not recover from by itself.
//!
//! One relay is one direction of dialling: node A dials the relay, which dials B; traffic flows
//! both ways through it ([`Direction`]). To isolate a node, cut every relay to and from it.
//! Plain threads and blocking sockets: it works under any runtime, or none.
//!
//! ```
//! use std::io::{Read, Write};
//! use std::net::{TcpListener, TcpStream};
//! use verisim_faultkit::Relay;
//!
//! let server = TcpListener::bind("127.0.0.1:0")?;
//! let relay = Relay::start(server.local_addr()?)?;
//! let mut client = TcpStream::connect(relay.addr())?;
//! let (mut conn, _) = server.accept()?;
//! client.write_all(b"ping")?;
//! let mut buf = [0u8; 4];
//! conn.read_exact(&mut buf)?;
//! assert_eq!(&buf, b"ping");
//!
//! relay.cut(); // the forwarded connection is closed
//! assert_eq!(conn.read(&mut buf)?, 0);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::error::FaultError;
use crate::frames::{self, FrameKind};
use crate::seed::{SEED_VAR, rng, seed_from_env};

/// Frames announced larger than this are taken for a stream that is not ractor_cluster's
/// framing (TLS): that connection is forwarded as bytes. (ractor_cluster's own default limit on
/// inbound frames is far below.)
const MAX_FRAME: u64 = 1 << 30;

/// How long dialling the target may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// What the relay understands of the traffic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// A byte stream: cut and delay.
    Bytes,
    /// ractor_cluster's frames on a plain-TCP link: cut, delay and drop whole frames.
    RactorCluster,
}

/// Which way through the relay.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// From the dialling side to the target.
    Forward,
    /// From the target back to the dialling side.
    Backward,
    /// Both ways.
    Both,
}

impl Direction {
    fn covers(self, d: Direction) -> bool {
        self == Direction::Both || self == d
    }
}

/// Which frames to drop, how often, and which way.
#[derive(Clone, Debug, PartialEq)]
pub struct DropRule {
    probability: f64,
    kinds: Vec<FrameKind>,
    direction: Direction,
}

impl DropRule {
    /// Drops actor messages (cast, call, reply) with `probability`, both ways.
    pub fn messages(probability: f64) -> Result<Self, FaultError> {
        if !(0.0..=1.0).contains(&probability) {
            return Err(FaultError::BadProbability(probability));
        }
        Ok(Self {
            probability,
            kinds: FrameKind::ACTOR_MESSAGES.to_vec(),
            direction: Direction::Both,
        })
    }

    /// Drops these kinds of frames instead.
    pub fn kinds(mut self, kinds: &[FrameKind]) -> Self {
        self.kinds = kinds.to_vec();
        self
    }

    /// Drops only one way.
    pub fn direction(mut self, direction: Direction) -> Self {
        self.direction = direction;
        self
    }
}

/// What the relay has seen.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RelayStats {
    /// Connections accepted and forwarded.
    pub connections: u64,
    /// Connections refused or closed by a cut.
    pub refused: u64,
    /// Frames forwarded, by kind (frame mode).
    pub forwarded: BTreeMap<FrameKind, u64>,
    /// Frames dropped, by kind (frame mode).
    pub dropped: BTreeMap<FrameKind, u64>,
    /// Connections that were not ractor_cluster frames and went through as bytes (frame mode).
    pub unframed: u64,
    /// Bytes forwarded, both ways.
    pub bytes: u64,
}

impl RelayStats {
    /// Actor messages (cast, call, reply) dropped.
    pub fn messages_dropped(&self) -> u64 {
        FrameKind::ACTOR_MESSAGES
            .iter()
            .map(|k| self.dropped.get(k).copied().unwrap_or(0))
            .sum()
    }

    /// Actor messages (cast, call, reply) forwarded.
    pub fn messages_forwarded(&self) -> u64 {
        FrameKind::ACTOR_MESSAGES
            .iter()
            .map(|k| self.forwarded.get(k).copied().unwrap_or(0))
            .sum()
    }
}

#[derive(Debug)]
struct Faults {
    delay: Duration,
    drop: Option<DropRule>,
}

struct Shared {
    target: SocketAddr,
    mode: Mode,
    seed: u64,
    cut: AtomicBool,
    closing: AtomicBool,
    open: Mutex<Vec<TcpStream>>,
    faults: Mutex<Faults>,
    rng: Mutex<ChaCha8Rng>,
    stats: Mutex<RelayStats>,
}

/// Locks, ignoring poisoning: a relay thread that panicked leaves plain data behind.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A running relay; dropping it closes everything it forwards and stops it.
pub struct Relay {
    addr: SocketAddr,
    shared: Arc<Shared>,
}

/// Options of a relay before it starts.
#[derive(Clone, Debug)]
pub struct RelayBuilder {
    target: SocketAddr,
    mode: Mode,
    seed: Option<u64>,
}

impl RelayBuilder {
    /// The mode (default [`Mode::Bytes`]).
    pub fn mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self
    }

    /// The seed of the drop decisions (default: `FAULTKIT_SEED`, or random; printed either way).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Listens on a fresh loopback port (kept bound: no race for it) and starts forwarding.
    pub fn start(self) -> Result<Relay, FaultError> {
        let listener =
            TcpListener::bind("127.0.0.1:0").map_err(|e| FaultError::io("binding the relay", e))?;
        let addr = listener
            .local_addr()
            .map_err(|e| FaultError::io("the relay's address", e))?;
        let seed = match (self.mode, self.seed) {
            (Mode::Bytes, s) => s.unwrap_or(0),
            (Mode::RactorCluster, Some(s)) => {
                eprintln!("relay {addr} -> {}: seed {s}", self.target);
                s
            }
            (Mode::RactorCluster, None) => {
                eprint!("relay {addr} -> {}: ", self.target);
                seed_from_env(SEED_VAR)
            }
        };
        let shared = Arc::new(Shared {
            target: self.target,
            mode: self.mode,
            seed,
            cut: AtomicBool::new(false),
            closing: AtomicBool::new(false),
            open: Mutex::new(Vec::new()),
            faults: Mutex::new(Faults {
                delay: Duration::ZERO,
                drop: None,
            }),
            rng: Mutex::new(rng(seed)),
            stats: Mutex::new(RelayStats::default()),
        });
        let s = shared.clone();
        std::thread::Builder::new()
            .name(format!("relay-{addr}"))
            .spawn(move || accept_loop(listener, s))
            .map_err(|e| FaultError::io("starting the relay thread", e))?;
        Ok(Relay { addr, shared })
    }
}

impl Relay {
    /// A relay's options, to set before it starts.
    pub fn builder(target: SocketAddr) -> RelayBuilder {
        RelayBuilder {
            target,
            mode: Mode::Bytes,
            seed: None,
        }
    }

    /// A byte-mode relay to `target` (cut and delay; any TCP protocol, TLS included).
    pub fn start(target: SocketAddr) -> Result<Self, FaultError> {
        Self::builder(target).start()
    }

    /// A frame-mode relay to a ractor_cluster node's plain-TCP listener at `target` (cut, delay
    /// and drop whole messages), seeded from `FAULTKIT_SEED` or at random, seed printed.
    pub fn ractor_cluster(target: SocketAddr) -> Result<Self, FaultError> {
        Self::builder(target).mode(Mode::RactorCluster).start()
    }

    /// The address to dial instead of the target.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The target it forwards to.
    pub fn target(&self) -> SocketAddr {
        self.shared.target
    }

    /// The seed of its drop decisions.
    pub fn seed(&self) -> u64 {
        self.shared.seed
    }

    /// Closes every forwarded connection and refuses new ones until [`heal`](Self::heal).
    pub fn cut(&self) {
        self.shared.cut.store(true, Ordering::SeqCst);
        close_all(&self.shared);
    }

    /// Accepts and forwards connections again (the endpoints reconnect on their own, if they do).
    pub fn heal(&self) {
        self.shared.cut.store(false, Ordering::SeqCst);
    }

    /// Whether the relay is cut.
    pub fn is_cut(&self) -> bool {
        self.shared.cut.load(Ordering::SeqCst)
    }

    /// Holds everything it reads for `delay` before forwarding it (order is kept); zero ends
    /// the delay for what is read from then on.
    pub fn set_delay(&self, delay: Duration) {
        lock(&self.shared.faults).delay = delay;
    }

    /// Drops actor messages with `probability` (frame mode only).
    pub fn drop_messages(&self, probability: f64) -> Result<(), FaultError> {
        self.set_drop(DropRule::messages(probability)?)
    }

    /// Drops frames by `rule` (frame mode only).
    pub fn set_drop(&self, rule: DropRule) -> Result<(), FaultError> {
        if self.shared.mode != Mode::RactorCluster {
            return Err(FaultError::NotFramed);
        }
        lock(&self.shared.faults).drop = Some(rule);
        Ok(())
    }

    /// Stops dropping.
    pub fn stop_dropping(&self) {
        lock(&self.shared.faults).drop = None;
    }

    /// What it has forwarded and dropped so far.
    pub fn stats(&self) -> RelayStats {
        lock(&self.shared.stats).clone()
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.shared.closing.store(true, Ordering::SeqCst);
        close_all(&self.shared);
        // Wakes the accept loop so it sees `closing` and exits.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200));
    }
}

fn close_all(s: &Shared) {
    for c in lock(&s.open).drain(..) {
        let _ = c.shutdown(Shutdown::Both);
    }
}

fn accept_loop(listener: TcpListener, s: Arc<Shared>) {
    for conn in listener.incoming() {
        if s.closing.load(Ordering::SeqCst) {
            return;
        }
        let Ok(inbound) = conn else { continue };
        if s.cut.load(Ordering::SeqCst) {
            lock(&s.stats).refused += 1;
            let _ = inbound.shutdown(Shutdown::Both);
            continue;
        }
        let Ok(outbound) = TcpStream::connect_timeout(&s.target, CONNECT_TIMEOUT) else {
            let _ = inbound.shutdown(Shutdown::Both);
            continue;
        };
        if let Err(e) = forward(inbound, outbound, &s) {
            report(&format!("relay {}: {e}", s.target));
        }
    }
}

/// The relay has no logger of its own: connection-level trouble is printed for the test output.
fn report(msg: &str) {
    eprintln!("{msg}");
}

fn forward(inbound: TcpStream, outbound: TcpStream, s: &Arc<Shared>) -> std::io::Result<()> {
    let _ = inbound.set_nodelay(true);
    let _ = outbound.set_nodelay(true);
    let (i_read, o_write) = (inbound.try_clone()?, outbound.try_clone()?);
    let (o_read, i_write) = (outbound.try_clone()?, inbound.try_clone()?);
    {
        let mut open = lock(&s.open);
        // A cut may have happened since the check in the accept loop.
        if s.cut.load(Ordering::SeqCst) {
            lock(&s.stats).refused += 1;
            let _ = inbound.shutdown(Shutdown::Both);
            let _ = outbound.shutdown(Shutdown::Both);
            return Ok(());
        }
        open.push(inbound);
        open.push(outbound);
    }
    lock(&s.stats).connections += 1;
    pipe(i_read, o_write, Direction::Forward, s.clone())?;
    pipe(o_read, i_write, Direction::Backward, s.clone())?;
    Ok(())
}

/// One direction: a reader thread that cuts the stream into chunks (frames in frame mode),
/// decides what to drop and stamps each chunk with when it may go; a writer thread that sends
/// each chunk when its time comes. Either side's end closes both sockets.
fn pipe(from: TcpStream, to: TcpStream, dir: Direction, s: Arc<Shared>) -> std::io::Result<()> {
    let (tx, rx) = mpsc::channel::<(Instant, Vec<u8>)>();
    let (from_w, to_r) = (from.try_clone()?, to.try_clone()?);
    let s2 = s.clone();
    std::thread::Builder::new()
        .name("relay-read".into())
        .spawn(move || {
            match s2.mode {
                Mode::Bytes => read_bytes(from, &tx, &s2),
                Mode::RactorCluster => read_frames(from, &tx, dir, &s2),
            }
            // `tx` drops here: the writer sends what is queued, then closes.
        })?;
    std::thread::Builder::new()
        .name("relay-write".into())
        .spawn(move || {
            let mut to = to;
            for (due, chunk) in rx {
                let now = Instant::now();
                if due > now {
                    // The injected delay itself, not a wait for a condition.
                    std::thread::sleep(due - now);
                }
                if to.write_all(&chunk).is_err() {
                    break;
                }
                lock(&s.stats).bytes += chunk.len() as u64;
            }
            let _ = to_r.shutdown(Shutdown::Both);
            let _ = from_w.shutdown(Shutdown::Both);
        })?;
    Ok(())
}

fn due(s: &Shared) -> Instant {
    Instant::now() + lock(&s.faults).delay
}

fn read_bytes(mut from: TcpStream, tx: &mpsc::Sender<(Instant, Vec<u8>)>, s: &Shared) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if tx.send((due(s), buf[..n].to_vec())).is_err() {
                    return;
                }
            }
        }
    }
}

fn read_frames(
    mut from: TcpStream,
    tx: &mpsc::Sender<(Instant, Vec<u8>)>,
    dir: Direction,
    s: &Shared,
) {
    loop {
        let mut header = [0u8; frames::HEADER];
        if from.read_exact(&mut header).is_err() {
            return;
        }
        let len = frames::length(header);
        if len > MAX_FRAME {
            // Not ractor_cluster's plain framing (TLS): the rest goes through as bytes.
            lock(&s.stats).unframed += 1;
            if tx.send((due(s), header.to_vec())).is_err() {
                return;
            }
            return read_bytes(from, tx, s);
        }
        let Ok(len) = usize::try_from(len) else {
            return;
        };
        let mut frame = vec![0u8; frames::HEADER + len];
        frame[..frames::HEADER].copy_from_slice(&header);
        if from.read_exact(&mut frame[frames::HEADER..]).is_err() {
            return;
        }
        let kind = FrameKind::of(&frame[frames::HEADER..]);
        if drops(s, dir, kind) {
            *lock(&s.stats).dropped.entry(kind).or_default() += 1;
            continue;
        }
        *lock(&s.stats).forwarded.entry(kind).or_default() += 1;
        if tx.send((due(s), frame)).is_err() {
            return;
        }
    }
}

fn drops(s: &Shared, dir: Direction, kind: FrameKind) -> bool {
    let faults = lock(&s.faults);
    let Some(rule) = &faults.drop else {
        return false;
    };
    if !rule.direction.covers(dir) || !rule.kinds.contains(&kind) {
        return false;
    }
    let p = rule.probability;
    drop(faults);
    lock(&s.rng).random_bool(p)
}
