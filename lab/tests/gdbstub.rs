//! The lab's gdb remote protocol client against a real QEMU gdbstub and a real kernel:
//! stopping the machine, breakpoints at a kernel symbol, one vCPU continued while the other
//! stays stopped.

mod common;

use lab::kernel::symbols::SymbolMap;
use lab::vm::gdb::{Action, Gdb, RIP};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A QEMU that is killed when the test ends, passed or not.
struct Qemu(Child);

impl Drop for Qemu {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// QEMU stopped before its first instruction (-S), its gdbstub on `socket`.
fn qemu(kernel: Option<&Path>, socket: &Path) -> Qemu {
    let mut cmd = Command::new("qemu-system-x86_64");
    cmd.args([
        "-nodefaults",
        "-no-user-config",
        "-display",
        "none",
        "-S",
        "-no-reboot",
    ])
    .args([
        "-machine",
        "q35",
        "-accel",
        "tcg,thread=multi",
        "-cpu",
        "max",
    ])
    .args(["-smp", "2", "-m", "1G", "-serial", "null"])
    .arg("-gdb")
    .arg(format!("unix:{},server=on,wait=off", socket.display()))
    .stdin(Stdio::null())
    .stdout(Stdio::null());
    if let Some(kernel) = kernel {
        cmd.arg("-kernel")
            .arg(kernel)
            .args(["-append", "console=ttyS0 nokaslr panic=-1"]);
    }
    Qemu(cmd.spawn().expect("qemu-system-x86_64"))
}

async fn connect(socket: &Path) -> Gdb {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match Gdb::connect(socket).await {
            Ok(gdb) => return gdb,
            Err(e) if Instant::now() > deadline => panic!("{e:#}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

#[tokio::test]
async fn the_stub_lists_vcpus_and_says_why_it_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("gdb.sock");
    let _qemu = qemu(None, &socket);
    let mut gdb = connect(&socket).await;
    assert_eq!(gdb.cpus().await.unwrap(), vec![0, 1]);
    let stop = gdb.stopped().await.unwrap();
    assert_eq!(stop.cpu, Some(0));
    // The reset vector.
    assert_eq!(gdb.register(0, RIP).await.unwrap(), 0xfff0);
    gdb.detach().await.unwrap();
}

/// The address System.map gives `name` (code or data).
fn address(map: &str, name: &str) -> u64 {
    map.lines()
        .find_map(|l| {
            let mut f = l.split_whitespace();
            let (addr, _, sym) = (f.next()?, f.next()?, f.next()?);
            (sym == name).then(|| u64::from_str_radix(addr, 16).unwrap())
        })
        .unwrap_or_else(|| panic!("{name} is not in System.map"))
}

/// Continue every vCPU until one stops at `addr`; stops of other vCPUs there are stepped
/// over.
async fn run_until(gdb: &mut Gdb, addr: u64, wanted: u32, limit: Duration) {
    let deadline = Instant::now() + limit;
    loop {
        gdb.resume(&[(Action::Continue, None)]).await.unwrap();
        let stop =
            gdb.wait_stop(deadline).await.unwrap().unwrap_or_else(|| {
                panic!("vCPU {wanted} did not reach {addr:#x} within {limit:?}")
            });
        let cpu = stop.cpu.expect("the stop names its vCPU");
        assert_eq!(gdb.register(cpu, RIP).await.unwrap(), addr, "{stop:?}");
        if cpu == wanted {
            return;
        }
        gdb.remove_breakpoint(addr).await.unwrap();
        gdb.resume(&[(Action::Step, Some(cpu))]).await.unwrap();
        let stepped = gdb
            .wait_stop(deadline)
            .await
            .unwrap()
            .expect("a step stops");
        assert_eq!(stepped.cpu, Some(cpu));
        gdb.insert_breakpoint(addr).await.unwrap();
    }
}

#[test]
fn a_breakpoint_at_a_kernel_symbol_stops_its_vcpu_and_one_vcpu_runs_alone() {
    let _slot = common::vm_slot();
    let kernel = common::built_kernel("baseline");
    let map_text = std::fs::read_to_string(kernel.join("System.map")).unwrap();
    let map = SymbolMap::parse(&map_text);
    let code = |name: &str| map.resolve(&name.parse().unwrap()).unwrap()[0];
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("gdb.sock");
    let _qemu = qemu(Some(&kernel.join("bzImage")), &socket);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut gdb = connect(&socket).await;
        // The boot vCPU reaches start_kernel (nokaslr: System.map's addresses).
        let start_kernel = code("start_kernel");
        gdb.insert_breakpoint(start_kernel).await.unwrap();
        run_until(&mut gdb, start_kernel, 0, Duration::from_secs(60)).await;
        gdb.remove_breakpoint(start_kernel).await.unwrap();
        // Guest memory as the kernel sees it.
        let banner = gdb
            .memory(address(&map_text, "linux_banner"), 14)
            .await
            .unwrap();
        assert_eq!(banner, b"Linux version ");
        // vCPU 1 is brought up: it stops at the first function only it runs.
        let secondary = code("start_secondary");
        gdb.insert_breakpoint(secondary).await.unwrap();
        run_until(&mut gdb, secondary, 1, Duration::from_secs(120)).await;
        gdb.remove_breakpoint(secondary).await.unwrap();
        // vCPU 1 alone, through two more of its bring-up functions; vCPU 0 does not move.
        let rip0 = gdb.register(0, RIP).await.unwrap();
        for name in ["cpu_init_exception_handling", "cpuhp_ap_sync_alive"] {
            let at = code(name);
            gdb.insert_breakpoint(at).await.unwrap();
            gdb.resume(&[(Action::Continue, Some(1))]).await.unwrap();
            let deadline = Instant::now() + Duration::from_secs(30);
            let stop = gdb.wait_stop(deadline).await.unwrap();
            assert_eq!(stop.and_then(|s| s.cpu), Some(1), "vCPU 1 reached {name}");
            assert_eq!(gdb.register(1, RIP).await.unwrap(), at, "{name}");
            assert_eq!(gdb.register(0, RIP).await.unwrap(), rip0, "vCPU 0 stayed");
            gdb.remove_breakpoint(at).await.unwrap();
        }
        // vCPU 0 alone for a while, then interrupted: vCPU 1 stayed where it stopped.
        gdb.resume(&[(Action::Continue, Some(0))]).await.unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let stop = gdb.interrupt().await.unwrap();
        assert_eq!(stop.signal, 2, "{stop:?}");
        assert_eq!(
            gdb.register(1, RIP).await.unwrap(),
            code("cpuhp_ap_sync_alive"),
            "vCPU 1 stayed"
        );
        gdb.detach().await.unwrap();
    });
}
