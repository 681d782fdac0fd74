use isofix::serial_group;

#[serial_group("db", retries = 3)]
fn uses_the_database() {}

fn main() {
    uses_the_database();
}
