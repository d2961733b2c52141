//! CPU and memory of backend process trees, from sysinfo.
//!
//! Kept cheap for many backends: each sample refreshes only the processes of the known
//! trees; the full process list (to find new children) is read every few seconds.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use sysinfo::{Pid, ProcessRefreshKind, ProcessStatus, ProcessesToUpdate, System};

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
            ProcessRefreshKind::nothing().with_cpu().with_memory(),
        );
        roots
            .iter()
            .map(|&root| {
                let mut stats = ProcessStats::default();
                for pid in self.trees.get(&root).into_iter().flatten() {
                    if let Some(process) = self.system.process(*pid)
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
            ProcessRefreshKind::nothing(),
        );
        let mut children: HashMap<Pid, Vec<Pid>> = HashMap::new();
        for (pid, process) in self.system.processes() {
            if let Some(parent) = process.parent() {
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
}
