//! Reseeding the kernel's random pool from the host's seed: guests restored from one snapshot
//! share the pool's state, and would otherwise draw the same "random" numbers.

use std::io::{Read, Write};
use std::os::fd::AsRawFd;

// RNDRESEEDCRNG (linux/random.h): reseed the CRNG from the input pool now.
nix::ioctl_none!(rnd_reseed_crng, b'R', 0x07);

/// Mix `seed` into the input pool, reseed the CRNG from it, and return the first 8 bytes
/// the kernel gives after that (hex), as evidence that the pool moved on.
pub fn reseed(seed: u64) -> Result<String, String> {
    let mut urandom = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/urandom")
        .map_err(|e| format!("cannot open /dev/urandom: {e}"))?;
    urandom
        .write_all(&seed.to_le_bytes())
        .map_err(|e| format!("cannot write the seed to /dev/urandom: {e}"))?;
    // SAFETY: RNDRESEEDCRNG takes no argument; the descriptor is open for the call.
    unsafe { rnd_reseed_crng(urandom.as_raw_fd()) }.map_err(|e| format!("RNDRESEEDCRNG: {e}"))?;
    let mut first = [0u8; 8];
    urandom
        .read_exact(&mut first)
        .map_err(|e| format!("cannot read /dev/urandom: {e}"))?;
    Ok(first.iter().map(|b| format!("{b:02x}")).collect())
}
