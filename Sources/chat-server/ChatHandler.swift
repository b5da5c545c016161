import WebSocketServer

/// Who a connection is and where: decided by the upgrade hook from the
/// query, before the 101.
struct ChatMember {
    var name: String
    var room: String
    var topic: String { "room:" + room }
}

/// The chat: each connection subscribes to its room's topic; every text
/// message it sends is published to that topic verbatim (so every member of
/// the room, on every server sharing the Redis backplane, gets it as one
/// text message, the sender included); joins and leaves are published as
/// JSON notices of their own.
final class ChatHandler: WebSocketHandler {
    typealias ConnectionData = ChatMember

    func didOpen(_ connection: WebSocketConnection<ChatHandler>) {
        guard let member = connection.data, let server = connection.server else { return }
        connection.subscribe(member.topic)
        server.publish(text: ChatNotice.json(type: "join", name: member.name, room: member.room), to: member.topic)
    }

    func didReceive(_ connection: WebSocketConnection<ChatHandler>, chunk: UnsafeRawBufferPointer,
                    type: MessageType, isFinal: Bool) {
        guard let message = connection.wholeMessage(chunk, isFinal: isFinal) else { return }
        guard type == .text else {
            // RFC 6455 §7.4.1: 1003 for a kind of data this end does not take.
            connection.close(code: .unsupportedData, reason: "text messages only")
            return
        }
        guard let member = connection.data, let server = connection.server else { return }
        server.publish(message, type: .text, to: member.topic)
    }

    func didClose(_ connection: WebSocketConnection<ChatHandler>, code: CloseCode, reason: String) {
        // Left the topic already (a closed connection leaves its topics).
        guard let member = connection.data, let server = connection.server else { return }
        server.publish(text: ChatNotice.json(type: "leave", name: member.name, room: member.room), to: member.topic)
    }
}

/// The join and leave notices, and the rules for names and rooms.
enum ChatNotice {
    static func json(type: String, name: String, room: String) -> String {
        "{\"type\":\"\(type)\",\"name\":\(quoted(name)),\"room\":\(quoted(room))}"
    }

    /// A JSON string (RFC 8259 §7).
    static func quoted(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }

    /// A room is 1 to 64 letters, digits, `-` or `_` (it names a topic and
    /// shows in the page).
    static func roomProblem(_ room: String?) -> String? {
        guard let room, !room.isEmpty else { return "missing room: connect to /ws?room=NAME" }
        guard room.count <= 64, room.unicodeScalars.allSatisfy({ $0.properties.isAlphabetic && $0.isASCII || ("0"..."9").contains($0) || $0 == "-" || $0 == "_" }) else {
            return "malformed room: 1 to 64 letters, digits, - or _"
        }
        return nil
    }

    /// A name is 1 to 32 characters without control characters; none is "guest".
    static func name(_ raw: String?) -> String? {
        let name = (raw ?? "").trimmingSpaces
        if name.isEmpty { return "guest" }
        guard name.count <= 32, !name.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else { return nil }
        return name
    }
}

extension String {
    var trimmingSpaces: String {
        var s = Substring(self)
        while s.first == " " { s = s.dropFirst() }
        while s.last == " " { s = s.dropLast() }
        return String(s)
    }
}
