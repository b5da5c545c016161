import CLibUV
#if canImport(Glibc)
import Glibc
#endif

/// Scheduling for loop threads that share cores.
public enum LoopScheduling {
    /// How many CPUs this thread may run on (its affinity mask, which
    /// `taskset` and cgroups' cpusets narrow), or nil if unknown.
    public static var allowedCPUs: Int? {
        var mask = [UInt64](repeating: 0, count: 16)  // 1,024 CPUs
        let rc = mask.withUnsafeMutableBytes { sched_getaffinity(0, $0.count, $0.baseAddress) }
        guard rc == 0 else { return nil }
        return mask.reduce(0) { $0 + $1.nonzeroBitCount }
    }

    /// Linux's SCHED_BATCH (a GNU extension the Glibc module does not show).
    static let batchPolicy: Int32 = 3

    /// Makes the calling thread a batch thread: it no longer preempts the
    /// thread running on its core when it wakes, but waits for that one's
    /// time slice. Loops that outnumber their cores wake each other all the
    /// time; preempting then only trades one loop's batch for another's
    /// smaller one, at the cost of a context switch. Returns the policy to
    /// restore, or nil if it could not be changed.
    public static func preferBatches() -> Int32? {
        let previous = sched_getscheduler(0)
        var parameters = sched_param()
        parameters.sched_priority = 0
        guard previous >= 0, sched_setscheduler(0, batchPolicy, &parameters) == 0 else { return nil }
        return previous
    }

    /// Puts back the calling thread's policy from `preferBatches`.
    public static func restore(_ policy: Int32) {
        var parameters = sched_param()
        parameters.sched_priority = 0
        _ = sched_setscheduler(0, policy, &parameters)
    }
}
