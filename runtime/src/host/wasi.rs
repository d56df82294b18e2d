//! The WASI context of a guest: nothing granted unless its deployment says
//! so. By default no preopened directories, no environment variables, no
//! arguments, no sockets, an empty stdin; the guest's stdout and stderr
//! become log lines of its run.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};
use wasmtime_wasi::sockets::SocketAddrUse;
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder};

use super::RunLog;
use crate::model::LogSource;
use crate::sandbox::Grants;

/// A WASI context with only `grants`, capturing stdout and stderr into the
/// run's log. Fails, naming it, on a directory that cannot be opened.
pub(crate) fn sandbox_wasi(log: &Arc<RunLog>, grants: &Grants) -> Result<WasiCtx, String> {
    let mut builder = WasiCtxBuilder::new();
    builder
        .stdout(CapturedOutput { log: log.clone(), source: LogSource::Stdout })
        .stderr(CapturedOutput { log: log.clone(), source: LogSource::Stderr })
        .allow_udp(false)
        .allow_ip_name_lookup(false);
    for (key, value) in &grants.env {
        builder.env(key, value);
    }
    for (host, guest, read_only) in &grants.dirs {
        let perms = if *read_only { FsPerms::ReadOnly } else { FsPerms::ReadWrite };
        builder
            .preopened_dir(host, guest, perms)
            .map_err(|e| format!("cannot grant directory `{}` to the guest: {e}", host.display()))?;
    }
    if grants.connect.is_empty() {
        builder.allow_tcp(false);
    } else {
        let allowed = Arc::new(grants.connect.clone());
        builder.allow_tcp(true).socket_addr_check(move |addr, usage| {
            let ok = match usage {
                SocketAddrUse::TcpConnect => allowed.contains(&addr),
                // `connect` binds the socket to a wildcard address first.
                SocketAddrUse::TcpBind => addr.ip().is_unspecified() && addr.port() == 0,
                _ => false,
            };
            Box::pin(async move { ok })
        });
    }
    Ok(builder.build())
}

/// One of the guest's output streams, written into the run's log line by line.
#[derive(Clone)]
struct CapturedOutput {
    log: Arc<RunLog>,
    source: LogSource,
}

impl IsTerminal for CapturedOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for CapturedOutput {
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }

    // Writes go straight to the log, in order with the guest's log calls,
    // rather than through a background task.
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for CapturedOutput {
    async fn ready(&mut self) {}
}

impl OutputStream for CapturedOutput {
    fn write(&mut self, bytes: bytes::Bytes) -> StreamResult<()> {
        self.log.write_output(self.source, &bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(64 * 1024)
    }
}

impl tokio::io::AsyncWrite for CapturedOutput {
    fn poll_write(self: Pin<&mut Self>, _cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        self.log.write_output(self.source, buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
