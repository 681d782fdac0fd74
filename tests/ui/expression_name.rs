use isofix::serial_group;

#[serial_group(concat!("fixed", "-port"))]
fn uses_the_port() {}

fn main() {
    uses_the_port();
}
