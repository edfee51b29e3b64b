import Sync

/// Verification results a guest may reuse across the TDIs of one DSM (issue 6 deliverable 7:
/// "a DSM's certificate chain may be verified once per DSM, as a real TVM could").
///
/// Keyed by the exact bytes verified: a certificate chain (SPDM form) already verified to the
/// same trust anchor, and a measurements report already verified with that chain (and the same
/// VCA length). Any byte that differs misses the cache and is verified in full, so tampering is
/// still caught; the digest checks against the TSM's digests are never cached. Share one cache
/// only between agents with the same trust anchor. Thread-safe (one `Sync.Locked`, which the thread sanitizer can follow).
///
/// ``cachesMeasurements`` false keeps only chains: every TDI's measurements signature is then
/// verified with the cached chain's leaf key (what `tsmctl bench assign` does, docs/assign.md).
public final class GuestEvidenceCache: Sendable {
    private struct MeasurementsKey: Hashable {
        var chain: [UInt8]
        var measurements: [UInt8]
        var vcaLength: Int
    }

    private struct Entries {
        var chains: [[UInt8]: VerifiedCertificateChain] = [:]
        var measurements: [MeasurementsKey: VerifiedMeasurements] = [:]
    }

    private let entries = Locked(Entries())

    /// Whether verified measurements reports are kept (chains always are).
    public let cachesMeasurements: Bool

    /// An empty cache; `cachesMeasurements` false keeps chains only (every measurements
    /// signature is verified).
    public init(cachesMeasurements: Bool = true) {
        self.cachesMeasurements = cachesMeasurements
    }

    /// Number of cached chains and measurements reports.
    public var count: (chains: Int, measurements: Int) {
        entries.withLock { ($0.chains.count, $0.measurements.count) }
    }

    func chain(_ bytes: [UInt8]) -> VerifiedCertificateChain? { entries.withLock { $0.chains[bytes] } }

    func store(chain: VerifiedCertificateChain, for bytes: [UInt8]) { entries.withLock { $0.chains[bytes] = chain } }

    func measurements(chain: [UInt8], report: [UInt8], vcaLength: Int) -> VerifiedMeasurements? {
        guard cachesMeasurements else { return nil }
        return entries.withLock { $0.measurements[MeasurementsKey(chain: chain, measurements: report, vcaLength: vcaLength)] }
    }

    func store(measurements: VerifiedMeasurements, chain: [UInt8], report: [UInt8], vcaLength: Int) {
        guard cachesMeasurements else { return }
        entries.withLock { $0.measurements[MeasurementsKey(chain: chain, measurements: report, vcaLength: vcaLength)] = measurements }
    }
}
