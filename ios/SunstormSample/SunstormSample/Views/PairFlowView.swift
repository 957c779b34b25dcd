import SwiftUI

/// SP card + code (prefilled in the single-device flow), wallets, "confirm on your
/// appliance", done → back to the service (`return_url`, validated by the core).
struct PairFlowView: View {
    @EnvironmentObject private var model: AppModel
    @Environment(\.openURL) private var openURL
    @Environment(\.dismiss) private var dismiss

    var body: some View {
        NavigationStack {
            content
                .padding()
                .navigationTitle("Pair")
                .navigationBarTitleDisplayMode(.inline)
        }
        .interactiveDismissDisabled(model.busy)
    }

    @ViewBuilder private var content: some View {
        switch model.pair {
        case .loading?, nil:
            ProgressView("Checking the pairing request…")
        case .enterCode(_, let card, let code, let prefilled, let error)?:
            VStack(alignment: .leading, spacing: 16) {
                SpCardView(card: card)
                Text(prefilled ? "The code came with the link. Check it matches the service's page."
                               : "Type the 6-digit code shown on the service's page.")
                TextField("Validation code", text: Binding(get: { code }, set: { model.editCode($0) }))
                    .keyboardType(.numberPad)
                    .textContentType(.oneTimeCode)
                    .font(.title2.monospacedDigit())
                if let error { Text(error).foregroundStyle(.red) }
                HStack {
                    Button("Continue") { model.submitCode() }.buttonStyle(.borderedProminent)
                        .disabled(code.count != 6 || model.busy)
                    Button("Decline", role: .destructive) { model.rejectPair() }
                }
                Spacer()
            }
        case .chooseWallets(_, let card, let rows, let selected, let error)?:
            VStack(alignment: .leading, spacing: 12) {
                SpCardView(card: card)
                Text("Choose the wallets \(card.spName) may request signatures for:")
                List(rows) { row in
                    Button { model.toggle(row.account) } label: {
                        HStack {
                            Image(systemName: selected.contains(row.account) ? "checkmark.circle.fill" : "circle")
                            VStack(alignment: .leading) {
                                Text("\(row.chainName) · \(row.shortAddress)")
                                if !row.selectable { Text("Not requested by the service").font(.caption) }
                            }
                        }
                    }
                    .disabled(!row.selectable)
                }
                .listStyle(.plain)
                if let error { Text(error).foregroundStyle(.red) }
                HStack {
                    Button("Approve on my appliance") { model.approvePair() }.buttonStyle(.borderedProminent)
                        .disabled(selected.isEmpty || model.busy)
                    Button("Decline", role: .destructive) { model.rejectPair() }
                }
            }
        case .confirmOnAppliance(let card, let bindings, let status)?:
            VStack(spacing: 16) {
                ProgressView()
                Text(status).font(.title2)
                Text("Check that your appliance shows \(card.spName) and these wallets:")
                ForEach(bindings, id: \.self) { Text($0).font(.caption.monospaced()) }
            }
        case .done(let spName, let bindings, let returnUrl)?:
            VStack(alignment: .leading, spacing: 12) {
                Label("Paired with \(spName)", systemImage: "checkmark.seal.fill").font(.title2)
                ForEach(bindings, id: \.self) { Text($0).font(.caption.monospaced()) }
                if let returnUrl {
                    Button("Back to \(spName)") { openURL(returnUrl); model.pair = nil }.buttonStyle(.borderedProminent)
                } else {
                    Text("You can continue on the service's page.")
                    Button("Done") { model.pair = nil }
                }
            }
        case .ended(let message)?:
            VStack(spacing: 12) {
                Text("Not paired").font(.title2)
                Text(message)
                Button("Close") { model.pair = nil }
            }
        }
    }
}

/// Who asks to pair (all of it signed by octane and checked by the core).
struct SpCardView: View {
    let card: SpCard

    var body: some View {
        VStack(alignment: .leading, spacing: 4) {
            Text(card.spName).font(.title2.bold())
            Text(card.homepage).font(.caption)
            Text("Account: \(card.spUserRef)")
            Text("Asks for wallets on: \(card.requestedChains.joined(separator: ", "))").font(.callout)
            Text("Service key \(card.keyFingerprint)").font(.caption.monospaced())
            Text("Expires \(card.expiresAt.formatted(date: .omitted, time: .shortened))").font(.caption)
        }
        .frame(maxWidth: .infinity, alignment: .leading)
        .padding()
        .background(.thinMaterial, in: RoundedRectangle(cornerRadius: 12))
    }
}
