use isofix::serial_group;

#[serial_group("db", shared)]
#[serial_group("ws")]
fn reads_and_writes() {}

fn main() {
    reads_and_writes();
}
