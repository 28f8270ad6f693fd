//! `telemetry`: what an executor reports of its node in the discovery task, with the field
//! names of the original Exelixi (psutil's): `ip_addr`, `mem_free`, `cpu_num`, `cpu_times`,
//! `disk_usage`, `disk_io` and `network_io` (shared/seeds/mesos-framework-tutorial.txt,
//! "telemetry from slave").
//!
//! Values come from `sysinfo` where it has them, and from Linux's `/proc` where it does not
//! (cumulative CPU times, machine-wide disk I/O, dropped packets). A value the platform
//! cannot give is `None` (JSON `null`), never invented.
//!
//! **Boundary:** knows the local machine only; never depends on Mesos, the GA or the
//! worker service.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// One node's telemetry.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Telemetry {
    /// The node's address: its first non-loopback IPv4 address (else IPv6, else loopback).
    pub ip_addr: Option<IpAddr>,
    /// Free memory in bytes (psutil's `virtual_memory().free`: `MemFree`).
    pub mem_free: Option<u64>,
    /// Logical CPUs.
    pub cpu_num: Option<usize>,
    /// Cumulative CPU time of the whole machine, in seconds.
    pub cpu_times: CpuTimes,
    /// The root file system.
    pub disk_usage: DiskUsage,
    /// Every whole disk's I/O since boot, summed.
    pub disk_io: DiskIo,
    /// Every network interface's traffic since boot, summed (loopback included, as psutil).
    pub network_io: NetworkIo,
}

/// Cumulative CPU seconds (`/proc/stat`'s first line).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CpuTimes {
    /// In user mode (the `user` column alone, as psutil reports it; `nice` is apart).
    pub user: Option<f64>,
    /// In kernel mode.
    pub system: Option<f64>,
    /// Idle.
    pub idle: Option<f64>,
}

/// The root file system's space.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DiskUsage {
    /// Bytes available to an unprivileged user.
    pub free: Option<u64>,
    /// Percent of the space not available, rounded to one decimal.
    pub percent: Option<f64>,
}

/// Disk I/O since boot (`/proc/diskstats`, whole disks only).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DiskIo {
    /// Reads completed.
    pub read_count: Option<u64>,
    /// Writes completed.
    pub write_count: Option<u64>,
    /// Bytes read.
    pub read_bytes: Option<u64>,
    /// Bytes written.
    pub write_bytes: Option<u64>,
    /// Milliseconds spent reading.
    pub read_time: Option<u64>,
    /// Milliseconds spent writing.
    pub write_time: Option<u64>,
}

/// Network traffic since boot, every interface.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct NetworkIo {
    /// Bytes sent.
    pub bytes_sent: Option<u64>,
    /// Bytes received.
    pub bytes_recv: Option<u64>,
    /// Packets sent.
    pub packets_sent: Option<u64>,
    /// Packets received.
    pub packets_recv: Option<u64>,
    /// Receive errors.
    pub errin: Option<u64>,
    /// Transmit errors.
    pub errout: Option<u64>,
    /// Received packets dropped (`/proc/net/dev`).
    pub dropin: Option<u64>,
    /// Sent packets dropped (`/proc/net/dev`).
    pub dropout: Option<u64>,
}

impl Telemetry {
    /// Gathers this node's telemetry now.
    pub fn collect() -> Self {
        use sysinfo::{Disks, MemoryRefreshKind, Networks, RefreshKind, System};
        let system = System::new_with_specifics(RefreshKind::nothing().with_memory(MemoryRefreshKind::everything()));
        let networks = Networks::new_with_refreshed_list();
        let disks = Disks::new_with_refreshed_list();
        let mem_free = Some(system.free_memory()).filter(|&m| m > 0 || system.total_memory() > 0);
        let cpu_num = std::thread::available_parallelism().ok().map(usize::from);
        let root = disks.list().iter().find(|d| d.mount_point() == std::path::Path::new("/"));
        let disk_usage = root.map_or_else(DiskUsage::default, |d| DiskUsage {
            free: Some(d.available_space()),
            percent: (d.total_space() > 0).then(|| {
                let used = d.total_space().saturating_sub(d.available_space()) as f64;
                (used / d.total_space() as f64 * 1000.0).round() / 10.0
            }),
        });
        let mut network_io = NetworkIo::default();
        let mut addresses = Vec::new();
        if !networks.list().is_empty() {
            let sum = |f: &dyn Fn(&sysinfo::NetworkData) -> u64| Some(networks.list().values().map(f).sum());
            network_io.bytes_sent = sum(&|n| n.total_transmitted());
            network_io.bytes_recv = sum(&|n| n.total_received());
            network_io.packets_sent = sum(&|n| n.total_packets_transmitted());
            network_io.packets_recv = sum(&|n| n.total_packets_received());
            network_io.errin = sum(&|n| n.total_errors_on_received());
            network_io.errout = sum(&|n| n.total_errors_on_transmitted());
            for data in networks.list().values() {
                addresses.extend(data.ip_networks().iter().map(|n| n.addr));
            }
        }
        if let Some((dropin, dropout)) = read("/proc/net/dev").as_deref().and_then(parse_net_dev_drops) {
            (network_io.dropin, network_io.dropout) = (Some(dropin), Some(dropout));
        }
        Self {
            ip_addr: choose_address(&addresses),
            mem_free,
            cpu_num,
            cpu_times: read("/proc/stat").as_deref().and_then(parse_proc_stat).unwrap_or_default(),
            disk_usage,
            disk_io: read("/proc/diskstats")
                .as_deref()
                .map(|text| parse_diskstats(text, &|name| std::path::Path::new("/sys/block").join(name).exists()))
                .unwrap_or_default(),
            network_io,
        }
    }

    /// As JSON with the original's field names.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{}".to_string())
    }
}

fn read(path: &str) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

/// The first non-loopback IPv4 address, else the first non-loopback one, else loopback.
fn choose_address(addresses: &[IpAddr]) -> Option<IpAddr> {
    let usable =
        |a: &&IpAddr| !a.is_unspecified() && !matches!(a, IpAddr::V6(v6) if (v6.segments()[0] & 0xffc0) == 0xfe80);
    addresses
        .iter()
        .filter(usable)
        .find(|a| a.is_ipv4() && !a.is_loopback())
        .or_else(|| addresses.iter().filter(usable).find(|a| !a.is_loopback()))
        .or_else(|| addresses.iter().find(|a| a.is_loopback()))
        .copied()
}

/// Clock ticks per second of `/proc/stat` (`USER_HZ`, which Linux fixes at 100 for
/// user space on every architecture it supports: `include/asm-generic/param.h`).
const USER_HZ: f64 = 100.0;

/// `cpu  user nice system idle …` → seconds.
fn parse_proc_stat(text: &str) -> Option<CpuTimes> {
    let line = text.lines().find(|l| l.starts_with("cpu "))?;
    let ticks: Vec<u64> = line.split_whitespace().skip(1).map_while(|v| v.parse().ok()).collect();
    let seconds = |i: usize| ticks.get(i).map(|&t| t as f64 / USER_HZ);
    Some(CpuTimes { user: seconds(0), system: seconds(2), idle: seconds(3) })
}

/// Sums `/proc/diskstats` over whole disks (`is_disk` of the device name), as psutil's
/// `disk_io_counters()` does: sectors are 512 bytes there whatever the device's own size.
fn parse_diskstats(text: &str, is_disk: &dyn Fn(&str) -> bool) -> DiskIo {
    let mut sum = [0u64; 6];
    let mut any = false;
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 14 || !is_disk(f[2]) {
            continue;
        }
        let n = |i: usize| f[i].parse::<u64>().ok();
        let (Some(reads), Some(read_sectors), Some(read_ms), Some(writes), Some(write_sectors), Some(write_ms)) =
            (n(3), n(5), n(6), n(7), n(9), n(10))
        else {
            continue;
        };
        any = true;
        for (s, v) in sum.iter_mut().zip([reads, writes, read_sectors * 512, write_sectors * 512, read_ms, write_ms]) {
            *s = s.saturating_add(v);
        }
    }
    if !any {
        return DiskIo::default();
    }
    DiskIo {
        read_count: Some(sum[0]),
        write_count: Some(sum[1]),
        read_bytes: Some(sum[2]),
        write_bytes: Some(sum[3]),
        read_time: Some(sum[4]),
        write_time: Some(sum[5]),
    }
}

/// `/proc/net/dev`: the receive and transmit `drop` columns, summed over interfaces.
fn parse_net_dev_drops(text: &str) -> Option<(u64, u64)> {
    let mut totals = None;
    for line in text.lines() {
        let Some((_, counters)) = line.split_once(':') else { continue };
        let v: Vec<u64> = counters.split_whitespace().map_while(|x| x.parse().ok()).collect();
        if v.len() < 16 {
            continue;
        }
        let (rx, tx) = totals.get_or_insert((0u64, 0u64));
        *rx += v[3];
        *tx += v[11];
    }
    totals
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_stat_is_read_in_seconds() {
        let t = parse_proc_stat("cpu  2073 5 1130 217682 30 0 12 0 0 0\ncpu0 1 2 3 4\n").unwrap();
        assert_eq!((t.user, t.system, t.idle), (Some(20.73), Some(11.3), Some(2176.82)));
        assert_eq!(parse_proc_stat("intr 1 2\n"), None);
        let short = parse_proc_stat("cpu  7\n").unwrap();
        assert_eq!((short.user, short.system), (Some(0.07), None), "a missing column is null");
    }

    #[test]
    fn diskstats_sum_whole_disks_only() {
        let text = "   8       0 sda 10 0 100 7 20 0 200 9 0 0 0 0 0 0 0\n   8       1 sda1 5 0 50 3 10 0 100 4 0 0 0 0 0 0 0\n 259       0 nvme0n1 1 0 8 1 2 0 16 2 0 0 0 0 0\n";
        let io = parse_diskstats(text, &|name| name == "sda" || name == "nvme0n1");
        assert_eq!(io.read_count, Some(11));
        assert_eq!(io.write_count, Some(22));
        assert_eq!(io.read_bytes, Some(108 * 512));
        assert_eq!(io.write_bytes, Some(216 * 512));
        assert_eq!((io.read_time, io.write_time), (Some(8), Some(11)));
        assert_eq!(parse_diskstats(text, &|_| false), DiskIo::default(), "no disk: null, not zero");
    }

    #[test]
    fn net_dev_drops_are_summed() {
        let text = "Inter-|   Receive                                                |  Transmit\n face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n    lo: 100 2 0 1 0 0 0 0 100 2 0 4 0 0 0 0\n  eth0: 900 9 0 2 0 0 0 0 800 8 0 5 0 0 0 0\n";
        assert_eq!(parse_net_dev_drops(text), Some((3, 9)));
        assert_eq!(parse_net_dev_drops("nothing here"), None);
    }

    #[test]
    fn addresses_prefer_a_routable_ipv4() {
        let a = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(choose_address(&[a("127.0.0.1"), a("fe80::1"), a("10.0.0.5")]), Some(a("10.0.0.5")));
        assert_eq!(choose_address(&[a("127.0.0.1"), a("2001:db8::1")]), Some(a("2001:db8::1")));
        assert_eq!(choose_address(&[a("127.0.0.1")]), Some(a("127.0.0.1")));
        assert_eq!(choose_address(&[]), None);
    }

    #[test]
    fn this_machine_reports_every_field_linux_has_with_the_original_names() {
        let t = Telemetry::collect();
        let json: serde_json::Value = serde_json::from_str(&t.to_json()).unwrap();
        let keys = |v: &serde_json::Value| {
            let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
            k.sort();
            k
        };
        assert_eq!(keys(&json), ["cpu_num", "cpu_times", "disk_io", "disk_usage", "ip_addr", "mem_free", "network_io"]);
        assert_eq!(keys(&json["cpu_times"]), ["idle", "system", "user"]);
        assert_eq!(keys(&json["disk_usage"]), ["free", "percent"]);
        assert_eq!(
            keys(&json["disk_io"]),
            ["read_bytes", "read_count", "read_time", "write_bytes", "write_count", "write_time"]
        );
        assert_eq!(
            keys(&json["network_io"]),
            ["bytes_recv", "bytes_sent", "dropin", "dropout", "errin", "errout", "packets_recv", "packets_sent"]
        );
        // On Linux these are always there; the machine has memory, CPUs, time and a loopback.
        assert!(t.mem_free.is_some_and(|m| m > 0), "{t:?}");
        assert!(t.cpu_num.is_some_and(|n| n >= 1));
        assert!(t.cpu_times.idle.is_some_and(|s| s > 0.0) && t.cpu_times.user.is_some());
        assert!(t.ip_addr.is_some());
        assert!(t.network_io.bytes_recv.is_some() && t.network_io.dropin.is_some());
        if let Some(p) = t.disk_usage.percent {
            assert!((0.0..=100.0).contains(&p), "{p}");
        }
    }
}
