import CryptoKit
import Foundation
import Sunstorm
import SwiftUI
import UIKit

/// The pair screens, one case per screen.
enum PairScreen: Equatable {
    case loading
    case enterCode(flowId: String, card: SpCard, code: String, prefilled: Bool, error: String?)
    case chooseWallets(flowId: String, card: SpCard, rows: [WalletChoice], selected: Set<String>, error: String?)
    case confirmOnAppliance(card: SpCard, bindings: [String], status: String)
    case done(spName: String, bindings: [String], returnUrl: URL?)
    case ended(message: String)
}

enum Route: Hashable {
    case bond, scan, signRequests, pairs
}

/// The app's state and the one `SunstormCore`, created once at launch. Main-actor
/// isolated: views read it; core calls run off the main actor (async) and their results
/// come back here.
@MainActor
final class AppModel: ObservableObject {
    let core: SunstormCore
    let flows: SunstormFlows

    @Published var path: [Route] = []
    @Published var pair: PairScreen?
    @Published var refusedLink: String?
    @Published var busy = false

    // Bonding
    @Published var appliances: [ApplianceRow] = []
    @Published var bondMessage: String?
    // Sign requests and pairs
    @Published var signRequests: [SignRequestView] = []
    @Published var signStatus: String?
    @Published var pairs: [PairRow] = []

    /// Scripted flows (`DemoFlows`) instead of the core, for UI previews without an
    /// appliance or octane only. Off: the app runs on the real core (`CoreFlows`).
    static let demoMode = false

    init() {
        try? setLogSink(sink: OSLogSink(), maxLevel: .info)
        do {
            // `CancellableCore`: a `SunstormCore` whose async calls stop in Rust when their
            // Task is cancelled (docs/ios.md, "Cancellation").
            core = try CancellableCore(
                config: CoreConfig(
                    octaneUrl: "http://127.0.0.1:8080", // the laptop's octane simulator
                    octanePublicKeyHex: SharedStorage.octanePublicKeyHex, // printed by `sunstorm sim octane`
                    acceptedLinkHosts: ["sigilvault.xyz"],
                    // In the App Group: the notification extension reads it (docs/ios.md, "Push").
                    databasePath: SharedStorage.databasePath,
                    phoneName: UIDevice.current.name,
                    // Clear signing: the signed metadata bundle ships as a resource
                    // (project.yml), signed with the repository's DEVELOPMENT key (anyone can
                    // sign with it; a real app pins its own signer's key).
                    metadataPublicKeyHex: "ebfe4619b374c565c8629e2a7f1cb1018e8c11578855d65f0df09d0dfa4a88ec",
                    metadataBundle: Bundle.main.url(forResource: "bundle", withExtension: "cbor")
                        .flatMap { try? Data(contentsOf: $0) }),
                ble: CoreBluetoothCentral(), http: URLSessionHttpClient(), secrets: PushKeySharingSecretStore(inner: KeychainSecretStore()), presence: LocalAuthPresence(),
                // The appliance checks each approval's signature by this Secure Enclave key
                // (docs/ios.md); without a Secure Enclave (the Simulator) the phone approves without one.
                approvalKey: SecureEnclave.isAvailable ? SecureEnclaveApprovalKey() : nil)
        } catch {
            fatalError("invalid sample configuration: \(error)") // a build-time constant is wrong
        }
        flows = Self.demoMode ? DemoFlows() : CoreFlows(core: core)
        flows.onPairUpdate { [weak self] step in
            Task { @MainActor in self?.pairUpdated(step) }
        }
    }

    /// The core reported a pair-flow change on its own: "confirm on your appliance" follows it.
    private func pairUpdated(_ step: PairStep) {
        guard case .waitingForAppliance(_, _, _, true) = step,
              case .confirmOnAppliance(let card, let b, _) = pair else { return }
        pair = .confirmOnAppliance(card: card, bindings: b, status: "Approved on your appliance. Telling the service…")
    }

    // MARK: links (Universal Links and QR codes)

    func open(url: URL) { open(text: url.absoluteString) }

    func open(text: String) {
        switch LinkRoute.route(text, core: core) {
        case .pair(let link, _, _):
            path = []
            pair = .loading
            run { try await self.show(self.flows.openLink(link)) }
        case .refused(let reason):
            refusedLink = reason
        }
    }

    // MARK: pair flow

    func editCode(_ text: String) {
        guard case .enterCode(let f, let card, _, _, _) = pair else { return }
        pair = .enterCode(flowId: f, card: card, code: String(text.filter(\.isNumber).prefix(6)), prefilled: false, error: nil)
    }

    func submitCode() {
        guard case .enterCode(let f, _, let code, let prefilled, _) = pair, code.count == 6 else { return }
        run { try await self.show(self.flows.submitCode(flowId: f, code: prefilled ? nil : code)) }
    }

    func toggle(_ account: String) {
        guard case .chooseWallets(let f, let card, let rows, var selected, _) = pair,
              rows.first(where: { $0.account == account })?.selectable == true else { return }
        if selected.contains(account) { selected.remove(account) } else { selected.insert(account) }
        pair = .chooseWallets(flowId: f, card: card, rows: rows, selected: selected, error: nil)
    }

    func approvePair() {
        guard case .chooseWallets(let f, _, let rows, let selected, _) = pair, !selected.isEmpty else { return }
        let chosen = rows.map(\.account).filter(selected.contains)
        run {
            try await self.show(self.flows.chooseWallets(flowId: f, accounts: chosen))
            let step = try await self.flows.approvePair(flowId: f) { p in
                Task { @MainActor in
                    if case .confirmOnAppliance(let card, let b, _) = self.pair {
                        self.pair = .confirmOnAppliance(card: card, bindings: b, status: progressText(p))
                    }
                }
            }
            try await self.show(step)
        }
    }

    func rejectPair() {
        let flowId: String
        switch pair {
        case .enterCode(let f, _, _, _, _)?, .chooseWallets(let f, _, _, _, _)?: flowId = f
        default: return
        }
        run { try await self.show(self.flows.rejectPair(flowId: flowId)) }
    }

    private func show(_ step: PairStep) async throws {
        switch step {
        case .loading:
            pair = .loading
        case .codeNeeded(let f, let card, _):
            pair = .enterCode(flowId: f, card: card, code: "", prefilled: false, error: nil)
        case .codePrefilled(let f, let card, let code):
            pair = .enterCode(flowId: f, card: card, code: code, prefilled: true, error: nil)
        case .codeVerified(let f, let card):
            let rows = try await flows.approvalList(flowId: f)
            let single = Dictionary(grouping: rows.filter(\.selectable), by: \.chain).values.filter { $0.count == 1 }.map { $0[0].account }
            pair = .chooseWallets(flowId: f, card: card, rows: rows, selected: Set(single), error: nil)
        case .walletsChosen(_, let card, let bindings):
            pair = .confirmOnAppliance(card: card, bindings: bindings, status: "Connecting to your appliance…")
        case .waitingForAppliance(_, let card, let bindings, let approved):
            pair = .confirmOnAppliance(card: card, bindings: bindings,
                                       status: approved ? "Approved on your appliance. Telling the service…" : "Confirm on your appliance")
        case .paired(_, _, let bindings, let url):
            let name: String
            if case .confirmOnAppliance(let card, _, _) = pair { name = card.spName } else { name = "the service" }
            pair = .done(spName: name, bindings: bindings, returnUrl: url)
        case .rejected: pair = .ended(message: "Pairing declined.")
        case .expired: pair = .ended(message: "This pairing request has expired.")
        case .failed(_, let message): pair = .ended(message: message)
        }
    }

    /// Runs a flow step; a retryable error stays on the screen, others end the flow.
    private func run(_ work: @escaping @MainActor () async throws -> Void) {
        busy = true
        Task { @MainActor in
            defer { busy = false }
            let before = pair
            do {
                try await work()
            } catch {
                let (message, terminal) = describe(error)
                switch (terminal, before) {
                case (false, .enterCode(let f, let card, _, _, _)?):
                    pair = .enterCode(flowId: f, card: card, code: "", prefilled: false, error: message)
                case (false, .chooseWallets(let f, let card, let rows, let sel, _)?):
                    pair = .chooseWallets(flowId: f, card: card, rows: rows, selected: sel, error: message)
                default:
                    pair = .ended(message: message)
                }
            }
        }
    }

    // MARK: bonding, sign requests, pairs

    private var scanTask: Task<Void, Never>?

    func scan() {
        scanTask?.cancel()
        scanTask = Task {
            do {
                appliances = try await flows.scanAppliances(timeoutMs: 5000)
            } catch SunstormError.Cancelled {
                // scanned again, or left the bonding screen
            } catch is CancellationError {
                // the same, in demo mode
            } catch {
                bondMessage = describe(error).message
            }
        }
    }

    /// Leaving the bonding screen cancels the scan's Task, which stops the scan in Rust.
    func stopScan() {
        scanTask?.cancel()
        scanTask = nil
    }

    func bond(_ row: ApplianceRow, pin: String) {
        Task {
            do {
                let name = try await flows.bond(peripheralId: row.peripheralId, pin: pin)
                bondMessage = "Bonded with \(name)."
            } catch {
                bondMessage = describe(error).message
            }
        }
    }

    func refreshSignRequests() {
        Task { do { signRequests = try await flows.pendingSignRequests() } catch { signStatus = describe(error).message } }
    }

    func approveSign(_ r: SignRequestView) {
        guard !r.blocked else { return }
        Task {
            do {
                try await flows.approveSign(requestId: r.id) { p in Task { @MainActor in self.signStatus = progressText(p) } }
                signStatus = "Signed and sent to \(r.spName)."
            } catch { signStatus = describe(error).message }
            refreshSignRequests()
        }
    }

    func rejectSign(_ r: SignRequestView) {
        Task { try? await flows.rejectSign(requestId: r.id); refreshSignRequests() }
    }

    func refreshPairs() {
        Task { pairs = (try? await flows.listPairs()) ?? [] }
    }

    func revoke(_ p: PairRow) {
        Task { try? await flows.revoke(pairId: p.id); refreshPairs() }
    }
}
