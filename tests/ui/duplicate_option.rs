use isofix::serial_group;

#[serial_group("db", timeout = 10, timeout = 20)]
fn uses_the_database() {}

fn main() {
    uses_the_database();
}
