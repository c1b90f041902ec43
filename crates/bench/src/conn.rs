//! WebSocket connections from spread source addresses.
//!
//! One process here may open at most ~20,000 files and every (source address, destination)
//! pair has one ephemeral port range, so connections are bound before `connect` to source
//! addresses `127.0.0.1`, `127.0.0.2`, ... in turn ([`SourceAddrs`]).

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::BenchError;

/// A client WebSocket over plain TCP.
pub type Ws = WebSocketStream<TcpStream>;

/// Round-robin source addresses `127.0.0.1 ..= 127.0.0.<count>`.
#[derive(Debug)]
pub struct SourceAddrs {
    count: u8,
    next: AtomicUsize,
}

impl SourceAddrs {
    /// `count` addresses (1..=254).
    ///
    /// # Errors
    /// [`BenchError::Param`] for 0 or more than 254.
    pub fn new(count: u8) -> Result<Self, BenchError> {
        if count == 0 || count > 254 {
            return Err(BenchError::Param("source_addrs", format!("{count}: must be 1..=254")));
        }
        Ok(SourceAddrs { count, next: AtomicUsize::new(0) })
    }

    /// The next source address.
    pub fn next(&self) -> Ipv4Addr {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.count as usize;
        Ipv4Addr::new(127, 0, 0, 1 + i as u8)
    }
}

/// Opens a WebSocket to `url` (`ws://host:port/path`) from `source`, offering `subprotocol`
/// when given, with a `read_buffer` bytes read buffer.
///
/// # Errors
/// [`BenchError::Io`] for the TCP connect, [`BenchError::WebSocket`] for the handshake.
pub async fn connect(
    url: &str,
    source: Ipv4Addr,
    subprotocol: Option<&str>,
    read_buffer: usize,
) -> Result<Ws, BenchError> {
    let mut req = url.into_client_request().map_err(|e| BenchError::WebSocket(format!("url {url}"), e))?;
    if let Some(p) = subprotocol {
        let value = HeaderValue::from_str(p).map_err(|e| BenchError::Param("subprotocol", e.to_string()))?;
        req.headers_mut().insert("Sec-WebSocket-Protocol", value);
    }
    let host = req.uri().host().unwrap_or("127.0.0.1").to_string();
    let port = req.uri().port_u16().unwrap_or(80);
    let addr: SocketAddr = tokio::net::lookup_host((host.as_str(), port))
        .await
        .map_err(|e| BenchError::Io(format!("resolving {host}"), e))?
        .find(|a| a.is_ipv4())
        .ok_or_else(|| BenchError::Param("url", format!("{url}: no IPv4 address")))?;
    let socket = TcpSocket::new_v4().map_err(|e| BenchError::Io("socket".into(), e))?;
    socket.bind(SocketAddr::new(source.into(), 0)).map_err(|e| BenchError::Io(format!("bind {source}"), e))?;
    let stream = socket.connect(addr).await.map_err(|e| BenchError::Io(format!("connect {addr} from {source}"), e))?;
    stream.set_nodelay(true).map_err(|e| BenchError::Io("TCP_NODELAY".into(), e))?;
    let config = WebSocketConfig::default().read_buffer_size(read_buffer).max_message_size(Some(16 << 20));
    let (ws, _) = tokio_tungstenite::client_async_with_config(req, stream, Some(config))
        .await
        .map_err(|e| BenchError::WebSocket(format!("handshake {url}"), e))?;
    Ok(ws)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_cycle() {
        let s = SourceAddrs::new(3).unwrap();
        let got: Vec<_> = (0..4).map(|_| s.next()).collect();
        assert_eq!(got[0], Ipv4Addr::new(127, 0, 0, 1));
        assert_eq!(got[2], Ipv4Addr::new(127, 0, 0, 3));
        assert_eq!(got[3], Ipv4Addr::new(127, 0, 0, 1));
        assert!(SourceAddrs::new(0).is_err());
    }
}
