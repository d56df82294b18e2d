//! A TCP link between weft and a store emulator that a test can cut and
//! restore, to see what weft does when the store becomes unreachable.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

/// A forwarding link on 127.0.0.1.
pub(crate) struct Link {
    /// `http://127.0.0.1:PORT`: point the store's endpoint here.
    pub endpoint: String,
    up: Arc<AtomicBool>,
    open: Arc<Mutex<Vec<TcpStream>>>,
}

impl Link {
    /// Forwards connections to `upstream` (`http://host:port`).
    pub(crate) fn to(upstream: &str) -> Link {
        let upstream = upstream.trim_start_matches("http://").to_owned();
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let endpoint = format!("http://{}", listener.local_addr().expect("address"));
        let up = Arc::new(AtomicBool::new(true));
        let open: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let (up_flag, open_list) = (up.clone(), open.clone());
        std::thread::spawn(move || {
            for client in listener.incoming().map_while(Result::ok) {
                if !up_flag.load(Ordering::SeqCst) {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let Ok(server) = TcpStream::connect(&upstream) else { continue };
                let mut list = open_list.lock().unwrap_or_else(PoisonError::into_inner);
                for stream in [&client, &server] {
                    if let Ok(clone) = stream.try_clone() {
                        list.push(clone);
                    }
                }
                drop(list);
                pipe(&client, &server);
                pipe(&server, &client);
            }
        });
        Link { endpoint, up, open }
    }

    /// Drops every open connection and refuses new ones.
    pub(crate) fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        for stream in self.open.lock().unwrap_or_else(PoisonError::into_inner).drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }

    /// Accepts connections again.
    pub(crate) fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

fn pipe(from: &TcpStream, to: &TcpStream) {
    let (Ok(mut from), Ok(mut to)) = (from.try_clone(), to.try_clone()) else { return };
    std::thread::spawn(move || {
        let mut buffer = [0u8; 16 * 1024];
        while let Ok(n) = from.read(&mut buffer) {
            if n == 0 || to.write_all(&buffer[..n]).is_err() {
                break;
            }
        }
        let _ = to.shutdown(Shutdown::Write);
    });
}
