import ArgumentParser
import CGstAppLibs
import Foundation
import MQTTPublish

struct Rtsp: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve the ferfilter-annotated video over RTSP (H.264 or H.265), for players and other pipelines.",
        discussion: """
        Every client of rtsp://HOST:PORT/MOUNT gets the same stream: SOURCE ! videoconvert ! ferfilter ! \
        videoconvert ! x264enc ! ferseiinsert ! rtph264pay (--codec h265: x265enc, rtph265pay). Watch it with e.g. `gst-launch-1.0 rtspsrc \
        location=rtsp://127.0.0.1:8554/fer ! decodebin ! videoconvert ! autovideosink` or VLC. Each frame's \
        faces and emotions travel in the video stream (SEI, which players skip): `rtspsrc ! rtph264depay ! \
        h264parse ! ferseiextract ! ...` (or `rtspsrc ! parsebin ! ferseiextract ! ...`, either codec) reads them back as ferfilter's metas and bus messages. Needs the \
        plugin installed (plugin/meson-free-build.sh).
        """)

    @Option(help: "Source pipeline fragment (a camera by default).") var source = "v4l2src"
    @Option(help: "TCP port.") var port = 8554
    @Option(help: "Mount point.") var mount = "/fer"
    @Option(help: "Properties for ferfilter, e.g. \"detect-interval=2 draw-probabilities=true\".") var ferfilter = ""
    @Option(help: "Stop after this many seconds (0: run until interrupted).") var seconds = 0
    @Flag(inversion: .prefixedNo, help: "Carry each frame's faces and emotions in the stream (ferseiinsert).") var metadata = true
    @Option(help: "Video codec: h264 (x264enc) or h265 (x265enc).") var codec: Codec = .h264
    @Option(help: ArgumentHelp("Publish the faces to an MQTT broker: mqtt://[user[:password]@]host[:port]/prefix or mqtts://...?ca=FILE "
                               + "(ferfilter's publish property).", valueName: "url"))
    var publish: String?

    func validate() throws {
        if let publish {
            do { _ = try PublishTarget(url: publish) } catch { throw ValidationError("--publish \(error)") }
        }
    }

    enum Codec: String, ExpressibleByArgument, CaseIterable {
        case h264, h265
        /// Encoder and RTP payloader, low latency, a key frame every second.
        var elements: (encoder: String, payloader: String) {
            switch self {
            case .h264: return ("x264enc tune=zerolatency speed-preset=ultrafast key-int-max=30", "rtph264pay")
            case .h265: return ("x265enc tune=zerolatency speed-preset=ultrafast key-int-max=30", "rtph265pay")
            }
        }
    }

    func run() throws {
        gst_init(nil, nil)
        guard gst_element_factory_find("ferfilter") != nil else {
            throw ValidationError("GStreamer does not find ferfilter: install the plugin with plugin/meson-free-build.sh")
        }
        guard mount.hasPrefix("/") else { throw ValidationError("--mount must start with /") }
        let (encoder, payloader) = codec.elements
        let publishing = publish.map { " publish=\"" + $0.replacingOccurrences(of: "\"", with: "\\\"") + "\"" } ?? ""
        let launch = "( \(source) ! videoconvert ! ferfilter \(ferfilter)\(publishing) ! videoconvert "
            + "! \(encoder) \(metadata ? "! ferseiinsert " : "")"
            + "! \(payloader) name=pay0 pt=96 config-interval=1 )"
        let server = gst_rtsp_server_new()!
        gst_rtsp_server_set_service(server, "\(port)")
        let mounts = gst_rtsp_server_get_mount_points(server)!
        let factory = gst_rtsp_media_factory_new()!
        gst_rtsp_media_factory_set_launch(factory, launch)
        gst_rtsp_media_factory_set_shared(factory, 1)
        gst_rtsp_mount_points_add_factory(mounts, mount, factory)   // takes the factory
        g_object_unref(UnsafeMutableRawPointer(mounts))
        guard gst_rtsp_server_attach(server, nil) != 0 else {
            throw ValidationError("cannot listen on port \(port) (in use?)")
        }
        // the launch line as shown: a password in the publish URL stays out of the terminal
        let shown = publish.flatMap { url in (try? PublishTarget(url: url)).map { launch.replacingOccurrences(of: url, with: $0.description) } } ?? launch
        print("serving rtsp://127.0.0.1:\(port)\(mount): \(shown)")
        fflush(stdout)
        let loop = g_main_loop_new(nil, 0)!
        if seconds > 0 {
            g_timeout_add_seconds(guint(seconds), { data in
                g_main_loop_quit(OpaquePointer(data))
                return 0
            }, UnsafeMutableRawPointer(loop))
        }
        g_main_loop_run(loop)
        g_main_loop_unref(loop)
        g_object_unref(UnsafeMutableRawPointer(server))
    }
}
