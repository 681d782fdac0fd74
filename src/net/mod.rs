//! Live ephemeral sockets: bound to port 0 and handed back still open, so no other test
//! can take the port between "pick" and "bind".

mod tcp;
mod udp;

pub use tcp::EphemeralTcp;
pub use udp::EphemeralUdp;
