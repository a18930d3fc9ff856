/// QEMU's auto-converge: when the guest dirties more than `throttle-trigger-threshold`% of
/// what a pass sent, twice in a row, slow its vCPUs down, harder each time it happens again.
struct AutoConverge {
    let thresholdPercent: Int
    let initialPercent: Int
    let incrementPercent: Int
    let maxPercent: Int
    private var highPasses = 0
    private var throttlePercent = 0

    init(parameters: MigrationParameters) {
        thresholdPercent = parameters.throttleTriggerThreshold
        initialPercent = parameters.cpuThrottleInitial
        incrementPercent = parameters.cpuThrottleIncrement
        maxPercent = parameters.maxCPUThrottle
    }

    /// Returns the new throttle when it changes.
    mutating func afterPass(pagesDirtied: Int, pagesSent: Int) -> Int? {
        guard pagesDirtied * 100 > pagesSent * thresholdPercent else {
            highPasses = 0
            return nil
        }
        highPasses += 1
        guard highPasses >= 2 else { return nil }
        highPasses = 0
        let next = throttlePercent == 0 ? initialPercent : min(throttlePercent + incrementPercent, maxPercent)
        guard next != throttlePercent else { return nil }
        throttlePercent = next
        return next
    }
}
