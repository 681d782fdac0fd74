use isofix::serial_group;

#[serial_group]
fn uses_nothing() {}

fn main() {
    uses_nothing();
}
