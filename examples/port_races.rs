//! Pick-then-release, measured: one contended workload run with three ways of getting a
//! port for a server that binds it a moment later, side by side, in one run.
//!
//! - `portpicker`: `pick_unused_port()` (random ports in 15000–25000, checked by binding
//!   and closing, then the OS's choice), then the server binds;
//! - `bind(0) + close`: the usual helper — bind port 0, read the port, close, bind again;
//! - `ReservedPort`: the port stays reserved while the server binds it and runs.
//!
//! Worker threads take ports one after another, bind a server on each at once and keep
//! the last few running, while racer threads take ports with plain `bind(0)` + `listen`,
//! as the other tests of a suite do. A server whose bind fails is a collision.
//!
//! `cargo run --release --example port_races`. As root on Linux it runs in a network
//! namespace of its own (`unshare --net`) whose ephemeral range is narrowed to 32 ports,
//! so the races a busy machine has now and then happen within seconds. Elsewhere it runs
//! on the machine's own range and says so; collisions are then rare. Figures are printed,
//! never asserted: this is a benchmark, not a test.

#[cfg(unix)]
fn main() -> std::io::Result<()> {
    unix::main()
}

#[cfg(not(unix))]
fn main() {
    eprintln!("ReservedPort is Unix only");
}

#[cfg(unix)]
mod unix {
    use std::collections::VecDeque;
    use std::io::{self, ErrorKind};
    use std::net::{Ipv4Addr, SocketAddr, TcpListener};
    use std::process::Command;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::{Duration, Instant};

    use isofix::{IsolatedDir, ReservedPort};

    /// Set in the copy of this example that runs in the new network namespace.
    const IN_NAMESPACE: &str = "PORT_RACES_IN_NAMESPACE";
    /// The namespace's ephemeral range: 32 ports.
    const RANGE: (u16, u16) = (40000, 40031);
    const WORKERS: usize = 4;
    /// Ports each worker takes per round.
    const PER_WORKER: usize = 1000;
    /// Servers each worker keeps running at once.
    const HELD: usize = 3;
    const RACERS: usize = 4;
    /// Rounds, each running every strategy once, in turn, so that load changes hit all.
    const ROUNDS: usize = 3;

    #[derive(Clone, Copy)]
    enum Strategy {
        Portpicker,
        BindClose,
        Reserved,
    }

    impl Strategy {
        const ALL: [Strategy; 3] = [
            Strategy::Portpicker,
            Strategy::BindClose,
            Strategy::Reserved,
        ];

        fn name(self) -> &'static str {
            match self {
                Strategy::Portpicker => "portpicker pick_unused_port",
                Strategy::BindClose => "bind(0) + close",
                Strategy::Reserved => "isofix ReservedPort::tcp",
            }
        }

        /// A port for a server, and what must live as long as the server.
        fn pick(self) -> io::Result<(SocketAddr, Option<ReservedPort>)> {
            let localhost = |port| SocketAddr::from((Ipv4Addr::LOCALHOST, port));
            match self {
                Strategy::Portpicker => portpicker::pick_unused_port()
                    .map(|port| (localhost(port), None))
                    .ok_or_else(|| io::Error::new(ErrorKind::AddrInUse, "no port")),
                Strategy::BindClose => {
                    let socket = TcpListener::bind(localhost(0))?;
                    Ok((socket.local_addr()?, None)) // closed here
                }
                Strategy::Reserved => {
                    let port = ReservedPort::tcp()?;
                    Ok((port.addr(), Some(port)))
                }
            }
        }
    }

    #[derive(Default)]
    struct Tally {
        picks: u64,
        collisions: u64,
        /// Picks refused because every port was taken at that moment.
        full: u64,
        picking: Duration,
    }

    pub fn main() -> io::Result<()> {
        if std::env::var_os(IN_NAMESPACE).is_some() {
            let range = "/proc/sys/net/ipv4/ip_local_port_range";
            std::fs::write(range, format!("{} {}", RANGE.0, RANGE.1))?;
            return run("in a network namespace of its own, ephemeral range narrowed to 32 ports");
        }
        // Locks of its own, so that reservations by tests running beside it do not count.
        let locks = IsolatedDir::new()?;
        let namespaced = Command::new("unshare")
            .args(["--net", "--"])
            .arg(std::env::current_exe()?)
            .env(IN_NAMESPACE, "1")
            .env("ISOFIX_LOCK_DIR", locks.path())
            .status();
        match namespaced {
            Ok(status) if status.success() => Ok(()),
            other => {
                println!(
                    "cannot run in a network namespace of its own ({other:?}; needs root and \
                     util-linux's unshare): running on this machine's ephemeral range"
                );
                run("on this machine's own ephemeral range")
            }
        }
    }

    fn run(setting: &str) -> io::Result<()> {
        let mut tallies: Vec<Tally> = Strategy::ALL.iter().map(|_| Tally::default()).collect();
        let mut alone: Vec<Tally> = Strategy::ALL.iter().map(|_| Tally::default()).collect();
        for _ in 0..ROUNDS {
            for (i, strategy) in Strategy::ALL.into_iter().enumerate() {
                workload(strategy, WORKERS, RACERS, &mut tallies[i])?;
                workload(strategy, 1, 0, &mut alone[i])?;
            }
        }
        println!(
            "{WORKERS} workers x {PER_WORKER} ports x {ROUNDS} rounds per strategy, each \
             port bound by a server at once, {HELD} servers kept per worker, {RACERS} racer \
             threads doing bind(0) + listen; {setting}:"
        );
        println!(
            "  {:<28} {:>7} {:>11} {:>10} {:>18} {:>18}",
            "strategy",
            "picks",
            "collisions",
            "per 1,000",
            "us per pick, alone",
            "under contention"
        );
        let per_pick = |t: &Tally| t.picking.as_nanos() as f64 / 1000.0 / t.picks as f64;
        let (anchor, anchor_alone) = (per_pick(&tallies[1]), per_pick(&alone[1]));
        for (i, strategy) in Strategy::ALL.into_iter().enumerate() {
            let (t, a) = (&tallies[i], &alone[i]);
            println!(
                "  {:<28} {:>7} {:>11} {:>10.1} {:>9.1} ({:>5.2}x) {:>9.1} ({:>5.2}x)",
                strategy.name(),
                t.picks,
                t.collisions,
                t.collisions as f64 * 1000.0 / t.picks as f64,
                per_pick(a),
                per_pick(a) / anchor_alone,
                per_pick(t),
                per_pick(t) / anchor
            );
        }
        let full: u64 = tallies.iter().map(|t| t.full).sum();
        let lone: u64 = alone.iter().map(|t| t.collisions).sum();
        println!(
            "  (ratios against bind(0) + close; alone: 1 worker, no racers, {lone} collisions; \
             {full} picks found every port taken and were retried)"
        );
        Ok(())
    }

    /// One round of `strategy`: `workers` and `racers` at once.
    fn workload(
        strategy: Strategy,
        workers: usize,
        racers: usize,
        tally: &mut Tally,
    ) -> io::Result<()> {
        let stop = AtomicBool::new(false);
        std::thread::scope(|s| {
            let racers: Vec<_> = (0..racers).map(|_| s.spawn(|| race(&stop))).collect();
            let workers: Vec<_> = (0..workers).map(|_| s.spawn(|| work(strategy))).collect();
            let done: Vec<_> = workers.into_iter().map(|w| w.join().unwrap()).collect();
            stop.store(true, Ordering::Relaxed);
            racers.into_iter().for_each(|r| r.join().unwrap());
            for result in done {
                let t = result?;
                tally.picks += t.picks;
                tally.collisions += t.collisions;
                tally.full += t.full;
                tally.picking += t.picking;
            }
            Ok(())
        })
    }

    /// Takes ports the way any other test does, holding the newest one.
    fn race(stop: &AtomicBool) {
        let mut _held = None;
        while !stop.load(Ordering::Relaxed) {
            if let Ok(listener) = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)) {
                _held = Some(listener);
            }
        }
    }

    fn work(strategy: Strategy) -> io::Result<Tally> {
        let mut tally = Tally::default();
        let mut servers = VecDeque::new();
        while tally.picks < PER_WORKER as u64 {
            let start = Instant::now();
            let picked = strategy.pick();
            tally.picking += start.elapsed();
            let (addr, reservation) = match picked {
                Ok(picked) => picked,
                Err(e) if e.kind() == ErrorKind::AddrInUse => {
                    // Every port is taken: stop a server and try again.
                    tally.full += 1;
                    servers.pop_front();
                    continue;
                }
                Err(e) => return Err(e),
            };
            tally.picks += 1;
            match TcpListener::bind(addr) {
                Ok(server) => servers.push_back((server, reservation)),
                Err(e) if e.kind() == ErrorKind::AddrInUse => tally.collisions += 1,
                Err(e) => return Err(e),
            }
            if servers.len() > HELD {
                servers.pop_front();
            }
        }
        Ok(tally)
    }
}
