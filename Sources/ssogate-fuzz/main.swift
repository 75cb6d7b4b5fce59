import FuzzTargets
import Foundation

#if FUZZING
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(_ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
                         _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt) -> CInt

/// SwiftPM links an executable's `main` to `<module>_main`; with -DFUZZING that is this
/// function, which hands control to libFuzzer (built by `make fuzz` with
/// -sanitize=fuzzer,address).
@_cdecl("ssogate_fuzz_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var count = argc
    var arguments = argv
    return LLVMFuzzerRunDriver(&count, &arguments) { data, size in fuzzOne(data, size) }
}

/// libFuzzer's per-input callback; its runtime also requires the symbol itself.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let data else { return 0 }
    FuzzTargets.samlResponse(Array(UnsafeBufferPointer(start: data, count: size)))
    return 0
}
#else
/// Without the fuzzer: replays the files (or folders of files) it is given.
@main
struct Replay {
    static func main() {
        var count = 0
        for argument in CommandLine.arguments.dropFirst() {
            let paths = (try? FileManager.default.contentsOfDirectory(atPath: argument)).map { $0.map { argument + "/" + $0 } } ?? [argument]
            for path in paths {
                guard let data = FileManager.default.contents(atPath: path) else { continue }
                FuzzTargets.samlResponse(Array(data))
                count += 1
            }
        }
        print("replayed \(count) inputs")
    }
}
#endif
