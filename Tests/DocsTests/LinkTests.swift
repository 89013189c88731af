import Foundation
import XCTest

/// The checkout's root (this file is Tests/DocsTests/LinkTests.swift).
let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

/// The user's pages: the front page, docs/, the recipes and the model card.
func userPages() throws -> [URL] {
    let docs = try FileManager.default.contentsOfDirectory(at: repoRoot.appendingPathComponent("docs"), includingPropertiesForKeys: nil)
        .filter { $0.pathExtension == "md" }
    return [repoRoot.appendingPathComponent("README.md"), repoRoot.appendingPathComponent("examples/pipelines.md"),
            repoRoot.appendingPathComponent("Models/README.md")] + docs.sorted { $0.path < $1.path }
}

/// A Markdown page's lines outside fenced code blocks.
func prose(_ text: String) -> [String] {
    var inFence = false, out: [String] = []
    for line in text.components(separatedBy: "\n") {
        if line.trimmingCharacters(in: .whitespaces).hasPrefix("```") { inFence.toggle(); continue }
        if !inFence { out.append(line) }
    }
    return out
}

/// The anchors GitHub gives a page's headings: lower case, punctuation dropped (hyphens and
/// underscores kept), spaces as hyphens; a repeated heading gets -1, -2, ...
func anchors(_ text: String) -> Set<String> {
    var seen: [String: Int] = [:], out = Set<String>()
    for line in prose(text) where line.hasPrefix("#") {
        let title = line.drop { $0 == "#" }.trimmingCharacters(in: .whitespaces)
        var slug = ""
        for ch in title.lowercased() {
            if ch.isLetter || ch.isNumber || ch == "-" || ch == "_" { slug.append(ch) } else if ch == " " { slug.append("-") }
        }
        let n = seen[slug, default: 0]
        seen[slug] = n + 1
        out.insert(n == 0 ? slug : "\(slug)-\(n)")
    }
    return out
}

/// `[text](target)` links of a page (not those in code), as targets.
func links(_ text: String) -> [String] {
    let pattern = try! NSRegularExpression(pattern: #"\]\(([^)\s]+)\)"#)
    return prose(text).flatMap { line -> [String] in
        let ns = line as NSString
        return pattern.matches(in: line, range: NSRange(location: 0, length: ns.length)).map { ns.substring(with: $0.range(at: 1)) }
    }
}

final class LinkTests: XCTestCase {
    /// Every relative link in README.md, docs/, examples/pipelines.md and the model card leads to
    /// a file of the checkout, and every #anchor to a heading of its page.
    func testEveryRelativeLinkAndAnchorResolves() throws {
        var checked = 0, broken: [String] = []
        for page in try userPages() {
            let text = try String(contentsOf: page, encoding: .utf8)
            for target in links(text) where !target.contains("://") && !target.hasPrefix("mailto:") {
                checked += 1
                let parts = target.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
                let file = parts[0].isEmpty ? page : page.deletingLastPathComponent().appendingPathComponent(parts[0]).standardized
                let name = "\(page.lastPathComponent): \(target)"
                guard FileManager.default.fileExists(atPath: file.path) else { broken.append("\(name) (no such file)"); continue }
                if parts.count == 2 {
                    guard file.pathExtension == "md" else { broken.append("\(name) (an anchor into a file that is not Markdown)"); continue }
                    if !anchors(try String(contentsOf: file, encoding: .utf8)).contains(parts[1]) { broken.append("\(name) (no such heading)") }
                }
            }
        }
        print("checked \(checked) relative links in \(try userPages().count) pages")
        XCTAssertGreaterThan(checked, 20, "the pages link to each other")
        XCTAssertEqual(broken, [], "broken links")
    }

    /// The checker itself: GitHub's anchors for headings with code, punctuation and repeats, and
    /// links inside code blocks left alone.
    func testAnchorsAndLinksAreReadAsGitHubDoes() {
        let page = "# The `fer` tool\n## Against time code\n## Against time code\n### RTP/UDP: H.264!\n```\n[x](nowhere.md)\n```\n[y](a.md#b)"
        XCTAssertEqual(anchors(page), ["the-fer-tool", "against-time-code", "against-time-code-1", "rtpudp-h264"])
        XCTAssertEqual(links(page), ["a.md#b"])
    }

    /// The front page stays a front page: at most 12 KB.
    func testReadmeIsShort() throws {
        let size = try Data(contentsOf: repoRoot.appendingPathComponent("README.md")).count
        print("README.md: \(size) bytes")
        XCTAssertLessThanOrEqual(size, 12 * 1024)
    }
}
