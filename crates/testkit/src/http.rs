//! A tiny HTTP/1.0 file server on 127.0.0.1 (CRL distribution points in tests).

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::child::KitError;

/// Serves `path -> bytes` until dropped; unknown paths get 404.
#[derive(Debug)]
pub struct HttpFiles {
    /// Where it listens.
    pub addr: SocketAddr,
    files: Arc<Mutex<HashMap<String, Vec<u8>>>>,
    hits: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl HttpFiles {
    /// Start on a free port.
    pub fn start() -> Result<HttpFiles, KitError> {
        let listener = TcpListener::bind("127.0.0.1:0").map_err(KitError::io("binding the HTTP server"))?;
        let addr = listener.local_addr().map_err(KitError::io("the HTTP server address"))?;
        listener.set_nonblocking(true).map_err(KitError::io("setting the HTTP listener non-blocking"))?;
        let files: Arc<Mutex<HashMap<String, Vec<u8>>>> = Arc::default();
        let hits = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (f, h, s) = (files.clone(), hits.clone(), stop.clone());
        std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((mut conn, _)) => {
                        let _ = conn.set_nonblocking(false);
                        let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
                        let _ = conn.set_write_timeout(Some(Duration::from_secs(5)));
                        let mut buf = Vec::new();
                        let mut chunk = [0u8; 1024];
                        while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < 16 * 1024 {
                            match conn.read(&mut chunk) {
                                Ok(0) | Err(_) => break,
                                Ok(n) => buf.extend_from_slice(chunk.get(..n).unwrap_or(&[])),
                            }
                        }
                        let text = String::from_utf8_lossy(&buf);
                        let path = text.split_whitespace().nth(1).unwrap_or("/").to_string();
                        h.fetch_add(1, Ordering::Relaxed);
                        let body = f.lock().ok().and_then(|m| m.get(&path).cloned());
                        let reply = match body {
                            Some(b) => {
                                let mut r = format!(
                                    "HTTP/1.0 200 OK\r\nContent-Type: application/pkix-crl\r\nContent-Length: {}\r\n\r\n",
                                    b.len()
                                )
                                .into_bytes();
                                r.extend_from_slice(&b);
                                r
                            }
                            None => b"HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\n\r\n".to_vec(),
                        };
                        let _ = conn.write_all(&reply);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        Ok(HttpFiles { addr, files, hits, stop })
    }

    /// Serve `bytes` at `path` (which starts with `/`).
    pub fn put(&self, path: &str, bytes: Vec<u8>) {
        if let Ok(mut m) = self.files.lock() {
            m.insert(path.to_string(), bytes);
        }
    }

    /// `http://127.0.0.1:PORT/path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Requests served so far.
    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::Relaxed)
    }
}

impl Drop for HttpFiles {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
