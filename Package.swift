// swift-tools-version:6.0
import PackageDescription

/// Release builds of the numeric code are compiled with `-Ounchecked`: the hot loops index flat
/// buffers whose bounds are checked once per call, not once per element.
let fastMath: [SwiftSetting] = [.unsafeFlags(["-Ounchecked", "-wmo"], .when(configuration: .release))]

let package = Package(
    name: "GstFER",
    platforms: [.macOS(.v13)],
    products: [
        .library(name: "FERNet", targets: ["FERNet"]),
        .executable(name: "fer", targets: ["fer"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        // System libraries, found through pkg-config-free module maps (Debian packages).
        .systemLibrary(name: "COpenBLAS", path: "Sources/COpenBLAS"),
        .systemLibrary(name: "CZlib", path: "Sources/CZlib"),
        .systemLibrary(name: "CTurboJPEG", path: "Sources/CTurboJPEG"),
        // The CNN library: layers, optimisers, data, augmentation, model files, training.
        .target(
            name: "FERNet",
            dependencies: ["COpenBLAS", "CZlib", "CTurboJPEG"],
            swiftSettings: fastMath + [.swiftLanguageMode(.v5)]
        ),
        // Face detection: OpenCV Haar cascades evaluated in Swift.
        .target(name: "FaceDetect", swiftSettings: fastMath + [.swiftLanguageMode(.v5)]),
        // The `fer` command-line tool: explore, train, eval, predict, bench.
        .executableTarget(
            name: "fer",
            dependencies: ["FERNet", "FaceDetect", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: [.swiftLanguageMode(.v5)]
        ),
        .testTarget(
            name: "FERNetTests",
            dependencies: ["FERNet"],
            resources: [.copy("Fixtures")],
            swiftSettings: [.swiftLanguageMode(.v5)]
        ),
    ]
)
