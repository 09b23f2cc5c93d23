//! Where a function lives in the kernel tree, and which places are the kernel's shared
//! machinery rather than the code at fault: sanitizers, allocators, locking, lib helpers,
//! entry code, scheduler waits, printk, workqueue and timer machinery. A frame's file is the
//! one its console printed (`file:line`), or else the one `data/function-files.gz` gives
//! (made from a real tree by `scripts/function-files.sh`).

use std::sync::LazyLock;

/// The places whose functions are never the code at fault, each with why. An entry ending
/// in `/` is a directory; `*.h` is every header (its inline helpers are expanded into their
/// callers); anything else is one file.
#[rustfmt::skip]
pub const INFRASTRUCTURE: &[(&str, &str)] = &[
    ("*.h", "inline helpers of a header"),
    ("lib/", "library helpers and the checks that report for their caller"),
    ("mm/kasan/", "KASAN"),
    ("mm/kmsan/", "KMSAN"),
    ("mm/kfence/", "KFENCE"),
    ("kernel/kcsan/", "KCSAN"),
    ("kernel/kcov.c", "coverage collection"),
    ("mm/slub.c", "the slab allocator"),
    ("mm/slab.c", "the slab allocator"),
    ("mm/slob.c", "the slab allocator"),
    ("mm/slab_common.c", "the slab allocator"),
    ("mm/page_alloc.c", "the page allocator"),
    ("mm/vmalloc.c", "the vmalloc allocator"),
    ("mm/percpu.c", "the per-CPU allocator"),
    ("mm/mempool.c", "memory pools"),
    ("mm/util.c", "allocation helpers (kmemdup, memdup_user, kvmalloc)"),
    ("mm/kmemleak.c", "the leak detector"),
    ("mm/usercopy.c", "user-copy hardening checks"),
    ("mm/maccess.c", "probing kernel and user memory"),
    ("mm/fail_page_alloc.c", "fault injection"),
    ("virt/lib/", "library helpers"),
    ("kernel/locking/", "lock primitives and lockdep"),
    ("kernel/sched/", "scheduling, waits and wake-ups"),
    ("kernel/printk/", "printing"),
    ("kernel/panic.c", "WARN and panic"),
    ("kernel/workqueue.c", "workqueue machinery"),
    ("kernel/time/timer.c", "timer machinery"),
    ("kernel/time/hrtimer.c", "timer machinery"),
    ("kernel/softirq.c", "bottom halves"),
    ("kernel/kthread.c", "kernel threads"),
    ("kernel/stacktrace.c", "stack walking"),
    ("kernel/entry/", "syscall and interrupt entry"),
    ("kernel/rcu/", "RCU machinery"),
    ("arch/x86/entry/", "syscall and interrupt entry"),
    ("arch/x86/lib/", "copy and string helpers"),
    ("arch/x86/kernel/traps.c", "traps that report for the code that trapped"),
    ("arch/x86/kernel/stacktrace.c", "stack walking"),
    ("arch/x86/kernel/unwind_orc.c", "stack walking"),
    ("arch/x86/kernel/unwind_frame.c", "stack walking"),
    ("arch/x86/mm/fault.c", "page faults"),
    ("arch/x86/mm/maccess.c", "probing memory"),
    ("arch/x86/mm/physaddr.c", "address checks that BUG for their caller"),
    ("arch/x86/kernel/apic/apic.c", "the timer interrupt a stall is seen from"),
    ("arch/x86/kernel/apic/hw_nmi.c", "the backtrace IPI a stall is seen from"),
    ("fs/proc/generic.c", "proc registration, which warns for its caller"),
    ("arch/arm64/kernel/entry-common.c", "syscall and interrupt entry"),
    ("arch/arm64/kernel/entry.S", "syscall and interrupt entry"),
    ("arch/arm64/kernel/syscall.c", "syscall entry"),
    ("arch/arm64/kernel/traps.c", "traps that report for the code that trapped"),
    ("arch/arm64/kernel/stacktrace.c", "stack walking"),
    ("arch/arm64/mm/fault.c", "page faults"),
    ("arch/arm64/lib/", "copy and string helpers"),
];

/// Generic layers that call into the code that uses them: the VFS's dispatch into a file
/// system's operations, the page cache, the network core's helpers for a protocol. A frame
/// here is passed over for a frame further down that lies in neither table (the file system,
/// the protocol), and is the one to blame when there is none.
#[rustfmt::skip]
pub const LAYERS: &[(&str, &str)] = &[
    ("fs/inode.c", "inode lifetime, calling the file system's evict and write"),
    ("fs/fs-writeback.c", "writeback, calling the file system's write_inode and writepages"),
    ("fs/super.c", "mounting, calling the file system's fill_super"),
    ("fs/namespace.c", "mounting, calling the file system's fill_super"),
    ("fs/buffer.c", "buffer heads, for the file system that uses them"),
    ("fs/read_write.c", "read and write, calling the file's operations"),
    ("fs/file_table.c", "the last fput, calling the file's release"),
    ("mm/filemap.c", "the page cache, for the file system that uses it"),
    ("mm/folio-compat.c", "the page cache, for the file system that uses it"),
    ("mm/truncate.c", "the page cache, for the file system that uses it"),
    ("mm/memory.c", "page faults and page table walks, for the mapping's owner"),
    ("net/core/dev.c", "the network core's helpers, which warn for the protocol that called them"),
    ("net/core/sock.c", "the network core's helpers, which warn for the protocol that called them"),
    ("net/core/skbuff.c", "the network core's helpers, which warn for the protocol that called them"),
];

/// Whether `file` is matched by an entry of `table`.
fn listed(table: &[(&str, &'static str)], file: &str) -> Option<&'static str> {
    table.iter().find_map(|&(place, why)| {
        let hit = match place.strip_prefix('*') {
            Some(suffix) => file.ends_with(suffix),
            None if place.ends_with('/') => file.starts_with(place),
            None => file == place,
        };
        hit.then_some(why)
    })
}

/// A generic layer's reason, when `file` is one.
fn layer(file: &str) -> Option<&'static str> {
    listed(LAYERS, file)
}

/// The file to blame among a stack's files, top first (`None`: a frame whose file is not
/// known, which lies outside these tables' directories): the first that is neither
/// infrastructure nor a generic layer, else the first generic layer, else the first. Reads
/// no further than the first of the first kind.
pub fn blame<'a>(files: impl IntoIterator<Item = Option<&'a str>>) -> Option<&'a str> {
    let (mut first, mut layered) = (None, None);
    for file in files {
        let file = file?;
        first.get_or_insert(file);
        if infrastructure(file).is_none() {
            if layer(file).is_none() {
                return Some(file);
            }
            layered.get_or_insert(file);
        }
    }
    layered.or(first)
}

/// Why `file` is infrastructure, when it is.
pub fn infrastructure(file: &str) -> Option<&'static str> {
    listed(INFRASTRUCTURE, file)
}

/// The shipped map, as `build.rs` made it from `data/function-files.gz`: each name one file
/// decides, mapped to that file's line in `function-files.txt`. Both lie in the binary's
/// read-only data: a lookup reads the pages it walks.
static MAP: LazyLock<(fst::Map<&'static [u8]>, Vec<&'static str>)> = LazyLock::new(|| {
    let fst = fst::Map::new(&include_bytes!(concat!(env!("OUT_DIR"), "/function-files.fst"))[..])
        .expect("build.rs wrote the function map's FST");
    let files = include_str!(concat!(env!("OUT_DIR"), "/function-files.txt"));
    (fst, files.lines().collect())
});

/// The file `function` (a name as stacks print it: `dput.part.0` is `dput`) is defined in,
/// when the map knows exactly one source file for it (a header's stub for another
/// configuration does not count against it).
pub fn file_of(function: &str) -> Option<&'static str> {
    let name = function.split('.').next().unwrap_or(function);
    let (fst, files) = &*MAP;
    files.get(fst.get(name)? as usize).copied()
}

/// The source file of a printed location (`net/ipv6/ip6_output.c:1748`, `./include/…`, or
/// with the build directory before it): the path from the kernel tree's top, which begins at
/// the leftmost of the tree's top directories.
pub fn file_of_location(location: &str) -> &str {
    let path = location.split(':').next().unwrap_or(location);
    let path = path.strip_prefix("./").unwrap_or(path);
    // `arch/x86/kvm/../../../virt/kvm/eventfd.c`: what follows the last `../`.
    let path = path.rsplit_once("../").map_or(path, |(_, rest)| rest);
    if !path.starts_with('/') {
        return path;
    }
    const TOP: &[&str] = &[
        "/arch/",
        "/block/",
        "/certs/",
        "/crypto/",
        "/drivers/",
        "/fs/",
        "/include/",
        "/init/",
        "/io_uring/",
        "/ipc/",
        "/kernel/",
        "/lib/",
        "/mm/",
        "/net/",
        "/rust/",
        "/security/",
        "/sound/",
        "/virt/",
    ];
    TOP.iter()
        .filter_map(|top| path.find(top))
        .min()
        .map_or(path, |i| &path[i + 1..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_are_directories_headers_or_files() {
        assert!(infrastructure("lib/list_debug.c").is_some());
        assert!(infrastructure("include/linux/list.h").is_some());
        assert!(infrastructure("mm/slub.c").is_some());
        assert!(infrastructure("mm/slub.c.orig").is_none());
        assert!(infrastructure("fs/eventpoll.c").is_none());
        assert!(infrastructure("kernel/sched/core.c").is_some());
        assert!(infrastructure("kernel/fork.c").is_none());
    }

    #[test]
    fn a_generic_layer_is_passed_over_for_the_code_that_uses_it() {
        let blame_of = |files: &[&str]| {
            let known = files.iter().map(|f| Some(*f).filter(|f| *f != "?"));
            blame(known).map(str::to_string)
        };
        let cases: [(&[&str], Option<&str>); 6] = [
            (
                &["lib/dump_stack.c", "fs/inode.c", "fs/ntfs/super.c"],
                Some("fs/ntfs/super.c"),
            ),
            (
                &["kernel/panic.c", "fs/inode.c", "fs/super.c"],
                Some("fs/inode.c"),
            ),
            (&["mm/slub.c", "kernel/locking/mutex.c"], Some("mm/slub.c")),
            (
                &["net/core/dev.c", "net/packet/af_packet.c"],
                Some("net/packet/af_packet.c"),
            ),
            (&[], None),
            (&["mm/slub.c", "?", "fs/open.c"], None),
        ];
        for (files, want) in cases {
            assert_eq!(blame_of(files).as_deref(), want, "{files:?}");
        }
    }

    #[test]
    fn the_shipped_map_places_the_kernels_machinery() {
        for (function, file) in [
            ("kfree", "mm/slub.c"),
            ("__mutex_lock", "kernel/locking/mutex.c"),
            ("dump_stack_lvl", "lib/dump_stack.c"),
            ("queue_work_on", "kernel/workqueue.c"),
            ("__x64_sys_close", "fs/open.c"),
            ("dput.part.0", "fs/dcache.c"),
        ] {
            assert_eq!(file_of(function), Some(file), "{function}");
        }
        assert_eq!(file_of("virtnet_poll"), None, "outside the map's scope");
        assert!(file_of("refcount_warn_saturate")
            .and_then(infrastructure)
            .is_some());
        assert!(file_of("__x64_sys_close")
            .and_then(infrastructure)
            .is_none());
        assert!(infrastructure(file_of_location("lib/string.c:10")).is_some());
    }

    /// The map covers every place the tables name: a function there has a known file.
    #[test]
    fn every_place_of_the_tables_lies_in_the_maps_scope() {
        use std::io::Read;
        let mut text = String::new();
        flate2::read::GzDecoder::new(&include_bytes!("../../data/function-files.gz")[..])
            .read_to_string(&mut text)
            .unwrap();
        let scope = text
            .lines()
            .find_map(|l| l.split_once("scope: ").map(|(_, s)| s))
            .expect("the map says its scope");
        let scope = regex::Regex::new(scope).unwrap();
        for (place, _) in INFRASTRUCTURE.iter().chain(LAYERS) {
            if place.starts_with('*') {
                continue;
            }
            assert!(
                scope.is_match(place),
                "{place} is outside the map's scope {scope}"
            );
        }
    }

    #[test]
    fn a_build_directory_is_cut_from_a_printed_location() {
        assert_eq!(
            file_of_location("net/ipv6/ip6_output.c:1748"),
            "net/ipv6/ip6_output.c"
        );
        assert_eq!(
            file_of_location("/usr/local/home/src/linux2/arch/x86/kernel/uprobes.c:263"),
            "arch/x86/kernel/uprobes.c"
        );
        assert_eq!(
            file_of_location("./include/net/sock.h:1508"),
            "include/net/sock.h"
        );
    }
}
