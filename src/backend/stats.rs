//! CPU and memory of backend process trees, from sysinfo.
//!
//! Kept cheap for many backends: each sample refreshes only the processes of the known
//! trees; the full process list (to find new children) is read every few seconds.
//!
//! Each process counts once. On Linux sysinfo can also list every thread (task) as a
//! process of its own, with the memory of the whole process and a share of its CPU:
//! threads are never listed here (`without_tasks`), and any thread entry is skipped.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use sysinfo::{
    Pid, Process, ProcessRefreshKind, ProcessStatus, ProcessesToUpdate, System, ThreadKind,
};

use super::status::ProcessStats;

/// How often the whole process list is read to find new children.
const RESCAN_EVERY: Duration = Duration::from_secs(5);

/// Samples the resource use of process trees.
pub struct StatsSampler {
    system: System,
    trees: HashMap<u32, Vec<Pid>>,
    last_scan: Option<Instant>,
}

impl std::fmt::Debug for StatsSampler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatsSampler")
            .field("trees", &self.trees.len())
            .finish()
    }
}

impl Default for StatsSampler {
    fn default() -> Self {
        Self::new()
    }
}

impl StatsSampler {
    pub fn new() -> Self {
        Self {
            system: System::new(),
            trees: HashMap::new(),
            last_scan: None,
        }
    }

    /// The stats of each root's tree. CPU is measured since the previous sample, so the
    /// first sample of a process reports 0 %.
    pub fn sample(&mut self, roots: &[u32]) -> HashMap<u32, ProcessStats> {
        if roots.is_empty() {
            self.trees.clear();
            return HashMap::new();
        }
        let unknown = roots.iter().any(|r| !self.trees.contains_key(r));
        let due = self.last_scan.is_none_or(|at| at.elapsed() >= RESCAN_EVERY);
        if unknown || due {
            self.scan(roots);
        }
        let pids: Vec<Pid> = self
            .trees
            .values()
            .flat_map(|pids| pids.iter().copied())
            .collect();
        self.system.refresh_processes_specifics(
            ProcessesToUpdate::Some(&pids),
            true,
            ProcessRefreshKind::nothing()
                .with_cpu()
                .with_memory()
                .without_tasks(),
        );
        roots
            .iter()
            .map(|&root| {
                let mut stats = ProcessStats::default();
                for pid in self.trees.get(&root).into_iter().flatten() {
                    if let Some(process) = self.system.process(*pid)
                        && is_process(process)
                        && !matches!(process.status(), ProcessStatus::Zombie)
                    {
                        stats.cpu_percent += process.cpu_usage();
                        stats.rss_bytes += process.memory();
                        stats.processes += 1;
                    }
                }
                (root, stats)
            })
            .collect()
    }

    /// Read the whole process list and rebuild the trees of `roots`.
    fn scan(&mut self, roots: &[u32]) {
        self.system.refresh_processes_specifics(
            ProcessesToUpdate::All,
            true,
            ProcessRefreshKind::nothing().without_tasks(),
        );
        let mut children: HashMap<Pid, Vec<Pid>> = HashMap::new();
        for (pid, process) in self.system.processes() {
            if let Some(parent) = process.parent()
                && is_process(process)
            {
                children.entry(parent).or_default().push(*pid);
            }
        }
        self.trees.clear();
        for &root in roots {
            let mut tree = Vec::new();
            let mut seen = HashSet::new();
            let mut stack = vec![Pid::from_u32(root)];
            while let Some(pid) = stack.pop() {
                if !seen.insert(pid) {
                    continue;
                }
                tree.push(pid);
                if let Some(kids) = children.get(&pid) {
                    stack.extend(kids.iter().copied());
                }
            }
            self.trees.insert(root, tree);
        }
        self.last_scan = Some(Instant::now());
    }
}

/// A process, not one of the threads of a process (whose "parent" is that process, and
/// whose memory is the whole process's).
fn is_process(process: &Process) -> bool {
    process.thread_kind() != Some(ThreadKind::Userland)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_own_tree() {
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        let me = std::process::id();
        let mut sampler = StatsSampler::new();
        let first = sampler.sample(&[me]);
        assert!(first[&me].rss_bytes > 0);
        assert!(first[&me].processes >= 2, "{:?}", first[&me]);
        std::thread::sleep(Duration::from_millis(250));
        let second = sampler.sample(&[me]);
        assert!(second[&me].rss_bytes > 0);
        child.kill().unwrap();
        child.wait().unwrap();
    }

    /// A real Python process running `script` (which prints one line when it is set up),
    /// killed with its children on drop.
    #[cfg(target_os = "linux")]
    struct Script(std::process::Child);

    #[cfg(target_os = "linux")]
    impl Script {
        fn start(script: &str) -> Self {
            use std::io::BufRead;
            let mut child = std::process::Command::new("python3")
                .args(["-c", script])
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .spawn()
                .expect("python3 runs");
            let mut line = String::new();
            std::io::BufReader::new(child.stdout.take().unwrap())
                .read_line(&mut line)
                .unwrap();
            assert_eq!(line.trim(), "ready", "the script did not start");
            Self(child)
        }

        fn pid(&self) -> u32 {
            self.0.id()
        }
    }

    #[cfg(target_os = "linux")]
    impl Drop for Script {
        fn drop(&mut self) {
            // Closing stdin ends the script, which kills its child first.
            drop(self.0.stdin.take());
            let _ = self.0.wait();
        }
    }

    #[cfg(target_os = "linux")]
    fn vm_rss(pid: u32) -> u64 {
        let status = fs_err::read_to_string(format!("/proc/{pid}/status")).unwrap();
        let kib: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().strip_suffix("kB"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap();
        kib * 1024
    }

    /// utime + stime of the whole process, in clock ticks.
    #[cfg(target_os = "linux")]
    fn cpu_ticks(pid: u32) -> u64 {
        let stat = fs_err::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .unwrap()
            .1
            .split_whitespace()
            .collect();
        // Fields 14 and 15 of stat(5), counted after the `(comm)` field 2.
        fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
    }

    #[cfg(target_os = "linux")]
    fn children_of(pid: u32) -> Vec<u32> {
        fs_err::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
            .unwrap()
            .split_whitespace()
            .map(|p| p.parse().unwrap())
            .collect()
    }

    /// 8 threads and one child process: the memory of the two processes, counted once.
    #[cfg(target_os = "linux")]
    #[test]
    fn threads_are_not_counted_as_processes() {
        let script = Script::start(
            "import subprocess, sys, threading\n\
             data = b'x' * (40 * 2**20)\n\
             stop = threading.Event()\n\
             threads = [threading.Thread(target=stop.wait) for _ in range(8)]\n\
             [t.start() for t in threads]\n\
             child = subprocess.Popen(['sleep', '60'])\n\
             print('ready', flush=True)\n\
             sys.stdin.read()\n\
             child.kill(); child.wait(); stop.set()\n",
        );
        let pid = script.pid();
        let threads = fs_err::read_dir(format!("/proc/{pid}/task"))
            .unwrap()
            .count();
        assert!(threads >= 9, "{threads} threads");
        let kids = children_of(pid);
        assert_eq!(kids.len(), 1, "{kids:?}");
        let mut sampler = StatsSampler::new();
        let stats = sampler.sample(&[pid])[&pid];
        let real = vm_rss(pid) + vm_rss(kids[0]);
        assert_eq!(stats.processes, 2, "{stats:?}");
        let ratio = stats.rss_bytes as f64 / real as f64;
        assert!(
            (0.9..=1.1).contains(&ratio),
            "rss {} vs VmRSS {real} ({ratio:.2}x)",
            stats.rss_bytes
        );
    }

    /// 4 threads busy outside the GIL on a machine of N cores: at most N × 100 %.
    #[cfg(target_os = "linux")]
    #[test]
    fn busy_threads_count_their_cpu_once() {
        let script = Script::start(
            "import hashlib, sys, threading\n\
             block = b'x' * 2**20\n\
             stop = threading.Event()\n\
             def spin():\n\
             \x20   while not stop.is_set():\n\
             \x20       hashlib.sha256(block).digest()\n\
             threads = [threading.Thread(target=spin) for _ in range(4)]\n\
             [t.start() for t in threads]\n\
             print('ready', flush=True)\n\
             sys.stdin.read()\n\
             stop.set()\n",
        );
        let pid = script.pid();
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f32;
        let mut sampler = StatsSampler::new();
        sampler.sample(&[pid]);
        let (ticks, began) = (cpu_ticks(pid), Instant::now());
        std::thread::sleep(Duration::from_millis(600));
        let stats = sampler.sample(&[pid])[&pid];
        let (ticks, elapsed) = (cpu_ticks(pid) - ticks, began.elapsed());
        // SAFETY: sysconf has no preconditions.
        let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f32;
        let real = ticks as f32 / per_second / elapsed.as_secs_f32() * 100.0;
        assert_eq!(stats.processes, 1, "{stats:?}");
        assert!(
            stats.cpu_percent <= real * 1.3 + 10.0 && stats.cpu_percent <= 100.0 * cores * 1.15,
            "{:.0} % CPU, /proc says {real:.0} % on {cores} cores",
            stats.cpu_percent
        );
        assert!(stats.cpu_percent > 0.0, "{stats:?}: nothing measured");
    }
}
