import Foundation
import PackagePlugin

/// Stamps the executable with `git describe` at build time (`ssogate --version`): before each
/// build, writes `BuildVersion.swift` (`let buildVersion = "v1.2-3-gabc123-dirty"`), and only
/// when the text changed, so an unchanged tree recompiles nothing. Outside a git checkout
/// (a source archive) the version is `unknown`.
@main
struct VersionStamp: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: Target) throws -> [Command] {
        let work = context.pluginWorkDirectoryURL
        let output = work.appending(path: "generated")
        let script = """
            v=$(git -C "$1" describe --tags --always --dirty 2>/dev/null || echo unknown)
            mkdir -p "$2"
            printf 'let buildVersion = "%s"\\n' "$v" > "$3"
            cmp -s "$3" "$2/BuildVersion.swift" || mv "$3" "$2/BuildVersion.swift"
            """
        return [.prebuildCommand(displayName: "ssogate version from git describe", executable: URL(fileURLWithPath: "/bin/sh"),
                                 arguments: ["-c", script, "sh", context.package.directoryURL.path, output.path,
                                             work.appending(path: "BuildVersion.swift.new").path],
                                 outputFilesDirectory: output)]
    }
}
