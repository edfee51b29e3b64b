import ArgumentParser

/// `tsmctl`: the TSMKit command line tool. Each subcommand lives in its own file.
@main
struct TSMCtl: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tsmctl",
        abstract: "Confidential PCIe device assignment (iommufd vDevice TSM uAPI, TSM firmware, TDISP devices), simulated end to end.",
        subcommands: [UAPICommand.self, PCICommand.self, DSMCommand.self, ScriptCommand.self, BenchCommand.self, DecodeCommand.self, AssignCommand.self])
}
