import Foundation
import Sunstorm

// What the screens need from the core. Link parsing, code normalisation and scanning are
// the generated `SunstormCore` API today; the flow operations mirror the core facade
// (bond, open link, submit code, approval list, choose wallets, approve/reject pair,
// pending/approve/reject sign requests, list pairs, revoke) that the FFI binds next
// (docs/embedding.md §8). `CoreFlows` adapts the generated API; `DemoFlows` scripts it so
// every screen runs in the simulator without an appliance. Same shape as the Android
// sample's `SunstormFlows`.

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
    case codeNeeded(flowId: String, card: SpCard, attemptsLeft: Int?)
    case codePrefilled(flowId: String, card: SpCard, code: String)
    case codeVerified(flowId: String, card: SpCard)
    case waitingForAppliance(flowId: String, card: SpCard, bindings: [String])
    case paired(flowId: String, pairId: String, bindings: [String], returnUrl: URL?)
    case rejected, expired
}

struct SignRequestView: Identifiable, Equatable, Sendable {
    struct Field: Equatable, Sendable { var label, value: String }
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
    func scanAppliances(timeoutMs: UInt32) async throws -> [ApplianceRow]
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
    case .UnknownAppliance: return ("Warning: this is not the appliance you bonded with.", true)
    case .ApplianceDeclined: return ("Declined on the appliance.", true)
    case .ApplianceUnreachable: return ("Cannot reach the appliance. Bring it closer and retry.", false)
    case .BluetoothUnavailable: return ("Turn Bluetooth on and allow it for Sunstorm, then retry.", false)
    case .GuardrailBlocked(let summary): return ("Blocked by your guardrails: \(summary)", true)
    case .Cancelled: return ("Cancelled.", true)
    default: return (String(describing: e), true)
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

/// The generated core for what it binds today; the rest reports "not bound yet".
final class CoreFlows: SunstormFlows {
    private let core: SunstormCore
    init(core: SunstormCore) { self.core = core }

    func scanAppliances(timeoutMs: UInt32) async throws -> [ApplianceRow] {
        try await core.scanAppliances(timeoutMs: timeoutMs, cancel: nil)
    }
    private func notBound(_ op: String) -> SunstormError {
        .Internal(reason: "\(op) is not bound by this core build yet; use demo mode")
    }
    func bond(peripheralId: String, pin: String) async throws -> String {
        try await core.bondAppliance(peripheralId: peripheralId, pin: pin, cancel: nil, listener: nil).name
    }
    func openLink(_ link: String) async throws -> PairStep { throw notBound("open pair session") }
    func submitCode(flowId: String, code: String?) async throws -> PairStep { throw notBound("submit code") }
    func approvalList(flowId: String) async throws -> [WalletChoice] { throw notBound("approval list") }
    func chooseWallets(flowId: String, accounts: [String]) async throws -> PairStep { throw notBound("choose wallets") }
    func approvePair(flowId: String, progress: @escaping @Sendable (FlowProgress) -> Void) async throws -> PairStep { throw notBound("approve pair") }
    func rejectPair(flowId: String) async throws -> PairStep { throw notBound("reject pair") }
    func pendingSignRequests() async throws -> [SignRequestView] { throw notBound("pending sign requests") }
    func approveSign(requestId: String, progress: @escaping @Sendable (FlowProgress) -> Void) async throws { throw notBound("approve sign") }
    func rejectSign(requestId: String) async throws { throw notBound("reject sign") }
    func listPairs() async throws -> [PairRow] { throw notBound("list pairs") }
    func revoke(pairId: String) async throws { throw notBound("revoke") }
}

/// Scripted flows (one appliance, one SP, two sign requests) for running every screen.
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

    func scanAppliances(timeoutMs: UInt32) async throws -> [ApplianceRow] {
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
            throw codeAttempts == 0 ? SunstormError.CodeLocked : SunstormError.WrongCode(attemptsLeft: UInt32(codeAttempts))
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
        return .waitingForAppliance(flowId: flowId, card: card, bindings: accounts)
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
