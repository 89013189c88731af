import FERNet
import Foundation

/// YuNet (OpenCV Zoo's `face_detection_yunet_2023mar.onnx`, MIT licence): a 75,856-parameter
/// CNN that gives each face a box, a score and five landmarks. The ONNX file is read and run by
/// FERNet (`ONNXNetwork`); decoding and non-maximum suppression follow OpenCV's `FaceDetectorYN`.
///
/// The network is fully convolutional with strides 8, 16 and 32: a picture is scaled so its
/// longer side is at most `inputSize`, and at least `minimumInputSize` (small pictures are
/// enlarged), then padded on the right and bottom to a multiple of 32 with black, as OpenCV pads
/// it, so faces keep their shape at any frame size. It sees colour where the frame has it (the
/// network was trained on colour pictures), else grey. It finds faces tilted up to about 20
/// degrees; a request's `angles` turn the picture for heads tilted further (one run an angle).
public struct YuNetDetector: FaceDetector {
    /// The network for BGR pictures as published, and the same for grey pictures (the first
    /// convolution's weights summed over the three colours).
    public let network: ONNXNetwork
    public let greyNetwork: ONNXNetwork
    public let path: String
    /// Faces scoring below this are dropped (score: the square root of class and objectness).
    public var scoreThreshold: Double
    /// Overlapping boxes (intersection over union above this) keep only the best.
    public var nmsThreshold: Double
    /// The longer side of the picture the network sees; larger frames are scaled down to it.
    public var inputSize: Int
    public static let strides = [8, 16, 32]

    /// Pictures whose longer side is below this are enlarged to it: a photo of a few hundred
    /// pixels that a face fills is found far more often so (wild-dev padded, grey: 579 of 600
    /// photos as they are, 590 enlarged to 320; OpenCV's runtime, `tools/yunet_wild_dev.py`).
    public static let minimumInputSize = 320

    public init(path: String, scoreThreshold: Double = 0.6, nmsThreshold: Double = 0.3,
                inputSize: Int = 640) throws {
        let net = try ONNXNetwork(path: path)
        guard net.outputNames == ["cls_8", "cls_16", "cls_32", "obj_8", "obj_16", "obj_32", "bbox_8", "bbox_16", "bbox_32",
                                  "kps_8", "kps_16", "kps_32"] else {
            throw ONNXError(path, "not a YuNet face detector: its outputs are \(net.outputNames.joined(separator: ", "))")
        }
        guard net.declaredInputShape.count == 4, net.declaredInputShape[1] == 3 else {
            throw ONNXError(path, "not a YuNet face detector: its input has shape \(net.declaredInputShape)")
        }
        network = net
        greyNetwork = try net.withRepeatedInputChannel(channels: 3)
        self.path = path
        self.scoreThreshold = scoreThreshold; self.nmsThreshold = nmsThreshold; self.inputSize = inputSize
    }

    public var summary: String {
        "YuNet \((path as NSString).lastPathComponent), \(network.parameterCount) parameters, input up to \(inputSize) px"
    }

    /// The raw outputs for a padded input ([1, C, H, W], C 1 for grey or 3 for BGR, H and W
    /// multiples of 32), in the graph's order.
    public func outputs(_ input: ONNXNetwork.Value) throws -> [ONNXNetwork.Value] {
        try (input.shape[1] == 1 ? greyNetwork : network).run(input)
    }

    /// Faces of a tracked face's region are looked for with the face scaled to about this many
    /// pixels: a region twice the face's size then costs a seventh of a 640x384 frame. (FER2013's
    /// tight crops placed in frames are found 90% of the time at 88 px, 75% at 48 px, 33% at
    /// 32 px: `fer crop-check --size`.)
    public static let regionFaceSize = 96.0

    /// A tracked face tilted this many degrees or more is also searched in its region, turned
    /// upright, when the whole frame is searched: upright, the network places its landmarks
    /// (and so its tilt and the crop) less well.
    public static let wholeFrameTilt = 15.0

    /// The whole frame, or with a `ScanPlan` of several phases (a video's tracked faces) the
    /// whole frame on phase 0 and on the other phases only the regions around the tracked faces:
    /// a face that appears is found within `period` analysed frames, as the cascade's spread
    /// search promises, and a tracked one on every frame, at a fraction of the cost.
    public func detect(grey: UnsafePointer<UInt8>, width: Int, height: Int, stride: Int, request: DetectionRequest) -> [DetectedBox] {
        detect(grey: grey, colour: nil, width: width, height: height, stride: stride, request: request)
    }

    public func detect(grey: UnsafePointer<UInt8>, colour: ColourSource?, width: Int, height: Int, stride: Int,
                       request: DetectionRequest) -> [DetectedBox] {
        guard width > 0, height > 0 else { return [] }
        guard let plan = request.plan, plan.period > 1 else {
            return detectFrame(grey: grey, colour: colour, width: width, height: height, stride: stride, request: request,
                               angles: request.angles)
        }
        return merge(searchPlan(plan, grey: grey, colour: colour, width: width, height: height, stride: stride, request: request))
    }

    /// The faces of a plan's phase, each as seen in its view, before the views are merged.
    func searchPlan(_ plan: ScanPlan, grey: UnsafePointer<UInt8>, colour: ColourSource?, width: Int, height: Int, stride: Int,
                    request: DetectionRequest) -> [Seen] {
        let whole = plan.phase % plan.period == 0
        // the regions of tracked faces: with the whole frame only those of faces tilted
        // `wholeFrameTilt` or more (the whole frame gives their landmarks less well)
        let regions = whole ? plan.regions.filter { abs($0.angle) >= YuNetDetector.wholeFrameTilt } : plan.regions
        let crowded = !whole && regionPixels(regions, width: width, height: height) >= framePixels(width: width, height: height)
        // the whole frame on phase 0, and on another phase at the turns asked for (new tilted
        // heads), except with so many faces tracked that their regions cost a whole frame; the
        // tracked faces are still looked for in their regions (seen turned 25 degrees, an upright
        // face gets landmarks tilted about 20)
        var found = request.angles.isEmpty || crowded ? []
            : detectViews(grey: grey, colour: colour, width: width, height: height, stride: stride, request: request, angles: request.angles)
        if crowded {
            // so many tracked faces that their regions would cost more than the whole frame: the
            // whole frame, in grey as the regions are
            return found + detectViews(grey: grey, colour: nil, width: width, height: height, stride: stride, request: request)
        }
        for r in regions {
            let x0 = Swift.max(0, r.x), y0 = Swift.max(0, r.y)
            let x1 = Swift.min(width, r.x + r.width), y1 = Swift.min(height, r.y + r.height)
            guard x1 - x0 >= 8, y1 - y0 >= 8 else { continue }
            var sub = request
            sub.plan = nil
            sub.maxSize = 0
            // a tracked face's region in grey: colour finds new faces, and costs a third more
            // a tilted face's region turned so the face stands upright
            let seen = detectViews(grey: grey + y0 * stride + x0, colour: nil,
                                   width: x1 - x0, height: y1 - y0, stride: stride, request: sub,
                                   scale: YuNetDetector.regionScale(r), angles: [r.angle])
            for var f in seen {
                f.box.x += x0; f.box.y += y0
                f.box.landmarks = f.box.landmarks.map { Landmark(x: $0.x + Double(x0), y: $0.y + Double(y0)) }
                let side = Swift.max(f.box.width, f.box.height)
                if request.maxSize == 0 || side <= request.maxSize { found.append(f) }
            }
        }
        return found
    }

    /// A face as one view (the picture turned by some angle) saw it: where it is in the picture,
    /// and how tilted it looked in that view.
    struct Seen {
        var box: DetectedBox
        var viewTilt: Double
    }

    /// One face, one box, from several views (regions may overlap, and the whole frame's faces,
    /// and turned views see the same face): boxes overlapping a better one (intersection over union
    /// above `nmsThreshold`) are the same face, and the face is given by the view it looked most
    /// upright in (the network places landmarks best on upright faces: an upright face seen in a
    /// view turned 25 degrees gets landmarks tilted about 20 degrees); a box lying mostly (60%)
    /// inside a better one is dropped (a turned view can see a small face in a large face's chin).
    func merge(_ seen: [Seen]) -> [DetectedBox] {
        var groups: [(leader: (Double, Double, Double, Double), members: [Seen])] = []
        for f in seen.sorted(by: { $0.box.score > $1.box.score }) {
            let b = (Double(f.box.x), Double(f.box.y), Double(f.box.width), Double(f.box.height))
            if let g = groups.firstIndex(where: { YuNetDetector.clash(b, $0.leader, nmsThreshold) }) {
                if YuNetDetector.iou(b, groups[g].leader) > nmsThreshold { groups[g].members.append(f) }
                continue
            }
            groups.append((b, [f]))
        }
        return groups.map { g in g.members.min { abs($0.viewTilt) < abs($1.viewTilt) }!.box }
    }

    /// Whether box `b` is the same face as the better box `k` (overlap above `threshold`) or lies
    /// mostly inside it.
    static func clash(_ b: (Double, Double, Double, Double), _ k: (Double, Double, Double, Double), _ threshold: Double) -> Bool {
        let ix = Swift.max(0, Swift.min(b.0 + b.2, k.0 + k.2) - Swift.max(b.0, k.0))
        let iy = Swift.max(0, Swift.min(b.1 + b.3, k.1 + k.3) - Swift.max(b.1, k.1))
        return iou(b, k) > threshold || ix * iy > 0.6 * b.2 * b.3
    }

    /// The network's input pixels for a whole `width` x `height` frame (padded to 32).
    func framePixels(width: Int, height: Int) -> Int {
        let k = pictureScale(width: width, height: height)
        return YuNetDetector.padded(Double(width) * k) * YuNetDetector.padded(Double(height) * k)
    }

    /// The network's input pixels for the regions of a plan, each scaled as `detect` scales it.
    func regionPixels(_ regions: [ScanRegion], width: Int, height: Int) -> Int {
        regions.reduce(0) { total, r in
            let w = Swift.min(width, r.x + r.width) - Swift.max(0, r.x), h = Swift.min(height, r.y + r.height) - Swift.max(0, r.y)
            guard w >= 8, h >= 8 else { return total }
            let k = YuNetDetector.regionScale(r)
            return total + YuNetDetector.padded(Double(w) * k) * YuNetDetector.padded(Double(h) * k)
        }
    }

    /// The scale a region is searched at: its face (the region's largest size / 1.45) to about
    /// `regionFaceSize`, never enlarged.
    static func regionScale(_ r: ScanRegion) -> Double {
        Swift.min(1, regionFaceSize / Swift.max(Double(r.maxSize) / 1.45, 1))
    }

    /// A side scaled and rounded as `detectFrame` rounds it, padded to a multiple of 32.
    static func padded(_ side: Double) -> Int { (Swift.max(1, Int(side.rounded())) + 31) / 32 * 32 }

    static func iou(_ a: DetectedBox, _ b: DetectedBox) -> Double {
        iou((Double(a.x), Double(a.y), Double(a.width), Double(a.height)), (Double(b.x), Double(b.y), Double(b.width), Double(b.height)))
    }

    /// Intersection over union of two boxes (x, y, width, height).
    static func iou(_ a: (Double, Double, Double, Double), _ b: (Double, Double, Double, Double)) -> Double {
        let ix = Swift.max(0, Swift.min(a.0 + a.2, b.0 + b.2) - Swift.max(a.0, b.0))
        let iy = Swift.max(0, Swift.min(a.1 + a.3, b.1 + b.3) - Swift.max(a.1, b.1))
        let inter = ix * iy, union = a.2 * a.3 + b.2 * b.3 - inter
        return union > 0 ? inter / union : 0
    }

    /// The scale at which a whole `width` x `height` picture is looked at: its longer side to at
    /// most `inputSize` and at least `minimumInputSize`.
    public func pictureScale(width: Int, height: Int) -> Double {
        let side = Double(Swift.max(width, height))
        return Swift.max(Swift.min(1, Double(inputSize) / side), Double(Swift.min(inputSize, YuNetDetector.minimumInputSize)) / side)
    }

    /// The faces of a whole picture, scaled by `scale` (default: `pictureScale`), looked at as it
    /// is (angle 0) and turned by each of `angles` (degrees clockwise; one network run each).
    func detectFrame(grey: UnsafePointer<UInt8>, colour: ColourSource? = nil, width: Int, height: Int, stride: Int,
                     request: DetectionRequest, scale: Double? = nil, angles: [Double] = [0]) -> [DetectedBox] {
        let seen = detectViews(grey: grey, colour: colour, width: width, height: height, stride: stride, request: request,
                               scale: scale, angles: angles)
        return angles.count > 1 ? merge(seen) : seen.map(\.box)
    }

    /// `detectFrame`'s faces, each from every view that saw it (one view: as `decode` gives them).
    func detectViews(grey: UnsafePointer<UInt8>, colour: ColourSource? = nil, width: Int, height: Int, stride: Int,
                     request: DetectionRequest, scale: Double? = nil, angles: [Double] = [0]) -> [Seen] {
        let scale = scale ?? pictureScale(width: width, height: height)
        let w = Swift.max(1, Int((Double(width) * scale).rounded())), h = Swift.max(1, Int((Double(height) * scale).rounded()))
        let pw = YuNetDetector.padded(Double(w)), ph = YuNetDetector.padded(Double(h))
        let channels = colour == nil ? 1 : 3
        var input = [Float](repeating: 0, count: channels * pw * ph)
        if let colour {
            YuNetDetector.resampleColour(grey, colour, width: width, height: height, stride: stride, into: &input, w: w, h: h,
                                         rowLength: pw, planeLength: pw * ph)
        } else {
            YuNetDetector.resample(grey, width: width, height: height, stride: stride, into: &input, w: w, h: h, rowLength: pw)
        }
        let net = colour == nil ? greyNetwork : network
        var faces: [(face: YuNetFace, viewTilt: Double)] = []
        for angle in angles {
            let turned = angle == 0 ? input : YuNetDetector.turn(input, channels: channels, w: w, h: h, rowLength: pw, planeLength: pw * ph,
                                                                 degrees: angle)
            let run = { () -> [ONNXNetwork.Value]? in try? net.run(ONNXNetwork.Value(shape: [1, channels, ph, pw], data: turned)) }
            guard let outs = request.threads == 0 ? run() : Parallelism.withThreads(request.threads, run) else { continue }
            let found = decode(outs, paddedWidth: pw, paddedHeight: ph)
            faces += found.map { f in
                (angle == 0 ? f : f.turnedBack(degrees: angle, centre: (Double(w) / 2, Double(h) / 2)), YuNetDetector.tilt(f.landmarks))
            }
        }
        let back = 1 / scale
        return faces.compactMap { f, viewTilt -> Seen? in
            var b = f.box(scaledBy: back)
            // keep the box inside the frame
            let x0 = Swift.max(0, b.x), y0 = Swift.max(0, b.y)
            let x1 = Swift.min(width, b.x + b.width), y1 = Swift.min(height, b.y + b.height)
            b.x = x0; b.y = y0; b.width = x1 - x0; b.height = y1 - y0
            let side = Swift.max(b.width, b.height)
            guard b.width > 0, b.height > 0, side >= request.minSize, request.maxSize == 0 || side <= request.maxSize else { return nil }
            return Seen(box: b, viewTilt: viewTilt)
        }
    }

    /// The faces in the network's outputs, in the padded input's pixels, best first.
    public func decode(_ outs: [ONNXNetwork.Value], paddedWidth pw: Int, paddedHeight ph: Int) -> [YuNetFace] {
        var found: [(score: Double, x: Double, y: Double, w: Double, h: Double, marks: [Landmark])] = []
        for (level, s) in YuNetDetector.strides.enumerated() {
            let cols = pw / s, rows = ph / s
            let cls = outs[level].data, obj = outs[3 + level].data, bbox = outs[6 + level].data, kps = outs[9 + level].data
            guard cls.count == rows * cols, obj.count == rows * cols, bbox.count == 4 * rows * cols, kps.count == 10 * rows * cols else { continue }
            let stride = Double(s)
            for r in 0..<rows {
                for c in 0..<cols {
                    let i = r * cols + c
                    let score = (Double(Swift.min(Swift.max(cls[i], 0), 1)) * Double(Swift.min(Swift.max(obj[i], 0), 1))).squareRoot()
                    if score < scoreThreshold { continue }
                    let cx = (Double(c) + Double(bbox[4 * i])) * stride, cy = (Double(r) + Double(bbox[4 * i + 1])) * stride
                    let bw = exp(Double(bbox[4 * i + 2])) * stride, bh = exp(Double(bbox[4 * i + 3])) * stride
                    let marks = (0..<5).map { n in
                        Landmark(x: (Double(kps[10 * i + 2 * n]) + Double(c)) * stride, y: (Double(kps[10 * i + 2 * n + 1]) + Double(r)) * stride)
                    }
                    // a damaged model can give anything: only boxes and points within reach of the picture
                    let reach = 4 * Double(Swift.max(pw, ph))
                    guard score.isFinite, [cx, cy, bw, bh].allSatisfy({ $0.isFinite && abs($0) < reach }), bw > 0, bh > 0,
                          marks.allSatisfy({ $0.x.isFinite && $0.y.isFinite && abs($0.x) < reach && abs($0.y) < reach }) else { continue }
                    found.append((score, cx - bw / 2, cy - bh / 2, bw, bh, marks))
                }
            }
        }
        found.sort { $0.score > $1.score }
        var kept: [Int] = []
        for (i, f) in found.enumerated() {
            let overlaps = kept.contains { k in
                let g = found[k]
                return YuNetDetector.iou((f.x, f.y, f.w, f.h), (g.x, g.y, g.w, g.h)) > nmsThreshold
            }
            if !overlaps { kept.append(i) }
        }
        return kept.map { k in
            let f = found[k]
            return YuNetFace(x: f.x, y: f.y, width: f.w, height: f.h, score: f.score, landmarks: f.marks)
        }
    }

    /// Scales a grey picture into the top-left `w`x`h` of a float buffer (rows `rowLength` apart):
    /// each output pixel the mean of the source pixels it covers (area averaging), or the pixel
    /// itself at scale 1; enlarged bilinearly.
    static func resample(_ src: UnsafePointer<UInt8>, width: Int, height: Int, stride: Int,
                         into out: inout [Float], w: Int, h: Int, rowLength: Int) {
        if w > width || h > height {
            enlarge(width: width, height: height, w: w, h: h) { x, y in Float(src[y * stride + x]) } into: { x, y, v in out[y * rowLength + x] = v }
            return
        }
        out.withUnsafeMutableBufferPointer { o in
            let op = o.baseAddress!
            if w == width && h == height {
                for y in 0..<h { let s = src + y * stride, d = op + y * rowLength; for x in 0..<w { d[x] = Float(s[x]) } }
                return
            }
            let x0s = (0...w).map { Swift.min(width, $0 * width / w) }, y0s = (0...h).map { Swift.min(height, $0 * height / h) }
            parallelFor(h) { r in
                var row = [Float](repeating: 0, count: width)
                for y in r {
                    let ya = y0s[y], yb = Swift.max(ya + 1, y0s[y + 1])
                    for x in 0..<width { row[x] = 0 }
                    for sy in ya..<Swift.min(yb, height) { let s = src + sy * stride; for x in 0..<width { row[x] += Float(s[x]) } }
                    let d = op + y * rowLength
                    for x in 0..<w {
                        let xa = x0s[x], xb = Swift.max(xa + 1, x0s[x + 1])
                        var sum: Float = 0
                        for sx in xa..<Swift.min(xb, width) { sum += row[sx] }
                        d[x] = sum / Float((Swift.min(xb, width) - xa) * (Swift.min(yb, height) - ya))
                    }
                }
            }
        }
    }
}

extension YuNetDetector {
    /// Bilinear enlargement (pixel centres aligned, as OpenCV's INTER_LINEAR): `value(x, y)` reads
    /// the source, `store(x, y, v)` writes the `w` x `h` result. For small pictures only.
    static func enlarge(width: Int, height: Int, w: Int, h: Int, _ value: (Int, Int) -> Float, into store: (Int, Int, Float) -> Void) {
        let sx = Double(width) / Double(w), sy = Double(height) / Double(h)
        for y in 0..<h {
            let fy = Swift.max(0, (Double(y) + 0.5) * sy - 0.5)
            let y0 = Swift.min(Int(fy), height - 1), y1 = Swift.min(y0 + 1, height - 1), ay = Float(fy - Double(y0))
            for x in 0..<w {
                let fx = Swift.max(0, (Double(x) + 0.5) * sx - 0.5)
                let x0 = Swift.min(Int(fx), width - 1), x1 = Swift.min(x0 + 1, width - 1), ax = Float(fx - Double(x0))
                let top = value(x0, y0) * (1 - ax) + value(x1, y0) * ax, bottom = value(x0, y1) * (1 - ax) + value(x1, y1) * ax
                store(x, y, top * (1 - ay) + bottom * ay)
            }
        }
    }

    /// YUV to RGB by `m`, unclamped.
    @inline(__always) static func rgb(y: Float, u: Float, v: Float, _ m: YUVMatrix) -> (Float, Float, Float) {
        let c = m.ys * (y - m.y0), d = u - 128, e = v - 128
        return (c + m.rv * e, c - m.gu * d - m.gv * e, c + m.bu * d)
    }

    /// `resample` for a colour picture: three planes (`planeLength` apart) of blue, green and red,
    /// as OpenCV hands YuNet a BGR picture: each output pixel the mean colour of the area it covers.
    static func resampleColour(_ grey: UnsafePointer<UInt8>, _ colour: ColourSource, width: Int, height: Int, stride: Int,
                               into out: inout [Float], w: Int, h: Int, rowLength: Int, planeLength: Int) {
        // one pixel's blue, green and red
        let pixel: (Int, Int) -> (Float, Float, Float)
        switch colour {
        case let .rgb(p, cs, bytes, r, g, b):
            pixel = { x, y in let q = p + y * cs + x * bytes; return (Float(q[b]), Float(q[g]), Float(q[r])) }
        case let .chroma(u, v, cs, step, sx, sy, m):
            pixel = { x, y in
                let o = (y >> sy) * cs + (x >> sx) * step
                let (r, g, b) = rgb(y: Float(grey[y * stride + x]), u: Float(u[o]), v: Float(v[o]), m)
                return (b, g, r)
            }
        }
        func clamp(_ v: Float) -> Float { Swift.min(255, Swift.max(0, v)) }
        out.withUnsafeMutableBufferPointer { o in
            let op = o.baseAddress!
            if w > width || h > height || (w == width && h == height) {
                // enlarged or as it is: each output pixel from at most four source pixels
                var bgr = [Float](repeating: 0, count: 3 * width * height)
                for y in 0..<height { for x in 0..<width {
                    let (b, g, r) = pixel(x, y), i = 3 * (y * width + x)
                    bgr[i] = clamp(b); bgr[i + 1] = clamp(g); bgr[i + 2] = clamp(r)
                } }
                for c in 0..<3 {
                    let plane = op + c * planeLength
                    if w == width && h == height {
                        for y in 0..<h { for x in 0..<w { plane[y * rowLength + x] = bgr[3 * (y * width + x) + c] } }
                    } else {
                        enlarge(width: width, height: height, w: w, h: h) { x, y in bgr[3 * (y * width + x) + c] }
                            into: { x, y, v in plane[y * rowLength + x] = v }
                    }
                }
                return
            }
            let x0s = (0...w).map { Swift.min(width, $0 * width / w) }, y0s = (0...h).map { Swift.min(height, $0 * height / h) }
            parallelFor(h) { rows in
                switch colour {
                case let .rgb(p, cs, bytes, r, g, b):
                    // sums of each colour down the rows of the output row's area, then across
                    // (over pointers, with wrapping arithmetic: every index is below 3 * width)
                    let sums = UnsafeMutablePointer<UInt32>.allocate(capacity: 3 * width)
                    defer { sums.deallocate() }
                    for y in rows {
                        let ya = y0s[y], yb = Swift.min(height, Swift.max(ya + 1, y0s[y + 1]))
                        sums.initialize(repeating: 0, count: 3 * width)
                        for sy in ya..<yb {
                            var q = p + sy * cs, t = sums
                            for _ in 0..<width {
                                t[0] &+= UInt32(q[b]); t[1] &+= UInt32(q[g]); t[2] &+= UInt32(q[r])
                                q += bytes; t += 3
                            }
                        }
                        for x in 0..<w {
                            let xa = x0s[x], xb = Swift.min(width, Swift.max(xa + 1, x0s[x + 1]))
                            var sb: UInt32 = 0, sg: UInt32 = 0, sr: UInt32 = 0
                            var t = sums + 3 &* xa
                            for _ in xa..<xb { sb &+= t[0]; sg &+= t[1]; sr &+= t[2]; t += 3 }
                            let n = 1 / Float((xb - xa) * (yb - ya)), i = y * rowLength + x
                            op[i] = Float(sb) * n; op[planeLength + i] = Float(sg) * n; op[2 * planeLength + i] = Float(sr) * n
                        }
                    }
                case let .chroma(u, v, cs, step, shx, shy, m):
                    // luma summed over the area's pixels, chroma over the chroma samples under it; the
                    // means converted to RGB (the conversion is linear: the mean of the pixels' colours)
                    let cw = (width + (1 << shx) - 1) >> shx, ch = (height + (1 << shy) - 1) >> shy
                    let ys = UnsafeMutablePointer<UInt32>.allocate(capacity: width), us = UnsafeMutablePointer<UInt32>.allocate(capacity: cw),
                        vs = UnsafeMutablePointer<UInt32>.allocate(capacity: cw)
                    defer { ys.deallocate(); us.deallocate(); vs.deallocate() }
                    for y in rows {
                        let ya = y0s[y], yb = Swift.min(height, Swift.max(ya + 1, y0s[y + 1]))
                        let ca = ya >> shy, cb = Swift.min(ch, ((yb - 1) >> shy) + 1)
                        ys.initialize(repeating: 0, count: width); us.initialize(repeating: 0, count: cw); vs.initialize(repeating: 0, count: cw)
                        for sy in ya..<yb { let q = grey + sy * stride; for x in 0..<width { ys[x] &+= UInt32(q[x]) } }
                        for cy in ca..<cb {
                            let qu = u + cy * cs, qv = v + cy * cs
                            for c in 0..<cw { us[c] &+= UInt32(qu[c &* step]); vs[c] &+= UInt32(qv[c &* step]) }
                        }
                        for x in 0..<w {
                            let xa = x0s[x], xb = Swift.min(width, Swift.max(xa + 1, x0s[x + 1]))
                            let cxa = xa >> shx, cxb = Swift.min(cw, ((xb - 1) >> shx) + 1)
                            var sy: UInt32 = 0, su: UInt32 = 0, sv: UInt32 = 0
                            for sx in xa..<xb { sy &+= ys[sx] }
                            for c in cxa..<cxb { su &+= us[c]; sv &+= vs[c] }
                            let nc = Float((cxb - cxa) * (cb - ca))
                            let (r, g, b) = rgb(y: Float(sy) / Float((xb - xa) * (yb - ya)), u: Float(su) / nc, v: Float(sv) / nc, m)
                            let i = y * rowLength + x
                            op[i] = clamp(b); op[planeLength + i] = clamp(g); op[2 * planeLength + i] = clamp(r)
                        }
                    }
                }
            }
        }
    }
}

extension YuNetDetector {
    /// The tilt of a face's eyes' line in degrees, clockwise on screen (landmarks: right eye, left
    /// eye, ...; 0 without them).
    public static func tilt(_ l: [Landmark]) -> Double {
        guard l.count >= 2, l[0] != l[1] else { return 0 }
        return atan2(l[1].y - l[0].y, l[1].x - l[0].x) * 180 / .pi
    }

    /// The network's input turned by `degrees` (clockwise on screen) about the centre of its
    /// `w` x `h` picture, bilinearly; what comes from outside the picture is black, as the padding.
    static func turn(_ input: [Float], channels: Int, w: Int, h: Int, rowLength: Int, planeLength: Int, degrees: Double) -> [Float] {
        var out = [Float](repeating: 0, count: input.count)
        let a = degrees * .pi / 180, c = Float(cos(a)), s = Float(sin(a))
        let cx = Float(w) / 2, cy = Float(h) / 2
        input.withUnsafeBufferPointer { i in
            out.withUnsafeMutableBufferPointer { o in
                let ip = i.baseAddress!, op = o.baseAddress!
                parallelFor(h) { rows in
                    for y in rows {
                        let dy = Float(y) + 0.5 - cy
                        for x in 0..<w {
                            // where this pixel comes from in the picture as it is
                            let dx = Float(x) + 0.5 - cx
                            let sx = cx + c * dx - s * dy - 0.5, sy = cy + s * dx + c * dy - 0.5
                            guard sx > -1, sy > -1, sx < Float(w), sy < Float(h) else { continue }
                            let x0 = Int(sx.rounded(.down)), y0 = Int(sy.rounded(.down))
                            let ax = sx - Float(x0), ay = sy - Float(y0)
                            for ch in 0..<channels {
                                let plane = ip + ch * planeLength
                                func at(_ px: Int, _ py: Int) -> Float { px >= 0 && py >= 0 && px < w && py < h ? plane[py * rowLength + px] : 0 }
                                let top = at(x0, y0) * (1 - ax) + at(x0 + 1, y0) * ax
                                let bottom = at(x0, y0 + 1) * (1 - ax) + at(x0 + 1, y0 + 1) * ax
                                op[ch * planeLength + y * rowLength + x] = top * (1 - ay) + bottom * ay
                            }
                        }
                    }
                }
            }
        }
        return out
    }
}

/// A face as YuNet gives it, in the network input's pixels (before rounding).
public struct YuNetFace: Equatable, Sendable {
    public var x: Double, y: Double, width: Double, height: Double
    public var score: Double
    public var landmarks: [Landmark]

    /// A face found in the picture turned by `degrees` about `centre` (`YuNetDetector.turn`),
    /// where it is in the picture as it is: its landmarks turned back, its box the same size
    /// about its turned-back centre.
    func turnedBack(degrees: Double, centre: (Double, Double)) -> YuNetFace {
        let a = degrees * .pi / 180, c = cos(a), s = sin(a)
        func back(_ x: Double, _ y: Double) -> (Double, Double) {
            let dx = x - centre.0, dy = y - centre.1
            return (centre.0 + c * dx - s * dy, centre.1 + s * dx + c * dy)
        }
        var f = self
        let (mx, my) = back(x + width / 2, y + height / 2)
        f.x = mx - width / 2; f.y = my - height / 2
        f.landmarks = landmarks.map { let (lx, ly) = back($0.x, $0.y); return Landmark(x: lx, y: ly) }
        return f
    }

    /// The face in a picture `k` times the size, as a box of whole pixels.
    func box(scaledBy k: Double) -> DetectedBox {
        let x0 = x * k, y0 = y * k
        return DetectedBox(x: Int(x0.rounded()), y: Int(y0.rounded()),
                           width: Int((x0 + width * k).rounded()) - Int(x0.rounded()), height: Int((y0 + height * k).rounded()) - Int(y0.rounded()),
                           score: score, landmarks: landmarks.map { Landmark(x: $0.x * k, y: $0.y * k) })
    }
}
