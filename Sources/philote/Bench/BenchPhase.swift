/// Where a bench run stands; the coordinator moves it forward and every loop reads it (`BenchShared.phase`).
enum BenchPhase: Int {
    case connecting = 0
    /// Publishing, messages marked as warm-up (not measured).
    case warmup = 1
    /// Publishing inside the measured window.
    case measuring = 2
    /// The window is over: publishers stop, subscribers still count the window's last messages.
    case draining = 3
}
