/// STUB (issue 2): a live UDP socket on an ephemeral port.
pub struct EphemeralUdp;
