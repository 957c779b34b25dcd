import Foundation
import Sunstorm

// What the screens need from the core. `CoreFlows` implements it over the generated
// `SunstormCore` (openPairLink, submitCode, walletChoices, chooseWallets, approvePair,
// rejectPair, pendingSignRequests, approveSign, rejectSign, listPairs, revokePair) and maps
// the generated view records (SpCardView, PairStateView, WalletRowView, PairView,
// SignRequestView) onto the screen types below (`CoreViews`). `DemoFlows` scripts it for
// UI previews only. Same shape as the Android sample's `SunstormFlows`.

struct SpCard: Equatable, Sendable {
    var sessionId, spName, homepage, keyFingerprint, spUserRef: String
    var requestedChains: [String]
    var expiresAt: Date
    var returnUrl: URL?
}

struct WalletChoice: Identifiable, Equatable, Sendable {
    var chain, chainName, account, shortAddress: String
    var selectable: Bool
    var id: String { account }
}

enum PairStep: Equatable, Sendable {
    case loading(flowId: String)
    case codeNeeded(flowId: String, card: SpCard, attemptsLeft: Int?)
    case codePrefilled(flowId: String, card: SpCard, code: String)
    case codeVerified(flowId: String, card: SpCard)
    case walletsChosen(flowId: String, card: SpCard, bindings: [String])
    /// `approved`: the appliance approved; only octane's answer is missing.
    case waitingForAppliance(flowId: String, card: SpCard, bindings: [String], approved: Bool)
    case paired(flowId: String, pairId: String, bindings: [String], returnUrl: URL?)
    case rejected, expired
    case failed(code: String, message: String)
}

struct SignRequestView: Identifiable, Equatable, Sendable {
    /// A row: `key` is the core's stable key (`amount`, `clear.params.amountIn`…), what a
    /// translated app looks its own label up by.
    struct Field: Hashable, Sendable { var label, value: String; var key: String = "" }
    var id: String
    var spName, chain, account, title: String
    var fields: [Field]
    var warnings: [String]
    var blind: Bool
    var violations: [String]
    var blocked: Bool { !violations.isEmpty }
}

struct PairRow: Identifiable, Equatable, Sendable {
    var id: String
    var spName, spUserRef: String
    var bindings: [String]
    var active: Bool
}

protocol SunstormFlows: Sendable {
    func scanAppliances(timeoutMs: Int32) async throws -> [ApplianceRow]
    func bond(peripheralId: String, pin: String) async throws -> String
    func openLink(_ link: String) async throws -> PairStep
    func submitCode(flowId: String, code: String?) async throws -> PairStep
    func approvalList(flowId: String) async throws -> [WalletChoice]
    func chooseWallets(flowId: String, accounts: [String]) async throws -> PairStep
    func approvePair(flowId: String, progress: @escaping @Sendable (FlowProgress) -> Void) async throws -> PairStep
    func rejectPair(flowId: String) async throws -> PairStep
    func pendingSignRequests() async throws -> [SignRequestView]
    func approveSign(requestId: String, progress: @escaping @Sendable (FlowProgress) -> Void) async throws
    func rejectSign(requestId: String) async throws
    func listPairs() async throws -> [PairRow]
    func revoke(pairId: String) async throws
    /// Pair-flow state changes the core reports on its own (called off the main actor).
    func onPairUpdate(_ listener: (@Sendable (PairStep) -> Void)?)
}

extension SunstormFlows {
    func onPairUpdate(_ listener: (@Sendable (PairStep) -> Void)?) {}
}

/// Where a Universal Link or a scanned QR code leads. The core's `parseLink` decides; only
/// `https://sigilvault.xyz/pair?session=…[&v=NNNNNN]` opens the pair screen.
enum LinkRoute: Equatable {
    case pair(link: String, sessionId: String, code: String?)
    case refused(reason: String)

    static func route(_ text: String, core: SunstormCore) -> LinkRoute {
        guard !text.isEmpty, text.count <= 2048 else { return .refused(reason: "the link is empty or too long") }
        do {
            let link = try core.parseLink(text: text)
            return .pair(link: text, sessionId: link.sessionId, code: link.code)
        } catch SunstormError.InvalidLink(_, let reason) {
            return .refused(reason: reason)
        } catch {
            return .refused(reason: error.localizedDescription)
        }
    }
}

/// The sentence a screen shows for a core error, and whether the flow can go on.
func describe(_ error: Error) -> (message: String, terminal: Bool) {
    guard let e = error as? SunstormError else { return (error.localizedDescription, true) }
    switch e {
    case .InvalidCode(_, let reason): return (reason, false)
    case .WrongCode(let left): return ("Wrong code, \(left) attempts left", false)
    case .CodeLocked: return ("Too many wrong codes. Start again on the service's page.", true)
    case .Expired: return ("This request has expired. Start again on the service's page.", true)
    case .UntrustedSignature(let what): return ("Warning: a signature did not verify (\(what)). Nothing was approved.", true)
    case .WrongPin(let left): return ("Wrong PIN, \(left) attempts left", false)
    case .PinLocked: return ("Too many wrong PINs: the appliance now shows a new PIN.", false)
    case .NotBonded: return ("Bond this phone with your appliance first.", true)
    case .ChooseAppliance: return ("Several appliances are bonded: choose which one to use.", false)
    case .NoSuchAppliance: return ("That appliance is no longer bonded with this phone.", true)
    case .UnknownAppliance: return ("Warning: this is not the appliance you bonded with.", true)
    case .ApplianceDeclined: return ("Declined on the appliance.", true)
    case .PhoneForgotten: return ("This appliance no longer knows this phone. Bond it again.", true)
    case .ApplianceUnreachable: return ("Cannot reach the appliance. Bring it closer and retry.", false)
    case .BluetoothUnavailable: return ("Turn Bluetooth on and allow it for Sunstorm, then retry.", false)
    case .GuardrailBlocked(let summary): return ("Blocked by your guardrails: \(summary)", true)
    case .ApprovalCancelled: return ("Approval cancelled. Nothing was sent.", false)
    case .BiometricsLockedOut: return ("Face ID is locked after too many attempts. Unlock your phone, then approve again.", false)
    case .ApprovalKeyInvalidated:
        return ("Your Face ID or Touch ID changed. Enrol this phone's new approval key with your appliance, then approve again.", false)
    case .NoBiometrics: return ("Set up Face ID or Touch ID to approve.", false)
    case .Cancelled: return ("Cancelled.", true)
    default: return (e.localizedDescription, true)
    }
}

func progressText(_ p: FlowProgress) -> String {
    switch p {
    case .connectingToAppliance: return "Connecting to your appliance…"
    case .sendingToAppliance(let sent, let total): return total == 0 ? "Sending…" : "Sending… \(sent * 100 / total)%"
    case .waitingForApplianceConfirmation: return "Confirm on your appliance"
    case .reconnectingToAppliance(let attempt): return "Connection lost, reconnecting (attempt \(attempt))…"
    }
}

/// Pure mapping of the generated view records (bindings/src/flow_views.rs) onto the
/// screen types.
enum CoreViews {
    static func card(_ c: SpCardView) -> SpCard {
        SpCard(sessionId: c.sessionId, spName: c.spName, homepage: c.homepage, keyFingerprint: c.keyFingerprint,
               spUserRef: c.userRef, requestedChains: c.requestedChains,
               expiresAt: Date(timeIntervalSince1970: TimeInterval(c.expiresAt)),
               returnUrl: c.returnUrl.flatMap(URL.init(string:)))
    }

    /// `prefilledCode`: the code the opened link carried (the core does not echo it back).
    static func step(_ s: PairStateView, prefilledCode: String? = nil) -> PairStep {
        switch s {
        case .linkOpened(let f, _), .sessionLoaded(let f, _): return .loading(flowId: f)
        case .codeNeeded(let f, let c, let left): return .codeNeeded(flowId: f, card: card(c), attemptsLeft: left.map(Int.init))
        case .codePrefilled(let f, let c): return .codePrefilled(flowId: f, card: card(c), code: prefilledCode ?? "")
        case .codeVerified(let f, let c): return .codeVerified(flowId: f, card: card(c))
        case .walletsChosen(let f, let c, let a): return .walletsChosen(flowId: f, card: card(c), bindings: a)
        case .waitingForAppliance(let f, let c, let a, let ok): return .waitingForAppliance(flowId: f, card: card(c), bindings: a, approved: ok)
        case .paired(let f, let id, let a, let outcome):
            if case .returnTo(let url) = outcome { return .paired(flowId: f, pairId: id, bindings: a, returnUrl: URL(string: url)) }
            return .paired(flowId: f, pairId: id, bindings: a, returnUrl: nil)
        case .rejected: return .rejected
        case .expired: return .expired
        case .failed(_, let code, let message): return .failed(code: code, message: message)
        }
    }

    static func wallet(_ r: WalletRowView) -> WalletChoice {
        WalletChoice(chain: r.chain, chainName: r.chainName, account: r.account, shortAddress: r.shortAddress,
                     selectable: r.state != .notRequested)
    }

    static func pair(_ p: PairView) -> PairRow {
        PairRow(id: p.pairId, spName: p.spName, spUserRef: p.userRef, bindings: p.accounts, active: p.active)
    }

    static func signRequest(_ r: Sunstorm.SignRequestView) -> SignRequestView {
        SignRequestView(id: r.requestId, spName: r.spName, chain: r.chainName, account: r.account, title: r.title,
                        fields: r.fields.map { .init(label: $0.label, value: $0.value, key: $0.key) },
                        warnings: r.warnings.map(\.message), blind: r.blind, violations: r.violations.map(\.message))
    }

    /// The activity screen's sentence for an audit log entry. The library hands over typed
    /// events and never a sentence: the wording (and its language) is the app's.
    static func auditSentence(_ e: AuditEventView) -> String {
        func byWhom(_ a: AuditActor) -> String {
            switch a {
            case .phone: return "on this phone"
            case .appliance: return "on the appliance"
            case .service: return "by the service"
            }
        }
        switch e {
        case .pairApproved(_, let spName, let accounts):
            return "Paired with \(spName) (\(accounts.count) account\(accounts.count == 1 ? "" : "s"))"
        case .pairRejected(let by): return "Pairing declined \(byWhom(by))"
        case .pairRevoked(let by): return "Pairing revoked \(byWhom(by))"
        case .signApproved(let title, let screen): return "Approved: \(title) (screen \(screen))"
        case .signSigned(let screen): return "Signed by the appliance (signature verified, screen \(screen))"
        case .signRejected(let by): return "Signature request declined \(byWhom(by))"
        case .signBlocked(let violations, let atApproval):
            return (atApproval ? "Blocked at approval by your guardrails: " : "Blocked by your guardrails: ")
                + violations.joined(separator: ", ")
        case .guardrailsChanged: return "Guardrails changed"
        case .applianceForgotten(let name): return "Forgot the appliance \(name)"
        case .phoneForgotten(let appliance, _): return "A phone was forgotten by appliance \(appliance)"
        case .metadataUpdated(let version): return "Clear-signing data updated to version \(version)"
        case .addressLabelChanged(let label): return label.map { "Address labelled \"\($0)\"" } ?? "Address label removed"
        case .other(let kind): return "Older entry: \(kind.replacingOccurrences(of: "_", with: " "))"
        }
    }
}

/// `SunstormFlows` over the generated `SunstormCore`, and its `FlowListener`: appliance
/// progress goes to the approval in progress, pair-state changes to `onPairUpdate`.
final class CoreFlows: SunstormFlows, FlowListener, @unchecked Sendable {
    private let core: SunstormCore
    private let lock = NSLock()
    private var progress: (@Sendable (FlowProgress) -> Void)?
    private var updates: (@Sendable (PairStep) -> Void)?

    init(core: SunstormCore) {
        self.core = core
        core.setFlowListener(listener: self)
    }

    // FlowListener (called on a core thread)
    func onProgress(progress p: FlowProgress) throws { lock.withLock { progress }?(p) }
    func onPairState(state: PairStateView) throws { lock.withLock { updates }?(CoreViews.step(state)) }

    func onPairUpdate(_ listener: (@Sendable (PairStep) -> Void)?) { lock.withLock { updates = listener } }

    private func reporting<T>(_ to: @escaping @Sendable (FlowProgress) -> Void, _ work: () async throws -> T) async rethrows -> T {
        lock.withLock { progress = to }
        defer { lock.withLock { progress = nil } }
        return try await work()
    }

    func scanAppliances(timeoutMs: Int32) async throws -> [ApplianceRow] {
        try await core.scanAppliances(timeoutMs: timeoutMs)
    }
    func bond(peripheralId: String, pin: String) async throws -> String {
        try await core.bondAppliance(peripheralId: peripheralId, pin: pin).name
    }
    func openLink(_ link: String) async throws -> PairStep {
        let code = (try? core.parseLink(text: link))?.code
        return CoreViews.step(try await core.openPairLink(link: link), prefilledCode: code)
    }
    func submitCode(flowId: String, code: String?) async throws -> PairStep {
        CoreViews.step(try await core.submitCode(flowId: flowId, code: code))
    }
    func approvalList(flowId: String) async throws -> [WalletChoice] {
        try await core.walletChoices(flowId: flowId).map(CoreViews.wallet)
    }
    func chooseWallets(flowId: String, accounts: [String]) async throws -> PairStep {
        CoreViews.step(try await core.chooseWallets(flowId: flowId, accounts: accounts))
    }
    func approvePair(flowId: String, progress: @escaping @Sendable (FlowProgress) -> Void) async throws -> PairStep {
        try await reporting(progress) { CoreViews.step(try await core.approvePair(flowId: flowId)) }
    }
    func rejectPair(flowId: String) async throws -> PairStep {
        CoreViews.step(try await core.rejectPair(flowId: flowId))
    }
    func pendingSignRequests() async throws -> [SignRequestView] {
        try await core.pendingSignRequests(waitMs: 2000).map(CoreViews.signRequest)
    }
    func approveSign(requestId: String, progress: @escaping @Sendable (FlowProgress) -> Void) async throws {
        try await reporting(progress) { try await core.approveSign(requestId: requestId) }
    }
    func rejectSign(requestId: String) async throws { try await core.rejectSign(requestId: requestId) }
    func listPairs() async throws -> [PairRow] { try await core.listPairs().map(CoreViews.pair) }
    func revoke(pairId: String) async throws { try await core.revokePair(pairId: pairId) }
}

/// Scripted flows (one appliance, one SP, two sign requests) for UI previews only
/// (`AppModel.demoMode`); the app runs on `CoreFlows`.
actor DemoFlows: SunstormFlows {
    private var codeAttempts = 3
    private var bonded = false
    private var chosen: [String] = []
    private var pairs: [PairRow] = []
    private var pending: [SignRequestView] = [
        .init(id: "req-send-eth", spName: "Acme Exchange", chain: "eip155:1", account: "0x5290…9EE7", title: "Send ETH",
              fields: [.init(label: "To", value: "0x8617…070D"), .init(label: "Amount", value: "0.25 ETH")],
              warnings: [], blind: false, violations: []),
        .init(id: "req-approve-unlimited", spName: "Acme Exchange", chain: "eip155:1", account: "0x5290…9EE7", title: "ERC-20 approval",
              fields: [.init(label: "Token", value: "USDC"), .init(label: "Amount", value: "Unlimited")],
              warnings: ["Unlimited approval: the spender may move all your USDC"], blind: false,
              violations: ["Your guardrails forbid unlimited approvals"]),
    ]
    private let card = SpCard(sessionId: "ps_demo", spName: "Acme Exchange", homepage: "https://acme.example",
                              keyFingerprint: "ACME-7F3C-91D2", spUserRef: "alice@acme",
                              requestedChains: ["eip155:1", "solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp"],
                              expiresAt: Date().addingTimeInterval(300), returnUrl: URL(string: "https://acme.example/sigil/done"))

    func scanAppliances(timeoutMs: Int32) async throws -> [ApplianceRow] {
        try await Task.sleep(nanoseconds: 500_000_000)
        return [ApplianceRow(peripheralId: UUID().uuidString, displayName: "Sigil appliance", rssi: -48)]
    }
    func bond(peripheralId: String, pin: String) async throws -> String {
        guard pin == "4321" else { throw SunstormError.WrongPin(attemptsLeft: 2) }
        bonded = true
        return "Sigil appliance"
    }
    func openLink(_ link: String) async throws -> PairStep {
        if let v = URLComponents(string: link)?.queryItems?.first(where: { $0.name == "v" })?.value {
            return .codePrefilled(flowId: "flow-1", card: card, code: v)
        }
        return .codeNeeded(flowId: "flow-1", card: card, attemptsLeft: nil)
    }
    func submitCode(flowId: String, code: String?) async throws -> PairStep {
        guard codeAttempts > 0 else { throw SunstormError.CodeLocked }
        if let code, code != "123456" {
            codeAttempts -= 1
            throw codeAttempts == 0 ? SunstormError.CodeLocked : SunstormError.WrongCode(attemptsLeft: Int32(codeAttempts))
        }
        return .codeVerified(flowId: flowId, card: card)
    }
    func approvalList(flowId: String) async throws -> [WalletChoice] {
        [.init(chain: "eip155:1", chainName: "Ethereum", account: "eip155:1:0x52908400098527886E0F7030069857D2E4169EE7", shortAddress: "0x5290…9EE7", selectable: true),
         .init(chain: "solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp", chainName: "Solana", account: "solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp:7S3P4HxJpyyigGzodYwHtCxZyUQe9JiBMHyRWXArAaKv", shortAddress: "7S3P…AaKv", selectable: true),
         .init(chain: "eip155:137", chainName: "Polygon", account: "eip155:137:0x52908400098527886E0F7030069857D2E4169EE7", shortAddress: "0x5290…9EE7", selectable: false)]
    }
    func chooseWallets(flowId: String, accounts: [String]) async throws -> PairStep {
        guard !accounts.isEmpty else { throw SunstormError.InvalidSelection(reason: "choose at least one wallet") }
        chosen = accounts
        return .waitingForAppliance(flowId: flowId, card: card, bindings: accounts, approved: false)
    }
    func approvePair(flowId: String, progress: @escaping @Sendable (FlowProgress) -> Void) async throws -> PairStep {
        guard bonded else { throw SunstormError.NotBonded }
        progress(.connectingToAppliance)
        progress(.waitingForApplianceConfirmation)
        try await Task.sleep(nanoseconds: 2_000_000_000)
        pairs.insert(PairRow(id: UUID().uuidString, spName: card.spName, spUserRef: card.spUserRef, bindings: chosen, active: true), at: 0)
        return .paired(flowId: flowId, pairId: pairs[0].id, bindings: chosen, returnUrl: card.returnUrl)
    }
    func rejectPair(flowId: String) async throws -> PairStep { .rejected }
    func pendingSignRequests() async throws -> [SignRequestView] { pending }
    func approveSign(requestId: String, progress: @escaping @Sendable (FlowProgress) -> Void) async throws {
        guard let r = pending.first(where: { $0.id == requestId }) else { throw SunstormError.NotFound }
        guard !r.blocked else { throw SunstormError.GuardrailBlocked(summary: r.violations.joined(separator: "; ")) }
        progress(.waitingForApplianceConfirmation)
        try await Task.sleep(nanoseconds: 1_000_000_000)
        pending.removeAll { $0.id == requestId }
    }
    func rejectSign(requestId: String) async throws { pending.removeAll { $0.id == requestId } }
    func listPairs() async throws -> [PairRow] { pairs }
    func revoke(pairId: String) async throws {
        guard let i = pairs.firstIndex(where: { $0.id == pairId }) else { throw SunstormError.NotFound }
        pairs[i].active = false
    }
}
