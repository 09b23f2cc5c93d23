//! How many VMs run at once: as many as the host's cores and memory hold (`--jobs` overrides).
//! One permit per VM, shared by every batch of a night or a comparison.

use std::sync::Arc;
use tokio::sync::Semaphore;

#[derive(Clone)]
pub struct Pool {
    permits: Arc<Semaphore>,
    pub jobs: usize,
}

impl Pool {
    pub fn new(jobs: usize) -> Self {
        let jobs = jobs.max(1);
        Pool {
            permits: Arc::new(Semaphore::new(jobs)),
            jobs,
        }
    }

    /// `jobs` VMs at a time when given, else as many as this host holds.
    pub fn sized(jobs: Option<usize>, cpus: u32, memory_mib: u64) -> Self {
        match jobs {
            Some(n) => Pool::new(n),
            None => Pool::for_host(cpus, memory_mib),
        }
    }

    /// Sized to this host for VMs of `cpus` vCPUs and `memory_mib` each.
    pub fn for_host(cpus: u32, memory_mib: u64) -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Pool::new(fit(cores, available_mib(), cpus, memory_mib))
    }

    /// Wait for a free VM slot (first come, first served).
    pub async fn slot(&self) -> tokio::sync::SemaphorePermit<'_> {
        self.permits
            .acquire()
            .await
            .expect("the pool is never closed")
    }
}

/// VMs that fit: every vCPU gets a host core (a TCG vCPU keeps one busy; so does a KVM vCPU
/// under a race stress), and guests take at most three quarters of the available memory.
pub fn fit(cores: usize, available_mib: u64, cpus: u32, memory_mib: u64) -> usize {
    let by_cores = cores / cpus.max(1) as usize;
    let by_memory = (available_mib * 3 / 4 / memory_mib.max(1)) as usize;
    by_cores.min(by_memory).max(1)
}

/// MemAvailable from /proc/meminfo (a large figure when it cannot be read: cores decide).
fn available_mib() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|l| l.strip_prefix("MemAvailable:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(u64::MAX / 2, |kib| kib / 1024)
}

#[cfg(test)]
mod tests {
    use super::fit;

    #[test]
    fn pool_is_sized_by_cores_and_memory() {
        assert_eq!(fit(2, 20_000, 2, 1024), 1);
        assert_eq!(fit(16, 128_000, 2, 1024), 8);
        // Memory binds: 3 GiB available, three quarters of it is 2 guests of 1 GiB.
        assert_eq!(fit(16, 3072, 2, 1024), 2);
        // Never fewer than one, even when one VM does not fit.
        assert_eq!(fit(1, 512, 2, 1024), 1);
    }
}
