use isofix::serial_group;

#[serial_group("db", "ws", "db")]
fn uses_both() {}

fn main() {
    uses_both();
}
