//! `wasi:sockets/ip-name-lookup`, in place of wasmtime-wasi's, which can
//! only allow every lookup or none: a guest may look up the names of the
//! hosts it is granted, and only those, and gets the addresses they
//! resolved to when its run began (the addresses its connects are checked
//! against). Any other name is refused, and the run's log says how to
//! grant it.

use std::net::IpAddr;

use wasmtime::component::{Linker, Resource, ResourceType};
use wasmtime_wasi::p2::bindings::sockets::network::{ErrorCode, IpAddress};
use wasmtime_wasi::p2::{Network, Pollable, subscribe};

use super::RunState;

/// The interface as wasmtime-wasi registers it; guests importing any
/// 0.2.x version link to it.
const INTERFACE: &str = "wasi:sockets/ip-name-lookup@0.2.12";

/// The answer to one lookup.
pub(crate) struct NameLookup(std::vec::IntoIter<IpAddr>);

#[wasmtime_wasi::async_trait]
impl Pollable for NameLookup {
    /// The answer is known when the lookup is made.
    async fn ready(&mut self) {}
}

/// Replaces wasmtime-wasi's `ip-name-lookup` in `linker`, which has it.
pub(crate) fn add_to_linker(linker: &mut Linker<RunState>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let mut instance = linker.instance(INTERFACE)?;
    instance.resource("resolve-address-stream", ResourceType::host::<NameLookup>(), |mut store, rep| {
        store.data_mut().table.delete(Resource::<NameLookup>::new_own(rep))?;
        Ok(())
    })?;
    instance.func_wrap("resolve-addresses", |mut store, (network, name): (Resource<Network>, String)| {
        let state = store.data_mut();
        // The network resource is the capability to look names up at all.
        state.table.get(&network)?;
        let answer = match lookup(state, &name) {
            Ok(addresses) => Ok(state.table.push(NameLookup(addresses.into_iter()))?),
            Err(code) => Err(code),
        };
        Ok((answer,))
    })?;
    instance.func_wrap(
        "[method]resolve-address-stream.resolve-next-address",
        |mut store, (stream,): (Resource<NameLookup>,)| {
            let lookup = store.data_mut().table.get_mut(&stream)?;
            Ok((Ok::<Option<IpAddress>, ErrorCode>(lookup.0.next().map(IpAddress::from)),))
        },
    )?;
    instance
        .func_wrap("[method]resolve-address-stream.subscribe", |mut store, (stream,): (Resource<NameLookup>,)| {
            Ok((subscribe(&mut store.data_mut().table, stream)?,))
        })?;
    linker.allow_shadowing(false);
    Ok(())
}

/// The addresses of `name` if it is granted (an address stands for itself,
/// as connects to it are checked anyway).
fn lookup(state: &RunState, name: &str) -> Result<Vec<IpAddr>, ErrorCode> {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    if let Ok(address) = name.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>() {
        return Ok(vec![address]);
    }
    if let Some(addresses) = state.names.get(&name) {
        return Ok(addresses.clone());
    }
    state.log.denied(
        &format!("name lookup of `{name}`"),
        state.names.keys().map(String::as_str),
        &format!("{name}:PORT"),
    );
    Err(ErrorCode::PermanentResolverFailure)
}
