//! A kernel's code locations by name, from its System.map: `symbol[+offset]` to the addresses
//! a breakpoint goes on, with errors that say what this kernel has instead.

pub use crate::config::schedule::Location;
use std::collections::BTreeMap;
use std::path::Path;

/// The code symbols of one kernel.
#[derive(Debug, Default)]
pub struct SymbolMap {
    /// Name → every address it has (static functions of the same name in several files).
    by_name: BTreeMap<String, Vec<u64>>,
    /// Every code address in order, for the end of a symbol.
    starts: Vec<u64>,
    /// A name of each code address.
    names: BTreeMap<u64, String>,
    /// Names that are not code (data, bss, per-CPU): their type and address.
    data: BTreeMap<String, (char, u64)>,
}

impl SymbolMap {
    pub fn read(path: &Path) -> Result<SymbolMap, String> {
        let text = crate::files::read_to_string(path)
            .map_err(|e| format!("cannot read the symbol map: {e}"))?;
        Ok(SymbolMap::parse(&text))
    }

    /// `address type name` lines; others are skipped.
    pub fn parse(text: &str) -> SymbolMap {
        let mut map = SymbolMap::default();
        for line in text.lines() {
            let mut fields = line.split_whitespace();
            let (Some(addr), Some(kind), Some(name)) =
                (fields.next(), fields.next(), fields.next())
            else {
                continue;
            };
            let (Ok(addr), Some(kind)) = (u64::from_str_radix(addr, 16), kind.chars().next())
            else {
                continue;
            };
            if matches!(kind, 't' | 'T' | 'w' | 'W') {
                map.by_name.entry(name.to_string()).or_default().push(addr);
                map.starts.push(addr);
                map.names.entry(addr).or_insert_with(|| name.to_string());
            } else {
                map.data.insert(name.to_string(), (kind, addr));
            }
        }
        map.starts.sort_unstable();
        map.starts.dedup();
        map
    }

    /// Where the code after `addr` starts (the end of the symbol at `addr`).
    fn end_of(&self, addr: u64) -> Option<u64> {
        let i = self.starts.partition_point(|&a| a <= addr);
        self.starts.get(i).copied()
    }

    /// The addresses of a location (one per symbol of that name), or why it has none here.
    pub fn resolve(&self, location: &Location) -> Result<Vec<u64>, String> {
        let Some(addrs) = self.by_name.get(&location.symbol) else {
            if let Some((kind, _)) = self.data.get(&location.symbol) {
                return Err(format!(
                    "{} is not code in this kernel (System.map type {kind})",
                    location.symbol
                ));
            }
            let similar = self.similar(&location.symbol);
            let hint = if similar.is_empty() {
                String::new()
            } else {
                format!("; similar: {}", similar.join(", "))
            };
            return Err(format!(
                "{} is not a function of this kernel (inlined, renamed or not built in?){hint}",
                location.symbol
            ));
        };
        addrs
            .iter()
            .map(|&a| {
                let at = a
                    .checked_add(location.offset)
                    .ok_or_else(|| format!("{location}: past the end of the address space"))?;
                match self.end_of(a) {
                    Some(end) if at >= end => Err(format!(
                        "{location}: {} is {} bytes long",
                        location.symbol,
                        end - a
                    )),
                    _ => Ok(at),
                }
            })
            .collect()
    }

    /// The address of a data symbol (for a per-CPU one, its offset in each CPU's area).
    pub fn data_address(&self, name: &str) -> Option<u64> {
        self.data.get(name).map(|&(_, addr)| addr)
    }

    /// `symbol+0xoffset` of a code address (the closest symbol at or below it).
    pub fn name_of(&self, addr: u64) -> Option<String> {
        let start = *self.starts[..self.starts.partition_point(|&a| a <= addr)].last()?;
        let name = self.names.get(&start)?;
        Some(match addr - start {
            0 => name.clone(),
            off => format!("{name}+{off:#x}"),
        })
    }

    /// Up to five names that contain the one asked for, or that it contains, shortest first.
    fn similar(&self, name: &str) -> Vec<String> {
        let core = name.trim_start_matches('_');
        if core.len() < 3 {
            return vec![];
        }
        let mut found: Vec<&String> = self
            .by_name
            .keys()
            .filter(|k| {
                let k_core = k.trim_start_matches('_');
                k_core.contains(core) || (k_core.len() >= 4 && core.contains(k_core))
            })
            .collect();
        found.sort_by_key(|k| (k.len(), k.as_str()));
        found.into_iter().take(5).cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAP: &str = "\
ffffffff8153e1b0 t __fput
ffffffff8153e5c0 t ____fput
ffffffff8153e600 T fput
ffffffff81b4ef40 t dma_buf_poll
ffffffff81b4f400 t dma_buf_poll_cb
ffffffff81c00000 t show
ffffffff81d00000 t show
ffffffff81d00100 T zzz_end
0000000000035000 D pcpu_hot
";

    fn loc(text: &str) -> Location {
        text.parse().unwrap()
    }

    #[test]
    fn symbols_resolve_to_every_address_they_have() {
        let map = SymbolMap::parse(MAP);
        assert_eq!(
            map.resolve(&loc("dma_buf_poll")),
            Ok(vec![0xffffffff81b4ef40])
        );
        assert_eq!(map.resolve(&loc("__fput+4")), Ok(vec![0xffffffff8153e1b4]));
        assert_eq!(
            map.resolve(&loc("show")),
            Ok(vec![0xffffffff81c00000, 0xffffffff81d00000])
        );
        // Data symbols give their address (a per-CPU one, its offset in each CPU's area).
        assert_eq!(map.data_address("pcpu_hot"), Some(0x35000));
        assert_eq!(map.data_address("dma_buf_poll"), None);
    }

    #[test]
    fn unknown_data_and_overlong_locations_say_why() {
        let map = SymbolMap::parse(MAP);
        let err = map.resolve(&loc("dma_buf_pol")).unwrap_err();
        assert!(err.contains("not a function of this kernel"), "{err}");
        assert!(
            err.contains("similar: dma_buf_poll, dma_buf_poll_cb"),
            "{err}"
        );
        let err = map.resolve(&loc("fput_x")).unwrap_err();
        assert!(err.contains("similar: fput"), "{err}");
        let err = map.resolve(&loc("pcpu_hot")).unwrap_err();
        assert!(
            err.contains("not code in this kernel (System.map type D)"),
            "{err}"
        );
        assert_eq!(
            map.name_of(0xffffffff8153e1b4).as_deref(),
            Some("__fput+0x4")
        );
        assert_eq!(
            map.name_of(0xffffffff81b4ef40).as_deref(),
            Some("dma_buf_poll")
        );
        assert_eq!(map.name_of(0x1000), None);
        let err = map.resolve(&loc("__fput+0x1000")).unwrap_err();
        assert!(err.contains("__fput is 1040 bytes long"), "{err}");
    }
}
