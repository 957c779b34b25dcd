import SwiftUI

struct HomeView: View {
    @EnvironmentObject private var model: AppModel

    var body: some View {
        NavigationStack(path: $model.path) {
            List {
                Section {
                    Text("Approve pairings and signatures for your Sigil appliance.")
                }
                NavigationLink("Scan a pairing QR code", value: Route.scan)
                NavigationLink("Pending sign requests", value: Route.signRequests)
                NavigationLink("Pairs", value: Route.pairs)
                NavigationLink("Bond an appliance", value: Route.bond)
            }
            .navigationTitle("Sunstorm")
            .navigationDestination(for: Route.self) { route in
                switch route {
                case .bond: BondView()
                case .scan: QRScannerView { model.open(text: $0.trimmingCharacters(in: .whitespacesAndNewlines)) }
                case .signRequests: SignRequestsView()
                case .pairs: PairsView()
                }
            }
        }
        .sheet(isPresented: Binding(get: { model.pair != nil }, set: { if !$0 { model.pair = nil } })) {
            PairFlowView()
        }
        .alert("Not a Sigil pairing link",
               isPresented: Binding(get: { model.refusedLink != nil }, set: { if !$0 { model.refusedLink = nil } })) {
            Button("OK", role: .cancel) {}
        } message: {
            Text((model.refusedLink ?? "") + "\n\nOpen pairing links from the service's page, or scan its QR code.")
        }
    }
}
