use isofix::serial_group;

#[serial_group("heavy", max = 0)]
fn heavy() {}

fn main() {
    heavy();
}
