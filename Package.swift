// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "Philote",
    products: [
        .executable(name: "philote", targets: ["philote"]),
        .library(name: "Philote", targets: ["Philote"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0")
    ],
    targets: [
        // The C boundary: only what Swift cannot import directly (macros, packed structs, varargs).
        .target(
            name: "CSystem",
            linkerSettings: [
                .linkedLibrary("ssl"),
                .linkedLibrary("crypto"),
                .linkedLibrary("z"),
                .linkedLibrary("hiredis"),
            ]
        ),
        .target(
            name: "Philote",
            dependencies: ["CSystem"],
            // Each loop's state is touched by its own thread only, and the reactor never re-enters a
            // connection's buffers (see Connection.readFrames), so the runtime's per-access exclusivity
            // bookkeeping buys nothing in release builds and cost about 7 % of fan-out CPU. Debug builds
            // and tests keep the checks.
            swiftSettings: [.unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release))]
        ),
        .executableTarget(
            name: "philote",
            dependencies: ["Philote", .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),
        // Fuzz targets: built with -sanitize=fuzzer by `make fuzz`; an ordinary build gets a stub main.
        .target(name: "FuzzSupport", path: "Fuzz/FuzzSupport"),
        .executableTarget(name: "FuzzFrames", dependencies: ["Philote", "FuzzSupport"], path: "Fuzz/FuzzFrames"),
        .executableTarget(name: "FuzzRequestHead", dependencies: ["Philote", "FuzzSupport"], path: "Fuzz/FuzzRequestHead"),
        .executableTarget(name: "FuzzClientMessage", dependencies: ["Philote", "FuzzSupport"], path: "Fuzz/FuzzClientMessage"),
        .executableTarget(name: "FuzzToken", dependencies: ["Philote", "FuzzSupport"], path: "Fuzz/FuzzToken"),
        .executableTarget(name: "FuzzEnvelope", dependencies: ["Philote", "FuzzSupport"], path: "Fuzz/FuzzEnvelope"),
        .executableTarget(name: "FuzzTLSRecords", dependencies: ["Philote", "CSystem", "FuzzSupport"], path: "Fuzz/FuzzTLSRecords"),
        .executableTarget(name: "FuzzPublishRequest", dependencies: ["Philote", "FuzzSupport"], path: "Fuzz/FuzzPublishRequest"),
        .executableTarget(name: "FuzzInflate", dependencies: ["Philote", "CSystem", "FuzzSupport"], path: "Fuzz/FuzzInflate"),
        .executableTarget(name: "FuzzSince", dependencies: ["Philote", "FuzzSupport"], path: "Fuzz/FuzzSince"),
        // Instruction counts of the client-message reader under callgrind (scripts/callgrind-json.sh).
        .executableTarget(name: "JSONBench", dependencies: ["Philote"], path: "Benchmarks/JSONBench"),
        .testTarget(name: "PhiloteTests", dependencies: ["Philote", "CSystem"]),
    ],
    swiftLanguageModes: [.v6]
)
