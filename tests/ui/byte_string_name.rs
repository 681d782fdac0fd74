use isofix::serial_group;

#[serial_group(b"db")]
fn uses_the_database() {}

fn main() {
    uses_the_database();
}
