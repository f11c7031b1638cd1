#if canImport(Glibc)
    import Glibc
#endif

#if FUZZING
    // SwiftPM renames an executable's entry point, so libFuzzer's own main never runs; each target calls
    // libFuzzer's driver from its @main instead.
    @_silgen_name("LLVMFuzzerRunDriver")
    func LLVMFuzzerRunDriver(
        _ argc: UnsafeMutablePointer<Int32>,
        _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
        _ callback: @convention(c) (UnsafePointer<UInt8>, Int) -> CInt
    ) -> CInt
#endif

/// The entry point of every fuzz target: libFuzzer with `callback` when built by `Fuzz/run.sh`
/// (`-sanitize=fuzzer -DFUZZING`), a hint otherwise so ordinary builds and tests are unaffected.
public func runFuzzer(_ callback: @convention(c) (UnsafePointer<UInt8>, Int) -> CInt) -> Never {
    #if FUZZING
        var argc = CommandLine.argc
        var argv = CommandLine.unsafeArgv
        exit(LLVMFuzzerRunDriver(&argc, &argv, callback))
    #else
        print("Build with `-sanitize=fuzzer,address -DFUZZING` (see Fuzz/run.sh) to run this fuzz target.")
        exit(0)
    #endif
}
