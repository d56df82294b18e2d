//! Errors of the test-side API (starting the server, writing a
//! kubeconfig, hooks); what HTTP clients get is in `status`.

use std::net::SocketAddr;
use std::path::PathBuf;

/// What can go wrong when a test drives the server.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The scratch directory for container processes could not be made.
    #[error("cannot create a scratch directory for container processes: {source}")]
    Scratch {
        /// Why.
        source: std::io::Error,
    },
    /// The kubeconfig file could not be written.
    #[error("cannot write the kubeconfig {}: {source}", path.display())]
    WriteKubeconfig {
        /// Where.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A hook named a pod the server does not have (or no longer runs).
    #[error("pod {namespace}/{name} does not exist: list pods to find the Job's pod name")]
    NoSuchPod {
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
    },
}
