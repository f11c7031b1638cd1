import Testing

@testable import Philote

#if canImport(Glibc)
    import Glibc
#endif

/// The default number of event loops: the affinity mask, capped by the cgroup CPU quota (rounded up).
@Suite struct AvailableCPUsTests {
    @Test func theRule() {
        #expect(AvailableCPUs.count(affinity: 8, online: 64, quota: nil) == 8)
        #expect(AvailableCPUs.count(affinity: nil, online: 64, quota: nil) == 64)
        #expect(AvailableCPUs.count(affinity: 8, online: 64, quota: 2) == 2)
        #expect(AvailableCPUs.count(affinity: 8, online: 64, quota: 1.5) == 2)
        #expect(AvailableCPUs.count(affinity: 2, online: 64, quota: 6) == 2)
        #expect(AvailableCPUs.count(affinity: 8, online: 64, quota: 0.1) == 1)
    }

    @Test func cgroupV2CPUMax() {
        #expect(AvailableCPUs.parseCPUMax("max 100000\n") == nil)
        #expect(AvailableCPUs.parseCPUMax("200000 100000\n") == 2)
        #expect(AvailableCPUs.parseCPUMax("50000 100000") == 0.5)
        #expect(AvailableCPUs.parseCPUMax("") == nil)
        #expect(AvailableCPUs.parseCPUMax("garbage") == nil)
        #expect(AvailableCPUs.parseCPUMax("0 100000") == nil)
    }

    @Test func cgroupV1Quota() {
        #expect(AvailableCPUs.parseCFS(quota: "-1\n", period: "100000\n") == nil)
        #expect(AvailableCPUs.parseCFS(quota: "300000\n", period: "100000\n") == 3)
        #expect(AvailableCPUs.parseCFS(quota: nil, period: "100000") == nil)
    }

    @Test func levelsGoUpToTheRoot() {
        #expect(AvailableCPUs.levels(of: "/a/b", under: "/sys/fs/cgroup") == [
            "/sys/fs/cgroup/a/b", "/sys/fs/cgroup/a", "/sys/fs/cgroup",
        ])
        #expect(AvailableCPUs.levels(of: "/", under: "/r") == ["/r"])
    }

    /// A fake cgroup tree in a temporary directory: the lowest quota on the way up counts.
    @Test func theLowestQuotaFromTheCgroupUpToTheRoot() throws {
        var template = Array("/tmp/philote-cgroup-XXXXXX".utf8CString)
        let made = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!).map { String(cString: $0) } }
        let root = try #require(made)
        defer { _ = system("rm -rf '\(root)'") }
        func write(_ path: String, _ text: String) {
            _ = system("mkdir -p \"$(dirname '\(path)')\"")
            let file = fopen(path, "w")
            fputs(text, file)
            fclose(file)
        }
        // v2: the container's own level allows 4 CPUs, a parent 1.5, the root has no file.
        write(root + "/v2/docker/abc/cpu.max", "400000 100000\n")
        write(root + "/v2/docker/cpu.max", "150000 100000\n")
        #expect(AvailableCPUs.quota(cgroups: "0::/docker/abc\n", root: root + "/v2") == 1.5)
        #expect(AvailableCPUs.quota(cgroups: "0::/elsewhere\n", root: root + "/v2") == nil)
        // v1: the cpu controller's line, under the combined mount name.
        write(root + "/v1/cpu,cpuacct/job/cpu.cfs_quota_us", "200000\n")
        write(root + "/v1/cpu,cpuacct/job/cpu.cfs_period_us", "100000\n")
        write(root + "/v1/cpu,cpuacct/cpu.cfs_quota_us", "-1\n")
        write(root + "/v1/cpu,cpuacct/cpu.cfs_period_us", "100000\n")
        let v1 = "12:memory:/job\n4:cpu,cpuacct:/job\n1:name=systemd:/job\n"
        #expect(AvailableCPUs.quota(cgroups: v1, root: root + "/v1") == 2)
    }

    @Test func thisProcessHasAtLeastOneAndNoMoreThanTheOnlineCPUs() {
        let online = Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))
        #expect((1...max(1, online)).contains(AvailableCPUs.count()))
    }
}
