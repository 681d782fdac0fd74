//! Each test does 300 ms of work (a sleep stands for it). The grouped ones take turns
//! through `#[serial_group]`; under nextest without test groups, a grouped test that starts
//! while another holds the group waits in a slot that an ungrouped test could have used.

#[cfg(test)]
mod tests {
    use std::time::Duration;

    fn work() {
        std::thread::sleep(Duration::from_millis(300));
    }

    #[test]
    #[isofix::serial_group("isofix-groups-bench")]
    fn grouped_1() {
        work();
    }

    #[test]
    #[isofix::serial_group("isofix-groups-bench")]
    fn grouped_2() {
        work();
    }

    #[test]
    #[isofix::serial_group("isofix-groups-bench")]
    fn grouped_3() {
        work();
    }

    #[test]
    #[isofix::serial_group("isofix-groups-bench")]
    fn grouped_4() {
        work();
    }

    #[test]
    fn ungrouped_1() {
        work();
    }

    #[test]
    fn ungrouped_2() {
        work();
    }

    #[test]
    fn ungrouped_3() {
        work();
    }

    #[test]
    fn ungrouped_4() {
        work();
    }
}
