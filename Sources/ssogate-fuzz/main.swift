import FuzzTargets
import Foundation
import Gateway

/// The fuzz targets by name; `SSOGATE_FUZZ_TARGET` chooses one (default `saml-response`).
/// Each has its corpus in Tests/Fixtures/fuzz/<name>.
enum Target: String, CaseIterable {
    case samlResponse = "saml-response"
    case http1 = "http1"
    case http2 = "http2"
    case upstreamResponse = "upstream-response"

    static var chosen: Target {
        ProcessInfo.processInfo.environment["SSOGATE_FUZZ_TARGET"].flatMap(Target.init(rawValue:)) ?? .samlResponse
    }

    func run(_ bytes: [UInt8]) {
        switch self {
        case .samlResponse: FuzzTargets.samlResponse(bytes)
        case .http1: WireFuzz.clientBytes(bytes)
        case .http2: WireFuzz.http2Frames(bytes)
        case .upstreamResponse: WireFuzz.upstreamResponse(bytes)
        }
    }
}

#if FUZZING
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(_ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
                         _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt) -> CInt

nonisolated(unsafe) var target = Target.samlResponse

/// SwiftPM links an executable's `main` to `<module>_main`; with -DFUZZING that is this
/// function, which hands control to libFuzzer (built by `make fuzz` with
/// -sanitize=fuzzer,address).
@_cdecl("ssogate_fuzz_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    target = Target.chosen
    var count = argc
    var arguments = argv
    return LLVMFuzzerRunDriver(&count, &arguments) { data, size in fuzzOne(data, size) }
}

/// libFuzzer's per-input callback; its runtime also requires the symbol itself.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let data else { return 0 }
    target.run(Array(UnsafeBufferPointer(start: data, count: size)))
    return 0
}
#else
/// Without the fuzzer: replays the files (or folders of files) it is given through the
/// chosen target.
@main
struct Replay {
    static func main() {
        let target = Target.chosen
        var count = 0
        for argument in CommandLine.arguments.dropFirst() {
            let paths = (try? FileManager.default.contentsOfDirectory(atPath: argument)).map { $0.map { argument + "/" + $0 } } ?? [argument]
            for path in paths {
                guard let data = FileManager.default.contents(atPath: path) else { continue }
                target.run(Array(data))
                count += 1
            }
        }
        print("replayed \(count) inputs through \(target.rawValue)")
    }
}
#endif
