//! Ports and readiness: reserving a port a node will bind, and waiting (with a deadline) for a
//! port to accept connections or an HTTP endpoint to answer.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use rand::Rng;

use crate::error::FaultError;
use crate::wait::wait_until;

/// Reserves a free loopback port for a process that must be told its port before it starts
/// (say, a cluster listener every peer names on its command line). The listener is returned and
/// must be dropped just before the process binds the port.
///
/// The port is drawn at random *below* the kernel's ephemeral range
/// (`/proc/sys/net/ipv4/ip_local_port_range`), so neither `bind(0)` nor the source port of an
/// outgoing connection can take it while it is free, also while a node is down between a kill
/// and its restart. What remains: another test process drawing the same port from the ~20,000
/// between the release and the bind.
pub fn reserve_port() -> Result<TcpListener, FaultError> {
    let low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    let (from, to) = if low > 12_000 {
        (10_000, low)
    } else {
        (low, 65_000)
    };
    let mut rng = rand::rng();
    let mut last = None;
    for _ in 0..1000 {
        let port = rng.random_range(from..to);
        match TcpListener::bind(("127.0.0.1", port)) {
            Ok(l) => return Ok(l),
            Err(e) => last = Some(e),
        }
    }
    Err(FaultError::io(
        format!("no free port in {from}..{to}"),
        last.unwrap_or_else(|| std::io::Error::other("no attempt")),
    ))
}

/// Waits until `addr` accepts a TCP connection.
pub fn wait_port(addr: SocketAddr, timeout: Duration) -> Result<(), FaultError> {
    wait_until(&format!("{addr} to accept connections"), timeout, || {
        TcpStream::connect_timeout(&addr, Duration::from_millis(200))
            .ok()
            .map(|_| ())
    })
}

/// An HTTP answer: status and body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpReply {
    /// The status code.
    pub status: u16,
    /// The body, lossily decoded.
    pub body: String,
}

/// One plain `GET` (HTTP/1.1, `Connection: close`), bounded by `timeout` for each of connect,
/// write and read. Enough to probe a health endpoint; not a general HTTP client.
pub fn http_get(addr: SocketAddr, path: &str, timeout: Duration) -> Result<HttpReply, FaultError> {
    let what = || format!("GET http://{addr}{path}");
    let mut s =
        TcpStream::connect_timeout(&addr, timeout).map_err(|e| FaultError::io(what(), e))?;
    s.set_read_timeout(Some(timeout))
        .and_then(|()| s.set_write_timeout(Some(timeout)))
        .map_err(|e| FaultError::io(what(), e))?;
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes())
        .map_err(|e| FaultError::io(what(), e))?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)
        .map_err(|e| FaultError::io(what(), e))?;
    let text = String::from_utf8_lossy(&raw);
    let bad = |why: &str| FaultError::Http {
        addr: addr.to_string(),
        why: why.to_string(),
    };
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| bad("no end of headers"))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("no status code"))?;
    let chunked = head.lines().any(|l| {
        l.to_ascii_lowercase()
            .replace(' ', "")
            .starts_with("transfer-encoding:chunked")
    });
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_string()
    };
    Ok(HttpReply { status, body })
}

/// A chunked body, joined (malformed chunking yields what was read so far).
fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// Waits until `GET path` on `addr` answers and `ok` accepts the answer; returns it.
pub fn wait_http(
    addr: SocketAddr,
    path: &str,
    timeout: Duration,
    ok: impl Fn(&HttpReply) -> bool,
) -> Result<HttpReply, FaultError> {
    wait_until(
        &format!("GET http://{addr}{path} to answer as expected"),
        timeout,
        || {
            http_get(addr, path, Duration::from_secs(1))
                .ok()
                .filter(|r| ok(r))
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reserved_port_is_below_the_ephemeral_range_and_bound() {
        let l = reserve_port().unwrap();
        let port = l.local_addr().unwrap().port();
        assert!(TcpListener::bind(("127.0.0.1", port)).is_err());
    }

    #[test]
    fn chunked_bodies_are_joined() {
        assert_eq!(dechunk("3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"), "abcde");
    }

    #[test]
    fn an_http_answer_is_read() {
        let server = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = server.local_addr().unwrap();
        let t = std::thread::spawn(move || {
            let (mut c, _) = server.accept().unwrap();
            let mut buf = [0u8; 1024];
            let _ = c.read(&mut buf).unwrap();
            c.write_all(b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 4\r\n\r\nbusy")
                .unwrap();
        });
        let r = http_get(addr, "/healthz", Duration::from_secs(5)).unwrap();
        assert_eq!((r.status, r.body.as_str()), (503, "busy"));
        t.join().unwrap();
    }
}
