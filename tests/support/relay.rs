//! A fault-injecting TCP relay: forwards connections from its own loopback port to a target, and
//! can be cut (every open connection is shut down and new ones are accepted and closed at once)
//! and healed. One relay per ordered pair of nodes (the dialling side's view of a peer), so that
//! cutting every relay touching a node isolates it in both directions. Plain threads and
//! blocking sockets: portable, no dependency on the product's runtime.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

struct Shared {
    target: SocketAddr,
    cut: AtomicBool,
    closing: AtomicBool,
    open: Mutex<Vec<TcpStream>>,
}

pub struct Relay {
    addr: SocketAddr,
    shared: Arc<Shared>,
}

impl Relay {
    /// Listens on a fresh loopback port (kept bound: no race) and forwards to `target`.
    pub fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind relay");
        let addr = listener.local_addr().expect("relay addr");
        let shared = Arc::new(Shared {
            target,
            cut: AtomicBool::new(false),
            closing: AtomicBool::new(false),
            open: Mutex::new(Vec::new()),
        });
        let s = shared.clone();
        std::thread::spawn(move || accept_loop(listener, s));
        Self { addr, shared }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Closes every forwarded connection and refuses new ones until [`heal`](Self::heal).
    pub fn cut(&self) {
        self.shared.cut.store(true, Ordering::SeqCst);
        close_all(&self.shared);
    }

    pub fn heal(&self) {
        self.shared.cut.store(false, Ordering::SeqCst);
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
    let mut open = s.open.lock().expect("relay streams");
    for c in open.drain(..) {
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
            let _ = inbound.shutdown(Shutdown::Both);
            continue;
        }
        let Ok(outbound) = TcpStream::connect_timeout(&s.target, Duration::from_secs(1)) else {
            let _ = inbound.shutdown(Shutdown::Both);
            continue;
        };
        let _ = inbound.set_nodelay(true);
        let _ = outbound.set_nodelay(true);
        let (Ok(i2), Ok(o2), Ok(i3), Ok(o3)) = (
            inbound.try_clone(),
            outbound.try_clone(),
            inbound.try_clone(),
            outbound.try_clone(),
        ) else {
            continue;
        };
        {
            let mut open = s.open.lock().expect("relay streams");
            // A cut may have happened between the check above and now.
            if s.cut.load(Ordering::SeqCst) {
                let _ = inbound.shutdown(Shutdown::Both);
                let _ = outbound.shutdown(Shutdown::Both);
                continue;
            }
            open.push(i3);
            open.push(o3);
        }
        std::thread::spawn(move || pipe(inbound, outbound));
        std::thread::spawn(move || pipe(o2, i2));
    }
}

fn pipe(mut from: TcpStream, mut to: TcpStream) {
    let mut buf = [0u8; 64 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
}
