import CSystem

#if canImport(Glibc)
    import Glibc
#endif

/// How many CPUs this process may use, for the default number of event loops: the CPUs in its scheduler affinity
/// mask (`taskset`, `docker --cpuset-cpus`), capped by its cgroup's CPU quota rounded up (`docker --cpus 2` writes
/// `200000 100000` to cgroup v2's `cpu.max`; cgroup v1 has `cpu.cfs_quota_us`/`cpu.cfs_period_us`), the lowest
/// quota on the way from its cgroup up to the root. Never below 1; the host's online CPUs when nothing says more.
public enum AvailableCPUs {
    public static func count() -> Int {
        let online = max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
        return count(
            affinity: affinityCount(), online: online,
            quota: quota(cgroups: TextFile.read("/proc/self/cgroup") ?? "", root: "/sys/fs/cgroup"))
    }

    /// The rule, apart from reading the system.
    static func count(affinity: Int?, online: Int, quota: Double?) -> Int {
        var cpus = affinity ?? online
        if let quota { cpus = min(cpus, Int(quota.rounded(.up))) }
        return max(1, cpus)
    }

    /// CPUs in the affinity mask (up to 1024, glibc's `cpu_set_t`); nil when the call fails.
    static func affinityCount() -> Int? {
        let cpus = Int(CSystem_affinity_cpus())
        return cpus > 0 ? cpus : nil
    }

    /// The CPUs the quota allows (a fraction: 150000 of 100000 is 1.5), or nil without a quota. `cgroups` is
    /// /proc/self/cgroup's text; `root` where the cgroup file systems are mounted.
    static func quota(cgroups: String, root: String) -> Double? {
        var lowest: Double?
        func take(_ limit: Double?) {
            if let limit { lowest = min(lowest ?? limit, limit) }
        }
        for line in cgroups.split(separator: "\n") {
            let fields = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard fields.count == 3 else { continue }
            let path = String(fields[2])
            if fields[0] == "0" && fields[1].isEmpty {
                // cgroup v2: one hierarchy; each level may set cpu.max.
                for directory in levels(of: path, under: root) {
                    take(TextFile.read(directory + "/cpu.max").flatMap(parseCPUMax))
                }
            } else if fields[1].split(separator: ",").contains("cpu") {
                // cgroup v1: the cpu controller's hierarchy, mounted under either name.
                for mount in ["cpu", "cpu,cpuacct", "cpuacct,cpu"] {
                    for directory in levels(of: path, under: root + "/" + mount) {
                        take(parseCFS(
                            quota: TextFile.read(directory + "/cpu.cfs_quota_us"),
                            period: TextFile.read(directory + "/cpu.cfs_period_us")))
                    }
                }
            }
        }
        return lowest
    }

    /// `root + path`, then each parent up to `root` itself.
    static func levels(of path: String, under root: String) -> [String] {
        var parts = path.split(separator: "/").map(String.init)
        var result: [String] = []
        while true {
            result.append(([root] + parts).joined(separator: "/"))
            if parts.isEmpty { return result }
            parts.removeLast()
        }
    }

    /// cgroup v2 `cpu.max`: `"$MAX $PERIOD"`, `max` meaning no limit.
    static func parseCPUMax(_ text: String) -> Double? {
        let fields = text.split(whereSeparator: { $0 == " " || $0 == "\n" })
        guard fields.count == 2, let quota = Double(fields[0]), let period = Double(fields[1]), quota > 0, period > 0
        else { return nil }
        return quota / period
    }

    /// cgroup v1: a quota of -1 means no limit.
    static func parseCFS(quota: String?, period: String?) -> Double? {
        let trimmed = { (text: String?) in text.map { $0.split(separator: "\n").first.map(String.init) ?? "" } }
        guard let quota = trimmed(quota).flatMap({ Double($0) }), let period = trimmed(period).flatMap({ Double($0) }),
            quota > 0, period > 0
        else { return nil }
        return quota / period
    }
}
