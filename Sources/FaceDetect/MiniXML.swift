/// A small XML reader for OpenCV's cascade files: elements, their text and children; comments,
/// declarations and attributes are skipped. Errors name the byte offset.
struct XMLNode {
    var name: String
    var text = ""
    var children: [XMLNode] = []

    func child(_ n: String) -> XMLNode? { children.first { $0.name == n } }
    func all(_ n: String) -> [XMLNode] { children.filter { $0.name == n } }
}

struct XMLError: Error, CustomStringConvertible {
    let description: String
}

enum MiniXML {
    static func parse(_ bytes: [UInt8]) throws -> XMLNode {
        var stack: [XMLNode] = [XMLNode(name: "#document")]
        var i = 0
        let n = bytes.count
        var text: [UInt8] = []
        func flushText() {
            if !text.isEmpty { stack[stack.count - 1].text += String(decoding: text, as: UTF8.self); text.removeAll(keepingCapacity: true) }
        }
        while i < n {
            let c = bytes[i]
            if c != 60 { text.append(c); i += 1; continue }   // '<'
            flushText()
            if i + 3 < n && bytes[i + 1] == 33 && bytes[i + 2] == 45 && bytes[i + 3] == 45 {   // <!--
                var j = i + 4
                while j + 2 < n && !(bytes[j] == 45 && bytes[j + 1] == 45 && bytes[j + 2] == 62) { j += 1 }
                guard j + 2 < n else { throw XMLError(description: "unterminated comment at byte \(i)") }
                i = j + 3; continue
            }
            var j = i + 1
            while j < n && bytes[j] != 62 { j += 1 }
            guard j < n else { throw XMLError(description: "unterminated tag at byte \(i)") }
            let tag = bytes[(i + 1)..<j]
            i = j + 1
            guard let first = tag.first else { throw XMLError(description: "empty tag at byte \(i)") }
            if first == 63 || first == 33 { continue }   // <? ... ?> and <! ... >
            if first == 47 {   // closing
                let name = String(decoding: tag.dropFirst(), as: UTF8.self).trimmingCharacters(in: " \t\r\n")
                guard stack.count > 1, stack[stack.count - 1].name == name else {
                    throw XMLError(description: "unexpected </\(name)> at byte \(i)")
                }
                let done = stack.removeLast()
                stack[stack.count - 1].children.append(done)
                continue
            }
            let selfClosing = tag.last == 47
            let body = selfClosing ? tag.dropLast() : tag
            let name = String(decoding: body.prefix { $0 != 32 && $0 != 9 && $0 != 10 && $0 != 13 }, as: UTF8.self)
            guard !name.isEmpty else { throw XMLError(description: "bad tag at byte \(i)") }
            if selfClosing { stack[stack.count - 1].children.append(XMLNode(name: name)) } else { stack.append(XMLNode(name: name)) }
        }
        guard stack.count == 1 else { throw XMLError(description: "<\(stack.last!.name)> is never closed") }
        return stack[0]
    }
}

extension String {
    func trimmingCharacters(in set: String) -> String {
        let s = Set(set.unicodeScalars)
        var sc = Substring(self).unicodeScalars[...]
        while let f = sc.first, s.contains(f) { sc.removeFirst() }
        while let l = sc.last, s.contains(l) { sc.removeLast() }
        return String(String.UnicodeScalarView(sc))
    }
}
