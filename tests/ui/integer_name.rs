use isofix::serial_group;

#[serial_group(8080)]
fn uses_the_port() {}

fn main() {
    uses_the_port();
}
