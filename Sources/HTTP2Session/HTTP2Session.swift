import CNGHTTP2

/// libnghttp2's server session behind Swift types: the only code that holds its pointers.
/// It keeps HTTP/2's framing, HPACK and flow-control state; bytes go in through `receive`,
/// come out through `send`, and what the client asked for reaches the delegate. Not
/// thread-safe: one event loop owns a session (HTTP2Connection's).
package final class HTTP2Session {
    /// HTTP/2 error codes (RFC 9113 §7) the gateway sends.
    package enum ErrorCode: UInt32, Sendable {
        case noError = 0x0, protocolError = 0x1, internalError = 0x2, cancel = 0x8, enhanceYourCalm = 0xB
    }

    /// A frame's 9-byte header, as the callbacks see it.
    package struct FrameHeader {
        package let type: UInt8
        package let length: Int
        package let flags: UInt8
        package let streamID: Int32
    }

    /// What a response body source gives for one DATA frame.
    package enum BodyRead {
        /// `count` bytes were copied; `end`: they are the last.
        case bytes(Int, end: Bool)
        /// Nothing ready yet: ask again after `resumeData`.
        case deferred
        /// The stream is gone: nghttp2 resets it.
        case failed
    }

    /// Why `receive` ended the session.
    package struct Fatal: Error {
        package enum Kind { case flood, badPreface, protocolError }
        package let kind: Kind
        package let message: String
    }

    package struct Settings {
        package var maxConcurrentStreams: Int
        package var initialStreamWindow: UInt32
        package var connectionWindow: Int32
        package var maxHeaderListSize: Int
        /// The library's own backstops against queued ACKs and resets.
        package var maxOutboundAck: Int
        package var resetBurst: UInt64
        package var resetsPerSecond: UInt64

        package init(maxConcurrentStreams: Int, initialStreamWindow: UInt32, connectionWindow: Int32, maxHeaderListSize: Int,
                     maxOutboundAck: Int, resetBurst: UInt64, resetsPerSecond: UInt64) {
            self.maxConcurrentStreams = maxConcurrentStreams
            self.initialStreamWindow = initialStreamWindow
            self.connectionWindow = connectionWindow
            self.maxHeaderListSize = maxHeaderListSize
            self.maxOutboundAck = maxOutboundAck
            self.resetBurst = resetBurst
            self.resetsPerSecond = resetsPerSecond
        }
    }

    private let session: OpaquePointer
    private unowned let delegate: HTTP2SessionDelegate

    /// A server session with manual window updates (`consume` gives window back) that has
    /// queued its SETTINGS; nil when the library could not make one.
    package init?(settings: Settings, delegate: HTTP2SessionDelegate) {
        self.delegate = delegate
        var callbacks: OpaquePointer?
        guard nghttp2_session_callbacks_new(&callbacks) == 0, let callbacks else { return nil }
        defer { nghttp2_session_callbacks_del(callbacks) }
        Self.install(callbacks)
        var option: OpaquePointer?
        guard nghttp2_option_new(&option) == 0, let option else { return nil }
        defer { nghttp2_option_del(option) }
        nghttp2_option_set_no_auto_window_update(option, 1)
        nghttp2_option_set_max_outbound_ack(option, settings.maxOutboundAck)
        nghttp2_option_set_stream_reset_rate_limit(option, settings.resetBurst, settings.resetsPerSecond)
        var made: OpaquePointer?
        guard nghttp2_session_server_new2(&made, callbacks, nil, option) == 0, let made else { return nil }
        session = made
        // The callbacks find this object through the user pointer, set once `self` is whole;
        // `self` outlives the session (deinit deletes it), so it is not retained.
        nghttp2_session_set_user_data(made, Unmanaged.passUnretained(self).toOpaque())
        var entries = [
            nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS.rawValue), value: UInt32(settings.maxConcurrentStreams)),
            nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE.rawValue), value: settings.initialStreamWindow),
            nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE.rawValue), value: UInt32(settings.maxHeaderListSize)),
            nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_ENABLE_PUSH.rawValue), value: 0),
        ]
        nghttp2_submit_settings(made, UInt8(NGHTTP2_FLAG_NONE.rawValue), &entries, entries.count)
        nghttp2_session_set_local_window_size(made, UInt8(NGHTTP2_FLAG_NONE.rawValue), 0, settings.connectionWindow)
    }

    deinit { nghttp2_session_del(session) }

    // MARK: - Bytes in and out

    /// Feeds received bytes; the delegate hears of what they carry. Throws when the session
    /// cannot go on (a library flood limit, a broken preface, another protocol error): it can
    /// then send nothing more, not even its GOAWAY.
    package func receive(_ bytes: UnsafeRawBufferPointer) throws(Fatal) {
        let result = nghttp2_session_mem_recv(session, bytes.bindMemory(to: UInt8.self).baseAddress, bytes.count)
        guard result < 0 else { return }
        let message = String(cString: nghttp2_strerror(Int32(result)))
        switch Int32(result) {
        case NGHTTP2_ERR_FLOODED.rawValue, NGHTTP2_ERR_TOO_MANY_CONTINUATIONS.rawValue:
            throw Fatal(kind: .flood, message: message)
        case NGHTTP2_ERR_BAD_CLIENT_MAGIC.rawValue:
            throw Fatal(kind: .badPreface, message: message)
        default:
            throw Fatal(kind: .protocolError, message: message)
        }
    }

    /// The next bytes to write (valid until the next call into the session), nil when there
    /// are none; throws when the session failed.
    package func nextBytesToSend() throws(Fatal) -> UnsafeRawBufferPointer? {
        var data: UnsafePointer<UInt8>?
        let count = nghttp2_session_mem_send(session, &data)
        if count < 0 { throw Fatal(kind: .protocolError, message: String(cString: nghttp2_strerror(Int32(count)))) }
        guard count > 0, let data else { return nil }
        return UnsafeRawBufferPointer(start: data, count: count)
    }

    /// Neither side has anything more to say: the connection may close.
    package var isFinished: Bool { nghttp2_session_want_read(session) == 0 && nghttp2_session_want_write(session) == 0 }

    /// The highest stream id the session processed (what a GOAWAY names).
    package var lastProcessedStreamID: Int32 { nghttp2_session_get_last_proc_stream_id(session) }

    // MARK: - What the gateway submits

    /// GOAWAY naming the last processed stream: those up to it finish, then the session ends.
    package func goAway() {
        nghttp2_submit_goaway(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), lastProcessedStreamID, ErrorCode.noError.rawValue, nil, 0)
    }

    /// GOAWAY with `code`, and the session ends once it is out.
    package func terminate(_ code: ErrorCode) { nghttp2_session_terminate_session(session, code.rawValue) }

    /// Gives `count` bytes of window back to the client on `streamID` (and the connection).
    package func consume(streamID: Int32, count: Int) { nghttp2_session_consume(session, streamID, count) }

    /// A response head; with `hasBody`, the delegate's `readBody` supplies its DATA frames.
    package func submitResponse(streamID: Int32, fields: [(name: [UInt8], value: [UInt8])], hasBody: Bool) {
        Self.withNameValues(fields) { nva in
            if hasBody {
                var provider = nghttp2_data_provider(source: nghttp2_data_source(ptr: nil)) { _, streamID, buffer, length, flags, _, user in
                    HTTP2Session.from(user).readBody(streamID, into: UnsafeMutableRawBufferPointer(start: buffer, count: length), flags: flags!)
                }
                _ = nghttp2_submit_response(session, streamID, nva.baseAddress, nva.count, &provider)
            } else {
                _ = nghttp2_submit_response(session, streamID, nva.baseAddress, nva.count, nil)
            }
        }
    }

    /// A header block that does not end the stream (`100 Continue`).
    package func submitHeaders(streamID: Int32, fields: [(name: [UInt8], value: [UInt8])]) {
        Self.withNameValues(fields) { nva in
            _ = nghttp2_submit_headers(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), streamID, nil, nva.baseAddress, nva.count, nil)
        }
    }

    /// A body source that said `.deferred` has bytes again.
    package func resumeData(streamID: Int32) { nghttp2_session_resume_data(session, streamID) }

    package func reset(streamID: Int32, code: ErrorCode) {
        nghttp2_submit_rst_stream(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), streamID, code.rawValue)
    }

    // MARK: - Callbacks

    private static func from(_ user: UnsafeMutableRawPointer?) -> HTTP2Session {
        Unmanaged<HTTP2Session>.fromOpaque(user!).takeUnretainedValue()
    }

    private static func header(_ hd: nghttp2_frame_hd) -> FrameHeader {
        FrameHeader(type: hd.type, length: hd.length, flags: hd.flags, streamID: hd.stream_id)
    }

    private static func install(_ callbacks: OpaquePointer) {
        nghttp2_session_callbacks_set_on_begin_frame_callback(callbacks) { _, hd, user in
            HTTP2Session.from(user).delegate.sessionBeganFrame(HTTP2Session.header(hd!.pointee))
            return 0
        }
        nghttp2_session_callbacks_set_on_begin_headers_callback(callbacks) { _, frame, user in
            let frame = frame!.pointee
            if frame.hd.type == UInt8(NGHTTP2_HEADERS.rawValue), frame.headers.cat == NGHTTP2_HCAT_REQUEST {
                HTTP2Session.from(user).delegate.sessionBeganRequest(streamID: frame.hd.stream_id)
            }
            return 0
        }
        nghttp2_session_callbacks_set_on_header_callback(callbacks) { _, frame, name, nameLength, value, valueLength, _, user in
            HTTP2Session.from(user).delegate.sessionReceivedField(streamID: frame!.pointee.hd.stream_id,
                                                     name: UnsafeBufferPointer(start: name, count: nameLength),
                                                     value: UnsafeBufferPointer(start: value, count: valueLength))
            return 0
        }
        nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks) { _, frame, user in
            let frame = frame!.pointee
            let endStream = frame.hd.flags & UInt8(NGHTTP2_FLAG_END_STREAM.rawValue) != 0
            let delegate = HTTP2Session.from(user).delegate
            switch UInt32(frame.hd.type) {
            case NGHTTP2_HEADERS.rawValue:
                if frame.headers.cat == NGHTTP2_HCAT_REQUEST {
                    delegate.sessionReceivedRequestHead(streamID: frame.hd.stream_id, endStream: endStream)
                } else if endStream {
                    delegate.sessionReceivedRequestEnd(streamID: frame.hd.stream_id)  // trailers end the request
                }
            case NGHTTP2_DATA.rawValue:
                if endStream { delegate.sessionReceivedRequestEnd(streamID: frame.hd.stream_id) }
            default:
                break
            }
            return 0
        }
        nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks) { _, _, streamID, data, length, user in
            HTTP2Session.from(user).delegate.sessionReceivedData(streamID: streamID, bytes: UnsafeRawBufferPointer(start: data, count: length))
            return 0
        }
        nghttp2_session_callbacks_set_on_stream_close_callback(callbacks) { _, streamID, errorCode, user in
            HTTP2Session.from(user).delegate.sessionClosedStream(streamID: streamID, errorCode: errorCode)
            return 0
        }
        nghttp2_session_callbacks_set_on_frame_send_callback(callbacks) { _, frame, user in
            HTTP2Session.from(user).delegate.sessionSentFrame(HTTP2Session.header(frame!.pointee.hd))
            return 0
        }
        nghttp2_session_callbacks_set_on_invalid_frame_recv_callback(callbacks) { _, frame, _, user in
            HTTP2Session.from(user).delegate.sessionRefusedFrame(HTTP2Session.header(frame!.pointee.hd))
            return 0
        }
    }

    private func readBody(_ streamID: Int32, into buffer: UnsafeMutableRawBufferPointer, flags: UnsafeMutablePointer<UInt32>) -> Int {
        switch delegate.sessionReadBody(streamID: streamID, into: buffer) {
        case .bytes(let count, let end):
            if end { flags.pointee |= NGHTTP2_DATA_FLAG_EOF.rawValue }
            return count
        case .deferred:
            return Int(NGHTTP2_ERR_DEFERRED.rawValue)
        case .failed:
            return Int(NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE.rawValue)
        }
    }

    /// Lays name/value byte pairs out as `nghttp2_nv` for one submit call (nghttp2 copies them).
    private static func withNameValues<R>(_ pairs: [(name: [UInt8], value: [UInt8])],
                                          _ body: (UnsafeMutableBufferPointer<nghttp2_nv>) -> R) -> R {
        var storage: [UInt8] = []
        storage.reserveCapacity(pairs.reduce(0) { $0 + $1.name.count + $1.value.count })
        for pair in pairs { storage += pair.name; storage += pair.value }
        return storage.withUnsafeMutableBufferPointer { bytes in
            var offset = 0
            var nva: [nghttp2_nv] = []
            nva.reserveCapacity(pairs.count)
            for pair in pairs {
                let name = bytes.baseAddress! + offset
                offset += pair.name.count
                let value = bytes.baseAddress! + offset
                offset += pair.value.count
                nva.append(nghttp2_nv(name: name, value: value, namelen: pair.name.count, valuelen: pair.value.count,
                                      flags: UInt8(NGHTTP2_NV_FLAG_NONE.rawValue)))
            }
            return nva.withUnsafeMutableBufferPointer { body($0) }
        }
    }
}

/// What an HTTP/2 session tells its owner. Called synchronously from inside `receive` and
/// `nextBytesToSend`: the session must not be re-entered from these calls.
package protocol HTTP2SessionDelegate: AnyObject {
    /// Every frame received, before its payload (for the frame budget).
    func sessionBeganFrame(_ header: HTTP2Session.FrameHeader)
    /// Every frame sent.
    func sessionSentFrame(_ header: HTTP2Session.FrameHeader)
    /// A frame the library refused without ending the session.
    func sessionRefusedFrame(_ header: HTTP2Session.FrameHeader)
    /// A request's header block begins: a new stream.
    func sessionBeganRequest(streamID: Int32)
    /// One field of a request's header block (HPACK-decoded, checked by the library).
    func sessionReceivedField(streamID: Int32, name: UnsafeBufferPointer<UInt8>, value: UnsafeBufferPointer<UInt8>)
    /// The request's header block is complete; `endStream`: no body follows.
    func sessionReceivedRequestHead(streamID: Int32, endStream: Bool)
    /// The request ended after its body (END_STREAM on DATA, or trailers).
    func sessionReceivedRequestEnd(streamID: Int32)
    func sessionReceivedData(streamID: Int32, bytes: UnsafeRawBufferPointer)
    /// The stream closed: finished, or reset by either side (`errorCode`).
    func sessionClosedStream(streamID: Int32, errorCode: UInt32)
    /// Copies up to `buffer.count` bytes of the stream's response body into `buffer`.
    func sessionReadBody(streamID: Int32, into buffer: UnsafeMutableRawBufferPointer) -> HTTP2Session.BodyRead
}

/// The libnghttp2 the process runs against (`ssogate --version`).
package enum HTTP2Library {
    package static var runtimeVersion: String {
        nghttp2_version(0).map { String(cString: $0.pointee.version_str) } ?? "unknown"
    }
}
