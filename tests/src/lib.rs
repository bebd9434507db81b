//! Shared test support for SP-E integration tests.
//!
//! - [`FakeOpenMeteo`]: a fake Open-Meteo forecast API on loopback whose
//!   behaviour ([`Behavior`]) can be switched at run time: healthy, error
//!   statuses, hanging, cut bodies, garbage, closed or reset connections.
//! - [`ServerProcess`]: the example server as a real process on a free
//!   loopback port, killed on drop.
//! - [`unused_local_addr`]: a loopback address nobody listens on.

pub mod fake_open_meteo;
pub mod server_proc;

pub use fake_open_meteo::{Behavior, FakeOpenMeteo, RecordedRequest, fixture, generate_forecast};
pub use server_proc::ServerProcess;

/// A `127.0.0.1` address with no listener: binds a port, takes its number,
/// and closes it again, so connecting to it is refused.
pub fn unused_local_addr() -> std::net::SocketAddr {
    let listener = std::net::TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0))
        .unwrap_or_else(|e| panic!("cannot bind 127.0.0.1: {e}"));
    listener
        .local_addr()
        .unwrap_or_else(|e| panic!("no local address: {e}"))
}
