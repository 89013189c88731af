// swift-tools-version:6.0
import PackageDescription

// Every target is built with Swift's checks on (bounds, overflow, preconditions): GstFER reads
// files, metas, buffers and streams that others wrote. The numeric kernels index flat buffers
// through unsafe pointers, with wrapping arithmetic where it matters, so `-Ounchecked` bought
// neither the element nor the trainer anything measurable (docs/benchmarks-history.md, 2026-12-07).

/// GStreamer's and GLib's include directories on Debian (pkg-config --cflags gstreamer-video-1.0).
#if arch(arm64)
let multiarch = "aarch64-linux-gnu"
#else
let multiarch = "x86_64-linux-gnu"
#endif
let gstIncludes = ["/usr/include/gstreamer-1.0", "/usr/include/glib-2.0", "/usr/lib/\(multiarch)/glib-2.0/include",
                   "/usr/include/orc-0.4"].map { "-I" + $0 }
let gstSwiftIncludes: [SwiftSetting] = [.unsafeFlags(gstIncludes.flatMap { ["-Xcc", $0] })]

let package = Package(
    name: "GstFER",
    platforms: [.macOS(.v13)],
    products: [
        .library(name: "FERNet", targets: ["FERNet"]),
        .library(name: "FERTraining", targets: ["FERTraining"]),
        .executable(name: "fer", targets: ["fer"]),
        // The GStreamer plugin: libgstfer.so (plugin/meson-free-build.sh installs it).
        .library(name: "gstfer", type: .dynamic, targets: ["GstFER"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.0.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.5.0"),
    ],
    targets: [
        // System libraries, found through pkg-config-free module maps (Debian packages).
        .systemLibrary(name: "COpenBLAS", path: "Sources/COpenBLAS"),
        .systemLibrary(name: "CZlib", path: "Sources/CZlib"),
        .systemLibrary(name: "CTurboJPEG", path: "Sources/CTurboJPEG"),
        .systemLibrary(name: "CMosquitto", path: "Sources/CMosquitto"),
        // The CNN library for inference: layers (each with its forward and backward pass), networks,
        // model files, FacialExpressionModel, images.
        .target(
            name: "FERNet",
            dependencies: ["COpenBLAS", "CZlib", "CTurboJPEG"],
            swiftSettings: [.swiftLanguageMode(.v5)]
        ),
        // Training and data, apart from inference (the plugin links none of it): the trainer,
        // optimisers, FER2013 and FER+ readers, augmentation, charts, synthetic face scenes.
        .target(
            name: "FERTraining",
            dependencies: ["FERNet", "CZlib"],
            swiftSettings: [.swiftLanguageMode(.v5)]
        ),
        // Face detection behind one interface: OpenCV Haar cascades evaluated in Swift, and the
        // YuNet CNN (boxes and five landmarks) run on FERNet's ONNX reader and kernels.
        .target(name: "FaceDetect", dependencies: ["FERNet"], swiftSettings: [.swiftLanguageMode(.v5)]),
        // Face tracks across frames: identities, motion between detections, smoothed labels.
        .target(name: "FaceTracking", swiftSettings: [.swiftLanguageMode(.v5)]),
        // The product's analysis, free of GStreamer and the web: detect -> crop -> classify -> track
        // -> schedule for a stream (StreamAnalyzer) or a still picture (FrameAnalysis.picture), its
        // settings and defaults, and the face results with one codec for every output format. The
        // element, the web viewer and the `fer` tool all call this.
        .target(name: "FaceAnalysis", dependencies: ["FERNet", "FaceDetect", "FaceTracking"], swiftSettings: [.swiftLanguageMode(.v5)]),
        // Checks JSON against the schemas in docs/schemas (the part of JSON Schema they use): the
        // tests hold every output format to its published schema. Not linked into the plugin or fer.
        .target(name: "SchemaCheck", swiftSettings: [.swiftLanguageMode(.v5)]),
        // Emotion metadata inside H.264/H.265: SEI user-data-unregistered messages in access units,
        // and the JSON payload they carry (no GStreamer here).
        .target(name: "EmotionSEI", dependencies: ["FaceAnalysis"], swiftSettings: [.swiftLanguageMode(.v5)]),
        // Publishing to an MQTT broker off the caller's thread: a bounded queue, drop counts,
        // reconnection, TLS, a retained status with a last will (libmosquitto; no GStreamer here).
        .target(name: "MQTTPublish", dependencies: ["CMosquitto"], swiftSettings: [.swiftLanguageMode(.v5)]),
        // Tests only: Debian's mosquitto broker on a free loopback port, and mosquitto_sub, for the
        // publishing tests (the plugin and fer link none of it).
        .target(name: "MQTTBrokerHarness", swiftSettings: [.swiftLanguageMode(.v5)]),
        // GObject glue only: the GstFerFilter and GstFerSei types, pads, vfunc/property trampolines, plugin descriptor.
        .target(
            name: "CGStreamer",
            cSettings: [.unsafeFlags(gstIncludes)],
            linkerSettings: ["gstvideo-1.0", "gstbase-1.0", "gstreamer-1.0", "gobject-2.0", "glib-2.0"].map { .linkedLibrary($0) }
        ),
        // The elements in Swift, thin adapters: ferfilter (settings, caps, the frame handed to
        // FaceAnalysis, then draw/meta/messages/results), ferseiinsert/ferseiextract (the faces in
        // H.264/H.265 SEI) and feroverlay (drawing the faces frames carry). They read metas and
        // buffers from any upstream element.
        .target(
            name: "GstFER",
            dependencies: ["CGStreamer", "EmotionSEI", "FaceAnalysis", "FERNet", "FaceDetect", "MQTTPublish"],
            swiftSettings: gstSwiftIncludes + [.swiftLanguageMode(.v5)]
        ),
        // GStreamer's application libraries: appsink for the web viewer, gst-rtsp-server for `fer rtsp`.
        .systemLibrary(name: "CGstAppLibs", path: "Sources/CGstAppLibs", pkgConfig: "gstreamer-rtsp-server-1.0"),
        // The web viewer behind `fer serve`: a ferfilter pipeline, MJPEG video, a live emotion panel
        // fed by Server-Sent Events, and a JSON API (analyze, summary, timeline, health), on Hummingbird.
        .target(
            name: "WebViewer",
            dependencies: ["FaceAnalysis", "FERNet", "FaceDetect", "CGstAppLibs", "CTurboJPEG", .product(name: "Hummingbird", package: "hummingbird"),
                           .product(name: "HummingbirdTLS", package: "hummingbird"), .product(name: "NIOSSL", package: "swift-nio-ssl"),
                           .product(name: "Logging", package: "swift-log")],
            swiftSettings: [.swiftLanguageMode(.v5)]
        ),
        // gst-check's GstHarness, for tests only.
        .systemLibrary(name: "CGstCheck", path: "Sources/CGstCheck", pkgConfig: "gstreamer-check-1.0"),
        // The `fer` command-line tool: explore, train, eval, predict, detect, bench, rtsp, serve.
        .executableTarget(
            name: "fer",
            dependencies: ["EmotionSEI", "FaceAnalysis", "FERNet", "FERTraining", "FaceDetect", "CGstAppLibs", "WebViewer", "MQTTPublish", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: [.swiftLanguageMode(.v5)]
        ),
        .testTarget(
            name: "FERNetTests",
            dependencies: ["FERNet", "FERTraining"],
            resources: [.copy("Fixtures")],
            swiftSettings: [.swiftLanguageMode(.v5)]
        ),
        .testTarget(
            name: "FaceDetectTests",
            dependencies: ["FaceDetect", "FERNet", "FERTraining"],
            exclude: ["Fixtures"],
            swiftSettings: [.swiftLanguageMode(.v5)]
        ),
        .testTarget(
            name: "FaceTrackingTests",
            dependencies: ["FaceTracking"],
            swiftSettings: [.swiftLanguageMode(.v5)]
        ),
        .testTarget(
            name: "FaceAnalysisTests",
            dependencies: ["FaceAnalysis", "FaceDetect", "FaceTracking", "FERNet", "FERTraining"],
            swiftSettings: [.swiftLanguageMode(.v5)]
        ),
        .testTarget(name: "MQTTPublishTests", dependencies: ["MQTTPublish", "MQTTBrokerHarness"], swiftSettings: [.swiftLanguageMode(.v5)]),
        .testTarget(
            name: "EmotionSEITests",
            dependencies: ["EmotionSEI", "FaceAnalysis"],
            swiftSettings: [.swiftLanguageMode(.v5)]
        ),
        .testTarget(
            name: "WebViewerTests",
            dependencies: ["WebViewer", "FaceAnalysis", "FERNet", "FaceDetect", "FERTraining", "SchemaCheck", "MQTTBrokerHarness"],
            swiftSettings: [.swiftLanguageMode(.v5)]
        ),
        .testTarget(
            name: "GstFERTests",
            dependencies: ["GstFER", "CGStreamer", "CGstCheck", "EmotionSEI", "FaceAnalysis", "FERNet", "FaceDetect", "FaceTracking", "WebViewer", "FERTraining", "SchemaCheck", "MQTTPublish", "MQTTBrokerHarness"],
            swiftSettings: gstSwiftIncludes + [.swiftLanguageMode(.v5)]
        ),
        // The user's pages: links and anchors resolve, the front page stays short.
        .testTarget(name: "DocsTests", dependencies: ["SchemaCheck"], swiftSettings: [.swiftLanguageMode(.v5)]),
    ]
)
