use isofix::serial_group;

#[serial_group("db")]
struct Database;

fn main() {
    let _ = Database;
}
