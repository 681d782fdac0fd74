/// STUB (issue 2): a live TCP listener on an ephemeral port.
pub struct EphemeralTcp;
