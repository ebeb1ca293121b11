//! `many_peers`: a load generator with many client addresses, for a gtUDP
//! server (a sink: `echo_server --sink`, sharded or not). Reports the
//! server's messages per second and, given the server's process id, its
//! CPU time per message.
//!
//! ```text
//! cargo run --release -p gtudp-bench --bin many_peers -- --server 127.0.0.1:4000 \
//!     [--peers 256] [--threads 1] [--window 16] [--size 64] [--warmup 1] [--secs 3] \
//!     [--server-pid PID]
//! ```
//!
//! It speaks the wire protocol itself, as cheaply as it can, so that the
//! server is what limits the rate: `--peers` connected UDP sockets (each a
//! distinct source port, so the kernel spreads them over the server's
//! shards), split over `--threads` threads, each socket keeping `--window`
//! DATA awaiting their RECV. Each RECV is answered with its ACK (the
//! server's validation probe too, which proves the address), and the ACKs
//! and the DATA that refill the window leave in one `sendmmsg` per socket
//! per wake-up, each kind as one segmented send (UDP GSO: one trip through
//! the kernel for all of a socket's ACKs, one for its DATA); RECVs are read
//! with `recvmmsg`, coalesced by UDP GRO. On loopback the sender's system
//! call also runs the receiving side's network stack, so a generator
//! sending datagram by datagram paid for much of the server's input and
//! took about as much CPU as the server: with one server shard the two
//! already filled two cores, and more shards had nothing left to scale
//! onto. (`--no-gso` sends datagram by datagram, to compare.) A DATA
//! without its RECV after 250 ms is resent.
//!
//! After `--warmup` seconds it counts, for `--secs` seconds, the messages
//! confirmed (a RECV for one of its DATA, once each) and the CPU time of
//! the server process (`/proc/PID/stat`, `--server-pid`) and of itself
//! (`getrusage`). The last line is
//! `peers=P shards=? msgs_per_s=R server_cpu_us_per_msg=C server_cores=S client_cores=K resends=N`
//! `server_runq=W client_runq=V resends=N` (cores: CPU seconds per second;
//! runq: seconds per second the process's threads were runnable but waited
//! for a CPU, summed over threads: other load on the machine shows there;
//! resends: DATA sent again while counting, a sign of datagrams dropped by
//! a full socket buffer).

#[cfg(target_os = "linux")]
fn main() -> std::process::ExitCode {
    linux::main()
}

#[cfg(not(target_os = "linux"))]
fn main() -> std::process::ExitCode {
    eprintln!("many_peers: Linux only (recvmmsg, sendmmsg, epoll, /proc)");
    std::process::ExitCode::FAILURE
}

/// The generator itself (Linux system calls).
#[cfg(target_os = "linux")]
mod linux {
    use std::collections::VecDeque;
    use std::net::{SocketAddr, UdpSocket};
    use std::os::fd::AsRawFd;
    use std::process::ExitCode;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use clap::Parser;

    /// Drive a gtUDP server with many client addresses and report its rate and
    /// CPU per message.
    #[derive(Parser, Debug)]
    #[command(name = "many_peers")]
    struct Args {
        /// The server's address.
        #[arg(long)]
        server: SocketAddr,
        /// Client sockets (distinct source addresses).
        #[arg(long, default_value_t = 256)]
        peers: usize,
        /// Threads driving the sockets.
        #[arg(long, default_value_t = 1)]
        threads: usize,
        /// DATA awaiting their RECV per socket.
        #[arg(long, default_value_t = 16)]
        window: usize,
        /// Payload bytes per message.
        #[arg(long, default_value_t = 64)]
        size: usize,
        /// Seconds before counting.
        #[arg(long, default_value_t = 1.0)]
        warmup: f64,
        /// Seconds counted.
        #[arg(long, default_value_t = 3.0)]
        secs: f64,
        /// The server's process id, to read its CPU time.
        #[arg(long)]
        server_pid: Option<u32>,
        /// A label printed with the result (the server's shard count).
        #[arg(long, default_value = "?")]
        label: String,
        /// Send datagram by datagram (`sendmmsg`), without UDP GSO, and read
        /// without UDP GRO.
        #[arg(long)]
        no_gso: bool,
    }

    const DATA: u8 = 0x1d;
    const RECV: u8 = 0x5f;
    const ACK: u8 = 0xae;
    const HEADER: usize = 5;
    const RESEND_AFTER: Duration = Duration::from_millis(250);
    /// Datagrams (or GRO-coalesced runs of them) read per `recvmmsg`.
    const BATCH: usize = 64;
    /// Bytes per receive buffer: a GRO run of RECVs (5 bytes each) fits.
    const RECV_BUFFER: usize = 2_048;
    /// Segments in one GSO send (the kernel's `UDP_MAX_SEGMENTS`).
    const MAX_SEGMENTS: usize = 64;
    /// Bytes in one GSO send: one IP datagram.
    const MAX_GSO_BYTES: usize = 65_000;
    /// `SOL_UDP` options (linux/udp.h), which the libc crate may not name.
    const UDP_SEGMENT: libc::c_int = 103;
    const UDP_GRO: libc::c_int = 104;

    pub(crate) fn main() -> ExitCode {
        let args = Args::parse();
        match run(&args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("many_peers: {error}");
                ExitCode::FAILURE
            }
        }
    }

    fn run(args: &Args) -> Result<(), Box<dyn std::error::Error>> {
        if args.peers == 0 || args.threads == 0 || args.window == 0 {
            return Err("--peers, --threads and --window must be at least 1".into());
        }
        let confirmed = Arc::new(AtomicU64::new(0));
        let resent = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let local = if args.server.is_ipv4() {
            "127.0.0.1:0"
        } else {
            "[::1]:0"
        };
        let mut sockets: Vec<Vec<UdpSocket>> = (0..args.threads).map(|_| Vec::new()).collect();
        for index in 0..args.peers {
            let socket = UdpSocket::bind(local)?;
            socket.connect(args.server)?;
            socket.set_nonblocking(true)?;
            if !args.no_gso {
                set_udp_option(&socket, UDP_GRO, 1)?;
            }
            sockets[index % args.threads].push(socket);
        }
        let threads: Vec<_> = sockets
            .into_iter()
            .enumerate()
            .map(|(index, sockets)| {
                let counters = Counters {
                    confirmed: confirmed.clone(),
                    resent: resent.clone(),
                };
                let stop = stop.clone();
                let (window, size, gso) = (args.window, args.size, !args.no_gso);
                std::thread::spawn(move || {
                    drive(index, sockets, window, size, gso, &counters, &stop)
                })
            })
            .collect();

        std::thread::sleep(Duration::from_secs_f64(args.warmup));
        let resent0 = resent.load(Ordering::Relaxed);
        let waited0 = (
            args.server_pid.map(run_queue_wait),
            run_queue_wait(std::process::id()),
        );
        let (count0, server0, client0, t0) = (
            confirmed.load(Ordering::Relaxed),
            args.server_pid.map(process_cpu),
            self_cpu(),
            Instant::now(),
        );
        std::thread::sleep(Duration::from_secs_f64(args.secs));
        let (count1, server1, client1, t1) = (
            confirmed.load(Ordering::Relaxed),
            args.server_pid.map(process_cpu),
            self_cpu(),
            Instant::now(),
        );
        let resends = resent.load(Ordering::Relaxed) - resent0;
        let waited1 = (
            args.server_pid.map(run_queue_wait),
            run_queue_wait(std::process::id()),
        );
        stop.store(true, Ordering::Relaxed);
        for thread in threads {
            thread.join().map_err(|_| "a client thread panicked")??;
        }

        let elapsed = (t1 - t0).as_secs_f64();
        let messages = count1 - count0;
        let rate = messages as f64 / elapsed;
        let client_cores = (client1 - client0) / elapsed;
        let (server_us, server_cores) = match (server0, server1) {
            (Some(Some(a)), Some(Some(b))) => (
                format!("{:.2}", (b - a) / messages.max(1) as f64 * 1e6),
                format!("{:.2}", (b - a) / elapsed),
            ),
            _ => ("?".to_owned(), "?".to_owned()),
        };
        let server_waited = match (waited0.0, waited1.0) {
            (Some(a), Some(b)) => format!("{:.2}", (b - a) / elapsed),
            _ => "?".to_owned(),
        };
        let client_waited = (waited1.1 - waited0.1) / elapsed;
        println!(
        "peers={} shards={} msgs_per_s={rate:.0} server_cpu_us_per_msg={server_us} server_cores={server_cores} client_cores={client_cores:.2} server_runq={server_waited} client_runq={client_waited:.2} resends={resends}",
        args.peers, args.label
    );
        Ok(())
    }

    /// What the driving threads count, for the main thread.
    struct Counters {
        /// Messages confirmed (their first RECV).
        confirmed: Arc<AtomicU64>,
        /// DATA sent again after `RESEND_AFTER` without their RECV.
        resent: Arc<AtomicU64>,
    }

    /// One socket's messages awaiting their RECV, by identity (consecutive
    /// from `first`).
    struct Peer {
        socket: UdpSocket,
        first: u32,
        next: u32,
        /// For identities `first..next`: when last sent, `None` once confirmed.
        sent: VecDeque<Option<Instant>>,
        in_flight: usize,
    }

    impl Peer {
        fn confirm(&mut self, id: u32) -> bool {
            let offset = id.wrapping_sub(self.first) as usize;
            match self.sent.get_mut(offset) {
                Some(slot @ Some(_)) => {
                    *slot = None;
                    self.in_flight -= 1;
                    while self.sent.front().is_some_and(Option::is_none) {
                        self.sent.pop_front();
                        self.first = self.first.wrapping_add(1);
                    }
                    true
                }
                _ => false,
            }
        }
    }

    fn drive(
        seed: usize,
        sockets: Vec<UdpSocket>,
        window: usize,
        size: usize,
        gso: bool,
        counters: &Counters,
        stop: &AtomicBool,
    ) -> std::io::Result<()> {
        let poll_fd = epoll(&sockets)?;
        let mut peers: Vec<Peer> = sockets
            .into_iter()
            .enumerate()
            .map(|(index, socket)| {
                // Distinct starting identities, so that a rerun from a reused
                // port is not taken for duplicates.
                let first = (seed as u32) << 24 ^ (index as u32) << 12 ^ std::process::id();
                Peer {
                    socket,
                    first,
                    next: first,
                    sent: VecDeque::new(),
                    in_flight: 0,
                }
            })
            .collect();
        let payload = vec![0x42u8; size];
        let mut out = Outbox::new(HEADER + size, gso);
        let mut inbox = Inbox::new();
        let mut events = vec![libc_event(); 256];
        let now = Instant::now();
        for peer in &mut peers {
            refill(peer, window, &payload, &mut out, now);
            out.send(&peer.socket);
        }
        let mut last_resend = Instant::now();
        while !stop.load(Ordering::Relaxed) {
            let ready = epoll_wait(poll_fd, &mut events, 10)?;
            let now = Instant::now();
            for event in &events[..ready] {
                let peer = &mut peers[event.u64 as usize];
                let mut got = 0u64;
                loop {
                    let runs = inbox.read(&peer.socket)?;
                    for datagram in inbox.datagrams() {
                        if let [RECV, a, b, c, d] = *datagram {
                            out.push_ack([ACK, a, b, c, d]);
                            if peer.confirm(u32::from_be_bytes([a, b, c, d])) {
                                got += 1;
                            }
                        }
                    }
                    if runs < BATCH {
                        break;
                    }
                }
                counters.confirmed.fetch_add(got, Ordering::Relaxed);
                refill(peer, window, &payload, &mut out, now);
                out.send(&peer.socket);
            }
            if now - last_resend > RESEND_AFTER / 5 {
                last_resend = now;
                for peer in &mut peers {
                    let first = peer.first;
                    for (offset, slot) in peer.sent.iter_mut().enumerate() {
                        if let Some(at) = slot {
                            if now - *at > RESEND_AFTER {
                                *at = now;
                                out.push_data(first.wrapping_add(offset as u32), &payload);
                                counters.resent.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                    out.send(&peer.socket);
                }
            }
        }
        // SAFETY: the epoll descriptor is ours and closed once.
        unsafe { libc::close(poll_fd) };
        Ok(())
    }

    fn refill(peer: &mut Peer, window: usize, payload: &[u8], out: &mut Outbox, now: Instant) {
        while peer.in_flight < window {
            out.push_data(peer.next, payload);
            peer.sent.push_back(Some(now));
            peer.next = peer.next.wrapping_add(1);
            peer.in_flight += 1;
        }
    }

    /// What one socket sends at its next [`Outbox::send`]: its ACKs and its
    /// DATA, each kind laid end to end (every datagram of a kind has the
    /// same size), so that each kind leaves as one segmented send.
    struct Outbox {
        acks: Vec<u8>,
        data: Vec<u8>,
        data_size: usize,
        gso: bool,
    }

    /// One message of a `sendmmsg`: a run of datagrams of `segment` bytes.
    struct Run {
        acks: bool,
        start: usize,
        len: usize,
        segment: usize,
    }

    impl Outbox {
        fn new(data_size: usize, gso: bool) -> Self {
            Self {
                acks: Vec::new(),
                data: Vec::new(),
                data_size,
                gso,
            }
        }

        fn push_ack(&mut self, ack: [u8; HEADER]) {
            self.acks.extend_from_slice(&ack);
        }

        fn push_data(&mut self, id: u32, payload: &[u8]) {
            self.data.push(DATA);
            self.data.extend_from_slice(&id.to_be_bytes());
            self.data.extend_from_slice(payload);
        }

        /// The messages to send: runs of at most `MAX_SEGMENTS` datagrams
        /// (one IP datagram's worth) with GSO, else one datagram each.
        fn runs(&self) -> Vec<Run> {
            let mut runs = Vec::new();
            for (acks, bytes, segment) in [
                (true, &self.acks, HEADER),
                (false, &self.data, self.data_size),
            ] {
                let per_run = if self.gso {
                    MAX_SEGMENTS.min(MAX_GSO_BYTES / segment).max(1)
                } else {
                    1
                };
                let mut start = 0;
                while start < bytes.len() {
                    let len = (per_run * segment).min(bytes.len() - start);
                    runs.push(Run {
                        acks,
                        start,
                        len,
                        segment,
                    });
                    start += len;
                }
            }
            runs
        }

        /// Sends everything on the connected `socket` in one `sendmmsg`
        /// (what the socket buffer refuses is left to the resend timer), and
        /// empties the outbox. If the kernel refuses a segmented send, the
        /// rest of the run is sent datagram by datagram.
        fn send(&mut self, socket: &UdpSocket) {
            let runs = self.runs();
            // SAFETY: plain arithmetic on a constant.
            let space = unsafe { libc::CMSG_SPACE(std::mem::size_of::<u16>() as u32) } as usize;
            // u64 words: control messages must be aligned like `cmsghdr`.
            let mut control = vec![0u64; (space * runs.len()).div_ceil(8)];
            let mut iovecs: Vec<libc::iovec> = runs
                .iter()
                .map(|run| {
                    let bytes = if run.acks { &self.acks } else { &self.data };
                    libc::iovec {
                        iov_base: bytes[run.start..].as_ptr() as *mut libc::c_void,
                        iov_len: run.len,
                    }
                })
                .collect();
            let mut headers: Vec<libc::mmsghdr> = Vec::with_capacity(runs.len());
            for (index, (run, iovec)) in runs.iter().zip(iovecs.iter_mut()).enumerate() {
                // SAFETY: an all-zero `mmsghdr` is a valid value (null
                // pointers, zero lengths).
                let mut header: libc::mmsghdr = unsafe { std::mem::zeroed() };
                header.msg_hdr.msg_iov = iovec;
                header.msg_hdr.msg_iovlen = 1;
                if run.len > run.segment {
                    // SAFETY: `space` bytes from word `index * space / 8` lie
                    // within `control` (`space` is a multiple of 8); the
                    // header points at them, so `CMSG_FIRSTHDR` returns a
                    // writable, aligned `cmsghdr` with `CMSG_LEN(2)` bytes
                    // of room for its data.
                    unsafe {
                        header.msg_hdr.msg_control =
                            control.as_mut_ptr().add(index * space / 8).cast();
                        header.msg_hdr.msg_controllen = space;
                        let message = libc::CMSG_FIRSTHDR(&header.msg_hdr);
                        (*message).cmsg_level = libc::SOL_UDP;
                        (*message).cmsg_type = UDP_SEGMENT;
                        (*message).cmsg_len = libc::CMSG_LEN(2) as usize;
                        std::ptr::write_unaligned(
                            libc::CMSG_DATA(message).cast::<u16>(),
                            run.segment as u16,
                        );
                    }
                }
                headers.push(header);
            }
            let mut sent = 0;
            while sent < headers.len() {
                // SAFETY: the socket is open; `headers[sent..]` are valid
                // headers whose iovecs and control messages point into
                // `self` and `control`, alive for the call.
                let result = unsafe {
                    libc::sendmmsg(
                        socket.as_raw_fd(),
                        headers[sent..].as_mut_ptr(),
                        (headers.len() - sent) as libc::c_uint,
                        0,
                    )
                };
                if result > 0 {
                    sent += result as usize;
                    continue;
                }
                let error = std::io::Error::last_os_error();
                let refused = matches!(
                    error.raw_os_error(),
                    Some(libc::EIO | libc::EINVAL | libc::EOPNOTSUPP)
                );
                if self.gso && refused {
                    eprintln!("many_peers: segmented send refused ({error}); sending datagram by datagram");
                    self.gso = false;
                    for run in &runs[sent..] {
                        let bytes = if run.acks { &self.acks } else { &self.data };
                        for datagram in bytes[run.start..run.start + run.len].chunks(run.segment) {
                            let _ = socket.send(datagram);
                        }
                    }
                }
                break;
            }
            self.acks.clear();
            self.data.clear();
        }
    }

    /// Buffers for one `recvmmsg`: each slot takes a datagram, or a run of
    /// them coalesced by UDP GRO (its segment size in a control message).
    struct Inbox {
        bytes: Vec<u8>,
        control: Vec<u64>,
        /// Per slot read: its length and segment size.
        read: Vec<(usize, usize)>,
    }

    /// Bytes of control message room per slot (`CMSG_SPACE(sizeof(int))`,
    /// rounded up to whole words).
    const RECV_CONTROL_WORDS: usize = 4;

    impl Inbox {
        fn new() -> Self {
            Self {
                bytes: vec![0; BATCH * RECV_BUFFER],
                control: vec![0; BATCH * RECV_CONTROL_WORDS],
                read: Vec::with_capacity(BATCH),
            }
        }

        /// Reads up to `BATCH` slots without waiting; returns how many.
        fn read(&mut self, socket: &UdpSocket) -> std::io::Result<usize> {
            self.read.clear();
            let mut iovecs: Vec<libc::iovec> = self
                .bytes
                .chunks_mut(RECV_BUFFER)
                .map(|buf| libc::iovec {
                    iov_base: buf.as_mut_ptr().cast(),
                    iov_len: buf.len(),
                })
                .collect();
            let control = self.control.as_mut_ptr();
            let mut headers: Vec<libc::mmsghdr> = iovecs
                .iter_mut()
                .enumerate()
                .map(|(index, iovec)| {
                    // SAFETY: an all-zero `mmsghdr` is a valid value.
                    let mut header: libc::mmsghdr = unsafe { std::mem::zeroed() };
                    header.msg_hdr.msg_iov = iovec;
                    header.msg_hdr.msg_iovlen = 1;
                    // SAFETY: slot `index`'s words lie within `self.control`.
                    header.msg_hdr.msg_control =
                        unsafe { control.add(index * RECV_CONTROL_WORDS) }.cast();
                    header.msg_hdr.msg_controllen = RECV_CONTROL_WORDS * 8;
                    header
                })
                .collect();
            // SAFETY: the socket is open; the headers' iovecs and control
            // buffers point into `self`, alive and writable for the call.
            let result = unsafe {
                libc::recvmmsg(
                    socket.as_raw_fd(),
                    headers.as_mut_ptr(),
                    headers.len() as libc::c_uint,
                    libc::MSG_DONTWAIT,
                    std::ptr::null_mut(),
                )
            };
            if result < 0 {
                let error = std::io::Error::last_os_error();
                return match error.kind() {
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::ConnectionRefused => Ok(0),
                    _ => Err(error),
                };
            }
            for header in &headers[..result as usize] {
                let len = header.msg_len as usize;
                let mut segment = len;
                // SAFETY: the kernel filled the header's control buffer
                // (`msg_controllen` bytes of it); the CMSG macros walk it
                // within that length.
                unsafe {
                    let mut message = libc::CMSG_FIRSTHDR(&header.msg_hdr);
                    while !message.is_null() {
                        if (*message).cmsg_level == libc::SOL_UDP && (*message).cmsg_type == UDP_GRO
                        {
                            let size: libc::c_int =
                                std::ptr::read_unaligned(libc::CMSG_DATA(message).cast());
                            segment = (size as usize).max(1);
                        }
                        message = libc::CMSG_NXTHDR(&header.msg_hdr, message);
                    }
                }
                self.read.push((len, segment));
            }
            Ok(result as usize)
        }

        /// The datagrams of the last read, runs split at their segment size.
        fn datagrams(&self) -> impl Iterator<Item = &[u8]> {
            self.read
                .iter()
                .zip(self.bytes.chunks(RECV_BUFFER))
                .flat_map(|(&(len, segment), buf)| buf[..len.min(buf.len())].chunks(segment))
        }
    }

    /// Sets a `SOL_UDP` option on `socket`.
    fn set_udp_option(
        socket: &UdpSocket,
        option: libc::c_int,
        value: libc::c_int,
    ) -> std::io::Result<()> {
        // SAFETY: the socket is open; `value` is a readable int of the size given.
        let result = unsafe {
            libc::setsockopt(
                socket.as_raw_fd(),
                libc::SOL_UDP,
                option,
                (&value as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if result < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }

    fn libc_event() -> libc::epoll_event {
        libc::epoll_event { events: 0, u64: 0 }
    }

    /// An epoll instance watching every socket for input (edge-triggered),
    /// each under its index.
    fn epoll(sockets: &[UdpSocket]) -> std::io::Result<i32> {
        // SAFETY: plain system call.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        for (index, socket) in sockets.iter().enumerate() {
            let mut event = libc::epoll_event {
                events: (libc::EPOLLIN | libc::EPOLLET) as u32,
                u64: index as u64,
            };
            // SAFETY: both descriptors are open; `event` is a valid epoll_event.
            let result =
                unsafe { libc::epoll_ctl(fd, libc::EPOLL_CTL_ADD, socket.as_raw_fd(), &mut event) };
            if result < 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
        Ok(fd)
    }

    fn epoll_wait(
        fd: i32,
        events: &mut [libc::epoll_event],
        timeout_ms: i32,
    ) -> std::io::Result<usize> {
        // SAFETY: `fd` is our epoll descriptor; `events` is writable for its
        // length.
        let result =
            unsafe { libc::epoll_wait(fd, events.as_mut_ptr(), events.len() as i32, timeout_ms) };
        if result < 0 {
            let error = std::io::Error::last_os_error();
            if error.kind() == std::io::ErrorKind::Interrupted {
                return Ok(0);
            }
            return Err(error);
        }
        Ok(result as usize)
    }

    /// CPU seconds (user + system) of process `pid` so far, from
    /// `/proc/PID/stat`.
    fn process_cpu(pid: u32) -> Option<f64> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // Fields after the command name (which may hold spaces) in parentheses.
        let rest = &stat[stat.rfind(')')? + 2..];
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let utime: f64 = fields.get(11)?.parse().ok()?;
        let stime: f64 = fields.get(12)?.parse().ok()?;
        // SAFETY: plain system call.
        let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
        Some((utime + stime) / ticks)
    }

    /// Seconds the threads of process `pid` spent runnable but waiting for a
    /// CPU, so far (the second field of `/proc/PID/task/*/schedstat`; threads
    /// that ended are not counted).
    fn run_queue_wait(pid: u32) -> f64 {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
            return 0.0;
        };
        let nanos: u64 = tasks
            .filter_map(|task| {
                let stat = std::fs::read_to_string(task.ok()?.path().join("schedstat")).ok()?;
                stat.split_whitespace().nth(1)?.parse::<u64>().ok()
            })
            .sum();
        nanos as f64 / 1e9
    }

    /// CPU seconds (user + system) of this process so far.
    fn self_cpu() -> f64 {
        // SAFETY: an all-zero rusage is valid; getrusage fills it.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: `usage` is writable.
        unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
        let seconds = |time: libc::timeval| time.tv_sec as f64 + time.tv_usec as f64 / 1e6;
        seconds(usage.ru_utime) + seconds(usage.ru_stime)
    }
}
